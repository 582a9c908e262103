"""Network and wallet options shared by the commands that create or restore a filesystem."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from urllib.parse import urlsplit

from walrusfs.cli.common import UsageError
from walrusfs.devnet.info import probe_devnet
from walrusfs.fs.config import DEVNET_PORT, Network


def default_devnet_dir() -> str:
    """Where the embedded devnet keeps its state: one per machine for root, per user else."""
    if os.getuid() == 0:
        return "/var/lib/walrusfs/devnet"
    base = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return os.path.join(base, "walrusfs", "devnet")


def add_network_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("network")
    g.add_argument("--network", default="devnet", metavar="NAME",
                   help="devnet (default: the embedded one, started when none runs), testnet,"
                        " mainnet, or none (a filesystem kept only in DIR)")  # fmt: skip
    g.add_argument("--publisher", action="append", metavar="URL",
                   help="Walrus publisher (walrus daemon) to store through; repeatable")  # fmt: skip
    g.add_argument("--aggregator", action="append", metavar="URL",
                   help="Walrus aggregator to read from; repeatable (default: the publishers)")  # fmt: skip
    g.add_argument(
        "--graphql", metavar="URL", help="Sui GraphQL endpoint (overrides the network's)"
    )
    g.add_argument("--devnet-port", type=int, default=DEVNET_PORT, metavar="PORT",
                   help=f"port of the devnet's publisher (default {DEVNET_PORT})")  # fmt: skip
    g.add_argument("--devnet-dir", metavar="DIR",
                   help=f"state of the embedded devnet (default {default_devnet_dir()})")  # fmt: skip
    g.add_argument("--no-embedded-devnet", action="store_true",
                   help="never start the devnet here; use one that is running")  # fmt: skip


def network_from_args(args: argparse.Namespace) -> Network | None:
    name = args.network
    if name == "none":
        return None
    if name == "devnet":
        directory = None if args.no_embedded_devnet else (args.devnet_dir or default_devnet_dir())
        port = args.devnet_port
        if args.publisher:
            port = urlsplit(args.publisher[0]).port or port
        net = Network.devnet(port=port, directory=directory)
        # A devnet that runs says where its ledger and faucet are (and, unless given, its
        # publisher and aggregator).
        info = probe_devnet(port)
        if info is not None:
            net = Network(
                net.name, (info.publisher_url,), (info.aggregator_url,),
                {"graphql_url": info.graphql_url, "faucet_url": info.faucet_url},
                directory,
            )  # fmt: skip
    elif name in ("testnet", "mainnet"):
        if not args.publisher:
            raise UsageError(f"--network {name} needs --publisher URL (a walrus daemon of yours)")
        net = Network(name, tuple(args.publisher), tuple(args.aggregator or args.publisher))
    else:
        raise UsageError(f"unknown network {name!r} (devnet, testnet, mainnet or none)")
    overrides = dict(net.chain_overrides)
    if args.graphql:
        overrides["graphql_url"] = args.graphql
    return Network(
        net.name,
        tuple(args.publisher or net.publishers),
        tuple(args.aggregator or args.publisher or net.aggregators),
        overrides,
        net.embedded_devnet,
    )


def add_wallet_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("wallet")
    g.add_argument("--wallet-key", metavar="FILE",
                   help="file holding the Sui private key of the filesystem's address"
                        " (suiprivkey1... or base64); default: a new key")  # fmt: skip
    g.add_argument("--sui-keystore", metavar="FILE", nargs="?", const="",
                   help="import the key from a Sui keystore (default ~/.sui/sui_config/sui.keystore)")  # fmt: skip


def wallet_key_from_args(args: argparse.Namespace) -> str | None:
    from walrusfs.chain import key_from_keystore

    if args.wallet_key:
        return read_key_text(args.wallet_key)
    if args.sui_keystore is not None:
        return key_from_keystore(Path(args.sui_keystore) if args.sui_keystore else None)
    return None


def read_key_text(path: str) -> str:
    from walrusfs.chain import key_from_text

    try:
        text = Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read the wallet key {path}: {exc.strerror}") from None
    return key_from_text(text)
