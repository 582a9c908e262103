"""Helpers for tests that mount real walrusfs filesystems through the real commands."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from walrusfs.fs import filesystem, mounts


def command(tool: str, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run one of our commands (mkfs, mount, umount, control) with this interpreter."""
    module = {
        "mkfs.walrusfs": "walrusfs.cli.mkfs",
        "mount.walrusfs": "walrusfs.cli.mount",
        "umount.walrusfs": "walrusfs.cli.umount",
        "walrusfs": "walrusfs.cli.control",
    }[tool]
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, **kwargs
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{tool} {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
        )
    return proc


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def force_unmount(mountpoint: Path) -> None:
    """Detach a mount whatever state its daemon is in (used for cleanup and after SIGKILL)."""
    if mounts.find(str(mountpoint)) is not None:
        subprocess.run(["fusermount3", "-u", "-z", str(mountpoint)], capture_output=True)


class FsUnderTest:
    """A filesystem directory and a mount point in a temporary directory."""

    def __init__(self, base: Path, name: str = "fs", mnt: Path | None = None) -> None:
        self.dir = base / name
        self.mnt = mnt or base / f"{name}-mnt"
        self.mnt.mkdir(parents=True, exist_ok=True)

    def mkfs(self, *args: str) -> None:
        """A filesystem kept only in its directory, unless `args` name a network."""
        if not any(a.startswith("--network") for a in args):
            args = ("--network", "none", *args)
        command("mkfs.walrusfs", *args, str(self.dir))

    def mount(self, *options: str) -> None:
        opts = ["-o", ",".join(options)] if options else []
        command("mount.walrusfs", *opts, str(self.dir), str(self.mnt))
        assert self.is_mounted()

    def umount(self) -> None:
        command("umount.walrusfs", str(self.mnt))
        assert not self.is_mounted()

    def remount(self, *options: str) -> None:
        self.umount()
        self.mount(*options)

    def is_mounted(self) -> bool:
        m = mounts.find(str(self.mnt))
        return m is not None and m.fstype == mounts.FSTYPE

    @property
    def pid(self) -> int | None:
        return filesystem.read_lock_pid(str(self.dir))

    def kill(self, *, writers: Sequence[subprocess.Popen[bytes]] = ()) -> None:
        """SIGKILL the daemon, wait for it to be gone, and detach the dead mount.

        `writers`, processes working in the mount, are stopped before the kill and killed
        before the detach: once the dead mount is detached its path is the bare mount point
        directory, and a writer left running would go on creating files there (which a
        later mount hides, and a test would take for files the filesystem lost). A pending
        SIGSTOP keeps a process from running any more of its own code, so none starts
        another system call after the kill."""
        pid = self.pid
        assert pid, "no daemon pid"
        for writer in writers:
            writer.send_signal(signal.SIGSTOP)
        os.kill(pid, signal.SIGKILL)

        def gone() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # A zombie still answers kill(0); it is dead for our purposes.
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().split(") ", 1)[1].startswith("Z")
            except OSError:
                return True
            return False

        wait_until(gone, what=f"daemon {pid} to die")
        for writer in writers:
            writer.kill()
            writer.wait()
        force_unmount(self.mnt)
        wait_until(lambda: not self.is_mounted(), what="dead mount to detach")
        assert not os.listdir(self.mnt), "something wrote into the bare mount point"

    def cleanup(self) -> None:
        if self.is_mounted():
            proc = command("umount.walrusfs", str(self.mnt), check=False, timeout=60)
            if proc.returncode != 0:
                pid = self.pid
                if pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                force_unmount(self.mnt)

    def log(self) -> str:
        path = self.dir / "mount.log"
        return path.read_text() if path.exists() else ""


def rsync(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    rsync_bin = shutil.which("rsync")
    assert rsync_bin, "rsync is not installed"
    proc = subprocess.run([rsync_bin, *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"rsync {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc
