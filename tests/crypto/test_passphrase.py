"""Reading passphrases: files, descriptors, the terminal (a real pty), and the options."""

from __future__ import annotations

import argparse
import logging
import os
import pty
import select
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest

from walrusfs.cli.common import UsageError, make_parser
from walrusfs.cli.passphrase import (
    MAX_PASSPHRASE,
    PassphraseError,
    add_passphrase_options,
    passphrase_from_args,
    read_passphrase,
)
from walrusfs.errors import WalrusfsError


def _secret(tmp_path: Path, content: bytes, mode: int = 0o600) -> str:
    path = tmp_path / "secret"
    path.write_bytes(content)
    path.chmod(mode)
    return str(path)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"hunter2\n", b"hunter2"),
        (b"hunter2", b"hunter2"),
        (b"hunter2\r\n", b"hunter2"),
        (b"  spaces stay  \nsecond line\n", b"  spaces stay  "),
        (b"\xff\xfe not utf-8\n", b"\xff\xfe not utf-8"),
    ],
)
def test_file(tmp_path: Path, content: bytes, expected: bytes) -> None:
    assert read_passphrase(
        prompt="unused", confirm=False, file=_secret(tmp_path, content), fd=None
    ) == (expected)


def test_utf8_is_normalized_to_nfc(tmp_path: Path) -> None:
    nfd = unicodedata.normalize("NFD", "crème brûlée").encode()
    nfc = unicodedata.normalize("NFC", "crème brûlée").encode()
    assert nfd != nfc
    assert read_passphrase(file=_secret(tmp_path, nfd + b"\n")) == nfc


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o602])
def test_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = _secret(tmp_path, b"hunter2\n", mode)
    with pytest.raises(PassphraseError) as info:
        read_passphrase(file=path)
    message = str(info.value)
    assert f"{mode:04o}" in message and f"chmod 600 {path}" in message
    assert "--passphrase-fd" in message and "\n" not in message


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n", b"\nsecond line\n"])
def test_empty_file_is_refused(tmp_path: Path, content: bytes) -> None:
    with pytest.raises(PassphraseError, match="empty passphrase"):
        read_passphrase(file=_secret(tmp_path, content))


def test_too_long_is_refused(tmp_path: Path) -> None:
    assert read_passphrase(file=_secret(tmp_path, b"x" * MAX_PASSPHRASE + b"\n")) == (
        b"x" * MAX_PASSPHRASE
    )
    with pytest.raises(PassphraseError, match="longer than"):
        read_passphrase(file=_secret(tmp_path, b"x" * (MAX_PASSPHRASE + 1) + b"\n"))
    with pytest.raises(PassphraseError, match="longer than"):
        read_passphrase(file=_secret(tmp_path, b"x" * (1 << 20)))


def test_missing_file_or_directory(tmp_path: Path) -> None:
    with pytest.raises(PassphraseError, match="No such file") as info:
        read_passphrase(file=str(tmp_path / "absent"))
    assert isinstance(info.value, WalrusfsError)
    tmp_path.chmod(0o700)
    with pytest.raises(PassphraseError, match="directory"):
        read_passphrase(file=str(tmp_path))


def test_pipe_as_file_skips_the_mode_check() -> None:
    r, w = os.pipe()
    try:
        os.write(w, b"from a pipe\n")
        os.close(w)
        assert read_passphrase(file=f"/dev/fd/{r}") == b"from a pipe"
    finally:
        os.close(r)


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def test_fd(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, b"first\nsecond\r\nthird")
    os.close(w)
    assert read_passphrase(prompt="unused", confirm=False, file=None, fd=r) == b"first"
    # Nothing beyond the newline was consumed: the same descriptor serves the next line.
    assert read_passphrase(fd=r) == b"second"
    assert read_passphrase(fd=r) == b"third"
    with pytest.raises(PassphraseError, match=r"file descriptor \d+ holds an empty passphrase"):
        read_passphrase(fd=r)
    os.fstat(r)  # still open: the caller owns it


def test_fd_too_long(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, b"y" * (MAX_PASSPHRASE + 10) + b"\n")
    os.close(w)
    with pytest.raises(PassphraseError, match="longer than"):
        read_passphrase(fd=r)


def test_bad_fd(pipe: tuple[int, int]) -> None:
    r, _w = pipe
    os.close(r)
    with pytest.raises(PassphraseError, match=f"file descriptor {r}: Bad file descriptor"):
        read_passphrase(fd=r)


def test_file_and_fd_together_are_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        read_passphrase(file=_secret(tmp_path, b"x\n"), fd=0)


