"""`walrusfs passphrase DIR|MOUNTPOINT`: change a filesystem's passphrase."""

from __future__ import annotations

import argparse
import base64
from typing import Any

import trio

from walrusfs.cli.passphrase import add_passphrase_options, passphrase_from_args
from walrusfs.cli.target import directory_of
from walrusfs.errors import WalrusfsError
from walrusfs.fs import config as fsconfig
from walrusfs.fs import control, provision
from walrusfs.fs.remote import connect


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "passphrase",
        help="change a filesystem's passphrase",
        description="Change the passphrase of the filesystem in DIR (or mounted at"
        " MOUNTPOINT). The master key is re-wrapped; no data is touched. The new wrapped key"
        " is kept on the anchor, so every machine needs the new passphrase from now on. Copies"
        " of the old wrapped key (in the superblock) still open with the old passphrase:"
        " changing it does not revoke it.",
    )
    p.add_argument("target", metavar="DIR|MOUNTPOINT")
    add_passphrase_options(p)
    add_passphrase_options(p, new=True)
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    directory = directory_of(args.target)
    cfg = fsconfig.load(directory)
    if cfg.network is None or cfg.anchor is None:
        raise WalrusfsError(f"{directory} is kept only locally: it has no passphrase")
    old = passphrase_from_args(args, prompt="Current passphrase: ")
    new = passphrase_from_args(args, prompt="New passphrase: ", confirm=True, new=True)
    try:
        # A mounted filesystem changes it itself: the anchor moves only through its daemon.
        control.request(
            directory,
            {"op": "passphrase", "old": base64.b64encode(old).decode(),
             "new": base64.b64encode(new).decode()},
        )  # fmt: skip
    except control.ControlError as exc:
        if "no filesystem daemon" not in str(exc):
            raise
        trio.run(_offline, directory, cfg, old, new)
    if not args.quiet:
        print("passphrase changed")
    return 0


async def _offline(directory: str, cfg: fsconfig.Config, old: bytes, new: bytes) -> None:
    from walrusfs.fs.filesystem import Lock

    lock = Lock(directory)  # nothing may mount it meanwhile
    try:
        async with connect(directory, cfg) as remote:
            assert cfg.anchor is not None
            view = await remote.anchor_ops(cfg.anchor).read()
            await provision.change_passphrase(directory, remote, view, old, new)
    finally:
        lock.release()
