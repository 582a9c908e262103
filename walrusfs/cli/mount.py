"""mount.walrusfs: mount a walrusfs filesystem.

Called directly, or by mount(8) as `mount.walrusfs SOURCE DIR [-sfnv] [-o OPTIONS]` for
`mount -t walrusfs` and /etc/fstab. Detaches by default: the command returns once the
filesystem is mounted, or fails with the daemon's one-line reason.
"""

from __future__ import annotations

import argparse
import errno
import logging
import logging.handlers
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from walrusfs.cli.common import UsageError, make_parser, parse_size, run, setup_logging
from walrusfs.cli.netopts import (
    add_network_options,
    add_wallet_options,
    network_from_args,
    wallet_key_from_args,
)
from walrusfs.cli.passphrase import add_passphrase_options, passphrase_from_args
from walrusfs.errors import WalrusfsError
from walrusfs.fs import config as fsconfig
from walrusfs.fs import daemon, filesystem, mounts, provision
from walrusfs.fs.config import Network
from walrusfs.fs.dispatch import DEFAULT_SPIN_US
from walrusfs.fs.filesystem import Filesystem

log = logging.getLogger(__name__)

PROG = "mount.walrusfs"

# Options of mount(8) and fstab that concern mount(8) itself or do not apply to us.
_IGNORED = {
    "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "_netdev",
    "nofail", "async", "sync", "dirsync", "silent", "loud", "rw", "default_permissions",
}  # fmt: skip
# Kernel mount flags handed to the FUSE mount unchanged.
_KERNEL_FLAGS = {
    "suid", "nosuid", "dev", "nodev", "exec", "noexec", "atime", "noatime", "diratime",
    "nodiratime", "relatime", "norelatime", "strictatime", "nostrictatime", "lazytime",
    "nolazytime",
}  # fmt: skip

OPTIONS_HELP = """\
mount options (-o, comma-separated):
  ro                 mount read-only
  allow_other        let users other than the mounting one access the filesystem
  allow_root         let root access a filesystem mounted by another user
  commit=SECONDS     seconds between commits to Walrus and Sui (default 300; walrusfs
                     flush and unmount commit at once)
  dbcommit=SECONDS   seconds between commits of the local database (default 1; fsync()
                     commits at once)
  cache_size=SIZE    keep at most SIZE of data in the local cache (default 16G): clean
                     blocks beyond it are evicted, and fetched again when read
  dirty_limit=SIZE   writers wait while more than SIZE is not yet uploaded (default 4G)
  nonempty           mount although MOUNTPOINT is not empty (what is in it stays hidden
                     until the filesystem is unmounted)
  takeover           become the filesystem's writer although the anchor names another
                     read-write mount (only when that mount is gone for good)
  snapshot=SEQ       mount commit SEQ of the filesystem in SOURCE, read-only, beside a
                     read-write mount of it
  anchor=OBJECT_ID   SOURCE is empty: rebuild the filesystem there from this anchor
  wallet=FILE        the Sui private key for anchor= (suiprivkey1... or base64)
  passphrase_file=FILE  read the passphrase from FILE (mode 0600)
  foreground         stay in the foreground (same as --foreground)
  log=FILE           log to FILE (default: DIR/mount.log when detached)
  debug              log debugging messages
  no_writeback_cache let every write(2) reach the daemon at once instead of collecting
                     writes in the kernel's page cache (faster for metadata-heavy work)
  busy_poll=USEC     after each request, look for the next one for USEC microseconds
                     before sleeping (default 50; 0 never): saves a wake-up per request
                     when programs like tar and rsync send them back to back
  nosuid, nodev, noexec, noatime, ...  kernel mount flags, passed through
  defaults, auto, noauto, user, _netdev, nofail, x-*, comment=...  accepted for fstab

Examples:
  mount.walrusfs /var/lib/walrusfs/backup /mnt/backup
  mount -t walrusfs /var/lib/walrusfs/backup /mnt/backup
  fstab: /var/lib/walrusfs/backup  /mnt/backup  walrusfs  defaults,nofail  0  0
"""