def test_a_short_new_passphrase_draws_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="walrusfs.cli.passphrase"):
        read_passphrase(file=_secret(tmp_path, b"short\n"), confirm=False)
        assert not caplog.records
        read_passphrase(file=_secret(tmp_path, b"short\n"), confirm=True)
        assert "short" in caplog.text
        caplog.clear()
        read_passphrase(file=_secret(tmp_path, b"a long enough passphrase\n"), confirm=True)
        assert not caplog.records


# --- the options ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = make_parser("walrusfs-test", "test")
    add_passphrase_options(parser)
    add_passphrase_options(parser, new=True)
    return parser


def test_options(pipe: tuple[int, int], tmp_path: Path) -> None:
    r, w = pipe
    os.write(w, b"old\nnew\n")
    args = _parser().parse_args(["--passphrase-fd", str(r), "--new-passphrase-fd", str(r)])
    assert (args.passphrase_fd, args.passphrase_file) == (r, None)
    assert passphrase_from_args(args) == b"old"
    assert passphrase_from_args(args, new=True) == b"new"
    args = _parser().parse_args(["--passphrase-file", _secret(tmp_path, b"from file\n")])
    assert passphrase_from_args(args) == b"from file"


@pytest.mark.parametrize(
    "argv",
    [
        ["--passphrase-fd", "3", "--passphrase-file", "x"],
        ["--new-passphrase-fd", "3", "--new-passphrase-file", "x"],
        ["--passphrase-fd", "-1"],
        ["--passphrase-fd", "three"],
    ],
)
def test_bad_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        _parser().parse_args(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_help_lists_the_options() -> None:
    text = _parser().format_help()
    for option in (
        "--passphrase-file FILE",
        "--passphrase-fd N",
        "--new-passphrase-file FILE",
        "--new-passphrase-fd N",
    ):
        assert option in text


# --- the terminal -----------------------------------------------------------------------

_CHILD = """
import sys
from walrusfs.cli.passphrase import read_passphrase
from walrusfs.errors import WalrusfsError
try:
    got = read_passphrase(prompt="Passphrase: ", confirm=sys.argv[1] == "confirm")
except WalrusfsError as exc:
    print("ERROR", exc, file=sys.stderr, flush=True)
    sys.exit(1)
with open(sys.argv[2], "w") as out:
    out.write(got.hex())
"""


def _run_on_pty(tmp_path: Path, confirm: bool, answers: list[bytes]) -> tuple[int, bytes, str]:
    """Run read_passphrase in a child whose controlling terminal is a pty; type `answers`
    at its prompts. Returns (exit status, what the terminal showed, hex of the result)."""
    result = tmp_path / "result"
    pid, master = pty.fork()
    if pid == 0:  # child: replace ourselves at once, nothing of pytest may run here
        os.execv(
            sys.executable,
            [sys.executable, "-c", _CHILD, "confirm" if confirm else "once", str(result)],
        )
    shown = b""
    pending = list(answers)
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                continue
            try:
                data = os.read(master, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            shown += data
            if pending and shown.rstrip().endswith(b":"):
                os.write(master, pending.pop(0) + b"\n")
                shown += b"<typed>"
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    return os.waitstatus_to_exitcode(status), shown, result.read_text() if result.exists() else ""


def test_prompt_without_echo(tmp_path: Path) -> None:
    code, shown, got = _run_on_pty(tmp_path, False, [b"typed secret"])
    assert code == 0, shown
    assert bytes.fromhex(got) == b"typed secret"
    assert b"Passphrase:" in shown
    assert b"typed secret" not in shown  # not echoed


def test_prompt_with_confirmation(tmp_path: Path) -> None:
    code, shown, got = _run_on_pty(
        tmp_path, True, [b"a long new passphrase", b"a long new passphrase"]
    )
    assert code == 0, shown
    assert bytes.fromhex(got) == b"a long new passphrase"
    assert b"Repeat to confirm:" in shown


def test_prompt_confirmation_mismatch(tmp_path: Path) -> None:
    code, shown, got = _run_on_pty(
        tmp_path, True, [b"a long new passphrase", b"a typo'd passphrase"]
    )
    assert code == 1
    assert b"ERROR the two passphrases differ" in shown
    assert got == ""


def test_prompt_empty_is_refused(tmp_path: Path) -> None:
    code, shown, _ = _run_on_pty(tmp_path, False, [b""])
    assert code == 1
    assert b"ERROR the passphrase is empty" in shown


def test_no_terminal_is_a_clear_error() -> None:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, "once", os.devnull],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
        timeout=30,
    )
    assert child.returncode == 1
    assert child.stderr.decode().strip() == (
        "ERROR no terminal to ask for the passphrase: use --passphrase-file or --passphrase-fd"
    )
