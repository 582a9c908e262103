"""Source trees for round-trip tests: a real tree, and one with every special case."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sysconfig
from pathlib import Path


def real_tree() -> Path:
    """The interpreter's standard library: thousands of real files, links and all."""
    return Path(sysconfig.get_paths()["stdlib"])


def real_tree_excludes() -> list[str]:
    # Installed packages come and go between runs; the standard library itself does not.
    return ["--exclude=/site-packages/"]


def make_special_tree(root: Path) -> Path:
    """Everything rsync -aHAXS and tar must carry, in one small tree."""
    root.mkdir(parents=True)
    # Hard links, also across directories.
    (root / "hl").mkdir()
    (root / "hl" / "a").write_bytes(b"hard linked\n" * 100)
    os.link(root / "hl" / "a", root / "hl" / "b")
    (root / "hl" / "sub").mkdir()
    os.link(root / "hl" / "a", root / "hl" / "sub" / "c")
    # Symlinks: relative, absolute, dangling, to a directory.
    (root / "links").mkdir()
    (root / "links" / "rel").symlink_to("../hl/a")
    (root / "links" / "abs").symlink_to("/etc/hostname")
    (root / "links" / "dangling").symlink_to("nowhere/at/all")
    (root / "links" / "dir").symlink_to("../hl")
    # Extended attributes in several namespaces, on files, directories and symlinks.
    (root / "xattr").mkdir()
    f = root / "xattr" / "file"
    f.write_bytes(b"with xattrs")
    os.setxattr(f, "user.comment", b"hello")
    os.setxattr(f, "user.binary", bytes(range(256)))
    os.setxattr(f, "trusted.secret", b"root only")
    os.setxattr(root / "xattr", "user.dir", b"on a directory")
    (root / "xattr" / "link").symlink_to("file")
    os.setxattr(root / "xattr" / "link", "trusted.onlink", b"1", follow_symlinks=False)
    # POSIX ACLs, access and default.
    (root / "acl").mkdir()
    (root / "acl" / "f").write_bytes(b"acl")
    subprocess.run(["setfacl", "-m", "u:1001:rw,g:1002:r", str(root / "acl" / "f")], check=True)
    subprocess.run(["setfacl", "-d", "-m", "u:1001:rwx", str(root / "acl")], check=True)
    # Sparse files: holes at the start, middle and end.
    (root / "sparse").mkdir()
    with open(root / "sparse" / "holes", "wb") as fh:
        fh.seek(3 << 20)
        fh.write(b"middle" * 1000)
        fh.seek(20 << 20)
        fh.write(b"late")
        fh.truncate(40 << 20)
    with open(root / "sparse" / "allhole", "wb") as fh:
        fh.truncate(10 << 20)
    # Special files.
    (root / "special").mkdir()
    os.mkfifo(root / "special" / "fifo")
    os.mknod(root / "special" / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(root / "special" / "loop", 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(root / "special" / "sock"))
    s.close()
    # Modes and owners.
    (root / "modes").mkdir()
    for name, mode in (("suid", 0o4755), ("sgid", 0o2755), ("none", 0o000), ("odd", 0o1643)):
        p = root / "modes" / name
        p.write_bytes(name.encode())
        p.chmod(mode)
    (root / "modes" / "sticky").mkdir()
    (root / "modes" / "sticky").chmod(0o1777)
    (root / "modes" / "sgiddir").mkdir()
    (root / "modes" / "sgiddir").chmod(0o2775)
    other = root / "modes" / "owned"
    other.write_bytes(b"owned by someone else")
    os.chown(other, 4242, 4343)
    os.lchown(root / "links" / "rel", 4242, 4343)
    # Names.
    (root / "names").mkdir()
    for name in (b"n" * 255, b"sp ace", b"\xff\xfe not utf8", "\u00e9t\u00e9 \u4e2d".encode(),
                 b"-dash", b"new\nline", b"*?[glob]"):  # fmt: skip
        with open(os.path.join(bytes(root / "names"), name), "wb") as fh:
            fh.write(name)
    # Empty things and precise times.
    (root / "empty-dir").mkdir()
    (root / "empty-file").write_bytes(b"")
    os.utime(root / "empty-file", ns=(1_500_000_000_123_456_789, 1_400_000_000_987_654_321))
    os.utime(root / "hl" / "a", ns=(1_600_000_000_000_000_001, 1_600_000_000_000_000_001))
    return root
