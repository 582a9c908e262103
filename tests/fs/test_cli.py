"""The commands: help, one-line errors for bad input, mount(8) integration, ro, foreground."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from fsmount import FsUnderTest, command, wait_until

from walrusfs.fs import mounts


def one_line_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode != 0, proc
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize("tool", ["mkfs.walrusfs", "mount.walrusfs", "umount.walrusfs", "walrusfs"])
def test_every_command_has_help(tool: str) -> None:
    proc = command(tool, "--help")
    assert proc.stdout.startswith("usage:")
    assert tool in proc.stdout.splitlines()[0]


def test_every_command_has_a_man_page() -> None:
    man = Path(__file__).resolve().parents[2] / "man"
    for page in ("mkfs.walrusfs.8", "mount.walrusfs.8", "umount.walrusfs.8", "walrusfs.1"):
        text = (man / page).read_text()
        assert text.startswith(".TH"), page
        proc = subprocess.run(["man", "-l", str(man / page)], capture_output=True, text=True,
                              env={**os.environ, "MANWIDTH": "80"})  # fmt: skip
        if proc.returncode == 0:  # man is optional on minimal machines; the source is checked
            assert "NAME" in proc.stdout


def test_mkfs_errors(tmp_path: Path) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    # Checked before anything else: no passphrase is asked for a directory that cannot do.
    one_line_error(command("mkfs.walrusfs", str(full), check=False), "not empty")
    one_line_error(
        command("mkfs.walrusfs", "--block-size", "3000", str(tmp_path / "bs"), check=False),
        "power of two",
    )
    one_line_error(
        command("mkfs.walrusfs", "--block-size", "lots", str(tmp_path / "bs"), check=False),
        "not a size",
    )
    command("mkfs.walrusfs", "--network", "none", str(tmp_path / "ok"))
    one_line_error(command("mkfs.walrusfs", str(tmp_path / "ok"), check=False), "already holds")
    one_line_error(
        command("mkfs.walrusfs", "--network", "moon", str(tmp_path / "n"), check=False),
        "unknown network",
    )
    assert os.stat(tmp_path / "ok").st_mode & 0o777 == 0o700
    assert os.stat(tmp_path / "ok" / "meta.db").st_mode & 0o777 == 0o600


def test_mount_errors(fs_unmounted: FsUnderTest, tmp_path: Path) -> None:
    src = str(fs_unmounted.dir)
    one_line_error(
        command("mount.walrusfs", src, str(tmp_path / "missing"), check=False), "does not exist"
    )
    (tmp_path / "file").write_text("")
    one_line_error(
        command("mount.walrusfs", src, str(tmp_path / "file"), check=False), "not a directory"
    )
    (tmp_path / "empty").mkdir()
    one_line_error(
        command("mount.walrusfs", str(tmp_path / "empty"), str(fs_unmounted.mnt), check=False),
        "not a walrusfs filesystem",
    )
    one_line_error(
        command("mount.walrusfs", "-o", "frobnicate", src, str(fs_unmounted.mnt), check=False),
        "unknown mount option",
    )
    for bad, why in (("busy_poll=soon", "takes microseconds"), ("busy_poll=-1", "between 0")):
        one_line_error(
            command("mount.walrusfs", "-o", bad, src, str(fs_unmounted.mnt), check=False), why
        )
    # A mount point with files in it would hide them: refused unless -o nonempty.
    (fs_unmounted.mnt / "left behind").write_text("still here")
    one_line_error(
        command("mount.walrusfs", src, str(fs_unmounted.mnt), check=False), "is not empty"
    )
    assert not fs_unmounted.is_mounted()
    fs_unmounted.mount("nonempty")
    assert not (fs_unmounted.mnt / "left behind").exists()
    fs_unmounted.umount()
    assert (fs_unmounted.mnt / "left behind").read_text() == "still here"
    (fs_unmounted.mnt / "left behind").unlink()
    # A mount point where something is mounted already is busy.
    fs_unmounted.mount()
    other = FsUnderTest(tmp_path, name="other")
    other.mkfs()
    one_line_error(
        command("mount.walrusfs", str(other.dir), str(fs_unmounted.mnt), check=False), "busy"
    )


def test_damaged_database_is_refused_and_left_alone(fs_unmounted: FsUnderTest) -> None:
    db = fs_unmounted.dir / "meta.db"
    data = bytearray(db.read_bytes())
    data[0:16] = b"definitely junk!"
    db.write_bytes(bytes(data))
    before = db.read_bytes()
    proc = command("mount.walrusfs", str(fs_unmounted.dir), str(fs_unmounted.mnt), check=False)
    one_line_error(proc, "damaged", "sqlite3")
    assert db.read_bytes() == before
    assert not fs_unmounted.is_mounted()


def test_umount_errors(fs: FsUnderTest, tmp_path: Path) -> None:
    one_line_error(command("umount.walrusfs", str(tmp_path), check=False), "not mounted")
    holder = subprocess.Popen(["sleep", "60"], cwd=fs.mnt)
    try:
        one_line_error(command("umount.walrusfs", str(fs.mnt), check=False), "busy")
        assert fs.is_mounted()
    finally:
        holder.kill()
        holder.wait()
    fs.umount()


def test_read_only_mount(fs: FsUnderTest) -> None:
    (fs.mnt / "f").write_bytes(b"data")
    fs.remount("ro")
    assert (fs.mnt / "f").read_bytes() == b"data"
    for attempt in (
        lambda: (fs.mnt / "g").write_bytes(b""),
        lambda: (fs.mnt / "f").unlink(),
        lambda: os.setxattr(fs.mnt / "f", "user.x", b"1"),
    ):
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno == errno.EROFS


def test_foreground_mount_ends_cleanly_on_sigterm(fs_unmounted: FsUnderTest) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "walrusfs.cli.mount", "--foreground",
         str(fs_unmounted.dir), str(fs_unmounted.mnt)],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(fs_unmounted.is_mounted, what="foreground mount")
        (fs_unmounted.mnt / "f").write_bytes(b"foreground")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, proc.stderr.read() if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not fs_unmounted.is_mounted()
    fs_unmounted.mount()
    assert (fs_unmounted.mnt / "f").read_bytes() == b"foreground"


def test_stale_mount_after_daemon_death_is_explained(fs: FsUnderTest) -> None:
    pid = fs.pid
    assert pid
    os.kill(pid, signal.SIGKILL)
    status = Path(f"/proc/{pid}/status")
    wait_until(lambda: not status.exists() or "zombie" in status.read_text(), what="daemon death")
    one_line_error(
        command("mount.walrusfs", str(fs.dir), str(fs.mnt), check=False), "umount.walrusfs"
    )
    command("umount.walrusfs", str(fs.mnt))
    assert not fs.is_mounted()
    fs.mount()
    assert "did not end cleanly" in fs.log()


def test_mount_t_walrusfs_and_fstab(fs_unmounted: FsUnderTest, tmp_path: Path) -> None:
    helper = shutil.which("mount.walrusfs", path="/sbin:/usr/sbin")
    assert helper, "mount.walrusfs is not installed in /sbin (./setup.sh installs it)"
    proc = subprocess.run(
        ["mount", "-t", "walrusfs", "-o", "noatime,nodev", str(fs_unmounted.dir),
         str(fs_unmounted.mnt)], capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    m = mounts.find(str(fs_unmounted.mnt))
    assert m is not None and m.fstype == mounts.FSTYPE and "nodev" in m.options
    (fs_unmounted.mnt / "via-mount").write_bytes(b"1")
    fs_unmounted.umount()

    fstab = tmp_path / "fstab"
    fstab.write_text(f"{fs_unmounted.dir} {fs_unmounted.mnt} walrusfs defaults,nofail,x-test 0 0\n")
    proc = subprocess.run(["mount", "-T", str(fstab), str(fs_unmounted.mnt)],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (fs_unmounted.mnt / "via-mount").read_bytes() == b"1"
    # umount(8) runs umount.fuse.walrusfs, which waits for the daemon.
    proc = subprocess.run(["umount", str(fs_unmounted.mnt)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not fs_unmounted.is_mounted()


def test_readahead_is_raised_once_the_kernel_is_connected(fs: FsUnderTest) -> None:
    """Sequential reads come in 1 MiB requests, not the kernel's 128 KiB: the readahead is
    set after the FUSE_INIT reply, which would otherwise cap it back."""
    mount = mounts.find(str(fs.mnt))
    assert mount is not None
    setting = Path(f"/sys/class/bdi/{mount.major}:{mount.minor}/read_ahead_kb")
    wait_until(lambda: setting.read_text().strip() == "1024", what="readahead of 1 MiB")
