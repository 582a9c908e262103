"""zfec encoding in worker processes, so large blobs use every core and spare the GIL.

zfec's encoder holds the GIL for the whole call (about 4 ms per MiB of blob at n = 10), which
would stall every other thread of the process, including a FUSE loop embedding the devnet.
For blobs from `POOL_MIN` bytes on, `EncodePool` lays the padded blob out in a shared memory
file (/dev/shm); each worker process (devnet.encode_worker, started with `python -m`, so the
embedder's main module is never re-imported as multiprocessing would) computes some of the
parity shares into it and hashes a fair part of all shares; the parent copies the shares out.
Smaller blobs are encoded in a thread, where the round trip would cost more than it saves.
Both paths give identical bytes (zfec is deterministic); if a worker fails, the pool is shut
down and encoding falls back to threads.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import secrets
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

import trio

from walrusfs.devnet.blobid import ENCODING_ZFEC
from walrusfs.devnet.encoding import BlobMetadata, EncodedBlob, ShareCoder

log = logging.getLogger(__name__)

POOL_MIN = 4 << 20


class WorkerFailed(Exception):
    pass


def _shm_dir() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class _Worker:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "walrusfs.devnet.encode_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )

    def send(self, request: dict[str, object]) -> None:
        stdin: IO[str] | None = self.proc.stdin
        if stdin is None:
            raise WorkerFailed("worker has no stdin")
        try:
            stdin.write(json.dumps(request) + "\n")
            stdin.flush()
        except OSError as exc:
            raise WorkerFailed(f"worker died: {exc}") from None

    def receive(self) -> list[bytes]:
        stdout: IO[str] | None = self.proc.stdout
        line = stdout.readline() if stdout is not None else ""
        if not line:
            raise WorkerFailed(f"worker exited with {self.proc.poll()}")
        reply = json.loads(line)
        if "error" in reply:
            raise WorkerFailed(reply["error"])
        return [bytes.fromhex(h) for h in reply["hashes"]]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class EncodePool:
    """Encodes blobs for one shard count, large ones in worker processes."""

    def __init__(self, n_shards: int, workers: int = 2) -> None:
        self._coder = ShareCoder(n_shards)
        self._count = max(1, workers)
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()  # one large blob at a time uses every worker
        self._broken = False

    def close(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.close()

    async def encode(self, data: bytes) -> EncodedBlob:
        if len(data) < POOL_MIN or self._broken:
            return await trio.to_thread.run_sync(self._coder.encode, data)
        try:
            return await trio.to_thread.run_sync(self._encode_in_workers, data)
        except (WorkerFailed, OSError, ValueError) as exc:
            log.warning("encoding workers failed (%s); encoding in threads from now on", exc)
            self._broken = True
            self.close()
            return await trio.to_thread.run_sync(self._coder.encode, data)

    def _encode_in_workers(self, data: bytes) -> EncodedBlob:
        coder = self._coder
        k, n = coder.k, coder.n
        length = coder.share_length(len(data))
        path = _shm_dir() / f"walrusfs-encode-{os.getpid()}-{secrets.token_hex(8)}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, n * length)
            mm = mmap.mmap(fd, n * length)
        finally:
            os.close(fd)
        try:
            mm[: len(data)] = data
            with self._lock:
                while len(self._workers) < self._count:
                    self._workers.append(_Worker())
                jobs = self._count
                parity = list(range(k, n))
                assignments = []
                for j, worker in enumerate(self._workers):
                    hashed = list(range(j, n, jobs))
                    assignments.append(hashed)
                    worker.send(
                        {
                            "path": str(path),
                            "k": k,
                            "n": n,
                            "length": length,
                            "parity": parity[j::jobs],
                            "hash": hashed,
                        }
                    )
                digests: dict[int, bytes] = {}
                for hashed, worker in zip(assignments, self._workers, strict=True):
                    digests.update(zip(hashed, worker.receive(), strict=True))
            shares = tuple(mm[i * length : (i + 1) * length] for i in range(n))
        finally:
            mm.close()
            path.unlink(missing_ok=True)
        metadata = BlobMetadata(ENCODING_ZFEC, len(data), tuple(digests[i] for i in range(n)))
        return EncodedBlob(metadata, shares)
