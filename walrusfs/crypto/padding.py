"""Length hiding: Padmé padding, applied inside the AEAD.

Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files and Communication with
PURBs", PETS 2019, algorithm 1) rounds a length L up so that only its top bits survive: with
E = ⌊log2 L⌋ and S = ⌊log2 E⌋ + 1, the low E - S bits of the padded length are zero. A padded
length leaks O(log log L) bits about L instead of O(log L), and costs less than 2^-S of L:
under 12.5 % from 16 bytes on, under 6.25 % from 256 bytes, under 3.2 % from 64 KiB.

The padded plaintext must carry its true length, since the padding is sealed with it. We use
the ISO/IEC 7816-4 marker: `data ‖ 0x80 ‖ 0x00…`, one byte of overhead at least. The marker
is the last non-zero byte, so unpadding scans only the padding. The target size is
`padded_size(len(data)) + 1`: a block of a power-of-two block size stays a Padmé size plus
one byte, so a full block costs exactly one byte and every short block is padded to one of a
few sizes per power of two.
"""

from __future__ import annotations

from .errors import Tampered

PAD_OVERHEAD = 1
"""The least `pad` adds: the 0x80 marker."""

_MARKER = 0x80


def padded_size(n: int) -> int:
    """Padmé: n rounded up so that its low E - S bits are zero (E = ⌊log2 n⌋, S = ⌊log2 E⌋+1)."""
    if n < 0:
        raise ValueError("a length cannot be negative")
    if n < 2:
        return n  # log2(0) is undefined; 0 and 1 have nothing left to hide
    e = n.bit_length() - 1  # ⌊log2 n⌋
    s = e.bit_length()  # ⌊log2 e⌋ + 1
    mask = (1 << (e - s)) - 1
    return (n + mask) & ~mask


def pad_target(n: int) -> int:
    """The size `pad` pads n bytes of data to by default: Padmé of n, plus the marker."""
    return padded_size(n) + PAD_OVERHEAD


def pad(data: bytes | memoryview, size: int | None = None) -> bytes:
    """`data ‖ 0x80 ‖ zeros`, `size` bytes long (default `pad_target(len(data))`)."""
    n = len(data)
    if size is None:
        size = pad_target(n)
    if size < n + PAD_OVERHEAD:
        raise ValueError(f"cannot pad {n} bytes into {size}")
    return b"".join((data, b"\x80", bytes(size - n - PAD_OVERHEAD)))


def unpad(padded: bytes | memoryview) -> bytes:
    """The data `pad` was given. Raises Tampered if there is no marker after the data."""
    b = padded if isinstance(padded, bytes) else bytes(padded)
    end = b.rfind(_MARKER)
    # rfind finds the marker only if it is the last non-zero byte; check the rest is zero.
    if end < 0 or b.count(0, end + 1) != len(b) - end - 1:
        raise Tampered("padding is malformed: the plaintext was not padded by walrusfs")
    return b[:end]
