"""The FUSE request handlers: the kernel's view of walrusfs.

This module owns what only the kernel interface knows about: lookup counts, open handles,
cache timeouts, and the translation of errors into errno. The tree itself is meta/'s, the
file data cache/'s. Handlers run on the trio loop that pyfuse3 drives; each does its database
work without a checkpoint, so operations never interleave half-way (see meta/db.py).

Decisions worth knowing (details in docs/fs.md):
- The kernel's writeback cache is on, so the kernel owns mtime/ctime and size while it has
  dirty pages and sends them by setattr; write() only extends the stored size.
- libfuse turns on ATOMIC_O_TRUNC and HANDLE_KILLPRIV under pyfuse3, so open() truncates on
  O_TRUNC and this module clears setuid/setgid on write, truncate and chown the way Linux does.
- POSIX ACLs are enforced by the kernel; we keep them in sync with the mode and inherit
  default ACLs (fs/acl.py).
- Attributes, entries and negative lookups are cached by the kernel for a long time: every
  change reaches us through the kernel, which invalidates what it cached itself.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import sqlite3
import stat
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import pyfuse3

from walrusfs.cache.blockcache import BlockCache, CacheFile
from walrusfs.cache.gate import WriteGate
from walrusfs.fs import acl
from walrusfs.meta.db import Database
from walrusfs.meta.errors import FsError
from walrusfs.meta.schema import ROOT_INODE
from walrusfs.meta.tree import Inode, Tree, now_ns

log = logging.getLogger(__name__)

# Seconds the kernel may trust an entry or attributes without asking again.
CACHE_TIMEOUT = 300.0
STAT_BLKSIZE = 128 * 1024
READDIR_BATCH = 256

P = ParamSpec("P")
R = TypeVar("R")


def fuse_errors(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Turn layer errors into FUSEError; log anything unexpected and answer EIO.

    An unexpected exception must not take the mount down with it (pyfuse3 would end the
    main loop); the operation's savepoint has already undone its half-done changes.
    """

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except FsError as exc:
            raise pyfuse3.FUSEError(exc.errno) from None
        except sqlite3.OperationalError as exc:
            if "full" in str(exc):
                raise pyfuse3.FUSEError(errno.ENOSPC) from None
            log.exception("%s failed", fn.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None
        except OSError as exc:
            log.warning("%s failed: %s", fn.__name__, exc)
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None
        except Exception:
            log.exception("%s failed", fn.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


def _without_suid(mode: int) -> int:
    """The mode without setuid, and without setgid where it means "setgid" (group
    executable; without it, setgid marks mandatory locking and stays)."""
    new = mode & ~stat.S_ISUID
    if mode & stat.S_IXGRP:
        new &= ~stat.S_ISGID
    return new


@dataclass(eq=False)
class Handle:
    inode: int
    cache: CacheFile
    # The opener is not root: its writes and truncations clear setuid/setgid.
    unprivileged: bool


class Operations(pyfuse3.Operations):
    enable_writeback_cache = True
    enable_acl = True
    supports_dot_lookup = True

    def __init__(
        self,
        db: Database,
        cache: BlockCache,
        *,
        read_only: bool = False,
        writeback_cache: bool = True,
        gate: WriteGate | None = None,
    ) -> None:
        super().__init__()
        # pyfuse3 reads this from the instance when the kernel connects.
        self.enable_writeback_cache = writeback_cache
        # Commits freeze writes, and dirty data over its limit holds writers (cache/gate.py).
        self.gate = gate
        self.db = db
        self.tree = Tree(db)
        self.cache = cache
        self.read_only = read_only
        self.block_size = cache.block_size
        # How many times the kernel has been told about each inode (lookup counts).
        self.lookups: dict[int, int] = {ROOT_INODE: 1}
        self.handles: dict[int, Handle] = {}
        self.open_count: dict[int, int] = {}
        self._next_fh = 1
        # Called when the kernel's FUSE_INIT arrives (before our reply to it is sent).
        self.on_init: Callable[[], None] | None = None

    def init(self) -> None:
        if self.on_init is not None:
            self.on_init()

    # -- helpers --------------------------------------------------------------------------

    def attrs(self, node: Inode) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = node.id
        a.generation = 0
        a.entry_timeout = CACHE_TIMEOUT
        a.attr_timeout = CACHE_TIMEOUT
        a.st_mode = node.mode
        a.st_nlink = node.nlink
        a.st_uid = node.uid
        a.st_gid = node.gid
        a.st_rdev = node.rdev
        a.st_size = node.size
        a.st_blksize = STAT_BLKSIZE
        if node.nblocks:
            used = min(node.nblocks * self.block_size, node.size)
            a.st_blocks = -(-used // 4096) * 8
        else:
            a.st_blocks = 0
        a.st_atime_ns = node.atime_ns
        a.st_mtime_ns = node.mtime_ns
        a.st_ctime_ns = node.ctime_ns
        return a

    def _entry(self, node: Inode) -> pyfuse3.EntryAttributes:
        """Attributes for a reply that makes the kernel count one more lookup."""
        self.lookups[node.id] = self.lookups.get(node.id, 0) + 1
        return self.attrs(node)

    def _writable(self) -> None:
        if self.read_only:
            raise FsError(errno.EROFS)

    def _maybe_delete(self, ino: int) -> None:
        """Delete an orphan once neither the kernel nor an open handle can reach it."""
        if ino == ROOT_INODE or self.lookups.get(ino) or self.open_count.get(ino):
            return
        row = self.db.row("SELECT nlink, mode FROM inodes WHERE id = ?", (ino,))
        if row is None or row[0] > 0:
            return
        with self.db.operation():
            if stat.S_ISREG(row[1]):
                self.cache.delete(ino)
            self.tree.delete_inode(ino)

    def _create(
        self,
        parent: int,
        name: bytes,
        mode: int,
        ctx: pyfuse3.RequestContext,
        rdev: int = 0,
        target: bytes | None = None,
    ) -> Inode:
        self._writable()
        with self.db.operation():
            parent_mode, parent_gid, default = self.tree.parent_for_create(parent, acl.DEFAULT)
            access_acl: list[acl.Entry] | None = None
            if default is not None and target is None:
                # The parent's default ACL masks the mode instead of the umask.
                mode, access_acl = acl.inherit(acl.parse(default), mode)
            node = self.tree.create(
                parent, name, mode, ctx.uid, ctx.gid, rdev, target,
                parent_mode=parent_mode, parent_gid=parent_gid,
            )  # fmt: skip
            if stat.S_ISREG(mode):
                self.cache.new_file(node.id)
            new_xattrs = []
            if access_acl is not None:
                new_xattrs.append((acl.ACCESS, acl.serialize(access_acl)))
            if default is not None and stat.S_ISDIR(mode):
                new_xattrs.append((acl.DEFAULT, default))
            for xname, value in new_xattrs:
                self.db.execute(
                    "INSERT INTO xattrs (inode, name, value) VALUES (?, ?, ?)",
                    (node.id, xname, value),
                )
        return node

    def _kill_suid(self, ino: int, mode: int) -> int:
        """Clear setuid/setgid as Linux does on write and truncate. Returns the new mode."""
        new = _without_suid(mode)
        if new != mode:
            self.db.execute(
                "UPDATE inodes SET mode = ?, ctime_ns = ? WHERE id = ?", (new, now_ns(), ino)
            )
        return new

    # -- lookups --------------------------------------------------------------------------

    @fuse_errors
    async def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        if name == b".":
            return self._entry(self.tree.inode(parent_inode))
        if name == b"..":
            return self._entry(self.tree.inode(self.tree.parent_of(parent_inode)))
        ino = self.tree.lookup(parent_inode, name)
        if ino is None:
            if len(name) > 255:
                raise FsError(errno.ENAMETOOLONG)
            # A negative entry the kernel may cache: the name can only appear through it.
            a = pyfuse3.EntryAttributes()
            a.st_ino = 0
            a.entry_timeout = CACHE_TIMEOUT
            return a
        return self._entry(self.tree.inode(ino))

    @fuse_errors
    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for ino, count in inode_list:
            left = self.lookups.get(ino, 0) - count
            if left > 0:
                self.lookups[ino] = left
                continue
            self.lookups.pop(ino, None)
            self._maybe_delete(ino)

    @fuse_errors
    async def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        return self.attrs(self.tree.inode(inode))

    @fuse_errors
    async def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        self._writable()
        if fields.update_size:
            await self._before_truncate(inode, attr.st_size)
        node = self.tree.inode(inode)
        changes: dict[str, Any] = {}
        if fields.update_size and attr.st_size != node.size:
            if stat.S_ISDIR(node.mode):
                raise FsError(errno.EISDIR)
            if not stat.S_ISREG(node.mode):
                raise FsError(errno.EINVAL)
            changes["size"] = attr.st_size
        if fields.update_mode:
            changes["mode"] = stat.S_IFMT(node.mode) | stat.S_IMODE(attr.st_mode)
        elif ((fields.update_uid or fields.update_gid) and not stat.S_ISDIR(node.mode)) or (
            "size" in changes and ctx.uid != 0
        ):
            # chown, and truncation by the unprivileged, drop setuid/setgid as Linux does.
            killed = _without_suid(node.mode)
            if killed != node.mode:
                changes["mode"] = killed
        if fields.update_uid:
            changes["uid"] = attr.st_uid
        if fields.update_gid:
            changes["gid"] = attr.st_gid
        if fields.update_atime:
            changes["atime_ns"] = attr.st_atime_ns
        if fields.update_mtime:
            changes["mtime_ns"] = attr.st_mtime_ns
        changes["ctime_ns"] = attr.st_ctime_ns if fields.update_ctime else now_ns()
        if "size" in changes and not fields.update_mtime:
            changes["mtime_ns"] = changes["ctime_ns"]  # truncate() changes the data
        # A change of times or owner is one UPDATE, atomic without a savepoint.
        several = "size" in changes or fields.update_mode
        with self.db.operation() if several else contextlib.nullcontext():
            if "size" in changes:
                delta = self.cache.truncate(inode, node.size, changes["size"])
                if delta:
                    changes["nblocks"] = node.nblocks + delta
            if fields.update_mode:
                self._sync_acl_to_mode(inode, changes["mode"])
            self.tree.set_attrs(inode, **changes)
        return self.attrs(node._replace(**changes))

    def _sync_acl_to_mode(self, ino: int, mode: int) -> None:
        value = self.db.value(
            "SELECT value FROM xattrs WHERE inode = ? AND name = ?", (ino, acl.ACCESS)
        )
        if value is not None:
            self.db.execute(
                "UPDATE xattrs SET value = ? WHERE inode = ? AND name = ?",
                (acl.serialize(acl.chmod(acl.parse(value), mode)), ino, acl.ACCESS),
            )

    @fuse_errors
    async def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        return self.tree.readlink(inode)

    # -- creating and removing ------------------------------------------------------------

    @fuse_errors
    async def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._entry(self._create(parent_inode, name, mode, ctx, rdev=rdev))

    @fuse_errors
    async def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._entry(self._create(parent_inode, name, stat.S_IFDIR | mode, ctx))

    @fuse_errors
    async def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._entry(
            self._create(parent_inode, name, stat.S_IFLNK | 0o777, ctx, target=target)
        )

    @fuse_errors
    async def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        node = self._create(parent_inode, name, stat.S_IFREG | stat.S_IMODE(mode), ctx)
        fi = self._open_handle(node, ctx)
        return fi, self._entry(node)

    @fuse_errors
    async def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        self._writable()
        with self.db.operation():
            return self._entry(self.tree.link(inode, new_parent_inode, new_name))

    @fuse_errors
    async def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self._writable()
        with self.db.operation():
            ino = self.tree.unlink(parent_inode, name)
        self._maybe_delete(ino)

    @fuse_errors
    async def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self._writable()
        with self.db.operation():
            ino = self.tree.rmdir(parent_inode, name)
        self._maybe_delete(ino)

    @fuse_errors
    async def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        self._writable()
        with self.db.operation():
            replaced = self.tree.rename(
                parent_inode_old, name_old, parent_inode_new, name_new, flags
            )
        if replaced is not None:
            self._maybe_delete(replaced)

    # -- files ----------------------------------------------------------------------------

    def _open_handle(self, node: Inode, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        cf = self.cache.open(node.id, node.size)
        fh = self._next_fh
        self._next_fh += 1
        self.handles[fh] = Handle(node.id, cf, ctx.uid != 0)
        self.open_count[node.id] = self.open_count.get(node.id, 0) + 1
        # keep_cache: the page cache stays valid across opens, since every write comes
        # through the kernel.
        return pyfuse3.FileInfo(fh=fh, keep_cache=True)

    @fuse_errors
    async def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        if flags & os.O_ACCMODE != os.O_RDONLY or flags & os.O_TRUNC:
            self._writable()
        node = self.tree.inode(inode)
        if not stat.S_ISREG(node.mode):
            raise FsError(errno.EINVAL)
        if flags & os.O_TRUNC and flags & os.O_ACCMODE != os.O_RDONLY:
            await self._before_truncate(inode, 0)
            node = self.tree.inode(inode)
            with self.db.operation():
                if node.size:
                    delta = self.cache.truncate(inode, node.size, 0)
                    self.db.execute(
                        "UPDATE inodes SET nblocks = nblocks + ? WHERE id = ?", (delta, inode)
                    )
                if ctx.uid != 0:
                    self._kill_suid(inode, node.mode)
                t = now_ns()
                self.tree.set_attrs(inode, size=0, mtime_ns=t, ctime_ns=t)
            node = self.tree.inode(inode)
        return self._open_handle(node, ctx)

    @fuse_errors
    async def read(self, fh: int, off: int, size: int) -> bytes:
        h = self.handles[fh]
        length = self.db.value("SELECT size FROM inodes WHERE id = ?", (h.inode,), 0)
        if off >= length:
            return b""
        size = min(size, length - off)
        if self.cache.fetcher is not None:
            await self.cache.ensure_local(h.cache, off, off + size)
        return self.cache.read(h.cache, off, size)

    @fuse_errors
    async def write(self, fh: int, off: int, buf: bytes) -> int:
        h = self.handles[fh]
        end = off + len(buf)
        if self.gate is not None:
            await self.gate.enter(len(buf))
        self._writable()
        if self.cache.fetcher is not None:
            await self._make_edges_local(h.cache, off, end)
        stored = await self.cache.store_large(h.cache, off, buf)
        with self.db.operation():
            if stored:
                new_blocks = self.cache.record(h.cache, off, end)
            else:
                # Only inline data needs the size (a cache file is as long as its file).
                size = (
                    self.db.value("SELECT size FROM inodes WHERE id = ?", (h.inode,), 0)
                    if h.cache.inline
                    else 0
                )
                new_blocks = self.cache.write(h.cache, off, buf, size)
            if self.enable_writeback_cache:
                # The kernel owns mtime and ctime here and sends them with setattr. Most
                # writes change neither size nor block count: leave the row (and the change
                # tracking its triggers do) alone then.
                self.db.execute(
                    "UPDATE inodes SET size = MAX(size, ?), nblocks = nblocks + ?"
                    " WHERE id = ? AND (size < ? OR ? != 0)",
                    (end, new_blocks, h.inode, end, new_blocks),
                )
            else:
                t = now_ns()
                self.db.execute(
                    "UPDATE inodes SET size = MAX(size, ?), nblocks = nblocks + ?,"
                    " mtime_ns = ?, ctime_ns = ? WHERE id = ?",
                    (off + len(buf), new_blocks, t, t, h.inode),
                )
            if h.unprivileged:
                mode = self.db.value("SELECT mode FROM inodes WHERE id = ?", (h.inode,))
                if mode & (stat.S_ISUID | stat.S_ISGID) and self._kill_suid(h.inode, mode) != mode:
                    pyfuse3.invalidate_inode(h.inode, attr_only=True)
        return len(buf)

    async def _before_truncate(self, ino: int, size: int) -> None:
        """Let a truncation wait at the gate, and fetch the remote block it cuts into."""
        if self.gate is not None:
            await self.gate.enter(0)
            self._writable()
        if self.cache.fetcher is None or not size % self.block_size:
            return
        node = self.tree.inode(ino)
        if stat.S_ISREG(node.mode) and size < node.size:
            cf = self.cache.open(ino, node.size)
            try:
                await self.cache.ensure_local(cf, size - 1, size)
            finally:
                self.cache.close(cf)

    async def _make_edges_local(self, cf: CacheFile, off: int, end: int) -> None:
        """Fetch the remote blocks a write covers only in part: their other bytes stay."""
        bs = self.block_size
        if off % bs:
            await self.cache.ensure_local(cf, off, off + 1)
        if end % bs:
            await self.cache.ensure_local(cf, end - 1, end)

    @fuse_errors
    async def flush(self, fh: int) -> None:
        # close() needs nothing from us: data reaches us by write() (the kernel writes back
        # its dirty pages before it would flush), durability is fsync()'s. ENOSYS tells the
        # kernel so, and it stops sending FLUSH, one request per close(), for good.
        raise pyfuse3.FUSEError(errno.ENOSYS)

    @fuse_errors
    async def release(self, fh: int) -> None:
        h = self.handles.pop(fh)
        self.cache.close(h.cache)
        left = self.open_count[h.inode] - 1
        if left:
            self.open_count[h.inode] = left
        else:
            del self.open_count[h.inode]
            self._maybe_delete(h.inode)

    @fuse_errors
    async def fsync(self, fh: int, datasync: bool) -> None:
        h = self.handles[fh]
        await self.cache.fsync(h.cache)
        await self.db.durable()

    # -- directories ----------------------------------------------------------------------

    @fuse_errors
    async def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        node = self.tree.inode(inode)
        if not stat.S_ISDIR(node.mode):
            raise FsError(errno.ENOTDIR)
        return inode

    @fuse_errors
    async def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        # Positions 1 and 2 are "." and ".."; an entry at dentry position p is at p + 2.
        here = self.attrs(self.tree.inode(fh))
        if start_id < 1 and not pyfuse3.readdir_reply(token, b".", here, 1):
            return
        if start_id < 2:
            parent = self.tree.inode(self.tree.parent_of(fh))
            if not pyfuse3.readdir_reply(token, b"..", self.attrs(parent), 2):
                return
        after = max(start_id - 2, 0)
        while True:
            batch = self.tree.readdir_plus(fh, after, READDIR_BATCH)
            for position, name, node in batch:
                if not pyfuse3.readdir_reply(token, name, self.attrs(node), position + 2):
                    return
                self.lookups[node.id] = self.lookups.get(node.id, 0) + 1
                after = position
            if len(batch) < READDIR_BATCH:
                return

    @fuse_errors
    async def releasedir(self, fh: int) -> None:
        return None

    @fuse_errors
    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        await self.db.durable()

    # -- the filesystem as a whole --------------------------------------------------------

    @fuse_errors
    async def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        disk = self.cache.disk_usage()
        used_blocks = int(self.db.value("SELECT COALESCE(SUM(nblocks), 0) FROM inodes") or 0)
        frsize = disk.f_frsize or 4096
        used = used_blocks * self.block_size // frsize
        s = pyfuse3.StatvfsData()
        s.f_bsize = STAT_BLKSIZE
        s.f_frsize = frsize
        s.f_blocks = used + disk.f_bavail
        s.f_bfree = disk.f_bavail
        s.f_bavail = disk.f_bavail
        inodes = self.tree.count_inodes()
        s.f_files = inodes + disk.f_favail
        s.f_ffree = disk.f_favail
        s.f_favail = disk.f_favail
        s.f_namemax = 255
        return s

    # -- extended attributes --------------------------------------------------------------

    @fuse_errors
    async def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        # Hot: the kernel asks for security.capability before every write(2).
        value = self.db.value(
            "SELECT value FROM xattrs WHERE inode = ? AND name = ?", (inode, name)
        )
        if value is None:
            raise pyfuse3.FUSEError(errno.ENODATA)
        return value

    @fuse_errors
    async def setxattr(
        self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext
    ) -> None:
        self._writable()
        with self.db.operation():
            if name in (acl.ACCESS, acl.DEFAULT):
                node = self.tree.inode(inode)
                acl.applies_to(node.mode, name)
                entries = acl.parse(value)
                if name == acl.ACCESS:
                    mode = acl.mode_from_acl(entries, node.mode)
                    if mode != node.mode:
                        self.tree.set_attrs(inode, mode=mode)
                    if acl.is_minimal(entries):
                        # The mode says it all; Linux stores no ACL in this case.
                        self.db.execute(
                            "DELETE FROM xattrs WHERE inode = ? AND name = ?", (inode, name)
                        )
                        return
            self.tree.setxattr(inode, name, value)

    @fuse_errors
    async def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> list[bytes]:
        return self.tree.listxattr(inode)

    @fuse_errors
    async def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self._writable()
        with self.db.operation():
            self.tree.removexattr(inode, name)

    @fuse_errors
    async def access(self, inode: int, mode: int, ctx: pyfuse3.RequestContext) -> bool:
        # With default_permissions the kernel checks access itself and never asks; answer
        # by the mode bits for completeness.
        node = self.tree.inode(inode)
        if ctx.uid == 0:
            return not (mode & os.X_OK) or bool(node.mode & 0o111) or stat.S_ISDIR(node.mode)
        if ctx.uid == node.uid:
            bits = (node.mode >> 6) & 7
        elif ctx.gid == node.gid:
            bits = (node.mode >> 3) & 7
        else:
            bits = node.mode & 7
        return (bits & mode) == mode

    # -- shutdown -------------------------------------------------------------------------

    def forget_all(self) -> None:
        """At unmount the kernel forgets everything: delete the orphans it was holding."""
        self.lookups = {ROOT_INODE: 1}
        for ino in list(self.tree.orphans()):
            if not self.open_count.get(ino):
                self._maybe_delete(ino)
