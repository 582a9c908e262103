"""POSIX ACLs in their extended-attribute form, as the kernel hands them to a FUSE daemon.

With FUSE_POSIX_ACL the kernel enforces ACLs itself but leaves three duties to the
filesystem: keep the mode in sync when an access ACL is set, keep the access ACL in sync when
the mode changes, and give new files and directories the default ACL of their parent.

The value is `struct posix_acl_xattr_header { le32 a_version = 2; }` followed by entries
`{ le16 e_tag; le16 e_perm; le32 e_id; }`.
"""

from __future__ import annotations

import errno
import stat
import struct

from walrusfs.meta.errors import FsError

ACCESS = b"system.posix_acl_access"
DEFAULT = b"system.posix_acl_default"

VERSION = 2
USER_OBJ = 0x01
USER = 0x02
GROUP_OBJ = 0x04
GROUP = 0x08
MASK = 0x10
OTHER = 0x20

_HEADER = struct.Struct("<I")
_ENTRY = struct.Struct("<HHI")

Entry = tuple[int, int, int]  # (tag, perm, id)


def parse(value: bytes) -> list[Entry]:
    if len(value) < _HEADER.size or (len(value) - _HEADER.size) % _ENTRY.size:
        raise FsError(errno.EINVAL)
    (version,) = _HEADER.unpack_from(value)
    if version != VERSION:
        raise FsError(errno.EOPNOTSUPP)
    entries = [
        _ENTRY.unpack_from(value, off) for off in range(_HEADER.size, len(value), _ENTRY.size)
    ]
    tags = [t for t, _, _ in entries]
    for required in (USER_OBJ, GROUP_OBJ, OTHER):
        if tags.count(required) != 1:
            raise FsError(errno.EINVAL)
    if tags.count(MASK) > 1 or ((USER in tags or GROUP in tags) and MASK not in tags):
        raise FsError(errno.EINVAL)
    if any(t not in (USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER) for t in tags):
        raise FsError(errno.EINVAL)
    if any(p & ~7 for _, p, _ in entries):
        raise FsError(errno.EINVAL)
    return entries


def serialize(entries: list[Entry]) -> bytes:
    return _HEADER.pack(VERSION) + b"".join(_ENTRY.pack(*e) for e in entries)


def is_minimal(entries: list[Entry]) -> bool:
    """An ACL with only owner, group and other says no more than the mode does."""
    return all(t in (USER_OBJ, GROUP_OBJ, OTHER) for t, _, _ in entries)


def _perm(entries: list[Entry], tag: int) -> int | None:
    for t, p, _ in entries:
        if t == tag:
            return p
    return None


def mode_from_acl(entries: list[Entry], mode: int) -> int:
    """The mode an access ACL implies: owner, mask (or group) and other permissions."""
    user = _perm(entries, USER_OBJ) or 0
    group = _perm(entries, MASK)
    if group is None:
        group = _perm(entries, GROUP_OBJ) or 0
    other = _perm(entries, OTHER) or 0
    return (mode & ~0o777) | (user << 6) | (group << 3) | other


def chmod(entries: list[Entry], mode: int) -> list[Entry]:
    """The access ACL after a chmod: the mode's bits replace owner, mask (or group), other."""
    has_mask = any(t == MASK for t, _, _ in entries)
    out: list[Entry] = []
    for t, p, i in entries:
        if t == USER_OBJ:
            p = (mode >> 6) & 7
        elif t == MASK or (t == GROUP_OBJ and not has_mask):
            p = (mode >> 3) & 7
        elif t == OTHER:
            p = mode & 7
        out.append((t, p, i))
    return out


def inherit(default: list[Entry], mode: int) -> tuple[int, list[Entry] | None]:
    """A new inode's mode and access ACL from its parent's default ACL (posix_acl_create).

    The requested mode masks the ACL's owner, mask (or group) and other entries; the result's
    permission bits become the mode. Returns None for the ACL when it says no more than the
    mode.
    """
    has_mask = any(t == MASK for t, _, _ in default)
    out: list[Entry] = []
    new_mode = mode & ~0o777
    for t, p, i in default:
        if t == USER_OBJ:
            p &= (mode >> 6) & 7
            new_mode |= p << 6
        elif t == MASK or (t == GROUP_OBJ and not has_mask):
            p &= (mode >> 3) & 7
            new_mode |= p << 3
        elif t == OTHER:
            p &= mode & 7
            new_mode |= p
        out.append((t, p, i))
    return new_mode, (None if is_minimal(out) else out)


def applies_to(mode: int, name: bytes) -> None:
    """Refuse a default ACL on anything but a directory, as Linux does."""
    if name == DEFAULT and not stat.S_ISDIR(mode):
        raise FsError(errno.EACCES)
