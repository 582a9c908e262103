"""The local key file: 0600, durable replacement, and refusal of anything not a wrapped key."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from crypto.crypto_helpers import cheap_params

from walrusfs.crypto import (
    BadKeyFile,
    new_master_key,
    read_key_file,
    unwrap_master_key,
    wrap_master_key,
    write_key_file,
)


@pytest.fixture
def wrapped() -> bytes:
    return wrap_master_key(new_master_key(), b"pw", cheap_params())


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_written_0600_even_with_an_open_umask(
    tmp_path: Path, wrapped: bytes, open_umask: None
) -> None:
    path = tmp_path / "key"
    write_key_file(path, wrapped)
    assert _mode(path) == 0o600
    assert path.read_bytes() == wrapped
    assert read_key_file(path) == wrapped


def test_replacing_leaves_no_temporary_file(tmp_path: Path, wrapped: bytes) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"old")
    path.chmod(0o644)
    write_key_file(str(path), wrapped)
    assert path.read_bytes() == wrapped
    assert _mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]


def test_rewrite_after_passphrase_change(tmp_path: Path, wrapped: bytes) -> None:
    path = tmp_path / "key"
    write_key_file(path, wrapped)
    master = unwrap_master_key(read_key_file(path), b"pw")
    write_key_file(path, wrap_master_key(master, b"new", cheap_params()))
    assert unwrap_master_key(read_key_file(path), b"new") == master


def test_garbage_is_never_written(tmp_path: Path, wrapped: bytes) -> None:
    path = tmp_path / "key"
    write_key_file(path, wrapped)
    with pytest.raises(BadKeyFile):
        write_key_file(path, b"not a key")
    assert path.read_bytes() == wrapped
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]


def test_a_failed_write_removes_its_temporary_file(tmp_path: Path, wrapped: bytes) -> None:
    path = tmp_path / "key"
    path.mkdir()  # rename over a directory fails after the temporary file was written
    with pytest.raises(OSError):
        write_key_file(path, wrapped)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a walrusfs key"),
        (b"hello world\n", "not a walrusfs key"),
        (b"WFSK\x09" + bytes(101), "version 9"),
        (b"WFSK\x01\x01" + bytes(200), "damaged"),
    ],
)
def test_garbage_is_a_bad_key_file(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(BadKeyFile, match=message) as info:
        read_key_file(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_large_files_are_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"WFSK\x01" + bytes(10 << 20))
    with pytest.raises(BadKeyFile, match="damaged"):
        read_key_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadKeyFile, match="No such file"):
        read_key_file(tmp_path / "absent")


def test_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(BadKeyFile, match="not a regular file"):
        read_key_file(fifo)  # must not wait for a writer
    with pytest.raises(BadKeyFile):
        read_key_file(tmp_path)


def test_readable_by_others_is_read_with_a_warning(
    tmp_path: Path, wrapped: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "key"
    write_key_file(path, wrapped)
    with caplog.at_level(logging.WARNING, logger="walrusfs.crypto.keyfile"):
        read_key_file(path)
    assert not caplog.records
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="walrusfs.crypto.keyfile"):
        assert read_key_file(path) == wrapped
    assert "0644" in caplog.text
