"""`walrusfs log DIR|MOUNTPOINT`: the commits of a filesystem, newest first."""

from __future__ import annotations

import argparse
import datetime
import sqlite3
from typing import Any

from walrusfs.cli.target import directory_of
from walrusfs.errors import WalrusfsError
from walrusfs.fs import filesystem


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "log",
        help="list the commits of a filesystem",
        description="List the commits of the filesystem in DIR (or mounted at MOUNTPOINT),"
        " newest first: sequence number (for mount -o snapshot=SEQ), time, kind, size.",
    )
    p.add_argument("target", metavar="DIR|MOUNTPOINT")
    p.add_argument("-n", "--max-count", type=int, metavar="N", help="show only the N newest")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    directory = directory_of(args.target)
    # Read-only and without the lock: a mounted filesystem's database is read beside it.
    try:
        con = sqlite3.connect(f"file:{filesystem.db_path(directory)}?mode=ro", uri=True)
        rows = con.execute(
            "SELECT seq, created_ns, kind, size, rows, blob_id FROM commits ORDER BY seq DESC"
            + (" LIMIT ?" if args.max_count else ""),
            (args.max_count,) if args.max_count else (),
        ).fetchall()
        con.close()
    except sqlite3.DatabaseError as exc:
        raise WalrusfsError(f"cannot read the commits of {directory}: {exc}") from None
    if not rows:
        print("no commits (a filesystem kept only in its directory has none)")
        return 0
    print(f"{'seq':>6}  {'time (UTC)':19}  {'kind':8}  {'size':>10}  {'rows':>8}  manifest blob")
    for seq, created, kind, size, nrows, blob_id in rows:
        when = datetime.datetime.fromtimestamp(created / 1e9, datetime.UTC)
        print(f"{seq:>6}  {when:%Y-%m-%d %H:%M:%S}  {kind:8}  {size:>10}  {nrows:>8}  {blob_id}")
    return 0
