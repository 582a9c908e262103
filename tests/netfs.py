"""Helpers for tests of filesystems on a network: a devnet for the session, and filesystems
made, mounted, flushed and restored through the real commands."""

from __future__ import annotations

import json
import os
from pathlib import Path

from fsmount import FsUnderTest, command

PASSPHRASE = b"correct horse battery staple"


def passphrase_file(base: Path, text: bytes = PASSPHRASE) -> Path:
    path = base / "passphrase"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(fd, text + b"\n")
        os.close(fd)
    return path


class NetFs(FsUnderTest):
    """A filesystem on the session's devnet."""

    def __init__(self, base: Path, publisher: str, name: str = "fs") -> None:
        super().__init__(base, name)
        self.publisher = publisher
        self.pp = passphrase_file(base)

    @property
    def net_args(self) -> list[str]:
        return ["--network", "devnet", "--publisher", self.publisher, "--no-embedded-devnet"]

    def mkfs(self, *args: str) -> None:
        command("mkfs.walrusfs", *self.net_args, "--kdf-cost", "interactive",
                "--passphrase-file", str(self.pp), *args, str(self.dir))  # fmt: skip

    def mount(self, *options: str) -> None:
        opts = ["-o", ",".join(options)] if options else []
        command("mount.walrusfs", "--passphrase-file", str(self.pp), *opts,
                str(self.dir), str(self.mnt))  # fmt: skip
        assert self.is_mounted()

    def flush(self) -> str:
        return command("walrusfs", "flush", str(self.mnt)).stdout

    @property
    def config(self) -> dict:
        return json.loads((self.dir / "walrusfs.json").read_text())

    @property
    def anchor(self) -> str:
        # Remembered once read, as a user keeps it: restores work after DIR is gone.
        if not getattr(self, "_anchor", None):
            self._anchor = self.config["anchor"]
        return self._anchor

    def export_key(self) -> Path:
        path = self.dir.parent / f"{self.dir.name}.walletkey"
        if not path.exists():
            command("walrusfs", "wallet", str(self.dir), "--export-key", str(path))
        return path

    def restore_into(
        self, other: FsUnderTest, *options: str, check: bool = True, aggregator: str | None = None
    ):
        """Mount the filesystem from its anchor alone into `other`'s (empty) directory."""
        opts = ["-o", ",".join(options)] if options else []
        extra = ["--aggregator", aggregator] if aggregator else []
        proc = command(
            "mount.walrusfs", *self.net_args, *extra, "--anchor", self.anchor,
            "--wallet-key", str(self.export_key()), "--passphrase-file", str(self.pp),
            *opts, str(other.dir), str(other.mnt), check=check,
        )  # fmt: skip
        return proc

    def status(self) -> dict:
        from walrusfs.fs import control

        return control.request(str(self.dir), {"op": "status"}, timeout=30)
