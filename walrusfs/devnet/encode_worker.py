"""The worker process behind devnet.workers: zfec parity and share hashes in shared memory.

Run as `python -m walrusfs.devnet.encode_worker`. It reads one JSON request per line on stdin,

    {"path": FILE, "k": K, "n": N, "length": L, "parity": [i, ...], "hash": [j, ...]}

where FILE holds n slots of L bytes with the k primary shares in the first k; it writes parity
shares `parity` into their slots and answers one line with the hex Blake2b-256 hashes of the
shares in `hash` (or {"error": "..."}). It imports nothing but the standard library and zfec,
so it starts fast and never re-runs the parent's main module.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import sys
from typing import Any

import zfec


def handle(request: dict[str, Any]) -> list[str]:
    path = str(request["path"])
    k, n, length = int(request["k"]), int(request["n"]), int(request["length"])
    parity = [int(i) for i in request["parity"]]
    wanted = [int(i) for i in request["hash"]]
    fd = os.open(path, os.O_RDWR)
    try:
        # Map everything up front: one populate is far cheaper than a fault per page.
        flags = mmap.MAP_SHARED
        mm = mmap.mmap(fd, n * length, flags=flags)
    finally:
        os.close(fd)
    try:
        view = memoryview(mm)
        if parity:
            primaries = [view[i * length : (i + 1) * length] for i in range(k)]
            blocks = zfec.Encoder(k, n).encode(primaries, parity)
            for index, block in zip(parity, blocks, strict=True):
                view[index * length : (index + 1) * length] = block
            del primaries, blocks
        digests = [
            hashlib.blake2b(view[i * length : (i + 1) * length], digest_size=32).hexdigest()
            for i in wanted
        ]
        view.release()
        return digests
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
