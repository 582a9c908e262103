"""Random sequences of file operations on the mount and on a plain directory, side by side.

Every operation must succeed on both or fail on both with the same errno, and after every
step both trees must hold the same names, types, contents, sizes, modes, link counts,
symlink targets and extended attributes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import itertools
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fsmount import FsUnderTest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)

NAMES = ["a", "b", "c", "d"]
PATHS = NAMES + [f"{d}/{n}" for d in NAMES for n in NAMES]
data = st.binary(max_size=3000) | st.builds(
    lambda n, b: b * n, st.integers(0, 300_000), st.binary(min_size=1, max_size=3)
)
offsets = st.sampled_from([0, 1, 100, 4095, 4096, 65535, 65536, 262144, 262145, 1 << 20])
sizes = st.sampled_from([0, 1, 10, 4096, 70000, 262144, 262145, 2 << 20])
modes = st.sampled_from([0o644, 0o600, 0o755, 0o4755, 0o2750, 0o1777, 0o000])
xnames = st.sampled_from(["user.x", "user.y", "trusted.z"])


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    try:
        return ("ok", fn())
    except OSError as exc:
        return ("err", errno.errorcode.get(exc.errno or 0, exc.errno))


def renameat2(old: str, new: str, flags: int) -> None:
    if libc.renameat2(-100, old.encode(), -100, new.encode(), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def snapshot(root: Path) -> dict[str, tuple]:
    """Everything we compare about a tree, keyed by relative path."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in itertools.chain(dirnames, filenames):
            p = os.path.join(dirpath, name)
            rel = os.path.relpath(p, root)
            s = os.lstat(p)
            kind = stat.S_IFMT(s.st_mode)
            xattrs = tuple(
                sorted((n, os.getxattr(p, n, follow_symlinks=False))
                       for n in os.listxattr(p, follow_symlinks=False))
            ) if not stat.S_ISLNK(s.st_mode) else ()  # fmt: skip
            if stat.S_ISREG(s.st_mode):
                with open(p, "rb") as f:
                    content: Any = f.read()
            elif stat.S_ISLNK(s.st_mode):
                content = os.readlink(p)
            else:
                content = None
            size = s.st_size if not stat.S_ISDIR(s.st_mode) else None
            out[rel] = (kind, stat.S_IMODE(s.st_mode), s.st_nlink, size, content, xattrs)
    return out


