"""Deltas and snapshots of the shared metadata, as small SQLite databases.

A manifest commit carries either the rows changed since the previous commit (a delta) or
every shared row (a snapshot); see meta/schema.py for which tables are shared and for the
`changes` log the triggers keep. Both travel as one SQLite file with the shared tables' own
schema, plus:

    header(key TEXT PRIMARY KEY, value ANY)   what the manifest layer puts there
    deleted(tbl TEXT, k1 ANY, k2 ANY)         keys whose rows no longer exist (deltas only)

so the schema documents the format too, and applying one is plain SQL. Capturing runs
without a trio checkpoint: it sees one consistent state.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from walrusfs.errors import WalrusfsError
from walrusfs.meta.db import Database
from walrusfs.meta.schema import BLOCK_CLEAN, BLOCK_DIRTY, BLOCK_REMOTE, SCHEMA, SHARED_TABLES

log = logging.getLogger(__name__)

_EXTRA = """
CREATE TABLE header (key TEXT PRIMARY KEY, value ANY) STRICT;
CREATE TABLE deleted (tbl TEXT NOT NULL, k1 ANY NOT NULL, k2 ANY NOT NULL) STRICT;
"""


class DeltaError(WalrusfsError):
    """A delta or snapshot cannot be made or applied."""


@dataclass(frozen=True)
class Captured:
    """A delta or snapshot file, and how many rows it carries."""

    data: bytes
    rows: int
    kind: str


def _columns(db: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [r[1] for r in db.execute(f"PRAGMA {schema}.table_info({table})")]


def _new_file(directory: str) -> str:
    fd, path = tempfile.mkstemp(prefix=".manifest-", suffix=".db", dir=directory)
    os.close(fd)
    os.unlink(path)
    con = sqlite3.connect(path)
    # The shared tables exactly as the metadata has them, without triggers or local tables.
    con.executescript("\n".join(stmt + ";" for stmt in _shared_ddl()) + _EXTRA)
    con.close()
    return path


def _shared_ddl() -> list[str]:
    con = sqlite3.connect(":memory:")
    con.executescript(SCHEMA)
    ddl = [
        sql
        for name, sql in con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL"
        )
        if name in SHARED_TABLES
    ]
    con.close()
    return ddl


def _write_header(db: Database, header: Mapping[str, Any]) -> None:
    db.executemany(
        "INSERT INTO out.header (key, value) VALUES (?, ?)", [(k, v) for k, v in header.items()]
    )


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def capture_delta(db: Database, seq: int, header: Mapping[str, Any], tmpdir: str) -> Captured:
    """The rows changed since they were last captured, marked as captured by `seq`.

    The rows stay in the change log until `forget_captured(seq)` once the commit is
    anchored; a row changed again meanwhile becomes pending again and is not forgotten."""
    path = _new_file(tmpdir)
    try:
        with db.attached(path, "out"):
            db.execute("UPDATE changes SET seq = ? WHERE seq IS NULL", (seq,))
            rows = 0
            for table, keys in SHARED_TABLES.items():
                cols = ", ".join(f"t.{c}" for c in _columns(db.conn, "main", table))
                on = f"c.k1 = t.{keys[0]}" + (f" AND c.k2 = t.{keys[1]}" if len(keys) > 1 else "")
                cur = db.execute(
                    f"INSERT INTO out.{table} SELECT {cols} FROM changes c JOIN main.{table} t"
                    f" ON {on} WHERE c.tbl = ? AND c.seq = ?",
                    (table, seq),
                )
                rows += cur.rowcount
                k2 = f"c.k2 = t.{keys[1]}" if len(keys) > 1 else "1"
                cur = db.execute(
                    f"INSERT INTO out.deleted (tbl, k1, k2) SELECT c.tbl, c.k1, c.k2 FROM changes c"
                    f" WHERE c.tbl = ? AND c.seq = ? AND NOT EXISTS (SELECT 1 FROM main.{table} t"
                    f" WHERE t.{keys[0]} = c.k1 AND {k2})",
                    (table, seq),
                )
                rows += cur.rowcount
            dirty = db.value(
                "SELECT COUNT(*) FROM out.blocks WHERE state = ? OR chunk IS NULL", (BLOCK_DIRTY,)
            )
            if dirty:
                raise DeltaError(f"{dirty} blocks are not uploaded; drain before capturing")
            _write_header(db, header)
        return Captured(_read_file(path), rows, "delta")
    finally:
        _unlink(path)


def capture_snapshot(db: Database, seq: int, header: Mapping[str, Any], tmpdir: str) -> Captured:
    """Every shared row. Pending changes are marked as captured by `seq`, like a delta's:
    the snapshot carries them."""
    path = _new_file(tmpdir)
    try:
        with db.attached(path, "out"):
            db.execute("UPDATE changes SET seq = ? WHERE seq IS NULL", (seq,))
            rows = 0
            for table in SHARED_TABLES:
                rows += db.execute(f"INSERT INTO out.{table} SELECT * FROM main.{table}").rowcount
            dirty = db.value(
                "SELECT COUNT(*) FROM out.blocks WHERE state = ? OR chunk IS NULL", (BLOCK_DIRTY,)
            )
            if dirty:
                raise DeltaError(f"{dirty} blocks are not uploaded; drain before capturing")
            _write_header(db, header)
        with sqlite3.connect(path) as con:
            con.execute("VACUUM")
        return Captured(_read_file(path), rows, "snapshot")
    finally:
        _unlink(path)


def forget_captured(db: Database, seq: int) -> None:
    """The commit `seq` is anchored: its captured rows need not travel again."""
    db.execute("DELETE FROM changes WHERE seq = ?", (seq,))


def reset_captures(db: Database) -> None:
    """After a crash between capture and anchoring, captured rows are pending again."""
    db.execute("UPDATE changes SET seq = NULL WHERE seq IS NOT NULL")


def read_header(data: bytes, tmpdir: str) -> dict[str, Any]:
    path = _materialize(data, tmpdir)
    try:
        con = sqlite3.connect(path)
        try:
            return dict(con.execute("SELECT key, value FROM header"))
        except sqlite3.DatabaseError as exc:
            raise DeltaError(f"not a manifest: {exc}") from exc
        finally:
            con.close()
    finally:
        _unlink(path)


def apply(db: Database, data: bytes, tmpdir: str) -> int:
    """Apply a snapshot or a delta to the metadata (a restore). Returns rows applied.

    Applied rows describe committed state: block data is remote until fetched, and the
    change log does not record them."""
    path = _materialize(data, tmpdir)
    try:
        with db.attached(path, "inc"):
            rows = 0
            for table, keys in SHARED_TABLES.items():
                match = f"d.k1 = main.{table}.{keys[0]}" + (
                    f" AND d.k2 = main.{table}.{keys[1]}" if len(keys) > 1 else ""
                )
                db.execute(
                    f"DELETE FROM main.{table} WHERE EXISTS"
                    f" (SELECT 1 FROM inc.deleted d WHERE d.tbl = ? AND {match})",
                    (table,),
                )
                rows += db.execute(
                    f"INSERT OR REPLACE INTO main.{table} SELECT * FROM inc.{table}"
                ).rowcount
            db.execute(
                "UPDATE main.blocks SET state = ? WHERE state IN (?, ?)",
                (BLOCK_REMOTE, BLOCK_DIRTY, BLOCK_CLEAN),
            )
            db.execute("DELETE FROM main.changes")
        return rows
    except sqlite3.DatabaseError as exc:
        raise DeltaError(f"cannot apply manifest: {exc}") from exc
    finally:
        _unlink(path)


def _materialize(data: bytes, tmpdir: str) -> str:
    fd, path = tempfile.mkstemp(prefix=".manifest-", suffix=".db", dir=tmpdir)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _unlink(path: str) -> None:
    for suffix in ("", "-journal", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass
