"""`walrusfs flush MOUNTPOINT`: make everything written so far durable on Walrus and Sui."""

from __future__ import annotations

import argparse
import os
from typing import Any

from walrusfs.cli.target import directory_of
from walrusfs.fs import control
from walrusfs.fs.daemon import syncfs


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "flush",
        help="commit a mounted filesystem now",
        description="Write everything written to MOUNTPOINT so far to Walrus and anchor it on"
        " Sui; return when that is done. (For a filesystem without a network: make it durable"
        " on the local disk.)",
    )
    p.add_argument("mountpoint", metavar="MOUNTPOINT")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    directory = directory_of(args.mountpoint)
    # Data the kernel still holds in its page cache reaches the daemon first.
    if os.path.ismount(os.path.abspath(args.mountpoint)):
        syncfs(os.path.abspath(args.mountpoint))
    reply = control.request(directory, {"op": "flush"})
    if not args.quiet:
        if reply.get("local"):
            print("flushed to the local disk (this filesystem has no network)")
        elif reply.get("committed"):
            print(f"committed: commit {reply['seq']} is anchored (manifest {reply['blob_id']})")
        else:
            print(f"nothing new to commit; commit {reply.get('seq')} is anchored")
    return 0
