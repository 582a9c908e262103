"""The worker process behind devnet.workers: parity and share hashes in shared memory.

Run as `python -m walrusfs.devnet.encode_worker`. It reads one JSON request per line on stdin,

    {"path": FILE, "k": K, "n": N, "length": L, "parity": [i, ...], "hash": [j, ...],
     "encodingType": T}

where FILE holds n slots of L bytes with the k primary shares in the first k; it writes parity
shares `parity` into their slots and answers one line with the hex hashes of the shares in
`hash` as encoding type T hashes shares (see devnet.encoding), or {"error": "..."}. Parity
comes from ISA-L where it is installed, else from zfec (the same bytes, see devnet.isal). It
imports little beyond the standard library, zfec, blake3, devnet.isal and devnet.encoding, so
it starts fast and never re-runs the parent's main module.
"""

from __future__ import annotations

import json
import mmap
import os
import sys
from typing import Any

import zfec

from walrusfs.devnet.encoding import share_hasher
from walrusfs.devnet.isal import parity_coder

STRIPE = 128 * 1024


def _parity_in_stripes(
    view: memoryview,
    k: int,
    n: int,
    length: int,
    parity: list[int],
    hashers: dict[int, Any],
) -> None:
    """Parity shares `parity` into their slots of `view`, hashing those in `hashers`.

    Column stripes: a parity byte depends only on the primary bytes at its offset, so
    encoding stripe by stripe gives the same shares while the inputs stay in cache, and each
    new parity stripe is hashed while it is still there. (A function of its own, so that no
    slice of `view` outlives it: the caller must release `view`.)
    """
    isal = parity_coder(k, n)
    encoder = zfec.Encoder(k, n)
    for offset in range(0, length, STRIPE):
        end = min(offset + STRIPE, length)
        inputs = [view[i * length + offset : i * length + end] for i in range(k)]
        blocks = [view[i * length + offset : i * length + end] for i in parity]
        if isal is not None:
            isal.encode_into(inputs, parity, blocks)
        else:
            for block, computed in zip(blocks, encoder.encode(inputs, parity), strict=True):
                block[:] = computed
        for index, block in zip(parity, blocks, strict=True):
            if index in hashers:
                hashers[index].update(block)


def handle(request: dict[str, Any]) -> list[str]:
    path = str(request["path"])
    k, n, length = int(request["k"]), int(request["n"]), int(request["length"])
    parity = [int(i) for i in request["parity"]]
    wanted = [int(i) for i in request["hash"]]
    fd = os.open(path, os.O_RDWR)
    try:
        mm = mmap.mmap(fd, n * length)
    finally:
        os.close(fd)
    try:
        view = memoryview(mm)
        encoding_type = int(request["encodingType"])
        hashers = {i: share_hasher(encoding_type) for i in wanted}
        if parity:
            _parity_in_stripes(view, k, n, length, parity, hashers)
        for index in wanted:
            if index not in parity:
                hashers[index].update(view[index * length : (index + 1) * length])
        view.release()
        return [hashers[i].hexdigest() for i in wanted]
    finally:
        mm.close()


def main() -> None:
    for line in sys.stdin:
        try:
            reply: dict[str, object] = {"hashes": handle(json.loads(line))}
        except Exception as exc:  # report, keep serving
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
