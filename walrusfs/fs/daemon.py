"""Running a mounted filesystem: FUSE main loop, background tasks, clean shutdown.

`run` mounts an open Filesystem and serves it until the kernel unmounts it (umount,
fusermount -u) or a signal (SIGTERM, SIGINT, SIGHUP) asks us to unmount. Background tasks
live in a nursery that ends with the main loop. A clean end commits, makes the cache durable
and marks the filesystem clean; anything else leaves it marked dirty, so the next mount runs
crash recovery.
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pyfuse3
import trio

from walrusfs.cache.gate import WriteGate
from walrusfs.cache.uploader import CachePolicy, ChunkFetcher, Uploader
from walrusfs.crypto import Keys
from walrusfs.errors import WalrusfsError
from walrusfs.fs import mounts, provision
from walrusfs.fs.committer import Committer, record_commit
from walrusfs.fs.control import ControlError
from walrusfs.fs.control import serve as control_serve
from walrusfs.fs.dispatch import DEFAULT_SPIN_US, RequestPoller
from walrusfs.fs.filesystem import Filesystem
from walrusfs.fs.operations import Operations
from walrusfs.fs.remote import Remote, connect
from walrusfs.meta import delta
from walrusfs.meta.schema import BLOCK_DIRTY
from walrusfs.meta.tree import now_ns

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
    # Seconds between commits of the manifest (None: the filesystem's configured interval).
    manifest_interval: float | None = None
    debug_fuse: bool = False
    fsname: str | None = None
    writeback_cache: bool = True
    # Become the writer even though the anchor names another (a mount gone for good).
    takeover: bool = False
    # Overrides of the filesystem's configured cache size and dirty limit.
    cache_size: int | None = None
    dirty_limit: int | None = None
    # Microseconds the daemon polls for the next FUSE request before it sleeps (0: never).
    busy_poll_us: int = DEFAULT_SPIN_US


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


@dataclass
class Services:
    """What a mount with a network runs besides FUSE."""

    remote: Remote
    keys: Keys
    gate: WriteGate
    uploader: Uploader
    committer: Committer | None
    fetcher: ChunkFetcher


async def start_services(
    fs: Filesystem,
    remote: Remote,
    opts: MountOptions,
    passphrase: bytes,
    on_lost: Callable[[str], None],
) -> Services:
    """Unlock, check the anchor against the cache, and become the writer (unless ro)."""
    cfg = fs.config
    assert cfg.anchor is not None
    ops = remote.anchor_ops(cfg.anchor)
    view = await ops.read()
    keys, _ = await provision.unlock(fs.directory, remote, view, passphrase)
    local = int(fs.db.value("SELECT COALESCE(MAX(seq), 0) FROM commits"))
    head = view.head.seq if view.head else 0
    me = provision.writer_id(fs)
    if head > local:
        if head == local + 1 and view.writer.split()[:1] == me.split()[:1]:
            # We anchored commit `head` and crashed before recording it.
            assert view.head is not None
            record_commit(fs.db, view.head, None, 0, "delta", 0, 0, now_ns())
            log.warning("recorded commit %d, anchored before the last mount ended", head)
        elif not opts.read_only:
            raise WalrusfsError(
                f"the filesystem moved on since this cache last committed (its head is"
                f" commit {head}, this cache has {local}): mount read-only, or move"
                f" {fs.directory} away and mount from the anchor"
            )
    delta.reset_captures(fs.db)
    fs.db.commit()
    dirty_limit = opts.dirty_limit or cfg.dirty_limit
    gate = WriteGate(dirty_limit)
    policy = CachePolicy(
        upload_delay=cfg.upload_delay,
        pack_size=cfg.pack_size,
        dirty_limit=dirty_limit,
        cache_size=opts.cache_size or cfg.cache_size,
    )
    uploader = Uploader(fs.db, fs.cache, remote.blobs, keys, gate, policy)
    committer = None
    if not opts.read_only:
        view = await ops.claim(view, me, takeover=opts.takeover)
        committer = Committer(
            fs.db, uploader, gate, ops, keys, view,
            uuid=fs.uuid, tmpdir=fs.directory, on_lost=on_lost,
        )  # fmt: skip
    return Services(
        remote, keys, gate, uploader, committer, ChunkFetcher(fs.db, remote.blobs, keys)
    )


async def run(
    fs: Filesystem,
    mountpoint: str,
    opts: MountOptions,
    ready: Callable[[], None] | None = None,
    *,
    passphrase: bytes | None = None,
) -> None:
    """Mount `fs` at `mountpoint` and serve it until unmounted. Closes `fs`."""
    clean = False
    try:
        if not fs.was_clean:
            report = fs.recover()
            log.warning("the last mount did not end cleanly; recovered: %s", report)
        if fs.config.network is None:
            clean = await _serve(fs, mountpoint, opts, ready, None)
            return
        if passphrase is None:
            raise WalrusfsError("this filesystem needs its passphrase to mount")
        async with connect(fs.directory, fs.config) as remote:
            ops_box: list[Operations] = []

            def lost(why: str) -> None:
                for ops in ops_box:
                    ops.read_only = True

            services = await start_services(fs, remote, opts, passphrase, lost)
            try:
                clean = await _serve(fs, mountpoint, opts, ready, services, ops_box)
            finally:
                if services.committer is not None and services.committer.lost is None:
                    with trio.CancelScope(shield=True):
                        try:
                            await services.committer.anchor.release(services.committer.view)
                        except WalrusfsError as exc:
                            log.error("could not release the anchor: %s", exc)
    finally:
        fs.close(clean=clean)


async def _serve(
    fs: Filesystem,
    mountpoint: str,
    opts: MountOptions,
    ready: Callable[[], None] | None,
    services: Services | None,
    ops_box: list[Operations] | None = None,
) -> bool:
    """Run FUSE (and the services) until unmounted. True if everything ended cleanly."""
    mounted = False
    terminated = False
    try:
        if not opts.read_only:
            await fs.mark_mounted()
        ops = Operations(
            fs.db,
            fs.cache,
            read_only=opts.read_only,
            writeback_cache=opts.writeback_cache,
            gate=services.gate if services and services.committer else None,
        )
        if ops_box is not None:
            ops_box.append(ops)
        if services is not None:
            fs.cache.fetcher = services.fetcher
            fs.cache.tracking = True
        pyfuse3.init(ops, mountpoint, fuse_options(fs, opts))
        mounted = True
        with RequestPoller.installed(opts.busy_poll_us) as poller:

            def stop() -> None:
                nonlocal terminated
                terminated = True
                if poller is not None:
                    poller.stop()
                pyfuse3.terminate()

            await _serve_mounted(fs, mountpoint, opts, ready, services, ops, stop, poller)
        fs.db.commit()
        await trio.to_thread.run_sync(syncfs, fs.cache.directory)
        return not opts.read_only
    finally:
        if mounted:
            # After the kernel unmounted us there is nothing left to unmount.
            pyfuse3.close(unmount=terminated)


async def _serve_mounted(
    fs: Filesystem,
    mountpoint: str,
    opts: MountOptions,
    ready: Callable[[], None] | None,
    services: Services | None,
    ops: Operations,
    stop: Callable[[], None],
    poller: RequestPoller | None,
) -> None:
    """Run the FUSE main loop and the background tasks until the loop ends."""
    initialized = trio.Event()
    ops.on_init = initialized.set

    async def control(request: dict[str, Any]) -> dict[str, Any]:
        return await _control(fs, services, poller, request)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(_tune_readahead_after_init, initialized, mountpoint)
        nursery.start_soon(_commit_periodically, fs, opts.commit_interval)
        nursery.start_soon(_checkpoint_periodically, fs)
        nursery.start_soon(_watch_signals, stop)
        await nursery.start(control_serve, fs.directory, control)
        committer = services.committer if services else None
        if services is not None and committer is not None:
            await nursery.start(services.uploader.run)
            nursery.start_soon(committer.run, opts.manifest_interval or fs.config.commit_interval)
        if ready is not None:
            ready()
        await pyfuse3.main()
        ops.forget_all()
        if committer is not None and committer.lost is None:
            await committer.commit()
        nursery.cancel_scope.cancel()


async def _control(
    fs: Filesystem,
    services: Services | None,
    poller: RequestPoller | None,
    request: dict[str, Any],
) -> dict[str, Any]:
    op = request.get("op")
    if op == "flush":
        if services is None or services.committer is None:
            await fs.db.durable()
            await trio.to_thread.run_sync(syncfs, fs.cache.directory)
            return {"ok": True, "committed": False, "local": True}
        result = await services.committer.commit()
        head = services.committer.head
        return {
            "ok": True,
            "committed": result is not None,
            "seq": head.seq if head else None,
            "blob_id": head.blob_id if head else None,
        }
    if op == "passphrase":
        if services is None or services.committer is None:
            raise ControlError("the passphrase can change only on a read-write mount on a network")
        committer = services.committer
        async with committer.lock:
            committer.view = await provision.change_passphrase(
                fs.directory, services.remote, committer.view,
                base64.b64decode(request["old"]), base64.b64decode(request["new"]),
            )  # fmt: skip
        return {"ok": True}
    if op == "status":
        reply: dict[str, Any] = {
            "ok": True,
            "directory": fs.directory,
            "busy_poll_us": poller.spin_ns // 1000 if poller else 0,
        }
        if poller is not None:
            reply.update(
                requests_found_polling=poller.found_polling,
                requests_found_sleeping=poller.found_sleeping,
            )
        if services is not None:
            up = services.uploader
            reply.update(
                dirty_bytes=fs.cache.local_bytes(BLOCK_DIRTY),
                cached_bytes=fs.cache.local_bytes(),
                packs_stored=up.stored_packs,
                bytes_stored=up.stored_bytes,
                cost_frost=up.cost,
                offline=services.remote.blobs.offline,
                failing=up.failing,
                head=services.committer.head.seq
                if services.committer and services.committer.head
                else None,
                lost=services.committer.lost if services.committer else None,
            )
        return reply
    raise ControlError(f"unknown request {op!r}")


async def _tune_readahead_after_init(initialized: trio.Event, mountpoint: str) -> None:
    """Raise the readahead once the kernel has our reply to FUSE_INIT: handling that reply
    caps the readahead at what the kernel offered in FUSE_INIT (its 128 KiB default), so a
    value set before it is lost. The reply is written as soon as Operations.init returns,
    before the session loop lets this task run."""
    await initialized.wait()
    tune_readahead(mountpoint)


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
