"""Encoding in worker processes, so large blobs use every core and spare the GIL.

For blobs from `POOL_MIN` bytes on, `EncodePool` lays the padded blob out in an anonymous
shared memory file (memfd); each worker process (devnet.encode_worker, started with `python -m`,
so the embedder's main module is never re-imported as multiprocessing would) computes some of
the parity shares into it and hashes a fair part of all shares; the shares are handed out as
views of that memory, never copied. Hashing is most of the work: with ISA-L (devnet.isal) the
parity of a 64 MiB blob takes milliseconds, with zfec about 4 ms per MiB.
Smaller blobs are encoded in the batch thread, where the round trip would cost more than it
saves. Both paths give identical bytes; if a worker fails, the pool is shut down and encoding
falls back to threads.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import IO

import trio

from walrusfs.devnet.batchthread import batch_thread
from walrusfs.devnet.blobid import ENCODING_ZFEC
from walrusfs.devnet.encoding import BlobMetadata, Buffer, EncodedBlob, ShareCoder

log = logging.getLogger(__name__)

# Threads hashing primary shares as a blob arrives (hashing releases the GIL).
_HASHERS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="walrusfs-hash")

POOL_MIN = 4 << 20


class WorkerFailed(Exception):
    pass


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


class SharedBlob:
    """Room for the n shares of one blob in an anonymous shared memory file (memfd).

    The blob itself goes in the first bytes (`body`), so an HTTP server can receive it there
    directly; the workers reach the file through /proc/<pid>/fd/<fd>. Shares handed out are
    memoryviews of the mapping. A SharedBlob is reused for later blobs of a similar size once
    released to its pool (its pages stay allocated, which is the point).
    """

    def __init__(self, capacity: int, share_hash: Callable[[Buffer], bytes]) -> None:
        self.capacity = capacity
        self.share_hash = share_hash
        self._fd = os.memfd_create("walrusfs-encode", os.MFD_CLOEXEC)
        try:
            os.ftruncate(self._fd, capacity)
            self._mm = mmap.mmap(self._fd, capacity)
        except BaseException:
            os.close(self._fd)
            raise
        self.path = f"/proc/{os.getpid()}/fd/{self._fd}"
        self.view = memoryview(self._mm)
        self.size = 0
        self.k = 0
        self.share_length = 0
        self.body = self.view[:0]
        self.primary_hashes: dict[int, Future[bytes]] = {}

    def prepare(self, size: int, k: int, share_length: int) -> None:
        """Lay out a blob of `size` bytes: body at the start, zero padding up to k shares."""
        self.size = size
        self.k = k
        self.share_length = share_length
        self.body = self.view[:size]
        self.view[size : k * share_length] = bytes(k * share_length - size)
        self.primary_hashes = {}

    def received(self, filled: int) -> None:
        """The first `filled` bytes of the body are in: hash every primary share now complete.

        Hashing runs in threads (hashlib releases the GIL) while the rest of the body is
        still arriving, so the workers later only hash the parity shares.
        """
        length = self.share_length
        complete = self.k if filled >= self.size else filled // length
        for index in range(len(self.primary_hashes), complete):
            share = self.view[index * length : (index + 1) * length]
            self.primary_hashes[index] = _HASHERS.submit(self.share_hash, share)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        self.close()


class EncodePool:
    """Encodes blobs for one shard count, large ones in worker processes."""

    MAX_IDLE = 2
    MAX_IDLE_BYTES = 320 << 20
    """Idle shared memory kept for reuse (its pages stay resident): two 64 MiB blobs' worth."""

    def __init__(
        self, n_shards: int, workers: int = 2, *, encoding_type: int = ENCODING_ZFEC
    ) -> None:
        """`encoding_type`: that of the blobs it encodes (see devnet.encoding)."""
        self._coder = ShareCoder(n_shards, encoding_type=encoding_type)
        self._count = max(1, workers)
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()  # one large blob at a time uses every worker
        self._idle: list[SharedBlob] = []
        self._broken = False

    def close(self) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
            idle, self._idle = self._idle, []
        for worker in workers:
            worker.close()
        for shared in idle:
            shared.close()

    def allocate(self, size: int) -> SharedBlob | None:
        """Shared memory to receive a blob of `size` bytes into, if it will go to the workers.

        Give it back with `release` once nothing uses its shares any more.
        """
        if size < POOL_MIN or self._broken:
            return None
        coder = self._coder
        length = coder.share_length(size)
        need = coder.n * length
        with self._lock:
            fits = [s for s in self._idle if need <= s.capacity <= 2 * need]
            shared = min(fits, key=lambda s: s.capacity) if fits else None
            if shared is not None:
                self._idle.remove(shared)
        if shared is None:
            shared = SharedBlob(need, coder.share_hash)
        shared.prepare(size, coder.k, length)
        return shared

    def release(self, shared: SharedBlob) -> None:
        with self._lock:
            idle_bytes = sum(s.capacity for s in self._idle) + shared.capacity
            if (
                not self._broken
                and len(self._idle) < self.MAX_IDLE
                and idle_bytes <= self.MAX_IDLE_BYTES
            ):
                self._idle.append(shared)
                return
        shared.close()

    async def encode(self, data: Buffer, shared: SharedBlob | None = None) -> EncodedBlob:
        """Encode `data`; if it was received into `shared` (from `allocate`), pass that too.

        With `shared`, the shares are views of it: release it only when done with them.
        """
        if shared is None and len(data) < POOL_MIN:
            # Short work: one hand-off to the batch thread costs less than a thread's.
            return await batch_thread().run_sync(partial(self._coder.encode, data))
        if shared is None and self._broken:
            return await trio.to_thread.run_sync(self._coder.encode, data)
        try:
            return await trio.to_thread.run_sync(self._encode_in_workers, data, shared)
        except (WorkerFailed, OSError, ValueError) as exc:
            log.warning("encoding workers failed (%s); encoding in threads from now on", exc)
            self._broken = True
            self.close()
            return await trio.to_thread.run_sync(self._coder.encode, bytes(data))

    def _encode_in_workers(self, data: Buffer, shared: SharedBlob | None) -> EncodedBlob:
        coder = self._coder
        k, n = coder.k, coder.n
        if shared is None:
            length = coder.share_length(len(data))
            shared = SharedBlob(n * length, coder.share_hash)
            shared.prepare(len(data), k, length)
            shared.body[:] = data
        length = shared.share_length
        with self._lock:
            while len(self._workers) < self._count:
                self._workers.append(_Worker())
            jobs = self._count
            parity = list(range(k, n))
            # Primary shares hashed while the body arrived need no second look.
            shared.received(shared.size)
            assignments = []
            for j, worker in enumerate(self._workers):
                hashed = parity[j::jobs]
                assignments.append(hashed)
                worker.send(
                    {
                        "path": shared.path,
                        "k": k,
                        "n": n,
                        "length": length,
                        "parity": parity[j::jobs],
                        "hash": hashed,
                        "encodingType": coder.encoding_type,
                    }
                )
            digests: dict[int, bytes] = {}
            for hashed, worker in zip(assignments, self._workers, strict=True):
                digests.update(zip(hashed, worker.receive(), strict=True))
            for index, future in shared.primary_hashes.items():
                digests[index] = future.result()
        view = shared.view
        shares = tuple(view[i * length : (i + 1) * length] for i in range(n))
        metadata = BlobMetadata(
            coder.encoding_type, shared.size, tuple(digests[i] for i in range(n))
        )
        return EncodedBlob(metadata, shares)
