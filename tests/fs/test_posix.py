"""POSIX behaviour of a real walrusfs mount: each operation, and the errors POSIX prescribes."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import mmap
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fsmount import FsUnderTest

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
NOBODY = 65534


def renameat2(old: Path, new: Path, flags: int) -> None:
    if libc.renameat2(AT_FDCWD, bytes(old), AT_FDCWD, bytes(new), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def getxattr_sized(path: Path, name: bytes, size: int) -> int:
    buf = ctypes.create_string_buffer(max(size, 1))
    n = libc.getxattr(bytes(path), name, buf, ctypes.c_size_t(size))
    if n < 0:
        raise OSError(ctypes.get_errno(), "getxattr")
    return n


@pytest.fixture(scope="module")
def mounted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FsUnderTest]:
    # Other users must reach the mount point: pytest's own temporary tree is private.
    public = Path(tempfile.mkdtemp(prefix="walrusfs-posix-"))
    public.chmod(0o755)
    f = FsUnderTest(tmp_path_factory.mktemp("posix"), mnt=public / "mnt")
    f.mkfs()
    f.mount("allow_other")
    try:
        yield f
    finally:
        f.cleanup()
        shutil.rmtree(public, ignore_errors=True)


@pytest.fixture
def d(mounted: FsUnderTest) -> Path:
    """A fresh directory on the shared mount for one test."""
    path = mounted.mnt / uuid.uuid4().hex
    path.mkdir()
    return path


def as_user(uid: int, gid: int, code: str, *args: str) -> subprocess.CompletedProcess:
    """Run Python code as another user (the suite runs as root)."""

    def drop() -> None:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    # The system interpreter: the test's own may live where other users cannot reach.
    return subprocess.run(
        ["/usr/bin/python3", "-c", code, *args], preexec_fn=drop, capture_output=True, text=True
    )


# -- files ------------------------------------------------------------------------------


def test_write_read_and_overwrite(d: Path) -> None:
    p = d / "f"
    p.write_bytes(b"hello world")
    with open(p, "r+b") as f:
        f.seek(6)
        f.write(b"WORLD!")
    assert p.read_bytes() == b"hello WORLD!"
    assert p.stat().st_size == 12


def test_o_excl_and_o_trunc(d: Path) -> None:
    p = d / "f"
    fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o640)
    os.write(fd, b"0123456789")
    os.close(fd)
    with pytest.raises(FileExistsError):
        os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    before = p.stat()
    fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.close(fd)
    after = p.stat()
    assert after.st_size == 0 and p.read_bytes() == b""
    assert after.st_mtime_ns >= before.st_mtime_ns
    assert stat.S_IMODE(after.st_mode) == 0o640


def test_o_append(d: Path) -> None:
    p = d / "log"
    p.write_bytes(b"start\n")
    a = os.open(p, os.O_WRONLY | os.O_APPEND)
    b = os.open(p, os.O_WRONLY)
    os.write(a, b"one\n")
    os.pwrite(b, b"XXXXX", 0)
    os.write(a, b"two\n")
    os.close(a)
    os.close(b)
    assert p.read_bytes() == b"XXXXX\none\ntwo\n"


def test_truncate_up_and_down(d: Path) -> None:
    p = d / "t"
    p.write_bytes(b"a" * 10000)
    os.truncate(p, 100)
    assert p.read_bytes() == b"a" * 100
    os.truncate(p, 5000)
    data = p.read_bytes()
    assert data[:100] == b"a" * 100 and data[100:] == b"\0" * 4900
    with open(p, "r+b") as f:
        f.truncate(0)
    assert p.stat().st_size == 0


def test_truncate_does_not_resurrect_old_bytes_across_blocks(d: Path) -> None:
    p = d / "t"
    p.write_bytes(os.urandom(3 << 20))
    os.truncate(p, (1 << 20) + 10)
    os.truncate(p, 3 << 20)
    data = p.read_bytes()
    assert data[(1 << 20) + 10 :] == b"\0" * ((2 << 20) - 10)


def test_sparse_file_reads_zeros_and_stores_nothing(d: Path) -> None:
    p = d / "sparse"
    with open(p, "wb") as f:
        f.seek(100 << 20)
        f.write(b"end")
    st = p.stat()
    assert st.st_size == (100 << 20) + 3
    assert st.st_blocks * 512 <= 2 << 20  # one block of data, not 100 MiB
    with open(p, "rb") as f:
        assert f.read(4096) == b"\0" * 4096
        f.seek(50 << 20)
        assert f.read(1 << 20) == b"\0" * (1 << 20)
        f.seek(100 << 20)
        assert f.read() == b"end"


def test_writing_into_a_hole_counts_the_blocks(d: Path) -> None:
    """A write inside the file's size (here after a truncate that made it 64 MiB of hole)
    stores data: st_blocks grows although st_size does not."""
    p = d / "hole"
    with open(p, "wb") as f:
        f.truncate(64 << 20)
    assert p.stat().st_blocks == 0
    with open(p, "r+b") as f:
        f.seek(32 << 20)
        f.write(os.urandom(1 << 20))
    st = p.stat()
    assert st.st_size == 64 << 20
    assert 1 << 20 <= st.st_blocks * 512 <= 4 << 20


def test_file_larger_than_4_gib(d: Path) -> None:
    p = d / "big"
    offset = (5 << 30) + 12345
    with open(p, "wb") as f:
        f.write(b"head")
        f.seek(offset)
        f.write(b"tail" * 1000)
    assert p.stat().st_size == offset + 4000
    with open(p, "rb") as f:
        f.seek(offset - 2)
        assert f.read(6) == b"\0\0tail"
        assert f.read(4) == b"tail"
    os.truncate(p, (4 << 30) + 1)
    assert p.stat().st_size == (4 << 30) + 1


def test_unlinked_open_file_stays_readable(d: Path) -> None:
    p = d / "gone"
    p.write_bytes(b"still here")
    fd = os.open(p, os.O_RDWR)
    p.unlink()
    assert not p.exists()
    os.lseek(fd, 0, 0)
    assert os.read(fd, 100) == b"still here"
    os.write(fd, b"!")
    assert os.fstat(fd).st_nlink == 0
    os.close(fd)
    assert os.listdir(d) == []


def test_mmap_shared_write(d: Path) -> None:
    p = d / "m"
    p.write_bytes(b"\0" * 8192)
    with open(p, "r+b") as f, mmap.mmap(f.fileno(), 8192) as m:
        m[100:105] = b"mmap!"
        m.flush()
    assert p.read_bytes()[100:105] == b"mmap!"


def test_fsync_fdatasync_and_fsyncdir(d: Path) -> None:
    p = d / "durable"
    fd = os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"x" * 5000)
    os.fsync(fd)
    os.fdatasync(fd)
    os.close(fd)
    dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.fsync(dfd)
    os.close(dfd)


# -- attributes -------------------------------------------------------------------------


def test_chmod_chown_and_nanosecond_times(d: Path) -> None:
    p = d / "a"
    p.write_bytes(b"x")
    os.chmod(p, 0o4751)
    assert stat.S_IMODE(p.stat().st_mode) == 0o4751
    os.chown(p, 1234, 5678)
    st = p.stat()
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    # chown clears setuid, even for root, as Linux does.
    assert stat.S_IMODE(st.st_mode) == 0o751
    os.utime(p, ns=(1_234_567_890_123_456_789, 987_654_321_987_654_321))
    st = p.stat()
    assert st.st_atime_ns == 1_234_567_890_123_456_789
    assert st.st_mtime_ns == 987_654_321_987_654_321


def test_utime_now_and_omit(d: Path) -> None:
    p = d / "a"
    p.write_bytes(b"x")
    os.utime(p, ns=(1_000_000_000_000_000_001, 2_000_000_000_000_000_002))
    # UTIME_OMIT for atime, UTIME_NOW for mtime, via utimensat.
    utime_now, utime_omit = (1 << 30) - 1, (1 << 30) - 2

    class Timespec(ctypes.Structure):
        _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]

    times = (Timespec * 2)(Timespec(0, utime_omit), Timespec(0, utime_now))
    assert libc.utimensat(AT_FDCWD, bytes(p), times, 0) == 0
    st = p.stat()
    assert st.st_atime_ns == 1_000_000_000_000_000_001
    assert st.st_mtime_ns > 2_000_000_000_000_000_002 or st.st_mtime_ns > 1_600_000_000 * 10**9


def test_ctime_moves_on_metadata_change(d: Path) -> None:
    p = d / "a"
    p.write_bytes(b"x")
    os.utime(p, ns=(0, 0))
    before = p.stat().st_ctime_ns
    os.chmod(p, 0o600)
    assert p.stat().st_ctime_ns >= before


# -- directories ------------------------------------------------------------------------


def test_mkdir_rmdir_and_errors(d: Path) -> None:
    sub = d / "sub"
    sub.mkdir(mode=0o750)
    assert stat.S_IMODE(sub.stat().st_mode) == 0o750
    assert d.stat().st_nlink == 3
    with pytest.raises(FileExistsError):
        sub.mkdir()
    (sub / "x").write_bytes(b"")
    with pytest.raises(OSError) as e:
        sub.rmdir()
    assert e.value.errno == errno.ENOTEMPTY
    with pytest.raises(NotADirectoryError):
        (sub / "x").rmdir()
    (sub / "x").unlink()
    sub.rmdir()
    assert d.stat().st_nlink == 2
    with pytest.raises(FileNotFoundError):
        sub.rmdir()
    with pytest.raises(IsADirectoryError):
        os.unlink(d)


def test_readdir_lists_dots_and_entries(d: Path) -> None:
    names = {f"n{i}" for i in range(600)}
    for n in names:
        (d / n).write_bytes(b"")
    assert set(os.listdir(d)) == names
    out = subprocess.run(["ls", "-fa", str(d)], capture_output=True, text=True, check=True)
    listed = out.stdout.split()
    assert listed.count(".") == 1 and listed.count("..") == 1
    assert set(listed) - {".", ".."} == names


def test_readdir_positions_stay_valid_while_directory_changes(d: Path) -> None:
    keep = {f"keep{i:04d}" for i in range(1000)}
    doomed = [f"doom{i:04d}" for i in range(1000)]
    for n in sorted(keep) + doomed:
        (d / n).write_bytes(b"")
    libc.opendir.restype = ctypes.c_void_p
    libc.readdir.restype = ctypes.c_void_p
    libc.readdir.argtypes = [ctypes.c_void_p]
    libc.closedir.argtypes = [ctypes.c_void_p]
    libc.telldir.argtypes = [ctypes.c_void_p]
    libc.telldir.restype = ctypes.c_long
    libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
    name_offset = 19  # struct dirent64: d_ino(8) d_off(8) d_reclen(2) d_type(1) d_name

    def entry_name(ptr: int) -> str:
        return ctypes.string_at(ptr + name_offset).decode()

    dirp = libc.opendir(bytes(d))
    assert dirp
    seen: list[str] = []
    try:
        for _ in range(300):
            seen.append(entry_name(libc.readdir(dirp)))
        pos = libc.telldir(dirp)
        # Change the directory under the open stream, then continue from a saved position.
        for n in doomed:
            os.unlink(d / n)
        for i in range(500):
            (d / f"new{i:04d}").write_bytes(b"")
        libc.seekdir(dirp, pos)
        while True:
            ptr = libc.readdir(dirp)
            if not ptr:
                break
            seen.append(entry_name(ptr))
    finally:
        libc.closedir(dirp)
    kept_seen = [n for n in seen if n.startswith("keep")]
    assert sorted(kept_seen) == sorted(keep), "every surviving entry exactly once"


def test_directory_of_100000_entries(d: Path) -> None:
    big = d / "big"
    big.mkdir()
    target = big / "target"
    target.write_bytes(b"")
    # Hard links: the cheapest way to make an entry through the kernel.
    for i in range(100_000):
        os.link(target, big / f"entry-{i:06d}")
    assert target.stat().st_nlink == 100_001
    names = os.listdir(big)
    assert len(names) == 100_001 and len(set(names)) == 100_001
    assert (big / "entry-099999").exists() and (big / "entry-050000").stat().st_nlink == 100_001


def test_setgid_directory_and_sticky_directory(d: Path) -> None:
    sg = d / "sg"
    sg.mkdir()
    os.chown(sg, 0, 4321)
    os.chmod(sg, 0o2775)
    (sg / "f").write_bytes(b"")
    (sg / "sub").mkdir()
    assert (sg / "f").stat().st_gid == 4321
    assert (sg / "sub").stat().st_gid == 4321
    assert (sg / "sub").stat().st_mode & stat.S_ISGID

    sticky = d / "sticky"
    sticky.mkdir()
    os.chmod(sticky, 0o1777)
    os.chmod(d, 0o755)
    victim = sticky / "rootfile"
    victim.write_bytes(b"")
    os.chmod(victim, 0o666)
    r = as_user(NOBODY, NOBODY, "import os,sys; os.unlink(sys.argv[1])", str(victim))
    assert "PermissionError" in r.stderr
    assert victim.exists()
    r = as_user(
        NOBODY, NOBODY, "import os,sys; open(sys.argv[1],'w').write('x'); os.unlink(sys.argv[1])",
        str(sticky / "own"),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr


def test_permissions_are_enforced(d: Path) -> None:
    os.chmod(d, 0o755)
    secret = d / "secret"
    secret.write_bytes(b"s")
    os.chmod(secret, 0o600)
    r = as_user(NOBODY, NOBODY, "import sys; open(sys.argv[1]).read()", str(secret))
    assert "PermissionError" in r.stderr
    os.chmod(secret, 0o644)
    r = as_user(NOBODY, NOBODY, "import sys; print(open(sys.argv[1]).read())", str(secret))
    assert r.stdout.strip() == "s"
    r = as_user(NOBODY, NOBODY, "import sys; open(sys.argv[1], 'a')", str(secret))
    assert "PermissionError" in r.stderr


def test_write_by_non_owner_clears_setuid(d: Path) -> None:
    os.chmod(d, 0o777)
    p = d / "suid"
    p.write_bytes(b"#!/bin/sh\n")
    os.chmod(p, 0o6777)
    r = as_user(NOBODY, NOBODY, "import sys; open(sys.argv[1], 'a').write('x')", str(p))
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(p.stat().st_mode) == 0o0777
    # Root keeps them (CAP_FSETID).
    os.chmod(p, 0o6755)
    with open(p, "a") as f:
        f.write("y")
    assert stat.S_IMODE(p.stat().st_mode) == 0o6755


# -- links and renames ------------------------------------------------------------------


def test_hard_links_and_counts(d: Path) -> None:
    a = d / "a"
    a.write_bytes(b"data")
    os.link(a, d / "b")
    os.mkdir(d / "sub")
    os.link(a, d / "sub" / "c")
    assert a.stat().st_nlink == 3
    assert (d / "sub" / "c").stat().st_ino == a.stat().st_ino
    (d / "b").unlink()
    assert a.stat().st_nlink == 2
    with pytest.raises(PermissionError):
        os.link(d / "sub", d / "sublink")
    with pytest.raises(FileExistsError):
        os.link(a, d / "sub" / "c")


def test_symlinks(d: Path) -> None:
    target = "x" * 1000 + "/../\xe9t\xe9"
    (d / "s").symlink_to(target)
    assert os.readlink(d / "s") == target
    st = os.lstat(d / "s")
    assert stat.S_ISLNK(st.st_mode) and st.st_size == len(target.encode())
    (d / "real").write_bytes(b"r")
    (d / "rel").symlink_to("real")
    assert (d / "rel").read_bytes() == b"r"


def test_rename_variants(d: Path) -> None:
    (d / "a").write_bytes(b"A")
    (d / "b").write_bytes(b"B")
    os.rename(d / "a", d / "b")
    assert (d / "b").read_bytes() == b"A" and not (d / "a").exists()

    (d / "dir1").mkdir()
    (d / "dir2").mkdir()
    (d / "dir1" / "inner").write_bytes(b"i")
    os.rename(d / "dir1", d / "dir2")  # over an empty directory
    assert (d / "dir2" / "inner").read_bytes() == b"i"
    (d / "full").mkdir()
    (d / "full" / "x").write_bytes(b"")
    with pytest.raises(OSError) as e:
        os.rename(d / "dir2", d / "full")
    assert e.value.errno == errno.ENOTEMPTY
    with pytest.raises(NotADirectoryError):
        os.rename(d / "dir2", d / "b")
    with pytest.raises(IsADirectoryError):
        os.rename(d / "b", d / "full")
    with pytest.raises(OSError) as e:
        os.rename(d / "dir2", d / "dir2" / "inside")
    assert e.value.errno == errno.EINVAL

    # Moving a directory moves its parent link: link counts follow.
    (d / "p1").mkdir()
    (d / "p2").mkdir()
    (d / "p1" / "child").mkdir()
    os.rename(d / "p1" / "child", d / "p2" / "child")
    assert (d / "p1").stat().st_nlink == 2 and (d / "p2").stat().st_nlink == 3
    assert os.stat(d / "p2" / "child" / "..").st_ino == (d / "p2").stat().st_ino

    # Two names of one inode: rename does nothing.
    os.link(d / "b", d / "b2")
    os.rename(d / "b", d / "b2")
    assert (d / "b").exists() and (d / "b2").exists()


def test_rename_noreplace_and_exchange(d: Path) -> None:
    (d / "f").write_bytes(b"file")
    (d / "g").write_bytes(b"other")
    with pytest.raises(FileExistsError):
        renameat2(d / "f", d / "g", RENAME_NOREPLACE)
    renameat2(d / "f", d / "h", RENAME_NOREPLACE)
    assert (d / "h").read_bytes() == b"file"

    (d / "x").mkdir()
    (d / "x" / "deep").mkdir()
    (d / "x" / "deep" / "leaf").write_bytes(b"leaf")
    renameat2(d / "h", d / "x" / "deep", RENAME_EXCHANGE)
    assert (d / "h" / "leaf").read_bytes() == b"leaf"
    assert (d / "x" / "deep").read_bytes() == b"file"
    assert (d / "x").stat().st_nlink == 2  # its subdirectory moved out
    assert d.stat().st_nlink == 4  # "x", "h" and the dots
    assert os.stat(d / "h" / "..").st_ino == d.stat().st_ino
    with pytest.raises(FileNotFoundError):
        renameat2(d / "h", d / "missing", RENAME_EXCHANGE)


# -- special files ----------------------------------------------------------------------


def test_fifo_socket_and_device_nodes(d: Path) -> None:
    os.mkfifo(d / "fifo", 0o640)
    assert stat.S_ISFIFO((d / "fifo").stat().st_mode)
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(d / "sock"))
    s.close()
    assert stat.S_ISSOCK((d / "sock").lstat().st_mode)
    os.mknod(d / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(d / "blk", 0o600 | stat.S_IFBLK, os.makedev(7, 0))
    st = (d / "null").stat()
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == 3
    assert stat.S_ISBLK((d / "blk").stat().st_mode)
    r = as_user(
        NOBODY, NOBODY, "import os,sys,stat; os.mknod(sys.argv[1], 0o600|stat.S_IFCHR, 259)",
        str(d / "nope"),
    )  # fmt: skip
    assert "PermissionError" in r.stderr


# -- names ------------------------------------------------------------------------------


def test_names_of_any_bytes_up_to_255(d: Path) -> None:
    longest = b"n" * 255
    odd = bytes(range(1, 256)).replace(b"/", b"")[:200]
    for name in (longest, odd, "\u00e9\u4e2d".encode(), b"\xff\xfe invalid utf8"):
        p = os.path.join(bytes(d), name)
        with open(p, "wb") as f:
            f.write(name)
        with open(p, "rb") as f:
            assert f.read() == name
    assert set(os.listdir(bytes(d))) >= {longest, odd}
    with pytest.raises(OSError) as e:
        os.open(os.path.join(bytes(d), b"n" * 256), os.O_CREAT | os.O_WRONLY)
    assert e.value.errno == errno.ENAMETOOLONG


# -- extended attributes ----------------------------------------------------------------


def test_xattrs_in_every_namespace(d: Path) -> None:
    p = d / "x"
    p.write_bytes(b"")
    for name, value in (
        ("user.plain", b"v"),
        ("user.empty", b""),
        ("trusted.t", b"\0binary\xff"),
        ("security.s", b"sec"),
        ("user." + "k" * 250, b"long name"),
    ):
        os.setxattr(p, name, value)
        assert os.getxattr(p, name) == value
    assert set(os.listxattr(p)) >= {"user.plain", "user.empty", "trusted.t", "security.s"}
    os.removexattr(p, "user.plain")
    with pytest.raises(OSError) as e:
        os.getxattr(p, "user.plain")
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.removexattr(p, "user.plain")
    assert e.value.errno == errno.ENODATA
    # Symlinks and directories carry trusted xattrs too (user.* on symlinks is refused by Linux).
    (d / "l").symlink_to("x")
    os.setxattr(d / "l", "trusted.l", b"1", follow_symlinks=False)
    assert os.getxattr(d / "l", "trusted.l", follow_symlinks=False) == b"1"


def test_xattr_flags_and_size_errors(d: Path) -> None:
    p = d / "x"
    p.write_bytes(b"")
    os.setxattr(p, "user.a", b"1", os.XATTR_CREATE)
    with pytest.raises(FileExistsError):
        os.setxattr(p, "user.a", b"2", os.XATTR_CREATE)
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user.b", b"2", os.XATTR_REPLACE)
    assert e.value.errno == errno.ENODATA
    os.setxattr(p, "user.a", b"3", os.XATTR_REPLACE)
    assert os.getxattr(p, "user.a") == b"3"

    os.setxattr(p, "user.big", b"v" * 100)
    with pytest.raises(OSError) as e:
        getxattr_sized(p, b"user.big", 10)
    assert e.value.errno == errno.ERANGE
    assert getxattr_sized(p, b"user.big", 0) == 100  # size query
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user.huge", b"v" * 65537)
    assert e.value.errno == errno.E2BIG
    os.setxattr(p, "user.max", b"m" * 65536)
    assert len(os.getxattr(p, "user.max")) == 65536
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user." + "n" * 251, b"")
    assert e.value.errno == errno.ERANGE


def test_posix_acls(d: Path) -> None:
    p = d / "acl"
    p.write_bytes(b"")
    os.chmod(p, 0o640)
    subprocess.run(["setfacl", "-m", "u:1234:rw,g:42:r", str(p)], check=True)
    out = subprocess.run(["getfacl", "-n", str(p)], capture_output=True, text=True, check=True)
    assert "user:1234:rw-" in out.stdout and "group:42:r--" in out.stdout
    assert "mask::rw-" in out.stdout
    os.chmod(p, 0o600)  # the group bits are the mask now
    out = subprocess.run(["getfacl", "-n", str(p)], capture_output=True, text=True, check=True)
    assert "mask::---" in out.stdout
    # A user named in the ACL gets in although the mode alone would refuse.
    subprocess.run(["setfacl", "-m", f"u:{NOBODY}:r,m::r", str(p)], check=True)
    os.chmod(d, 0o755)
    p.write_bytes(b"acl works")
    r = as_user(NOBODY, NOBODY, "import sys; print(open(sys.argv[1]).read())", str(p))
    assert r.stdout.strip() == "acl works", r.stderr

    # Default ACLs are inherited by new files and directories.
    sub = d / "inherit"
    sub.mkdir()
    subprocess.run(["setfacl", "-d", "-m", "u:777:rwx", str(sub)], check=True)
    (sub / "child").mkdir()
    (sub / "file").write_bytes(b"")
    for child in ("child", "file"):
        out = subprocess.run(
            ["getfacl", "-n", str(sub / child)], capture_output=True, text=True, check=True
        )
        assert "user:777:rwx" in out.stdout
    out = subprocess.run(
        ["getfacl", "-n", "-d", str(sub / "child")], capture_output=True, text=True, check=True
    )
    assert "user:777:rwx" in out.stdout


# -- the filesystem as a whole ----------------------------------------------------------


def test_statfs_reports_the_cache_disk(mounted: FsUnderTest) -> None:
    ours = os.statvfs(mounted.mnt)
    disk = os.statvfs(mounted.dir)
    assert ours.f_namemax == 255
    ours_total = ours.f_blocks * ours.f_frsize
    disk_total = disk.f_blocks * disk.f_frsize
    assert ours_total <= disk_total * 1.01
    assert abs(ours.f_bavail * ours.f_frsize - disk.f_bavail * disk.f_frsize) < 1 << 30
    assert ours.f_files > 0


def test_a_second_mount_of_the_same_directory_is_refused(
    mounted: FsUnderTest, tmp_path: Path
) -> None:
    from fsmount import command

    other = tmp_path / "other"
    other.mkdir()
    r = command("mount.walrusfs", str(mounted.dir), str(other), check=False)
    assert r.returncode != 0
    assert "in use by another mount" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
