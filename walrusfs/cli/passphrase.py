"""How every command gets a passphrase: a prompt on the terminal, a file, or a file descriptor.

- Prompt (the default): read from /dev/tty without echo, so it works with stdin and stdout
  redirected; with `confirm` (choosing a new passphrase) it is asked twice and a mismatch is
  refused. Without a terminal the command fails and names the options that work instead.
- `--passphrase-file FILE`: the first line of FILE. A regular file that group or others can
  access (any bit of 0077) is refused, as ssh refuses such private keys: the passphrase is the
  one secret protecting a wrapped key that is public on Walrus, and a readable file has
  probably leaked it already. A secret mounted with wider permissions (Docker, Kubernetes) is
  read with `--passphrase-fd 3 3<FILE` instead. Pipes and other non-regular files
  (`<(pass show x)`) are read without the check.
- `--passphrase-fd N`: the first line read from descriptor N, byte by byte, so nothing after
  the newline is consumed: `--passphrase-fd 3 --new-passphrase-fd 3` reads two lines. The
  descriptor is left open.

A line ends at "\\n"; one "\\r" before it is dropped too (a file saved on Windows). Nothing
else is stripped: spaces are part of the passphrase. A passphrase that is valid UTF-8 is
normalized to NFC, so the same characters typed or stored on different systems give the
same key; other bytes are used as they are. Empty passphrases, and any longer than 4096
bytes, are refused.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import stat
import unicodedata

from walrusfs.cli.common import UsageError
from walrusfs.errors import WalrusfsError

log = logging.getLogger(__name__)

MAX_PASSPHRASE = 4096
# Fewer characters than this in a new passphrase draws a warning; the wrapped key is public,
# so an offline guesser pays only Argon2id's cost per guess.
WEAK_PASSPHRASE = 12


class PassphraseError(WalrusfsError):
    """No usable passphrase could be read."""


def _normalize(raw: bytes) -> bytes:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return unicodedata.normalize("NFC", text).encode("utf-8")


def _first_line(data: bytes, source: str) -> bytes:
    line = data.partition(b"\n")[0]
    if line.endswith(b"\r"):
        line = line[:-1]
    if len(line) > MAX_PASSPHRASE:
        raise PassphraseError(f"the passphrase in {source} is longer than {MAX_PASSPHRASE} bytes")
    if not line:
        raise PassphraseError(f"{source} holds an empty passphrase")
    return line


def _from_file(path: str) -> bytes:
    source = f"passphrase file {path}"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise PassphraseError(f"cannot read {source}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISREG(st.st_mode) and mode & 0o077:
            raise PassphraseError(
                f"{source} is accessible to group or others (mode {mode:04o}): "
                f"run chmod 600 {path}, or pass it with --passphrase-fd"
            )
        if stat.S_ISDIR(st.st_mode):
            raise PassphraseError(f"{source} is a directory")
        chunks = []
        size = 0
        while size <= MAX_PASSPHRASE + 2:
            chunk = os.read(fd, MAX_PASSPHRASE + 3 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if b"\n" in chunk:
                break
    except OSError as exc:
        raise PassphraseError(f"cannot read {source}: {exc.strerror}") from None
    finally:
        os.close(fd)
    return _first_line(b"".join(chunks), source)


def _from_fd(fd: int) -> bytes:
    source = f"file descriptor {fd}"
    line = bytearray()
    try:
        while len(line) <= MAX_PASSPHRASE + 1:
            byte = os.read(fd, 1)
            if not byte or byte == b"\n":
                break
            line += byte
    except OSError as exc:
        raise PassphraseError(f"cannot read the passphrase from {source}: {exc.strerror}") from None
    return _first_line(bytes(line), source)


def _ask(prompt: str) -> bytes:
    try:
        text = getpass.getpass(prompt)
    except EOFError:
        raise PassphraseError("no passphrase entered") from None
    except UnicodeError:
        raise PassphraseError(
            "the passphrase is not valid text in this terminal's encoding"
        ) from None
    raw = text.encode("utf-8")
    if len(raw) > MAX_PASSPHRASE:
        raise PassphraseError(f"the passphrase is longer than {MAX_PASSPHRASE} bytes")
    if not raw:
        raise PassphraseError("the passphrase is empty")
    return raw


def _from_terminal(prompt: str, confirm: bool) -> bytes:
    # getpass falls back to stdin with echo when there is no terminal; we refuse instead.
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC))
    except OSError:
        raise PassphraseError(
            "no terminal to ask for the passphrase: use --passphrase-file or --passphrase-fd"
        ) from None
    first = _ask(prompt)
    if confirm and _ask("Repeat to confirm: ") != first:
        raise PassphraseError("the two passphrases differ")
    return first


def read_passphrase(
    *,
    prompt: str = "Passphrase: ",
    confirm: bool = False,
    file: str | None = None,
    fd: int | None = None,
) -> bytes:
    """A passphrase from `file`, from descriptor `fd`, or else asked on the terminal.

    `confirm` says the passphrase is being chosen: the prompt asks twice, and a short one
    draws a warning whichever way it came.
    """
    if file is not None and fd is not None:
        raise UsageError("give a passphrase file or a passphrase descriptor, not both")
    if file is not None:
        raw = _from_file(file)
    elif fd is not None:
        raw = _from_fd(fd)
    else:
        raw = _from_terminal(prompt, confirm)
    passphrase = _normalize(raw)
    if confirm and len(passphrase.decode("utf-8", "replace")) < WEAK_PASSPHRASE:
        log.warning(
            "this passphrase is short: anyone can fetch the wrapped key and guess offline; "
            "%d characters or more are advised",
            WEAK_PASSPHRASE,
        )
    return passphrase


def _descriptor(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a file descriptor: {text!r}")
    return value


def add_passphrase_options(parser: argparse.ArgumentParser, *, new: bool = False) -> None:
    """Add --passphrase-file FILE and --passphrase-fd N (or, with `new`, their
    --new-passphrase-… twins, for a command that also sets a new passphrase)."""
    prefix = "new-" if new else ""
    which = "the new passphrase" if new else "the passphrase"
    group = parser.add_argument_group(
        f"{'new ' if new else ''}passphrase",
        f"Without these options {which} is asked on the terminal.",
    )
    choice = group.add_mutually_exclusive_group()
    choice.add_argument(
        f"--{prefix}passphrase-file",
        metavar="FILE",
        help=f"read {which} from the first line of FILE (mode 0600 or stricter)",
    )
    choice.add_argument(
        f"--{prefix}passphrase-fd",
        metavar="N",
        type=_descriptor,
        help=f"read {which} from the first line of open file descriptor N (e.g. 3 3<FILE)",
    )


def passphrase_from_args(
    args: argparse.Namespace,
    *,
    prompt: str = "Passphrase: ",
    confirm: bool = False,
    new: bool = False,
) -> bytes:
    """`read_passphrase` with the options `add_passphrase_options` added."""
    prefix = "new_" if new else ""
    return read_passphrase(
        prompt=prompt,
        confirm=confirm,
        file=getattr(args, f"{prefix}passphrase_file", None),
        fd=getattr(args, f"{prefix}passphrase_fd", None),
    )
