"""`walrusfs wallet DIR`: the filesystem's Sui address, and its key for safekeeping."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from walrusfs.cli.target import directory_of
from walrusfs.errors import WalrusfsError
from walrusfs.fs import config as fsconfig


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "wallet",
        help="show a filesystem's address and anchor; export its wallet key",
        description="Show the Sui address and anchor of the filesystem in DIR. With"
        " --export-key FILE, write the wallet's private key to FILE (mode 0600): with it, the"
        " anchor and the passphrase, any machine can mount the filesystem.",
    )
    p.add_argument("target", metavar="DIR|MOUNTPOINT")
    p.add_argument("--export-key", metavar="FILE", help="write the private key to FILE")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from walrusfs.chain.wallet import wallet_key

    directory = directory_of(args.target)
    cfg = fsconfig.load(directory)
    if cfg.network is None:
        raise WalrusfsError(f"{directory} has no network, so no wallet")
    print(f"network: {cfg.network.name}")
    print(f"address: {cfg.address}")
    print(f"anchor:  {cfg.anchor}")
    if args.export_key:
        key = wallet_key(Path(directory) / fsconfig.WALLET_DIR)
        try:
            fd = os.open(args.export_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise WalrusfsError(f"{args.export_key} exists; not overwriting it") from None
        with os.fdopen(fd, "w") as f:
            f.write(key + "\n")
        print(f"key:     written to {args.export_key}")
    return 0
