"""What the kernel says is mounted, read from /proc/self/mountinfo without touching a mount.

Stat-ing a FUSE mount point sends a request to its daemon, which may be ourselves before our
loop runs, or a dead daemon; mountinfo answers without either.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

FSTYPE = "fuse.walrusfs"


@dataclass(frozen=True)
class Mount:
    mountpoint: str
    source: str
    fstype: str
    major: int
    minor: int
    options: str


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts() -> list[Mount]:
    result = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split()
            sep = fields.index("-")
            major, minor = (int(x) for x in fields[2].split(":"))
            result.append(
                Mount(
                    mountpoint=_unescape(fields[4]),
                    source=_unescape(fields[sep + 2]),
                    fstype=fields[sep + 1],
                    major=major,
                    minor=minor,
                    options=fields[5],
                )
            )
    return result


def find(mountpoint: str) -> Mount | None:
    """The mount at `mountpoint` (the topmost, if several are stacked)."""
    path = os.path.abspath(mountpoint)
    found = None
    for m in mounts():
        if m.mountpoint == path:
            found = m
    return found


def walrusfs_mounts() -> list[Mount]:
    return [m for m in mounts() if m.fstype == FSTYPE]
