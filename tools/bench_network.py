#!/usr/bin/env python3
"""Benchmark walrusfs on the devnet: what a user waits for when data goes to Walrus.

- unmount: write N bytes of new (random) data, then time umount.walrusfs, which returns
  once everything is stored on the devnet and anchored on Sui;
- mount from an empty cache: put a tree of ~10,000 files on a filesystem, commit, and time
  mount.walrusfs rebuilding it on a "fresh machine" from the anchor alone (the metadata;
  file data is fetched when read), then a full read of the tree from there.

    tools/bench_network.py [--size 1G] [--files 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from walrusfs.cli.common import parse_size  # noqa: E402
from walrusfs.fs import control  # noqa: E402

PASSPHRASE = b"benchmark passphrase"


def tool(name: str, *args: str, **kw) -> subprocess.CompletedProcess:
    module = {"mkfs": "walrusfs.cli.mkfs", "mount": "walrusfs.cli.mount",
              "umount": "walrusfs.cli.umount", "walrusfs": "walrusfs.cli.control"}[name]  # fmt: skip
    return subprocess.run([sys.executable, "-m", module, *args], check=True,
                          capture_output=True, text=True, **kw)  # fmt: skip


class Fs:
    def __init__(self, base: Path, publisher: str, name: str) -> None:
        self.dir = base / name
        self.mnt = base / f"{name}-mnt"
        self.mnt.mkdir(parents=True)
        self.publisher = publisher
        self.pp = base / "passphrase"
        if not self.pp.exists():
            self.pp.write_bytes(PASSPHRASE + b"\n")
            self.pp.chmod(0o600)
        self.net = ["--publisher", publisher, "--no-embedded-devnet"]

    def mkfs(self) -> None:
        tool("mkfs", *self.net, "--kdf-cost", "interactive", "--passphrase-file", str(self.pp),
             str(self.dir))  # fmt: skip

    def mount(self) -> None:
        tool("mount", "--passphrase-file", str(self.pp), str(self.dir), str(self.mnt))

    def umount(self) -> None:
        tool("umount", "--quiet", str(self.mnt))


def write_new_data(root: Path, size: int) -> None:
    fd = os.open(root / "data", os.O_WRONLY | os.O_CREAT, 0o644)
    written = 0
    while written < size:
        # Random bytes throughout: no block may deduplicate against another, whatever the
        # filesystem's block size.
        written += os.write(fd, os.urandom(min(16 << 20, size - written)))
    os.close(fd)


def make_tree(root: Path, files: int) -> None:
    rng = random.Random(5)
    per_dir = 100
    for i in range(files):
        d = root / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        (d / f"f{i:05d}").write_bytes(rng.randbytes(rng.randrange(100, 8000)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G", help="new data written before unmount")
    parser.add_argument("--files", type=int, default=10_000, help="files of the restored tree")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = parse_size(args.size)

    from walrusfs.devnet import BackgroundDevnet, DevnetConfig

    work = Path(tempfile.mkdtemp(prefix="walrusfs-netbench-", dir="/var/tmp"))
    unmount_times, dirty_at_unmount, mount_times, read_times = [], [], [], []
    try:
        with BackgroundDevnet(DevnetConfig(directory=work / "devnet", port=0)) as bg:
            publisher = bg.devnet.info.publisher_url
            for run in range(args.runs):
                base = work / f"run{run}"
                base.mkdir()
                fs = Fs(base, publisher, "fs")
                fs.mkfs()
                fs.mount()
                write_new_data(fs.mnt, size)
                dirty = control.request(str(fs.dir), {"op": "status"})["dirty_bytes"]
                t = time.perf_counter()
                fs.umount()
                unmount_times.append(time.perf_counter() - t)
                dirty_at_unmount.append(dirty)
                print(f"run {run + 1}: umount of {size / 2**30:.2f} GiB new data"
                      f" ({dirty / 2**20:.0f} MiB still dirty): {unmount_times[-1]:.1f} s",
                      flush=True)  # fmt: skip

                src = Fs(base, publisher, "tree")
                src.mkfs()
                src.mount()
                make_tree(src.mnt, args.files)
                tool("walrusfs", "flush", str(src.mnt))
                src.umount()
                anchor = json.loads((src.dir / "walrusfs.json").read_text())["anchor"]
                key = base / "key"
                tool("walrusfs", "wallet", str(src.dir), "--export-key", str(key))
                fresh = base / "fresh"
                fresh_mnt = base / "fresh-mnt"
                fresh_mnt.mkdir()
                t = time.perf_counter()
                tool("mount", *src.net, "--anchor", anchor, "--wallet-key", str(key),
                     "--passphrase-file", str(src.pp), str(fresh), str(fresh_mnt))  # fmt: skip
                mount_times.append(time.perf_counter() - t)
                t = time.perf_counter()
                subprocess.run(
                    ["tar", "-cf", str(base / "out.tar"), "."], cwd=fresh_mnt, check=True
                )
                read_times.append(time.perf_counter() - t)
                tool("umount", "--quiet", str(fresh_mnt))
                print(f"run {run + 1}: mount from an empty cache ({args.files} files):"
                      f" {mount_times[-1]:.1f} s; reading all of it: {read_times[-1]:.1f} s",
                      flush=True)  # fmt: skip
                shutil.rmtree(base, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"umount, {size / 2**30:.2f} GiB of new data: median {statistics.median(unmount_times):.1f} s"
          f" ({statistics.median(dirty_at_unmount) / 2**20:.0f} MiB still to upload at unmount)")  # fmt: skip
    print(
        f"mount from an empty cache, {args.files} files: median {statistics.median(mount_times):.1f} s"
    )
    print(f"then reading the whole tree: median {statistics.median(read_times):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
