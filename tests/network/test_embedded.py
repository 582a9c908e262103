"""The embedded default: mount.walrusfs runs the devnet in its own process when none runs,
and uses one that does."""

from __future__ import annotations

import socket
from pathlib import Path

from fsmount import FsUnderTest, command
from netfs import passphrase_file

from walrusfs.devnet.info import probe_devnet
from walrusfs.fs.filesystem import read_lock_pid


def free_port_pair() -> int:
    """A port p with p and p + 1 free (the devnet's publisher and its ledger)."""
    for _ in range(100):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise AssertionError("no free pair of ports")


def test_mount_starts_the_devnet_in_its_own_process(tmp_path: Path) -> None:
    port = free_port_pair()
    pp = passphrase_file(tmp_path)
    fs = FsUnderTest(tmp_path)
    net = ["--devnet-port", str(port), "--devnet-dir", str(tmp_path / "devnet")]
    command("mkfs.walrusfs", *net, "--kdf-cost", "interactive", "--passphrase-file", str(pp),
            str(fs.dir))  # fmt: skip
    assert probe_devnet(port) is None  # mkfs's own devnet stopped with it
    command("mount.walrusfs", "--passphrase-file", str(pp), str(fs.dir), str(fs.mnt))
    try:
        info = probe_devnet(port)
        assert info is not None and info.pid == read_lock_pid(str(fs.dir))
        (fs.mnt / "x").write_bytes(b"on the embedded devnet")
        assert "committed" in command("walrusfs", "flush", str(fs.mnt)).stdout
        fs.umount()
        assert probe_devnet(port) is None
        # The blobs outlive the process: mounting again finds them.
        command("mount.walrusfs", "--passphrase-file", str(pp), str(fs.dir), str(fs.mnt))
        assert (fs.mnt / "x").read_bytes() == b"on the embedded devnet"
    finally:
        fs.cleanup()


def test_mount_uses_a_devnet_that_runs(devnet, tmp_path: Path) -> None:
    pp = passphrase_file(tmp_path)
    fs = FsUnderTest(tmp_path)
    command("mkfs.walrusfs", "--publisher", devnet.info.publisher_url, "--devnet-dir",
            str(tmp_path / "unused"), "--kdf-cost", "interactive", "--passphrase-file", str(pp),
            str(fs.dir))  # fmt: skip
    command("mount.walrusfs", "--passphrase-file", str(pp), str(fs.dir), str(fs.mnt))
    try:
        info = probe_devnet(int(devnet.info.publisher_url.rsplit(":", 1)[1]))
        assert info is not None and info.pid != read_lock_pid(str(fs.dir))
        assert not (tmp_path / "unused").exists()
    finally:
        fs.cleanup()
