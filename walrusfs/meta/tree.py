"""The directory tree: inodes, directory entries, symlinks and extended attributes.

Every public method is one filesystem operation: it checks what POSIX requires, then changes
the database without yielding to trio, so the operation is atomic (see meta/db.py). Methods
raise FsError with the errno the kernel should see. Permission checks are the kernel's
(default_permissions); this layer keeps the data model consistent: link counts, parents,
timestamps and the rules of rename.
"""

from __future__ import annotations

import errno
import sqlite3
import stat
import time
from collections.abc import Iterator
from typing import NamedTuple

from walrusfs.meta.db import Database
from walrusfs.meta.errors import FsError
from walrusfs.meta.schema import ROOT_INODE

NAME_MAX = 255
# Linux's limits for extended attributes (XATTR_NAME_MAX, XATTR_SIZE_MAX, XATTR_LIST_MAX).
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
XATTR_LIST_MAX = 65536

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2

DIR_SIZE = 4096

_INODE_COLUMNS = (
    "id, mode, uid, gid, size, nlink, rdev, atime_ns, mtime_ns, ctime_ns, parent, nblocks"
)


class Inode(NamedTuple):
    id: int
    mode: int
    uid: int
    gid: int
    size: int
    nlink: int
    rdev: int
    atime_ns: int
    mtime_ns: int
    ctime_ns: int
    parent: int | None
    nblocks: int


class DirEntry(NamedTuple):
    position: int
    name: bytes
    inode: int


def now_ns() -> int:
    return time.time_ns()


def check_name(name: bytes) -> None:
    if len(name) > NAME_MAX:
        raise FsError(errno.ENAMETOOLONG)
    if not name or b"/" in name or b"\0" in name or name in (b".", b".."):
        raise FsError(errno.EINVAL)


