"""ISA-L computes exactly zfec's parity shares, and the devnet falls back to zfec without it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import trio
import zfec

from walrusfs.devnet import isal
from walrusfs.devnet.blobid import max_faulty
from walrusfs.devnet.encoding import ShareCoder
from walrusfs.devnet.workers import POOL_MIN, EncodePool


def k_of(n: int) -> int:
    return n - 2 * max_faulty(n)


@pytest.fixture
def without_isal(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(isal.DISABLE, "1")
    isal._library.cache_clear()
    isal.parity_coder.cache_clear()
    yield
    monkeypatch.delenv(isal.DISABLE)
    isal._library.cache_clear()
    isal.parity_coder.cache_clear()


def test_isal_is_installed() -> None:
    # setup.sh installs libisal2; without it every store pays zfec's 3 ms per MiB again.
    assert isal.parity_coder(4, 10) is not None


@pytest.mark.parametrize("n", [*range(2, 41), 64, 100, 255])
def test_isal_parity_equals_zfec(n: int) -> None:
    k = k_of(n)
    coder = isal.parity_coder(k, n)
    assert coder is not None
    encoder = zfec.Encoder(k, n)
    wanted = list(range(k, n))
    for length in (1, 63, 64, 65, 4096 + 7):
        primaries = [os.urandom(length) for _ in range(k)]
        expected = encoder.encode(primaries, wanted) if wanted else []
        assert [bytes(b) for b in coder.encode(primaries, wanted)] == list(expected)
        # Any subset, in any order, of the parity shares.
        subset = wanted[::-2]
        if subset:
            assert [bytes(b) for b in coder.encode(primaries, subset)] == list(
                encoder.encode(primaries, subset)
            )


def test_isal_reads_views_and_writes_into_views() -> None:
    k, n, length = 4, 10, 1 << 18
    body = bytearray(os.urandom(n * length))
    view = memoryview(body)
    primaries = [view[i * length : (i + 1) * length].toreadonly() for i in range(k)]
    targets = [view[i * length : (i + 1) * length] for i in range(k, n)]
    coder = isal.parity_coder(k, n)
    assert coder is not None
    coder.encode_into(primaries, range(k, n), targets)
    expected = zfec.Encoder(k, n).encode([bytes(p) for p in primaries], list(range(k, n)))
    assert [bytes(t) for t in targets] == list(expected)
    with pytest.raises(ValueError):
        coder.encode_into(primaries, [k], [bytearray(length - 1)])
    with pytest.raises(ValueError):
        coder.encode_into(primaries, [k - 1], [bytearray(length)])
    with pytest.raises(ValueError):
        coder.encode_into(primaries[:-1], [k], [bytearray(length)])


def test_share_coder_gives_the_same_blob_with_and_without_isal() -> None:
    with_isal, with_zfec = ShareCoder(10), ShareCoder(10, isal=False)
    for size in (0, 1, 1000, (1 << 20) - 1, 1 << 20):
        data = os.urandom(size)
        a, b = with_isal.encode(data), with_zfec.encode(data)
        assert a.metadata == b.metadata
        assert [bytes(s) for s in a.shares] == [bytes(s) for s in b.shares]


async def test_without_isal_everything_uses_zfec(
    without_isal: None, caplog: pytest.LogCaptureFixture
) -> None:
    assert isal.parity_coder(4, 10) is None
    data = os.urandom(POOL_MIN + 999)
    expected = ShareCoder(10, isal=False).encode(data)
    assert ShareCoder(10).encode(data).metadata == expected.metadata
    # The worker processes inherit the switch and take their zfec path.
    pool = EncodePool(10, workers=2)
    try:
        encoded = await pool.encode(data)
        assert encoded.metadata == expected.metadata
        assert [bytes(s) for s in encoded.shares] == [bytes(s) for s in expected.shares]
    finally:
        pool.close()
    assert "encoding workers failed" not in caplog.text
    await trio.lowlevel.checkpoint()
