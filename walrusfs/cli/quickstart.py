"""The quick start: `./setup.sh mount MOUNTPOINT` ends here.

Creates the default filesystem on the embedded devnet if there is none yet (asking for a new
passphrase), then mounts it at MOUNTPOINT (asking for the passphrase, or reusing the one just
chosen). The devnet starts inside the mount's own process, or the mount uses one that runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence

import trio

from walrusfs.cli.common import make_parser, run, setup_logging
from walrusfs.cli.netopts import default_devnet_dir
from walrusfs.cli.passphrase import add_passphrase_options, passphrase_from_args
from walrusfs.fs import filesystem, provision
from walrusfs.fs.config import Network

PROG = "walrusfs-quickstart"


def default_fs_dir() -> str:
    if os.getuid() == 0:
        return "/var/lib/walrusfs/default"
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "walrusfs", "default")


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(PROG, "Create (once) and mount the default walrusfs filesystem.")
    parser.add_argument("mountpoint", metavar="MOUNTPOINT")
    parser.add_argument("--dir", default=default_fs_dir(), help="the filesystem's directory")
    add_passphrase_options(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args)
    directory = os.path.abspath(args.dir)
    network = Network.devnet(directory=default_devnet_dir())
    if filesystem.is_filesystem(directory):
        passphrase = passphrase_from_args(args)
    else:
        print(f"Creating a walrusfs filesystem in {directory} on the embedded devnet.")
        passphrase = passphrase_from_args(args, prompt="New passphrase: ", confirm=True)
        os.makedirs(os.path.dirname(directory), exist_ok=True)
        created = trio.run(lambda: provision.create(directory, network, passphrase))
        print(f"  anchor {created.anchor}, address {created.address}")
    os.makedirs(args.mountpoint, exist_ok=True)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, passphrase + b"\n")
    os.close(write_fd)
    proc = subprocess.run(
        [sys.executable, "-m", "walrusfs.cli.mount", "--passphrase-fd", str(read_fd),
         directory, args.mountpoint],
        pass_fds=(read_fd,),
    )  # fmt: skip
    os.close(read_fd)
    if proc.returncode == 0:
        print(f"walrusfs is mounted at {args.mountpoint}; unmount with umount.walrusfs"
              f" {args.mountpoint}")  # fmt: skip
    return proc.returncode


def main() -> None:
    run(PROG, _main)


if __name__ == "__main__":
    main()
