"""mkfs.walrusfs: create a walrusfs filesystem."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

import trio

from walrusfs.cli.common import make_parser, parse_size, run, setup_logging
from walrusfs.cli.netopts import (
    add_network_options,
    add_wallet_options,
    network_from_args,
    wallet_key_from_args,
)
from walrusfs.cli.passphrase import add_passphrase_options, passphrase_from_args
from walrusfs.crypto import KdfParams
from walrusfs.fs import filesystem, provision

PROG = "mkfs.walrusfs"


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        PROG,
        "Create a walrusfs filesystem: its local directory DIR (metadata, cache, keys), and"
        " on the network its anchor, the Sui object that names it everywhere.",
        epilog="Examples:\n"
        "  mkfs.walrusfs /var/lib/walrusfs/backup                  # on the embedded devnet\n"
        "  mkfs.walrusfs --network testnet --publisher http://127.0.0.1:31415 \\\n"
        "                --sui-keystore /var/lib/walrusfs/backup\n"
        "  mkfs.walrusfs --network none /srv/local-only",
    )
    parser.add_argument("directory", metavar="DIR", help="directory to create (absent or empty)")
    parser.add_argument(
        "--block-size",
        metavar="SIZE",
        default="1M",
        help="size of the blocks files are cut into (power of two, 4K to 64M; default 1M)",
    )
    parser.add_argument("--epochs", type=int, default=53, metavar="N",
                        help="Walrus epochs new blobs are paid for (default 53, the most)")  # fmt: skip
    parser.add_argument("--kdf-cost", choices=("interactive", "moderate", "sensitive"),
                        default="moderate",
                        help="Argon2id cost of the passphrase (default moderate: ~0.5 s, 256 MiB)")  # fmt: skip
    add_network_options(parser)
    add_wallet_options(parser)
    add_passphrase_options(parser)
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args)
    block_size = parse_size(args.block_size)
    network = network_from_args(args)
    if network is None:
        fs_id = filesystem.create(args.directory, block_size=block_size)
        if not args.quiet:
            print(f"created walrusfs filesystem {fs_id} in {args.directory} (local only)")
        return 0
    filesystem.check_block_size(block_size)
    filesystem.check_new_directory(os.path.abspath(args.directory))
    if not 1 <= args.epochs <= 53:
        raise provision.ProvisionError("--epochs must be between 1 and 53")
    key = wallet_key_from_args(args)
    passphrase = passphrase_from_args(args, prompt="New passphrase: ", confirm=True)
    created = trio.run(
        lambda: provision.create(
            args.directory,
            network,
            passphrase,
            wallet_key=key,
            block_size=block_size,
            kdf=KdfParams.new(args.kdf_cost),
            lease_epochs=args.epochs,
        )
    )
    if not args.quiet:
        print(f"created walrusfs filesystem {created.uuid} in {args.directory}")
        print(f"  network: {network.name}   address: {created.address}")
        print(f"  anchor:  {created.anchor}")
        print("  keep the anchor, the wallet key and the passphrase: with them any machine")
        print("  can mount this filesystem.")
    return 0


def main() -> None:
    run(PROG, _main)


if __name__ == "__main__":
    main()
