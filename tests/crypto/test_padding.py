"""Padmé and the padding inside the AEAD."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from walrusfs.crypto import PAD_OVERHEAD, Tampered, pad, pad_target, padded_size, unpad


def padme_paper(length: int) -> int:
    """Algorithm 1 of the PURBs paper, transcribed literally (floating-point log2)."""
    e = math.floor(math.log2(length))
    s = math.floor(math.log2(e)) + 1
    last_bits = e - s
    bit_mask = (1 << last_bits) - 1
    return (length + bit_mask) & ~bit_mask


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, 0),
        (1, 1),
        (2, 2),
        (3, 3),
        (9, 10),
        (17, 18),
        (100, 104),
        (129, 144),
        (1000, 1024),
        (1025, 1088),
        (1_000_000, 1_015_808),
        ((1 << 20) - 1, 1 << 20),
        (1 << 20, 1 << 20),
    ],
)
def test_known_values(n: int, expected: int) -> None:
    assert padded_size(n) == expected


def test_matches_the_paper_exhaustively_up_to_64k() -> None:
    for n in range(2, 1 << 16):
        assert padded_size(n) == padme_paper(n), n


@given(st.integers(min_value=2, max_value=1 << 50))
def test_matches_the_paper(n: int) -> None:
    assert padded_size(n) == padme_paper(n)


@given(st.integers(min_value=0, max_value=1 << 60))
@example(129)  # the worst case: 15 bytes of padding on 129, 11.6 %
def test_never_shorter_and_at_most_12_percent_longer(n: int) -> None:
    p = padded_size(n)
    assert p >= n
    assert p - n <= 0.12 * n
    assert padded_size(p) == p  # a padded size pads to itself


@given(st.integers(min_value=2, max_value=1 << 60))
def test_only_the_top_bits_survive(n: int) -> None:
    """The low E - S bits of a padded size are zero: at most 2^S + 1 sizes per power of two,
    so a padded size leaks O(log log n) bits."""
    e = n.bit_length() - 1
    s = e.bit_length()
    p = padded_size(n)
    assert p % (1 << (e - s)) == 0
    assert p <= 1 << (e + 1)


def test_small_set_of_sizes_per_power_of_two() -> None:
    for e in range(1, 17):
        sizes = {padded_size(n) for n in range(1 << e, 1 << (e + 1))}
        s = e.bit_length()
        assert len(sizes) <= (1 << s) + 1
        assert len(sizes) <= 2 * e + 1  # O(log n) sizes, i.e. O(log log n) bits
    assert len({padded_size(n) for n in range(1 << 16, 1 << 17)}) == 33


def test_negative_length() -> None:
    with pytest.raises(ValueError):
        padded_size(-1)


@given(st.binary(max_size=5000))
@example(b"")
@example(b"\x80")
@example(b"\x80\x00\x00")
@example(b"\x00" * 100)
@example(b"data\x80")
def test_pad_round_trip(data: bytes) -> None:
    padded = pad(data)
    assert len(padded) == pad_target(len(data)) == padded_size(len(data)) + PAD_OVERHEAD
    assert unpad(padded) == data
    assert unpad(memoryview(padded)) == data


def test_empty_block_pads_to_the_marker_alone() -> None:
    assert pad(b"") == b"\x80"
    assert unpad(b"\x80") == b""


def test_a_full_power_of_two_block_costs_one_byte() -> None:
    block = b"\xab" * (1 << 20)
    assert len(pad(block)) == (1 << 20) + 1
    assert len(pad(block[:-1000])) == (1 << 20) + 1  # short of a full block looks full


def test_explicit_size() -> None:
    padded = pad(memoryview(b"abc"), 64)
    assert len(padded) == 64
    assert unpad(padded) == b"abc"
    assert pad(b"abc", 4) == b"abc\x80"
    with pytest.raises(ValueError):
        pad(b"abc", 3)


@pytest.mark.parametrize(
    "bad", [b"", b"\x00", b"\x00" * 64, b"abc", b"abc\x80\x00\x01", b"\x80\x01"]
)
def test_malformed_padding(bad: bytes) -> None:
    with pytest.raises(Tampered, match="padding"):
        unpad(bad)
