"""`walrusfs`: the control command, one subcommand per module.

Each subcommand lives in its own module `walrusfs.cli.cmd_<name>` exposing
`register(subparsers)`, which adds a parser whose `func` default takes the parsed arguments
and returns an exit code. Keeping them apart lets each grow without touching the others.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from walrusfs.cli.common import add_common_options, make_parser, run, setup_logging

PROG = "walrusfs"

# Subcommand modules, in the order --help lists them.
SUBCOMMANDS = ["flush", "log", "passphrase", "wallet", "devnet"]


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        PROG, "Control and inspect walrusfs filesystems and networks.", common=False
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"walrusfs.cli.cmd_{name}")
        sub = module.register(subparsers)
        add_common_options(sub)
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args)
    return int(args.func(args) or 0)


def main() -> None:
    run(PROG, _main)


if __name__ == "__main__":
    main()
