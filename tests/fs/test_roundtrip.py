"""Real tools against a real mount: rsync -aHAXS and tar, across unmount and remount."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from fsmount import FsUnderTest, rsync
from trees import make_special_tree, real_tree, real_tree_excludes

RSYNC_COPY = ["-aHAXS", "--numeric-ids"]
RSYNC_CHECK = ["-anciHAXS", "--numeric-ids", "--delete"]


def differences(sources: list[str], dest: Path, *extra: str) -> list[str]:
    out = rsync(*RSYNC_CHECK, *extra, *sources, f"{dest}/").stdout
    return [line for line in out.splitlines() if line.strip()]


def test_rsync_of_a_real_tree_survives_remount(fs: FsUnderTest, tmp_path: Path) -> None:
    special = make_special_tree(tmp_path / "special")
    stdlib = real_tree()
    files = sum(len(f) for _, _, f in os.walk(stdlib))
    assert files > 2000, f"the real tree has only {files} files"
    (fs.mnt / "stdlib").mkdir()
    (fs.mnt / "special").mkdir()
    rsync(*RSYNC_COPY, *real_tree_excludes(), f"{stdlib}/", f"{fs.mnt}/stdlib/")
    rsync(*RSYNC_COPY, f"{special}/", f"{fs.mnt}/special/")

    assert differences([f"{special}/"], fs.mnt / "special") == []
    fs.remount()
    assert differences([f"{special}/"], fs.mnt / "special") == []
    assert differences([f"{stdlib}/"], fs.mnt / "stdlib", *real_tree_excludes()) == []

    # And the check itself sees a difference when there is one.
    (fs.mnt / "special" / "hl" / "b").unlink()
    os.setxattr(fs.mnt / "special" / "xattr" / "file", "user.comment", b"changed")
    found = differences([f"{special}/"], fs.mnt / "special")
    assert any("hl/b" in line for line in found)
    assert any("xattr/file" in line for line in found)


def tar(*args: str, cwd: Path) -> None:
    proc = subprocess.run(["tar", *args], cwd=cwd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


TAR_META = ["--xattrs", "--xattrs-include=*", "--acls", "--numeric-owner", "-S"]


def test_tar_round_trip(fs: FsUnderTest, tmp_path: Path) -> None:
    special = make_special_tree(tmp_path / "special")
    archive = tmp_path / "in.tar"
    tar("-cpf", str(archive), *TAR_META, ".", cwd=special)

    target = fs.mnt / "x"
    target.mkdir()
    tar("-xpf", str(archive), *TAR_META, cwd=target)
    fs.remount()

    # Sparse files stayed sparse on the mount.
    holes = target / "sparse" / "holes"
    assert holes.stat().st_size == 40 << 20
    assert holes.stat().st_blocks * 512 < 8 << 20
    assert (target / "sparse" / "allhole").stat().st_blocks == 0
    # Hard links are links.
    assert (target / "hl" / "a").stat().st_nlink == 3
    assert (target / "hl" / "sub" / "c").stat().st_ino == (target / "hl" / "a").stat().st_ino

    # Out again, into a plain directory, and compare everything with the source.
    back = tmp_path / "back.tar"
    tar("-cpf", str(back), *TAR_META, ".", cwd=target)
    out = tmp_path / "out"
    out.mkdir()
    tar("-xpf", str(back), *TAR_META, cwd=out)
    # tar does not archive sockets ("socket ignored"); everything else must match.
    no_socket = "--exclude=/special/sock"
    assert differences([f"{special}/"], out, no_socket) == []
    assert differences([f"{special}/"], target, no_socket) == []