def build_parser() -> argparse.ArgumentParser:
    parser = make_parser(
        PROG,
        "Mount the walrusfs filesystem in SOURCE (a directory made by mkfs.walrusfs)"
        " at MOUNTPOINT.",
        epilog=OPTIONS_HELP,
    )
    parser.add_argument("source", metavar="SOURCE", help="the filesystem's directory")
    parser.add_argument("mountpoint", metavar="MOUNTPOINT", help="an existing empty directory")
    parser.add_argument(
        "-o",
        dest="options",
        action="append",
        default=[],
        metavar="OPTIONS",
        help="mount options, comma-separated (see below)",
    )
    parser.add_argument(
        "--foreground", action="store_true", help="stay in the foreground instead of detaching"
    )
    parser.add_argument(
        "--anchor", metavar="OBJECT_ID",
        help="rebuild the filesystem into an empty SOURCE from this anchor",
    )  # fmt: skip
    add_network_options(parser)
    add_wallet_options(parser)
    add_passphrase_options(parser)
    # What mount(8) passes to helpers: sloppy, fake, no-mtab, verbose, and the type.
    parser.add_argument("-s", dest="sloppy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-f", dest="fake", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-n", dest="nomtab", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-v", dest="verbose", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-t", dest="fstype", help=argparse.SUPPRESS)
    parser.add_argument("-N", dest="namespace", help=argparse.SUPPRESS)
    return parser


def parse_options(items: Sequence[str], args: argparse.Namespace) -> daemon.MountOptions:
    read_only = allow_other = allow_root = debug_fuse = takeover = False
    writeback = True
    args.snapshot = None
    args.nonempty = False
    commit = 1.0
    manifest_commit: float | None = None
    busy_poll = DEFAULT_SPIN_US
    sizes: dict[str, int] = {}
    flags: set[str] = set()
    for item in ",".join(items).split(","):
        opt = item.strip()
        if not opt or opt in _IGNORED or opt.startswith(("x-", "comment=")):
            continue
        name, _, value = opt.partition("=")
        if opt == "ro":
            read_only = True
        elif opt == "allow_other":
            allow_other = True
        elif opt == "allow_root":
            allow_root = True
        elif opt == "foreground":
            args.foreground = True
        elif opt == "debug":
            args.debug = True
        elif opt == "debug_fuse":
            debug_fuse = True
        elif opt in ("writeback_cache", "no_writeback_cache"):
            writeback = opt == "writeback_cache"
        elif name == "log" and value:
            args.log = value
        elif opt == "takeover":
            takeover = True
        elif opt == "nonempty":
            args.nonempty = True
        elif name == "snapshot" and value:
            try:
                args.snapshot = int(value)
            except ValueError:
                raise UsageError(f"snapshot= takes a commit number, not {value!r}") from None
            read_only = True
        elif name == "anchor" and value:
            args.anchor = value
        elif name == "wallet" and value:
            args.wallet_key = value
        elif name == "passphrase_file" and value:
            args.passphrase_file = value
        elif name == "busy_poll" and value:
            try:
                busy_poll = int(value)
            except ValueError:
                raise UsageError(f"busy_poll= takes microseconds, not {value!r}") from None
            if not 0 <= busy_poll <= 10_000:
                raise UsageError("busy_poll= must be between 0 and 10000 microseconds")
        elif name in ("cache_size", "dirty_limit") and value:
            sizes[name] = parse_size(value)
        elif name in ("commit", "dbcommit") and value:
            try:
                seconds = float(value)
            except ValueError:
                raise UsageError(f"{name}= takes seconds, not {value!r}") from None
            if not 0 < seconds <= 86400:
                raise UsageError(f"{name}= must be between 0 and 86400 seconds")
            if name == "commit":
                manifest_commit = seconds
            else:
                commit = seconds
        elif opt in _KERNEL_FLAGS:
            flags.add(opt)
        elif not args.sloppy:
            raise UsageError(f"unknown mount option {opt!r} (see {PROG} --help)")
    return daemon.MountOptions(
        read_only=read_only,
        allow_other=allow_other,
        allow_root=allow_root,
        kernel_flags=frozenset(flags),
        commit_interval=commit,
        manifest_interval=manifest_commit,
        debug_fuse=debug_fuse,
        writeback_cache=writeback,
        takeover=takeover,
        cache_size=sizes.get("cache_size"),
        dirty_limit=sizes.get("dirty_limit"),
        busy_poll_us=busy_poll,
    )


def check_mountpoint(path: str, *, nonempty: bool = False) -> str:
    path = os.path.abspath(path)
    try:
        os.stat(path)
    except FileNotFoundError:
        raise WalrusfsError(f"mount point {path} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ENOTCONN:
            raise WalrusfsError(
                f"{path} is a mount whose filesystem daemon is gone; unmount it first"
                f" (umount.walrusfs {path})"
            ) from None
        raise WalrusfsError(f"cannot use mount point {path}: {exc.strerror}") from None
    if not os.path.isdir(path):
        raise WalrusfsError(f"mount point {path} is not a directory")
    existing = mounts.find(path)
    if existing is not None:
        raise WalrusfsError(
            f"mount point {path} is busy: {existing.source} ({existing.fstype}) is mounted there"
        )
    if not nonempty:
        # Files in the mount point would be hidden while mounted: after a crash, a program
        # that went on writing once the dead mount was detached leaves its files there.
        try:
            with os.scandir(path) as entries:
                occupied = next(entries, None) is not None
        except OSError:
            occupied = False  # not ours to read: the mount itself will say what is wrong
        if occupied:
            raise WalrusfsError(
                f"mount point {path} is not empty, and mounting would hide what is in it;"
                " move that away, or mount with -o nonempty"
            )
    return path


@dataclass(frozen=True)
class Plan:
    """What the daemon does before it mounts: which directory, rebuilt from where."""

    directory: str
    passphrase: bytes | None = None
    # Rebuild `directory` from the network first: (network, anchor, wallet key or the
    # directory of a wallet to copy, commit or None for the head).
    restore: tuple[Network, str, str | None, str | None, int | None] | None = None


def plan(args: argparse.Namespace, source: str) -> Plan:
    """Decide, before forking (the passphrase may need a terminal), what to mount."""
    if args.snapshot is not None:
        if not filesystem.is_filesystem(source):
            raise WalrusfsError(f"{source} is not a walrusfs filesystem")
        cfg = fsconfig.load(source)
        if cfg.network is None or cfg.anchor is None:
            raise WalrusfsError("snapshots need a filesystem on a network")
        directory = os.path.join(source, "snapshots", str(args.snapshot))
        passphrase = passphrase_from_args(args)
        if filesystem.is_filesystem(directory):
            return Plan(directory, passphrase)
        wallet = os.path.join(source, fsconfig.WALLET_DIR)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return Plan(directory, passphrase, (cfg.network, cfg.anchor, None, wallet, args.snapshot))
    if not filesystem.is_filesystem(source) and args.anchor:
        network = network_from_args(args)
        if network is None:
            raise UsageError("anchor= needs a network")
        key = wallet_key_from_args(args)
        if key is None:
            raise UsageError("anchor= needs the wallet's key (-o wallet=FILE or --wallet-key FILE)")
        filesystem.check_new_directory(source)
        os.makedirs(source, mode=0o700, exist_ok=True)
        return Plan(source, passphrase_from_args(args), (network, args.anchor, key, None, None))
    if filesystem.is_filesystem(source) and fsconfig.load(source).network is not None:
        return Plan(source, passphrase_from_args(args))
    return Plan(source)


def serve(plan: Plan, mountpoint: str, opts: daemon.MountOptions, notify: _Notifier | None) -> None:
    if plan.restore is not None:
        network, anchor, key, wallet_dir, seq = plan.restore
        assert plan.passphrase is not None
        trio.run(
            lambda: provision.restore(
                plan.directory, network, anchor, plan.passphrase or b"",
                wallet_key=key, wallet_dir=wallet_dir, seq=seq,
            )
        )  # fmt: skip
    fs = Filesystem(plan.directory)

    def ready() -> None:
        if notify is not None:
            notify.ok()

    trio.run(lambda: daemon.run(fs, mountpoint, opts, ready, passphrase=plan.passphrase))


class _Notifier:
    """The daemon's half of the readiness pipe: one line, then closed."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def _send(self, line: str) -> None:
        if self.fd >= 0:
            try:
                os.write(self.fd, line.encode("utf-8", "replace") + b"\n")
            except OSError:
                pass
            os.close(self.fd)
            self.fd = -1

    def ok(self) -> None:
        self._send("OK")

    def fail(self, message: str) -> None:
        self._send("ERR " + " ".join(message.split()))


def _detach(
    the_plan: Plan, mountpoint: str, opts: daemon.MountOptions, args: argparse.Namespace
) -> int:
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        with os.fdopen(read_fd, "rb") as pipe:
            line = pipe.readline().decode("utf-8", "replace").strip()
        if line == "OK":
            return 0
        if line.startswith("ERR "):
            raise WalrusfsError(line[4:])
        _, status = os.waitpid(pid, 0)
        raise WalrusfsError(
            f"the filesystem daemon exited before mounting (status {status});"
            f" see {args.log or 'its log'}"
        )
    # The daemon.
    os.close(read_fd)
    notifier = _Notifier(write_fd)
    code = 0
    try:
        os.setsid()
        os.chdir("/")
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        _daemon_logging(args, the_plan.directory)
        serve(the_plan, mountpoint, opts, notifier)
    except WalrusfsError as exc:
        log.error("%s", exc)
        notifier.fail(str(exc))
        code = 1
    except BaseException as exc:
        log.exception("daemon failed")
        notifier.fail(f"internal error: {type(exc).__name__}: {exc}")
        code = 70
    finally:
        notifier.fail("the filesystem daemon ended")
        logging.shutdown()
        os._exit(code)


def _daemon_logging(args: argparse.Namespace, directory: str) -> None:
    if not args.log:
        log_dir = directory if os.path.isdir(directory) else os.path.dirname(directory)
        args.log = os.path.join(os.path.abspath(log_dir), "mount.log")
    setup_logging(args, stderr=False)


def _main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    opts = parse_options(args.options, args)
    setup_logging(args)
    if args.fake:
        return 0
    source = os.path.abspath(args.source)
    mountpoint = check_mountpoint(args.mountpoint, nonempty=args.nonempty)
    os.umask(0o077)
    the_plan = plan(args, source)
    if args.foreground:
        serve(the_plan, mountpoint, opts, None)
        return 0
    return _detach(the_plan, mountpoint, opts, args)


def main() -> None:
    run(PROG, _main)


if __name__ == "__main__":
    sys.exit(main())  # type: ignore[func-returns-value]
