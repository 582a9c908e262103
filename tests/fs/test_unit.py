"""The unit layer: the tree and the FUSE operations called directly, without a mount.

The only stand-in is the request context (uid, gid, umask), which the kernel would supply."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pyfuse3
import pytest

from walrusfs.cache import blockcache
from walrusfs.fs import filesystem
from walrusfs.fs.filesystem import Filesystem
from walrusfs.fs.operations import Operations
from walrusfs.meta.errors import FsError
from walrusfs.meta.schema import ROOT_INODE
from walrusfs.meta.tree import RENAME_EXCHANGE, RENAME_NOREPLACE, Tree


class Ctx:
    def __init__(self, uid: int = 0, gid: int = 0) -> None:
        self.uid, self.gid, self.pid, self.umask = uid, gid, 1, 0o022


ROOT = Ctx()


@pytest.fixture
def fsys(tmp_path: Path) -> Filesystem:
    filesystem.create(str(tmp_path / "fs"))
    f = Filesystem(str(tmp_path / "fs"))
    yield f
    f.close(clean=True)


@pytest.fixture
def ops(fsys: Filesystem) -> Operations:
    return Operations(fsys.db, fsys.cache)


def fuse_errno(excinfo: pytest.ExceptionInfo) -> int:
    return excinfo.value.errno


async def test_create_write_read_and_sizes(ops: Operations) -> None:
    fi, attr = await ops.create(ROOT_INODE, b"f", 0o100644, os.O_RDWR, ROOT)
    assert await ops.write(fi.fh, 0, b"hello") == 5
    assert await ops.write(fi.fh, 10, b"world") == 5
    assert await ops.read(fi.fh, 0, 100) == b"hello\0\0\0\0\0world"
    assert (await ops.getattr(attr.st_ino, ROOT)).st_size == 15
    await ops.release(fi.fh)


async def test_small_files_move_from_inline_to_a_cache_file(
    ops: Operations, fsys: Filesystem
) -> None:
    fi, attr = await ops.create(ROOT_INODE, b"grow", 0o100644, os.O_RDWR, ROOT)
    ino = attr.st_ino
    await ops.write(fi.fh, 0, b"a" * 1000)
    assert fsys.db.value("SELECT length(data) FROM inline_data WHERE inode = ?", (ino,)) == 1000
    assert not os.path.exists(fsys.cache.path(ino))
    big = os.urandom(fsys.cache.inline_max + 1)
    await ops.write(fi.fh, 500, big)
    assert fsys.db.value("SELECT 1 FROM inline_data WHERE inode = ?", (ino,)) is None
    assert os.path.getsize(fsys.cache.path(ino)) == 500 + len(big)
    assert await ops.read(fi.fh, 0, 600) == b"a" * 500 + big[:100]
    await ops.release(fi.fh)


async def test_a_file_written_a_page_at_a_time_leaves_inline_early(
    ops: Operations, fsys: Filesystem
) -> None:
    """The kernel writes a file back page by page after a truncate that extends it (rsync
    -S does that); each piece of an inline file rewrites the whole row, so such a file
    moves to a cache file once it outgrows INLINE_PIECEWISE_MAX, far below inline_max."""
    fi, attr = await ops.create(ROOT_INODE, b"pages", 0o100644, os.O_RDWR, ROOT)
    ino = attr.st_ino
    pages = [os.urandom(4096) for _ in range(10)]
    inline_pages = blockcache.INLINE_PIECEWISE_MAX // 4096
    for n, page in enumerate(pages):
        await ops.write(fi.fh, n * 4096, page)
        assert fsys.cache.files[ino].inline == (n < inline_pages), n
    assert fsys.db.value("SELECT 1 FROM inline_data WHERE inode = ?", (ino,)) is None
    assert await ops.read(fi.fh, 0, 1 << 20) == b"".join(pages)
    await ops.release(fi.fh)
    # One write of the whole file stays inline however large, up to inline_max.
    fi, attr = await ops.create(ROOT_INODE, b"whole", 0o100644, os.O_RDWR, ROOT)
    await ops.write(fi.fh, 0, b"".join(pages))
    assert fsys.cache.files[attr.st_ino].inline
    await ops.release(fi.fh)


def test_a_block_stays_busy_until_the_last_io_on_it_ends(fsys: Filesystem) -> None:
    """A seal of a block can overlap a threaded write of it: the block must stay safe from
    eviction until both are done, not only until the first of them ends."""
    cache = fsys.cache
    key = (12345, 0)
    with cache.holding([key]):
        with cache.holding([key]):
            pass
        assert key in cache.busy
    assert key not in cache.busy


async def test_truncate_of_a_closed_inline_file_past_the_limit(
    ops: Operations, fsys: Filesystem
) -> None:
    fi, attr = await ops.create(ROOT_INODE, b"t", 0o100644, os.O_RDWR, ROOT)
    await ops.write(fi.fh, 0, b"xyz")
    await ops.release(fi.fh)
    # pyfuse3.SetattrFields cannot be filled from Python; do what setattr does for a size.
    delta = fsys.cache.truncate(attr.st_ino, 3, 10 << 20)
    ops.tree.set_attrs(attr.st_ino, size=10 << 20)
    assert delta == 0
    fi = await ops.open(attr.st_ino, os.O_RDONLY, ROOT)
    assert await ops.read(fi.fh, 0, 5) == b"xyz\0\0"
    assert await ops.read(fi.fh, (10 << 20) - 2, 10) == b"\0\0"
    await ops.release(fi.fh)


async def test_orphans_are_deleted_when_the_kernel_and_handles_let_go(
    ops: Operations, fsys: Filesystem
) -> None:
    fi, attr = await ops.create(ROOT_INODE, b"o", 0o100644, os.O_RDWR, ROOT)
    ino = attr.st_ino
    await ops.write(fi.fh, 0, os.urandom(300_000))  # a cache file, not inline
    await ops.unlink(ROOT_INODE, b"o", ROOT)
    assert fsys.db.value("SELECT nlink FROM inodes WHERE id = ?", (ino,)) == 0
    await ops.release(fi.fh)  # the kernel still remembers it
    assert fsys.db.value("SELECT 1 FROM inodes WHERE id = ?", (ino,)) == 1
    await ops.forget([(ino, 1)])
    assert fsys.db.value("SELECT 1 FROM inodes WHERE id = ?", (ino,)) is None
    assert fsys.db.value("SELECT COUNT(*) FROM blocks WHERE inode = ?", (ino,)) == 0
    assert not os.path.exists(fsys.cache.path(ino))


async def test_a_failing_operation_leaves_nothing_half_done(
    ops: Operations, fsys: Filesystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = fsys.db.value("SELECT COUNT(*) FROM inodes")

    def broken(ino: int) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(fsys.cache, "new_file", broken)
    with pytest.raises(pyfuse3.FUSEError) as e:
        await ops.create(ROOT_INODE, b"half", 0o100644, os.O_RDWR, ROOT)
    assert fuse_errno(e) == errno.EIO
    assert fsys.db.value("SELECT COUNT(*) FROM inodes") == before
    assert ops.tree.lookup(ROOT_INODE, b"half") is None


async def test_setgid_directory_and_default_acl_inheritance(
    ops: Operations, fsys: Filesystem
) -> None:
    from walrusfs.fs import acl

    d = await ops.mkdir(ROOT_INODE, b"d", 0o2775, Ctx(0, 42))
    default = acl.serialize([(acl.USER_OBJ, 7, 0), (acl.USER, 5, 1000), (acl.GROUP_OBJ, 5, 0),
                             (acl.MASK, 7, 0), (acl.OTHER, 0, 0)])  # fmt: skip
    await ops.setxattr(d.st_ino, acl.DEFAULT, default, ROOT)
    sub = await ops.mkdir(d.st_ino, b"sub", 0o777, Ctx(7, 7))
    assert sub.st_gid == 42 and sub.st_mode & stat.S_ISGID
    assert stat.S_IMODE(sub.st_mode) & 0o777 == 0o770  # masked by the default ACL, not umask
    assert await ops.getxattr(sub.st_ino, acl.DEFAULT, ROOT) == default
    fi, f = await ops.create(d.st_ino, b"f", 0o100666, os.O_RDWR, Ctx(7, 7))
    entries = acl.parse(await ops.getxattr(f.st_ino, acl.ACCESS, ROOT))
    assert (acl.USER, 5, 1000) in entries
    assert stat.S_IMODE(f.st_mode) == 0o660
    await ops.release(fi.fh)


def test_tree_rename_rules(fsys: Filesystem) -> None:
    t = Tree(fsys.db)

    def mk(parent: int, name: bytes, mode: int) -> int:
        pm, pg, _ = t.parent_for_create(parent, b"x")
        return t.create(parent, name, mode, 0, 0, parent_mode=pm, parent_gid=pg).id

    a = mk(ROOT_INODE, b"a", stat.S_IFDIR | 0o755)
    b = mk(a, b"b", stat.S_IFDIR | 0o755)
    f = mk(ROOT_INODE, b"f", stat.S_IFREG | 0o644)
    with pytest.raises(FsError) as e:
        t.rename(ROOT_INODE, b"a", b, b"inside")
    assert e.value.errno == errno.EINVAL
    with pytest.raises(FsError) as e:
        t.rename(ROOT_INODE, b"f", a, b"b", RENAME_NOREPLACE)
    assert e.value.errno == errno.EEXIST
    t.rename(ROOT_INODE, b"f", a, b"b", RENAME_EXCHANGE)
    assert t.lookup(ROOT_INODE, b"f") == b and t.lookup(a, b"b") == f
    assert t.inode(b).parent == ROOT_INODE
    assert t.inode(ROOT_INODE).nlink == 4 and t.inode(a).nlink == 2
    with pytest.raises(FsError) as e:
        t.rename(ROOT_INODE, b"missing", a, b"x")
    assert e.value.errno == errno.ENOENT


def test_tree_names_are_checked(fsys: Filesystem) -> None:
    t = Tree(fsys.db)
    pm, pg, _ = t.parent_for_create(ROOT_INODE, b"x")
    with pytest.raises(FsError) as e:
        t.create(ROOT_INODE, b"n" * 256, stat.S_IFREG | 0o644, 0, 0, parent_mode=pm, parent_gid=pg)
    assert e.value.errno == errno.ENAMETOOLONG
    for bad in (b"", b".", b"..", b"a/b", b"a\0b"):
        with pytest.raises(FsError):
            t.create(ROOT_INODE, bad, stat.S_IFREG | 0o644, 0, 0, parent_mode=pm, parent_gid=pg)


def test_readdir_positions_survive_changes(fsys: Filesystem) -> None:
    t = Tree(fsys.db)
    pm, pg, _ = t.parent_for_create(ROOT_INODE, b"x")
    for i in range(10):
        t.create(
            ROOT_INODE, f"e{i}".encode(), stat.S_IFREG | 0o644, 0, 0, parent_mode=pm, parent_gid=pg
        )
    first = t.readdir(ROOT_INODE, 0, 5)
    t.unlink(ROOT_INODE, b"e7")
    t.create(ROOT_INODE, b"late", stat.S_IFREG | 0o644, 0, 0, parent_mode=pm, parent_gid=pg)
    rest = t.readdir(ROOT_INODE, first[-1].position, 100)
    names = [e.name for e in first + rest]
    assert names == [b"e0", b"e1", b"e2", b"e3", b"e4", b"e5", b"e6", b"e8", b"e9", b"late"]