class SideBySide(RuleBasedStateMachine):
    mount_root: Path
    plain_root: Path
    counter = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        n = next(self.counter)
        self.m = self.mount_root / f"ex{n}"
        self.p = self.plain_root / f"ex{n}"
        self.m.mkdir()
        self.p.mkdir()

    @initialize()
    def start(self) -> None:
        for root in (self.m, self.p):
            (root / "a").mkdir()
            (root / "b").write_bytes(b"b" * 5000)
            (root / "a" / "c").write_bytes(b"")

    def existing(self) -> list[str]:
        return sorted(snapshot(self.p))

    def pick(self, draw: st.DataObject, label: str) -> str:
        """A path: usually one that exists now, sometimes any name of the small universe,
        so that operations mostly succeed but every error path is also visited."""
        present = self.existing()
        if present and draw.draw(st.integers(0, 9), label=f"{label} kind") < 7:
            return draw.draw(st.sampled_from(present), label=label)
        return draw.draw(st.sampled_from(PATHS), label=label)

    def fresh(self, draw: st.DataObject, label: str) -> str:
        """Usually a name in a directory that exists now (likely free), sometimes any."""
        dirs = [""] + [p for p, v in snapshot(self.p).items() if stat.S_ISDIR(v[0])]
        if draw.draw(st.integers(0, 9), label=f"{label} kind") < 7:
            parent = draw.draw(st.sampled_from(dirs), label=f"{label} dir")
            name = draw.draw(st.sampled_from(NAMES), label=f"{label} name")
            return os.path.join(parent, name) if parent else name
        return draw.draw(st.sampled_from(PATHS), label=label)

    def both(self, fn: Callable[[Path], Any]) -> None:
        got_m = outcome(lambda: fn(self.m))
        got_p = outcome(lambda: fn(self.p))
        assert got_m == got_p, f"walrusfs {got_m} != plain {got_p}"

    @rule(d=st.data(), offset=offsets, payload=data, how=st.sampled_from(["w", "r+", "a"]))
    def write(self, d: st.DataObject, offset: int, payload: bytes, how: str) -> None:
        path = (
            self.pick(d, "path")
            if d.draw(st.booleans(), label="existing")
            else self.fresh(d, "path")
        )

        def op(root: Path) -> int:
            flags = {"w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                     "r+": os.O_RDWR, "a": os.O_WRONLY | os.O_APPEND | os.O_CREAT}[how]  # fmt: skip
            fd = os.open(root / path, flags, 0o644)
            try:
                if how == "a":
                    return os.write(fd, payload)
                return os.pwrite(fd, payload, offset)
            finally:
                os.close(fd)

        self.both(op)

    @rule(d=st.data(), size=sizes)
    def truncate(self, d: st.DataObject, size: int) -> None:
        path = self.pick(d, "path")
        self.both(lambda r: os.truncate(r / path, size))

    @rule(d=st.data(), offset=offsets)
    def read(self, d: st.DataObject, offset: int) -> None:
        path = self.pick(d, "path")

        def op(root: Path) -> bytes:
            fd = os.open(root / path, os.O_RDONLY)
            try:
                return os.pread(fd, 70000, offset)
            finally:
                os.close(fd)

        self.both(op)

    @rule(d=st.data(), mode=st.sampled_from([0o755, 0o700, 0o2775]))
    def mkdir(self, d: st.DataObject, mode: int) -> None:
        path = self.fresh(d, "path")
        self.both(lambda r: os.mkdir(r / path, mode))

    @rule(d=st.data())
    def rmdir(self, d: st.DataObject) -> None:
        path = self.pick(d, "path")
        self.both(lambda r: os.rmdir(r / path))

    @rule(d=st.data())
    def unlink(self, d: st.DataObject) -> None:
        path = self.pick(d, "path")
        self.both(lambda r: os.unlink(r / path))

    @rule(d=st.data(), flags=st.sampled_from([0, 0, 1, 2]))
    def rename(self, d: st.DataObject, flags: int) -> None:
        src = self.pick(d, "src")
        dst = (
            self.pick(d, "dst")
            if d.draw(st.booleans(), label="onto existing")
            else self.fresh(d, "dst")
        )
        self.both(lambda r: renameat2(str(r / src), str(r / dst), flags))

    @rule(d=st.data())
    def link(self, d: st.DataObject) -> None:
        src, dst = self.pick(d, "src"), self.fresh(d, "dst")
        self.both(lambda r: os.link(r / src, r / dst, follow_symlinks=False))

    @rule(d=st.data(), dest=st.sampled_from(["a", "../b", "/nonexistent", "c/a"]))
    def symlink(self, d: st.DataObject, dest: str) -> None:
        path = self.fresh(d, "path")
        self.both(lambda r: os.symlink(dest, r / path))

    @rule(d=st.data(), mode=modes)
    def chmod(self, d: st.DataObject, mode: int) -> None:
        path = self.pick(d, "path")
        self.both(lambda r: os.chmod(r / path, mode, follow_symlinks=False)
                  if not os.path.islink(r / path) else None)  # fmt: skip

    @rule(d=st.data(), uid=st.sampled_from([0, 1000]), gid=st.sampled_from([0, 1000]))
    def chown(self, d: st.DataObject, uid: int, gid: int) -> None:
        path = self.pick(d, "path")
        self.both(lambda r: os.chown(r / path, uid, gid, follow_symlinks=False))

    @rule(d=st.data(), name=xnames, value=st.binary(max_size=100),
          flags=st.sampled_from([0, os.XATTR_CREATE, os.XATTR_REPLACE]))  # fmt: skip
    def setxattr(self, d: st.DataObject, name: str, value: bytes, flags: int) -> None:
        path = self.pick(d, "path")
        self.both(lambda r: os.setxattr(r / path, name, value, flags, follow_symlinks=False)
                  if not os.path.islink(r / path) else None)  # fmt: skip

    @rule(d=st.data(), name=xnames)
    def removexattr(self, d: st.DataObject, name: str) -> None:
        path = self.pick(d, "path")
        self.both(lambda r: os.removexattr(r / path, name, follow_symlinks=False)
                  if not os.path.islink(r / path) else None)  # fmt: skip

    @invariant()
    def trees_match(self) -> None:
        assert snapshot(self.m) == snapshot(self.p)


@pytest.fixture
def roots(fs: FsUnderTest, tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    plain = tmp_path / "plain"
    plain.mkdir()
    yield fs.mnt, plain
    shutil.rmtree(plain, ignore_errors=True)


def test_random_operations_match_a_plain_directory(roots: tuple[Path, Path]) -> None:
    SideBySide.mount_root, SideBySide.plain_root = roots
    run_state_machine_as_test(
        SideBySide,
        settings=settings(
            max_examples=150,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=False,
        ),
    )