class Tree:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._get_inode = f"SELECT {_INODE_COLUMNS} FROM inodes WHERE id = ?"

    # -- creation of a new filesystem -----------------------------------------------------

    @staticmethod
    def make_root(db: Database, uid: int, gid: int, mode: int = 0o755) -> None:
        t = now_ns()
        db.execute(
            "INSERT INTO inodes (id, mode, uid, gid, size, nlink, atime_ns, mtime_ns, ctime_ns,"
            " parent) VALUES (?, ?, ?, ?, ?, 2, ?, ?, ?, ?)",
            (ROOT_INODE, stat.S_IFDIR | mode, uid, gid, DIR_SIZE, t, t, t, ROOT_INODE),
        )

    # -- reading --------------------------------------------------------------------------

    def inode(self, ino: int) -> Inode:
        row = self.db.row(self._get_inode, (ino,))
        if row is None:
            raise FsError(errno.ENOENT)
        return Inode(*row)

    def lookup(self, parent: int, name: bytes) -> int | None:
        return self.db.value(
            "SELECT inode FROM dentries WHERE parent = ? AND name = ?", (parent, name)
        )

    def parent_of(self, directory: int) -> int:
        return self.inode(directory).parent or ROOT_INODE

    def readlink(self, ino: int) -> bytes:
        target = self.db.value("SELECT target FROM symlinks WHERE inode = ?", (ino,))
        if target is None:
            raise FsError(errno.EINVAL)
        return target

    def readdir(self, directory: int, after: int, limit: int) -> list[DirEntry]:
        """Entries of `directory` whose position is after `after`, in position order."""
        return [
            DirEntry(*r)
            for r in self.db.rows(
                "SELECT id, name, inode FROM dentries WHERE parent = ? AND id > ?"
                " ORDER BY id LIMIT ?",
                (directory, after, limit),
            )
        ]

    def readdir_plus(
        self, directory: int, after: int, limit: int
    ) -> list[tuple[int, bytes, Inode]]:
        """Like readdir, with each entry's inode attributes (for readdirplus)."""
        cols = ", ".join(f"i.{c.strip()}" for c in _INODE_COLUMNS.split(","))
        return [
            (r[0], r[1], Inode(*r[2:]))
            for r in self.db.rows(
                f"SELECT d.id, d.name, {cols} FROM dentries d JOIN inodes i ON i.id = d.inode"
                " WHERE d.parent = ? AND d.id > ? ORDER BY d.id LIMIT ?",
                (directory, after, limit),
            )
        ]

    def is_empty_dir(self, directory: int) -> bool:
        return self.db.row("SELECT 1 FROM dentries WHERE parent = ? LIMIT 1", (directory,)) is None

    # -- creating entries -----------------------------------------------------------------

    def _require_dir(self, ino: int) -> Inode:
        node = self.inode(ino)
        if not stat.S_ISDIR(node.mode):
            raise FsError(errno.ENOTDIR)
        if node.nlink == 0:
            raise FsError(errno.ENOENT)  # a removed directory takes no new entries
        return node

    def _touch_dir(self, directory: int, t: int, nlink_delta: int = 0) -> None:
        self.db.execute(
            "UPDATE inodes SET mtime_ns = ?, ctime_ns = ?, nlink = nlink + ? WHERE id = ?",
            (t, t, nlink_delta, directory),
        )

    def parent_for_create(self, parent: int, xattr: bytes) -> tuple[int, int, bytes | None]:
        """Mode and group of a directory about to get a new entry, and one of its xattrs
        (the default ACL, for inheritance) in the same query. Refuses non-directories."""
        row = self.db.row(
            "SELECT i.mode, i.gid, i.nlink, x.value FROM inodes i LEFT JOIN xattrs x"
            " ON x.inode = i.id AND x.name = ? WHERE i.id = ?",
            (xattr, parent),
        )
        if row is None or row[2] == 0:
            raise FsError(errno.ENOENT)  # a removed directory takes no new entries
        if not stat.S_ISDIR(row[0]):
            raise FsError(errno.ENOTDIR)
        return row[0], row[1], row[3]

    def create(
        self,
        parent: int,
        name: bytes,
        mode: int,
        uid: int,
        gid: int,
        rdev: int = 0,
        target: bytes | None = None,
        *,
        parent_mode: int,
        parent_gid: int,
    ) -> Inode:
        """Create a file, directory, symlink or special file and its directory entry.

        The caller has the parent's mode and group from parent_for_create and runs this in
        an operation (savepoint): an existing name is found by the unique index, after the
        inode row is written, and the savepoint takes that row back."""
        check_name(name)
        is_dir = stat.S_ISDIR(mode)
        if parent_mode & stat.S_ISGID:
            # BSD group semantics of setgid directories: the new entry takes the directory's
            # group, and a new directory inherits the setgid bit itself.
            gid = parent_gid
            if is_dir:
                mode |= stat.S_ISGID
        t = now_ns()
        size = DIR_SIZE if is_dir else (len(target) if target is not None else 0)
        nlink = 2 if is_dir else 1
        dir_parent = parent if is_dir else None
        ino = self.db.execute(
            "INSERT INTO inodes (mode, uid, gid, size, nlink, rdev, atime_ns, mtime_ns,"
            " ctime_ns, parent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (mode, uid, gid, size, nlink, rdev, t, t, t, dir_parent),
        ).lastrowid
        assert ino is not None
        try:
            self.db.execute(
                "INSERT INTO dentries (parent, name, inode) VALUES (?, ?, ?)", (parent, name, ino)
            )
        except sqlite3.IntegrityError:
            raise FsError(errno.EEXIST) from None
        if target is not None:
            self.db.execute("INSERT INTO symlinks (inode, target) VALUES (?, ?)", (ino, target))
        self._touch_dir(parent, t, 1 if is_dir else 0)
        return Inode(ino, mode, uid, gid, size, nlink, rdev, t, t, t, dir_parent, 0)

    def link(self, ino: int, parent: int, name: bytes) -> Inode:
        check_name(name)
        node = self.inode(ino)
        if stat.S_ISDIR(node.mode):
            raise FsError(errno.EPERM)
        self._require_dir(parent)
        if self.lookup(parent, name) is not None:
            raise FsError(errno.EEXIST)
        if node.nlink == 0:
            raise FsError(errno.ENOENT)  # as Linux: an unlinked file cannot be linked back
        t = now_ns()
        self.db.execute(
            "INSERT INTO dentries (parent, name, inode) VALUES (?, ?, ?)", (parent, name, ino)
        )
        self.db.execute("UPDATE inodes SET nlink = nlink + 1, ctime_ns = ? WHERE id = ?", (t, ino))
        self._touch_dir(parent, t)
        return self.inode(ino)

    # -- removing entries -----------------------------------------------------------------

    def unlink(self, parent: int, name: bytes) -> int:
        """Remove a non-directory entry; returns the inode, which may now be an orphan."""
        ino = self.lookup(parent, name)
        if ino is None:
            raise FsError(errno.ENOENT)
        node = self.inode(ino)
        if stat.S_ISDIR(node.mode):
            raise FsError(errno.EISDIR)
        t = now_ns()
        self.db.execute("DELETE FROM dentries WHERE parent = ? AND name = ?", (parent, name))
        self.db.execute("UPDATE inodes SET nlink = nlink - 1, ctime_ns = ? WHERE id = ?", (t, ino))
        self._touch_dir(parent, t)
        return ino

    def rmdir(self, parent: int, name: bytes) -> int:
        """Remove an empty directory; returns its inode, now an orphan."""
        if name == b".":
            raise FsError(errno.EINVAL)
        if name == b"..":
            raise FsError(errno.ENOTEMPTY)
        ino = self.lookup(parent, name)
        if ino is None:
            raise FsError(errno.ENOENT)
        node = self.inode(ino)
        if not stat.S_ISDIR(node.mode):
            raise FsError(errno.ENOTDIR)
        if not self.is_empty_dir(ino):
            raise FsError(errno.ENOTEMPTY)
        t = now_ns()
        self.db.execute("DELETE FROM dentries WHERE parent = ? AND name = ?", (parent, name))
        self.db.execute("UPDATE inodes SET nlink = 0, ctime_ns = ? WHERE id = ?", (t, ino))
        self._touch_dir(parent, t, -1)
        return ino

    # -- rename ---------------------------------------------------------------------------

    def _is_ancestor(self, ancestor: int, node: int) -> bool:
        """True when `ancestor` is `node` or holds it, walking up the parents."""
        seen = 0
        while True:
            if node == ancestor:
                return True
            if node == ROOT_INODE:
                return False
            parent = self.db.value("SELECT parent FROM inodes WHERE id = ?", (node,))
            if parent is None or parent == node:
                return False
            node = parent
            seen += 1
            if seen > 1_000_000:  # a loop would be a corrupt tree; refuse rather than spin
                raise FsError(errno.ELOOP)

    def rename(
        self, old_parent: int, old_name: bytes, new_parent: int, new_name: bytes, flags: int = 0
    ) -> int | None:
        """Move an entry. Returns the inode whose last link the move replaced, if any."""
        if flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE) or flags == (
            RENAME_NOREPLACE | RENAME_EXCHANGE
        ):
            raise FsError(errno.EINVAL)
        check_name(new_name)
        self._require_dir(old_parent)
        self._require_dir(new_parent)
        src = self.lookup(old_parent, old_name)
        if src is None:
            raise FsError(errno.ENOENT)
        dst = self.lookup(new_parent, new_name)
        src_node = self.inode(src)
        src_is_dir = stat.S_ISDIR(src_node.mode)
        t = now_ns()

        if flags & RENAME_EXCHANGE:
            if dst is None:
                raise FsError(errno.ENOENT)
            self._exchange(old_parent, old_name, src, new_parent, new_name, dst, t)
            return None

        if dst is not None and flags & RENAME_NOREPLACE:
            raise FsError(errno.EEXIST)
        if src_is_dir and new_parent != old_parent and self._is_ancestor(src, new_parent):
            raise FsError(errno.EINVAL)
        if dst == src:
            return None  # both names are links to one inode: POSIX says do nothing

        replaced: int | None = None
        if dst is not None:
            dst_node = self.inode(dst)
            dst_is_dir = stat.S_ISDIR(dst_node.mode)
            if src_is_dir and not dst_is_dir:
                raise FsError(errno.ENOTDIR)
            if dst_is_dir and not src_is_dir:
                raise FsError(errno.EISDIR)
            if dst_is_dir and not self.is_empty_dir(dst):
                raise FsError(errno.ENOTEMPTY)
            self.db.execute(
                "DELETE FROM dentries WHERE parent = ? AND name = ?", (new_parent, new_name)
            )
            if dst_is_dir:
                self.db.execute("UPDATE inodes SET nlink = 0, ctime_ns = ? WHERE id = ?", (t, dst))
                self._touch_dir(new_parent, t, -1)
            else:
                self.db.execute(
                    "UPDATE inodes SET nlink = nlink - 1, ctime_ns = ? WHERE id = ?", (t, dst)
                )
            replaced = dst

        # A new position, so readdir cursors see a moved entry as new rather than skipping it.
        self.db.execute(
            "DELETE FROM dentries WHERE parent = ? AND name = ?", (old_parent, old_name)
        )
        self.db.execute(
            "INSERT INTO dentries (parent, name, inode) VALUES (?, ?, ?)",
            (new_parent, new_name, src),
        )
        self.db.execute("UPDATE inodes SET ctime_ns = ? WHERE id = ?", (t, src))
        if src_is_dir and new_parent != old_parent:
            self.db.execute("UPDATE inodes SET parent = ? WHERE id = ?", (new_parent, src))
            self._touch_dir(old_parent, t, -1)
            self._touch_dir(new_parent, t, +1)
        else:
            self._touch_dir(old_parent, t)
            if new_parent != old_parent:
                self._touch_dir(new_parent, t)
        return replaced

    def _exchange(self, p1: int, n1: bytes, i1: int, p2: int, n2: bytes, i2: int, t: int) -> None:
        if i1 == i2:
            return
        d1 = stat.S_ISDIR(self.inode(i1).mode)
        d2 = stat.S_ISDIR(self.inode(i2).mode)
        if p1 != p2:
            if d1 and self._is_ancestor(i1, p2):
                raise FsError(errno.EINVAL)
            if d2 and self._is_ancestor(i2, p1):
                raise FsError(errno.EINVAL)
        self.db.execute("UPDATE dentries SET inode = ? WHERE parent = ? AND name = ?", (i2, p1, n1))
        self.db.execute("UPDATE dentries SET inode = ? WHERE parent = ? AND name = ?", (i1, p2, n2))
        self.db.execute("UPDATE inodes SET ctime_ns = ? WHERE id IN (?, ?)", (t, i1, i2))
        if p1 != p2:
            if d1:
                self.db.execute("UPDATE inodes SET parent = ? WHERE id = ?", (p2, i1))
            if d2:
                self.db.execute("UPDATE inodes SET parent = ? WHERE id = ?", (p1, i2))
            # A directory moving one way and a non-directory the other shift one link.
            self._touch_dir(p1, t, int(d2) - int(d1))
            self._touch_dir(p2, t, int(d1) - int(d2))
        else:
            self._touch_dir(p1, t)

    # -- attributes -----------------------------------------------------------------------

    def set_attrs(
        self,
        ino: int,
        *,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        size: int | None = None,
        atime_ns: int | None = None,
        mtime_ns: int | None = None,
        ctime_ns: int | None = None,
        nblocks: int | None = None,
    ) -> None:
        sets: list[str] = []
        params: list[int] = []
        if mode is not None:
            # The file type bits never change.
            sets.append("mode = (mode & ~4095) | ?")
            params.append(stat.S_IMODE(mode))
        for col, val in (
            ("uid", uid),
            ("gid", gid),
            ("size", size),
            ("atime_ns", atime_ns),
            ("mtime_ns", mtime_ns),
            ("nblocks", nblocks),
        ):
            if val is not None:
                sets.append(f"{col} = ?")
                params.append(val)
        # Every change of attributes is a change of status.
        sets.append("ctime_ns = ?")
        params.append(ctime_ns if ctime_ns is not None else now_ns())
        params.append(ino)
        self.db.execute(f"UPDATE inodes SET {', '.join(sets)} WHERE id = ?", params)

    # -- extended attributes --------------------------------------------------------------

    def getxattr(self, ino: int, name: bytes) -> bytes:
        value = self.db.value("SELECT value FROM xattrs WHERE inode = ? AND name = ?", (ino, name))
        if value is None:
            raise FsError(errno.ENODATA)
        return value

    def setxattr(self, ino: int, name: bytes, value: bytes) -> None:
        if len(name) > XATTR_NAME_MAX or not name:
            raise FsError(errno.ERANGE)
        if len(value) > XATTR_SIZE_MAX:
            raise FsError(errno.E2BIG)
        names = sum(len(n) + 1 for n in self.listxattr(ino) if n != name)
        if names + len(name) + 1 > XATTR_LIST_MAX:
            raise FsError(errno.ENOSPC)
        self.db.execute(
            "INSERT OR REPLACE INTO xattrs (inode, name, value) VALUES (?, ?, ?)",
            (ino, name, value),
        )
        self.db.execute("UPDATE inodes SET ctime_ns = ? WHERE id = ?", (now_ns(), ino))

    def listxattr(self, ino: int) -> list[bytes]:
        return [r[0] for r in self.db.rows("SELECT name FROM xattrs WHERE inode = ?", (ino,))]

    def removexattr(self, ino: int, name: bytes) -> None:
        cur = self.db.execute("DELETE FROM xattrs WHERE inode = ? AND name = ?", (ino, name))
        if cur.rowcount == 0:
            raise FsError(errno.ENODATA)
        self.db.execute("UPDATE inodes SET ctime_ns = ? WHERE id = ?", (now_ns(), ino))

    # -- deletion of orphans --------------------------------------------------------------

    def delete_inode(self, ino: int) -> None:
        """Forget an orphaned inode's metadata. Its blocks are the cache's to remove."""
        self.db.execute("DELETE FROM xattrs WHERE inode = ?", (ino,))
        self.db.execute("DELETE FROM symlinks WHERE inode = ?", (ino,))
        self.db.execute("DELETE FROM inodes WHERE id = ?", (ino,))

    def orphans(self) -> Iterator[int]:
        return (r[0] for r in self.db.rows("SELECT id FROM inodes WHERE nlink = 0"))

    def count_inodes(self) -> int:
        return int(self.db.value("SELECT COUNT(*) FROM inodes", default=0))
