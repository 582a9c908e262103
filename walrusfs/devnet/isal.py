"""zfec's parity shares, computed by Intel's ISA-L when the system has it (Debian: libisal2).

zfec multiplies the k primary shares by a fixed matrix over GF(2^8) with the polynomial 0x11D.
ISA-L's `ec_encode_data` multiplies by any matrix over that same field with AVX2 or AVX-512:
for a 1 MiB blob on 10 shards it takes 0.11 ms where zfec takes 3.4 ms on our machines, and a
store's whole CPU budget at 100 MB/s is about 20 ms. The matrix is read off zfec itself (the
parity of unit vectors), so both give the same bytes, which tests/devnet/test_isal.py checks
for every shard count the devnet allows. Without the library, `parity_coder` returns None and
the caller keeps using zfec; so does setting WALRUSFS_NO_ISAL=1 (for comparisons). ISA-L
runs without the GIL (cffi releases it around the call).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from functools import cache
from typing import Any

import zfec

log = logging.getLogger(__name__)

LIBRARY = "libisal.so.2"
DISABLE = "WALRUSFS_NO_ISAL"
_CHUNK = 1 << 30  # ec_encode_data takes an int length


@cache
def _library() -> tuple[Any, Any] | None:
    """(ffi, lib) for ISA-L, or None if it cannot be loaded or is switched off."""
    if os.environ.get(DISABLE):
        return None
    try:
        import cffi

        ffi = cffi.FFI()
        ffi.cdef(
            """
            void ec_init_tables(int k, int rows, unsigned char *a, unsigned char *gftbls);
            void ec_encode_data(int len, int k, int rows, unsigned char *gftbls,
                                unsigned char **data, unsigned char **coding);
            """
        )
        lib = ffi.dlopen(LIBRARY)
    except (ImportError, OSError) as exc:
        log.info("ISA-L not available (%s); zfec computes parity shares, more slowly", exc)
        return None
    return ffi, lib


def zfec_matrix(k: int, n: int) -> list[bytes]:
    """Row i - k of the result holds the coefficients zfec multiplies the primaries by to
    make parity share i (k <= i < n)."""
    encoder = zfec.Encoder(k, n)
    columns = []
    for primary in range(k):
        unit = [b"\x01" if j == primary else b"\x00" for j in range(k)]
        columns.append([block[0] for block in encoder.encode(unit, list(range(k, n)))])
    return [bytes(column[row] for column in columns) for row in range(n - k)]


class IsalParity:
    """zfec-identical parity shares for k of n, by ISA-L."""

    def __init__(self, ffi: Any, lib: Any, k: int, n: int) -> None:
        self._ffi = ffi
        self._lib = lib
        self.k = k
        self.n = n
        self._rows = zfec_matrix(k, n)
        self._tables: dict[tuple[int, ...], Any] = {}

    def _tables_for(self, wanted: tuple[int, ...]) -> Any:
        tables = self._tables.get(wanted)
        if tables is None:
            ffi, k = self._ffi, self.k
            matrix = ffi.new("unsigned char[]", b"".join(self._rows[i - k] for i in wanted))
            tables = ffi.new("unsigned char[]", 32 * k * len(wanted))
            self._lib.ec_init_tables(k, len(wanted), matrix, tables)
            self._tables[wanted] = tables
        return tables

    def encode_into(
        self, primaries: Sequence[Any], wanted: Sequence[int], outputs: Sequence[Any]
    ) -> None:
        """Write parity share wanted[j] into outputs[j] (writable buffers of the primaries'
        length); `primaries` may be any buffers, read-only ones included."""
        k = self.k
        if len(primaries) != k or len(outputs) != len(wanted):
            raise ValueError("wrong number of primary or parity shares")
        if any(not k <= i < self.n for i in wanted):
            raise ValueError(f"parity share indexes lie in [{k}, {self.n})")
        if not wanted:
            return
        ffi = self._ffi
        length = len(memoryview(primaries[0]).cast("B"))
        inputs = [ffi.from_buffer("unsigned char[]", p) for p in primaries]
        targets = [ffi.from_buffer("unsigned char[]", o, require_writable=True) for o in outputs]
        if any(len(b) != length for b in inputs + targets):
            raise ValueError("shares differ in length")
        tables = self._tables_for(tuple(wanted))
        for offset in range(0, length, _CHUNK):
            size = min(_CHUNK, length - offset)
            data = ffi.new("unsigned char *[]", [b + offset for b in inputs])
            coding = ffi.new("unsigned char *[]", [b + offset for b in targets])
            self._lib.ec_encode_data(size, k, len(wanted), tables, data, coding)

    def encode(self, primaries: Sequence[Any], wanted: Sequence[int]) -> list[bytearray]:
        length = len(memoryview(primaries[0]).cast("B"))
        outputs = [bytearray(length) for _ in wanted]
        self.encode_into(primaries, wanted, outputs)
        return outputs


@cache
def parity_coder(k: int, n: int) -> IsalParity | None:
    """The ISA-L parity coder for k of n, or None if ISA-L is not installed."""
    loaded = _library()
    if loaded is None:
        return None
    return IsalParity(*loaded, k, n)
