"""Running a mounted filesystem: FUSE main loop, background tasks, clean shutdown.

`run` mounts an open Filesystem and serves it until the kernel unmounts it (umount,
fusermount -u) or a signal (SIGTERM, SIGINT, SIGHUP) asks us to unmount. Background tasks
live in a nursery that ends with the main loop. A clean end commits, makes the cache durable
and marks the filesystem clean; anything else leaves it marked dirty, so the next mount runs
crash recovery.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

import pyfuse3
import trio

from walrusfs.fs import mounts
from walrusfs.fs.filesystem import Filesystem
from walrusfs.fs.operations import Operations

log = logging.getLogger(__name__)

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)


def syncfs(path: str) -> None:
    """Flush everything of the filesystem holding `path` to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), path)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class MountOptions:
    read_only: bool = False
    allow_other: bool = False
    allow_root: bool = False
    # Kernel mount flags passed through (nosuid, nodev, noexec, noatime, ...).
    kernel_flags: frozenset[str] = field(default_factory=frozenset)
    # Seconds between group commits of the metadata.
    commit_interval: float = 1.0
    debug_fuse: bool = False
    fsname: str | None = None
    writeback_cache: bool = True


def fuse_options(fs: Filesystem, opts: MountOptions) -> set[str]:
    options = {
        "default_permissions",
        f"fsname={opts.fsname or fs.directory}",
        "subtype=walrusfs",
    }
    if opts.read_only:
        options.add("ro")
    if opts.allow_other:
        options.add("allow_other")
    elif opts.allow_root:
        options.add("allow_root")
    if opts.debug_fuse:
        options.add("debug")
    options.update(opts.kernel_flags)
    return options


# Checkpoint the WAL when it has grown this much since the last one, or every 30 seconds.
CHECKPOINT_BYTES = 32 << 20
CHECKPOINT_SECONDS = 30.0


async def _commit_periodically(fs: Filesystem, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        fs.db.commit()


async def _checkpoint_periodically(fs: Filesystem) -> None:
    last = trio.current_time()
    while True:
        await trio.sleep(1.0)
        if fs.db.wal_size() >= CHECKPOINT_BYTES or trio.current_time() - last >= CHECKPOINT_SECONDS:
            await fs.db.checkpoint()
            last = trio.current_time()


async def _watch_signals(stop: Callable[[], None]) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            log.info("received %s, unmounting", signal.Signals(signum).name)
            stop()
            return


async def run(
    fs: Filesystem,
    mountpoint: str,
    opts: MountOptions,
    ready: Callable[[], None] | None = None,
) -> None:
    """Mount `fs` at `mountpoint` and serve it until unmounted. Closes `fs`."""
    clean = False
    mounted = False
    terminated = False
    try:
        if not fs.was_clean:
            report = fs.recover()
            log.warning("the last mount did not end cleanly; recovered: %s", report)
        if not opts.read_only:
            await fs.mark_mounted()
        ops = Operations(
            fs.db, fs.cache, read_only=opts.read_only, writeback_cache=opts.writeback_cache
        )
        pyfuse3.init(ops, mountpoint, fuse_options(fs, opts))
        mounted = True
        tune_readahead(mountpoint)
        if ready is not None:
            ready()

        def stop() -> None:
            nonlocal terminated
            terminated = True
            pyfuse3.terminate()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(_commit_periodically, fs, opts.commit_interval)
            nursery.start_soon(_checkpoint_periodically, fs)
            nursery.start_soon(_watch_signals, stop)
            await pyfuse3.main()
            nursery.cancel_scope.cancel()
        ops.forget_all()
        fs.db.commit()
        await trio.to_thread.run_sync(syncfs, fs.cache.directory)
        clean = not opts.read_only
    finally:
        if mounted:
            # After the kernel unmounted us there is nothing left to unmount.
            pyfuse3.close(unmount=terminated)
        fs.close(clean=clean)


def tune_readahead(mountpoint: str, kib: int = 1024) -> None:
    """Let the kernel read ahead in 1 MiB requests instead of 128 KiB ones.

    Every FUSE request has a fixed cost, so larger readahead is most of the difference in
    sequential reads. Only root may change it; others keep the kernel's default.
    """
    mount = mounts.find(mountpoint)
    if mount is None:
        return
    try:
        with open(f"/sys/class/bdi/{mount.major}:{mount.minor}/read_ahead_kb", "w") as f:
            f.write(str(kib))
    except OSError as exc:
        log.debug("cannot raise readahead: %s", exc)
