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
        log.error("internal error", exc_info=True)
        where = "run again with --debug for details"
        for handler in logging.getLogger().handlers:
            name = getattr(getattr(handler, "stream", None), "name", None)
            if isinstance(name, str) and not name.startswith("<"):
                where = f"details in {name}"
        fail(prog, f"internal error: {type(exc).__name__}: {exc} ({where})", 70)
    sys.exit(code or 0)
