"""What every walrusfs command shares: option style, logging set-up and the error edge.

Every tool builds its parser with `make_parser` and runs through `run`, so `--help` reads the
same everywhere, and a failure is one line on stderr with a non-zero exit code, never a
traceback. An unexpected exception is logged in full (to the log file when there is one) and
reported as one line that says where the details are.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from walrusfs import __version__
from walrusfs.errors import WalrusfsError

log = logging.getLogger(__name__)

CONSOLE = "walrusfs-console"
LOG_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"


class UsageError(WalrusfsError):
    """The command line itself is wrong."""

    exit_code = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def make_parser(
    prog: str, description: str, epilog: str | None = None, *, common: bool = True
) -> argparse.ArgumentParser:
    """A parser in the house style. With common=False only --help and --version are added
    (for a command whose subcommands carry the common options)."""
    parser = _Parser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    if common:
        add_common_options(parser)
    return parser


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug", action="store_true", help="log debugging messages (to stderr or --log)"
    )
    parser.add_argument("--quiet", action="store_true", help="print only errors")
    parser.add_argument("--log", metavar="FILE", help="also write the log to FILE")


def setup_logging(args: argparse.Namespace, *, stderr: bool = True) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    level = logging.DEBUG if getattr(args, "debug", False) else logging.INFO
    if getattr(args, "quiet", False):
        level = logging.WARNING
    root.setLevel(level)
    if stderr:
        console = logging.StreamHandler(sys.stderr)
        console.set_name(CONSOLE)
        console.setFormatter(logging.Formatter("%(message)s"))
        console.setLevel(level)
        root.addHandler(console)
    log_file = getattr(args, "log", None)
    if log_file:
        fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        handler = logging.StreamHandler(os.fdopen(fd, "a", buffering=1))
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root.addHandler(handler)
    # Third-party chatter stays out of a user's terminal unless --debug.
    for noisy in ("httpx", "httpcore", "gql", "pysui", "hpack", "h2"):
        logging.getLogger(noisy).setLevel(
            logging.DEBUG if level == logging.DEBUG else logging.WARNING
        )


def fail(prog: str, message: str, code: int = 1) -> NoReturn:
    print(f"{prog}: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)


def _log_traceback() -> str:
    """Send the current traceback to the log files (never the terminal, unless --debug).
    Returns where a user finds it."""
    root = logging.getLogger()
    record = log.makeRecord(
        log.name, logging.ERROR, __file__, 0, "internal error", (), sys.exc_info()
    )
    where = "run again with --debug for details"
    for handler in root.handlers:
        if handler.get_name() == CONSOLE:
            if root.level <= logging.DEBUG:
                handler.handle(record)
                where = "traceback above"
            continue
        handler.handle(record)
        name = getattr(getattr(handler, "stream", None), "name", None)
        if isinstance(name, str) and not name.startswith("<"):
            where = f"details in {name}"
    return where


def run(
    prog: str, main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None
) -> NoReturn:
    """Run a command's main function and translate every failure into one line."""
    if argv is None:
        argv = sys.argv[1:]
    try:
        code = main(argv)
    except WalrusfsError as exc:
        log.debug("failed", exc_info=True)
        fail(prog, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        fail(prog, "interrupted", 130)
    except BrokenPipeError:
        sys.exit(1)
    except Exception as exc:
        fail(prog, f"internal error: {type(exc).__name__}: {exc} ({_log_traceback()})", 70)
    sys.exit(code or 0)


_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str) -> int:
    """Parse a size such as 4096, 64k, 1M, 1MiB or 2G (binary units)."""
    t = text.strip().lower().removesuffix("ib").removesuffix("b")
    unit = t[-1:] if t[-1:] in _SIZE_UNITS and not t[-1:].isdigit() else ""
    number = t[: len(t) - len(unit)]
    try:
        value = float(number)
    except ValueError:
        raise UsageError(f"not a size: {text!r} (use e.g. 4096, 64K, 1M, 2G)") from None
    if value < 0:
        raise UsageError(f"not a size: {text!r}")
    return int(value * _SIZE_UNITS[unit])
