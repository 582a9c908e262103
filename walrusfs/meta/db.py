"""The SQLite connection behind the metadata, with group commit and a durability barrier.

Every filesystem operation runs its statements without a trio checkpoint in between, so it
is atomic with respect to the others. A transaction stays open across many operations and
is committed by `commit()` (called periodically, and by the barrier): grouping saves a WAL
write per operation, and since commits only ever fall between whole operations, a crash
leaves a state some prefix of the operations produced, never a half-done rename or link.

`durable()` is the barrier fsync() needs: it commits and then makes the WAL durable. With
synchronous=NORMAL SQLite syncs the WAL before every checkpoint and the database after it,
so after our fsync of the WAL every committed transaction survives power loss.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import trio

from walrusfs.errors import WalrusfsError

log = logging.getLogger(__name__)

Row = tuple[Any, ...]


class DatabaseError(WalrusfsError):
    """The metadata database cannot be used."""


class DamagedDatabase(DatabaseError):
    pass


class Database:
    def __init__(self, path: str, *, create: bool = False) -> None:
        self.path = path
        if not create and not os.path.exists(path):
            raise DatabaseError(f"no metadata database at {path}")
        try:
            self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("PRAGMA cache_size=-65536")
            self.conn.execute("PRAGMA temp_store=MEMORY")
            self.conn.execute("PRAGMA busy_timeout=5000")
            # Checkpoints copy the WAL into the database and fsync both: far too slow for
            # the event loop, so `checkpoint()` runs them on another connection in a thread.
            self.conn.execute("PRAGMA wal_autocheckpoint=0")
            # Keep the WAL file from staying huge after a checkpoint reset it.
            self.conn.execute("PRAGMA journal_size_limit=67108864")
        except sqlite3.DatabaseError as exc:
            raise DamagedDatabase(f"{path}: {exc}") from exc
        self._wal_fd: int | None = None
        self._checkpointer: sqlite3.Connection | None = None
        self._in_tx = False
        self.begin()

    # -- transactions -------------------------------------------------------------------

    def begin(self) -> None:
        if not self._in_tx:
            self.conn.execute("BEGIN")
            self._in_tx = True

    def commit(self) -> None:
        """Commit what the operations so far have done and open the next transaction."""
        if self._in_tx:
            self.conn.execute("COMMIT")
            self._in_tx = False
        self.begin()

    @contextlib.contextmanager
    def operation(self) -> Iterator[None]:
        """Make the statements of one filesystem operation all-or-nothing.

        Checks raise before anything changes, but an unexpected failure half-way (a full
        disk, a bug) must not leave half an operation in the group transaction.
        """
        self.conn.execute("SAVEPOINT op")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO op")
            self.conn.execute("RELEASE op")
            raise
        self.conn.execute("RELEASE op")

    @contextlib.contextmanager
    def attached(self, path: str, name: str) -> Iterator[None]:
        """Attach another database file for the duration of one synchronous unit of work.

        SQLite refuses ATTACH inside a transaction, so the group transaction is committed
        first; the attached work runs in a transaction of its own, committed on success,
        after which the group transaction is reopened."""
        self.commit()
        self.conn.execute("COMMIT")
        self._in_tx = False
        self.conn.execute("ATTACH DATABASE ? AS " + name, (path,))
        try:
            self.conn.execute("BEGIN")
            self._in_tx = True
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                self._in_tx = False
                raise
            self.conn.execute("COMMIT")
            self._in_tx = False
        finally:
            self.conn.execute("DETACH DATABASE " + name)
            self.begin()

    def sync_wal(self) -> None:
        """fsync the WAL, making every committed transaction durable. Blocking."""
        if self._wal_fd is None:
            wal = self.path + "-wal"
            if not os.path.exists(wal):
                return
            self._wal_fd = os.open(wal, os.O_RDONLY)
        os.fsync(self._wal_fd)

    def wal_size(self) -> int:
        try:
            return os.path.getsize(self.path + "-wal")
        except OSError:
            return 0

    async def checkpoint(self) -> None:
        """Copy committed WAL frames into the database, off the event loop.

        PASSIVE: it never waits for, nor blocks, the main connection; what it cannot copy
        yet is copied next time."""

        def work() -> None:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False
                )
                self._checkpointer.execute("PRAGMA busy_timeout=0")
            self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        await trio.to_thread.run_sync(work)

    async def durable(self) -> None:
        """Commit, and return once everything committed survives a power loss."""
        self.commit()
        await trio.to_thread.run_sync(self.sync_wal)

    def close(self, *, checkpoint: bool = True) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        if self._in_tx:
            self.conn.execute("COMMIT")
            self._in_tx = False
        if checkpoint:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        self.conn.close()

    # -- queries -------------------------------------------------------------------------

    def script(self, sql: str) -> None:
        """Run several statements (executescript commits first, so reopen our transaction)."""
        self.conn.executescript(sql)
        self._in_tx = False
        self.begin()

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def row(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        return self.conn.execute(sql, tuple(params)).fetchone()

    def value(self, sql: str, params: Iterable[Any] = (), default: Any = None) -> Any:
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return default if row is None else row[0]

    def rows(self, sql: str, params: Iterable[Any] = ()) -> Iterator[Row]:
        return iter(self.conn.execute(sql, tuple(params)).fetchall())

    def changes(self) -> int:
        return self.conn.total_changes

    def check(self) -> None:
        """Refuse a damaged database with DamagedDatabase."""
        try:
            problems = [r[0] for r in self.conn.execute("PRAGMA quick_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            raise DamagedDatabase(str(exc)) from exc
        if problems != ["ok"]:
            raise DamagedDatabase("; ".join(problems[:3]))

    # -- settings ------------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        return self.value("SELECT value FROM settings WHERE key = ?", (key,), default)

    def set_setting(self, key: str, value: Any) -> None:
        self.execute("INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", (key, value))
