"""mkfs.walrusfs: create a walrusfs filesystem."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from walrusfs.cli.common import make_parser, parse_size, run, setup_logging
from walrusfs.fs import filesystem

PROG = "mkfs.walrusfs"


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        PROG,
        "Create a walrusfs filesystem in DIR, which holds its metadata and block cache.",
        epilog="Example:\n  mkfs.walrusfs /var/lib/walrusfs/backup\n"
        "  mount.walrusfs /var/lib/walrusfs/backup /mnt/backup",
    )
    parser.add_argument("directory", metavar="DIR", help="directory to create (absent or empty)")
    parser.add_argument(
        "--block-size",
        metavar="SIZE",
        default="1M",
        help="size of the blocks files are cut into (power of two, 4K to 64M; default 1M)",
    )
    return parser


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args)
    fs_id = filesystem.create(args.directory, block_size=parse_size(args.block_size))
    if not args.quiet:
        print(f"created walrusfs filesystem {fs_id} in {args.directory}")
    return 0


def main() -> None:
    run(PROG, _main)


if __name__ == "__main__":
    main()
