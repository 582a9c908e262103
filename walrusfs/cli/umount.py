"""umount.walrusfs: unmount a walrusfs filesystem and wait until it is safely stored.

The kernel unmount comes first, so a busy mount point fails exactly as umount(8) would;
then we wait for the daemon, which finishes its work after the kernel lets go and releases
the filesystem directory's lock as its very last step.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Sequence

from walrusfs.cli.common import make_parser, run, setup_logging
from walrusfs.errors import WalrusfsError
from walrusfs.fs import filesystem, mounts

log = logging.getLogger(__name__)

PROG = "umount.walrusfs"


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        PROG,
        "Unmount the walrusfs filesystem at MOUNTPOINT and wait until everything written to"
        " it is safely stored.",
        epilog="Example:\n  umount.walrusfs /mnt/backup",
    )
    parser.add_argument("mountpoint", metavar="MOUNTPOINT")
    parser.add_argument(
        "-l", "--lazy", action="store_true",
        help="detach now even if busy; the daemon finishes once the last user is gone",
    )  # fmt: skip
    parser.add_argument(
        "--no-wait", action="store_true", help="return without waiting for the daemon to finish"
    )
    # What umount(8) passes to helpers.
    for flag in ("-n", "-r", "-v", "-f"):
        parser.add_argument(flag, action="store_true", dest=f"ignored{flag[1]}",
                            help=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("-t", dest="fstype", help=argparse.SUPPRESS)
    parser.add_argument("-N", dest="namespace", help=argparse.SUPPRESS)
    return parser


def kernel_unmount(mountpoint: str, lazy: bool) -> None:
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool is None:
        raise WalrusfsError("fusermount3 is missing (install the fuse3 package)")
    cmd = [tool, "-u", *(["-z"] if lazy else []), mountpoint]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        reason = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"
        reason = reason.split(": ", 1)[-1] if ": " in reason else reason
        if "busy" in reason.lower():
            raise WalrusfsError(f"{mountpoint} is busy (a process is using it); nothing was done")
        raise WalrusfsError(f"cannot unmount {mountpoint}: {reason}")


def wait_for_daemon(directory: str, quiet: bool) -> None:
    """Block until the daemon has released the filesystem directory's lock."""
    try:
        fd = os.open(filesystem.lock_path(directory), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                time.sleep(0.02)
        if not quiet:
            pid = filesystem.read_lock_pid(directory)
            print(f"{PROG}: waiting for the filesystem daemon (pid {pid}) to finish", flush=True)
        started = time.monotonic()
        fcntl.flock(fd, fcntl.LOCK_SH)
        log.debug("daemon finished after %.1f s", time.monotonic() - started)
    finally:
        os.close(fd)


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args)
    mountpoint = os.path.abspath(args.mountpoint)
    mount = mounts.find(mountpoint)
    if mount is None:
        raise WalrusfsError(f"{mountpoint} is not mounted")
    if mount.fstype != mounts.FSTYPE:
        raise WalrusfsError(f"{mountpoint} is not a walrusfs mount ({mount.fstype})")
    kernel_unmount(mountpoint, args.lazy)
    if not args.no_wait and os.path.isdir(mount.source):
        wait_for_daemon(mount.source, args.quiet)
    return 0


def main() -> None:
    run(PROG, _main)


if __name__ == "__main__":
    main()
