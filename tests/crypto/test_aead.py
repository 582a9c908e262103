"""Sealing: round trips, overhead, fresh nonces, and every kind of tampering refused."""

from __future__ import annotations

import os

import pytest
import trio

from walrusfs.crypto import NONCE_SIZE, SEAL_OVERHEAD, TAG_SIZE, Tampered, open_sealed, seal

KEY = bytes(range(32))
AD = b"chunk-id-0123456789abcdef0123456"


@pytest.mark.parametrize("size", [0, 1, 100, 4096, 1 << 20])
def test_round_trip(size: int) -> None:
    plaintext = os.urandom(size)
    sealed = seal(KEY, plaintext, AD)
    assert len(sealed) == size + SEAL_OVERHEAD
    assert open_sealed(KEY, sealed, AD) == plaintext


def test_overhead_is_nonce_and_tag() -> None:
    assert (NONCE_SIZE, TAG_SIZE, SEAL_OVERHEAD) == (24, 16, 40)


def test_memoryviews_in_and_out() -> None:
    buffer = bytearray(b"x" * 1000 + b"the block" + b"y" * 1000)
    view = memoryview(buffer)[1000:1009]
    sealed = seal(KEY, view, AD)
    assert open_sealed(KEY, memoryview(b"junk" + sealed)[4:], AD) == b"the block"


def test_nonces_are_fresh() -> None:
    a, b = seal(KEY, b"same", AD), seal(KEY, b"same", AD)
    assert a[:NONCE_SIZE] != b[:NONCE_SIZE]
    assert a != b


def test_plaintext_does_not_appear() -> None:
    marker = b"MARKER-walrusfs-plaintext" * 4
    assert marker[:16] not in seal(KEY, marker, AD)


def test_every_altered_byte_is_refused() -> None:
    sealed = seal(KEY, b"sixty-four bytes of a small block, more or less, as a test case", AD)
    for i in range(len(sealed)):
        for flip in (0x01, 0x80):
            altered = sealed[:i] + bytes([sealed[i] ^ flip]) + sealed[i + 1 :]
            with pytest.raises(Tampered):
                open_sealed(KEY, altered, AD)


def test_other_associated_data_is_refused() -> None:
    sealed = seal(KEY, b"block", AD)
    for i in range(len(AD)):
        other = AD[:i] + bytes([AD[i] ^ 1]) + AD[i + 1 :]
        with pytest.raises(Tampered):
            open_sealed(KEY, sealed, other)
    for other in (b"", AD + b"\0", AD[:-1]):
        with pytest.raises(Tampered):
            open_sealed(KEY, sealed, other)


def test_other_key_is_refused() -> None:
    sealed = seal(KEY, b"block", AD)
    with pytest.raises(Tampered):
        open_sealed(bytes(32), sealed, AD)


def test_truncation_and_extension_are_refused() -> None:
    sealed = seal(KEY, b"block", AD)
    for altered in (sealed[:-1], sealed[1:], sealed + b"\0", sealed[: SEAL_OVERHEAD - 1], b""):
        with pytest.raises(Tampered):
            open_sealed(KEY, altered, AD)


def test_message_is_one_line_naming_what() -> None:
    sealed = seal(KEY, b"block", AD)
    # Flip a bit of the tag: overwriting it with a fixed byte is no change one time in 256.
    altered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(Tampered) as info:
        open_sealed(KEY, altered, AD, what="chunk 3fa9 of pack 17")
    message = str(info.value)
    assert message.startswith("chunk 3fa9 of pack 17 failed authentication")
    assert "\n" not in message
    with pytest.raises(Tampered, match="truncated"):
        open_sealed(KEY, b"short", AD)


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        seal(b"k" * 31, b"x", AD)
    with pytest.raises(ValueError):
        open_sealed(b"k" * 33, seal(KEY, b"x", AD), AD)


async def test_usable_from_worker_threads() -> None:
    blocks = [os.urandom(64 * 1024) for _ in range(16)]
    sealed: list[bytes] = [b""] * len(blocks)

    async def one(i: int) -> None:
        sealed[i] = await trio.to_thread.run_sync(seal, KEY, blocks[i], i.to_bytes(4, "big"))

    async with trio.open_nursery() as nursery:
        for i in range(len(blocks)):
            nursery.start_soon(one, i)
    opened = [open_sealed(KEY, s, i.to_bytes(4, "big")) for i, s in enumerate(sealed)]
    assert opened == blocks
