"""`walrusfs devnet`: run the embedded Walrus devnet in the foreground.

It listens on 127.0.0.1 only, prints where (publisher/aggregator, Sui GraphQL, faucet), and
runs until Ctrl-C or SIGTERM, then stops every service cleanly. Failures (port in use, unusable
directory) are one line on stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from walrusfs.cli.common import UsageError
from walrusfs.devnet import gcsettings
from walrusfs.devnet.errors import unwrap_group
from walrusfs.devnet.network import (
    DEFAULT_EPOCH_SECONDS,
    DEFAULT_LEDGER_PORT,
    DevnetConfig,
    run_devnet,
)
from walrusfs.devnet.publisher import DEFAULT_PORT
from walrusfs.devnet.registry import FROST_PER_WAL
from walrusfs.errors import WalrusfsError

DESCRIPTION = """\
Run walrusfs's embedded Walrus devnet in the foreground: N storage nodes, each its own HTTP
server with its own directory and key, one publisher/aggregator speaking Walrus's HTTP API on
127.0.0.1:PORT, and its Sui ledger answering Sui GraphQL, with a faucet, on 127.0.0.1:PORT+1.
Blobs stored with send_object_to=ADDRESS are Blob objects owned by ADDRESS on that ledger,
paid in WAL from ADDRESS's coins: fund it from the faucet first. Its state (blobs, objects,
coins, the epoch) lives in DIR and survives restarts. Stop it with Ctrl-C."""

EPILOG = """\
examples:
  walrusfs devnet
  walrusfs devnet --dir /tmp/devnet --nodes 4 --epoch-seconds 60 --port 0
  curl -X PUT --data-binary @file "http://127.0.0.1:31415/v1/blobs?epochs=5"
  curl -d '{"FixedAmountRequest": {"recipient": "0xADDRESS"}}' http://127.0.0.1:31416/v2/wal
  curl http://127.0.0.1:31416/v1/network
"""


def default_directory() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "walrusfs" / "devnet"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not at least 1")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-65535)")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"an epoch must last a positive time, not {text}")
    return value


def _size(text: str) -> int:
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    number, unit = text.rstrip("kKmMgGiBb"), text[len(text.rstrip("kKmMgGiBb")) :]
    unit = unit.lower().rstrip("b").rstrip("i")
    try:
        value = int(number) * units[unit]
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 10M, 1G)") from None
    if value < 1:
        raise argparse.ArgumentTypeError("a size must be positive")
    return value


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "devnet",
        help="run the embedded Walrus devnet in the foreground",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--dir",
        metavar="DIR",
        type=Path,
        default=None,
        help=f"where the devnet keeps its state (default: {default_directory()})",
    )
    parser.add_argument(
        "--nodes",
        metavar="N",
        type=_positive_int,
        default=10,
        help="number of storage nodes; fixed when DIR is first used (default: 10)",
    )
    parser.add_argument(
        "--epoch-seconds",
        metavar="S",
        type=_seconds,
        default=DEFAULT_EPOCH_SECONDS,
        help=f"length of an epoch in seconds, may be fractional (default: {DEFAULT_EPOCH_SECONDS:g})",
    )
    parser.add_argument(
        "--port",
        metavar="P",
        type=_port,
        default=DEFAULT_PORT,
        help=f"publisher/aggregator port on 127.0.0.1, 0 for any free one (default: {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--ledger-port",
        metavar="P",
        type=_port,
        default=None,
        help=(
            "port of the Sui ledger (GraphQL and faucet) on 127.0.0.1, 0 for any free one "
            f"(default: PORT + 1, i.e. {DEFAULT_LEDGER_PORT})"
        ),
    )
    parser.add_argument(
        "--max-body",
        metavar="SIZE",
        type=_size,
        default=10 << 20,
        help="largest blob the publisher accepts, e.g. 100M (default: 10M)",
    )
    parser.set_defaults(func=main)
    return parser


async def _serve(config: DevnetConfig) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            devnet = await nursery.start(run_devnet, config)
            gcsettings.settle()  # this process is nothing but the devnet
            info = devnet.info
            registry = devnet.registry
            params = registry.params()
            balance = registry.balance(info.publisher_address) / FROST_PER_WAL
            print(f"walrusfs devnet: publisher and aggregator on {info.publisher_url}")
            # The first line is the only "on http://" one: scripts look for it.
            print(f"  Sui GraphQL:   {info.graphql_url}")
            print(f"  faucet (SUI):  {info.faucet_url}")
            print(f"  faucet (WAL):  {info.wal_faucet_url}")
            print(f"  network info:  {info.ledger_url}/v1/network")
            print(
                f"  {info.n_shards} storage nodes (any {info.k} shares rebuild a blob, "
                f"{info.quorum} confirmations certify one)"
            )
            print(f"  epoch {registry.current_epoch()}, {params.epoch_seconds:g} s per epoch")
            print(f"  publisher address {info.publisher_address} ({balance:,.0f} WAL)")
            print(f"  state in {info.directory}")
            print("Press Ctrl-C to stop.", flush=True)
            async for _signum in signals:
                nursery.cancel_scope.cancel()
                break
    print("walrusfs devnet: stopped", flush=True)


def main(args: argparse.Namespace) -> int:
    directory: Path = args.dir or default_directory()
    config = DevnetConfig(
        directory=directory,
        nodes=args.nodes,
        epoch_seconds=args.epoch_seconds,
        port=args.port,
        ledger_port=args.ledger_port,
        max_body=args.max_body,
    )
    try:
        trio.run(_serve, config)
    except BaseExceptionGroup as group:
        leaf = unwrap_group(group)
        if isinstance(leaf, WalrusfsError | KeyboardInterrupt):
            raise leaf from None
        raise
    except ValueError as exc:  # argument combinations argparse cannot see
        raise UsageError(str(exc)) from None
    sys.stdout.flush()
    return 0
