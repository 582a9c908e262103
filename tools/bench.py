#!/usr/bin/env python3
"""Benchmark walrusfs against a plain directory on the same disk, in one run.

Each workload runs against a fresh walrusfs mount and a plain directory, alternately, several
times; the medians and the ratio mount/plain are printed (time ratios: lower is better;
throughput ratios: higher is better). The machine's ext4 slows down after mass deletions, so
medians over several runs matter more than any single figure.

    tools/bench.py [--runs 3] [--size 1G] [--only seq_write,tar_x] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from walrusfs.cli.common import parse_size  # noqa: E402

CHUNK = 1 << 20


def sh(*cmd: str, cwd: Path | None = None, stdout=subprocess.DEVNULL) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, stdout=stdout)


def drop_caches() -> None:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        print("warning: cannot drop caches (not root?); cold reads are warm", file=sys.stderr)


def tool(name: str) -> list[str]:
    module = {"mkfs": "walrusfs.cli.mkfs", "mount": "walrusfs.cli.mount",
              "umount": "walrusfs.cli.umount"}[name]  # fmt: skip
    return [sys.executable, "-m", module]


class Target:
    """Where a workload runs: a plain directory, or a freshly made walrusfs mount."""

    def __init__(
        self, name: str, base: Path, mount: bool, mount_options: str, network: list[str]
    ) -> None:
        self.name = name
        self.base = base
        self.mount = mount
        self.mount_options = mount_options
        self.network = network
        self.root = base / "mnt" if mount else base / "plain"

    def setup(self) -> None:
        if self.base.exists():
            shutil.rmtree(self.base)
        self.base.mkdir(parents=True)
        self.root.mkdir()
        if self.mount:
            pp = self.base / "passphrase"
            pp.write_text("benchmark passphrase\n")
            pp.chmod(0o600)
            secret = ["--passphrase-file", str(pp)]
            kdf = ["--kdf-cost", "interactive"] if self.network[1:2] != ["none"] else []
            sh(*tool("mkfs"), "--quiet", *self.network, *kdf, *secret, str(self.base / "fs"))
            opts = ["-o", self.mount_options] if self.mount_options else []
            sh(*tool("mount"), *secret, *opts, str(self.base / "fs"), str(self.root))

    def teardown(self) -> None:
        if self.mount:
            sh(*tool("umount"), "--quiet", str(self.root))
        shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class Workload:
    name: str
    label: str
    unit: str  # "s" (time, lower is better) or "MB/s" / "op/s" (higher is better)
    run: Callable[[Target, dict], float]
    prepare: Callable[[Target, dict], None] | None = None


def make_data(size: int) -> bytes:
    return random.Random(7).randbytes(min(size, 64 << 20))


def seq_write(t: Target, ctx: dict) -> float:
    data, size = ctx["data"], ctx["size"]
    path = t.root / "big"
    start = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    written = 0
    mv = memoryview(data)
    while written < size:
        off = written % len(data)
        n = min(CHUNK, size - written, len(data) - off)
        written += os.write(fd, mv[off : off + n])
    os.fsync(fd)
    os.close(fd)
    return size / (time.perf_counter() - start) / 1e6


def cold_read(t: Target, ctx: dict) -> float:
    path = t.root / "big"
    drop_caches()
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    total = 0
    while chunk := os.read(fd, CHUNK):
        total += len(chunk)
    os.close(fd)
    assert total == ctx["size"], (total, ctx["size"])
    return total / (time.perf_counter() - start) / 1e6


def random_reads(t: Target, ctx: dict) -> float:
    path = t.root / "big"
    drop_caches()
    rng = random.Random(11)
    blocks = ctx["size"] // 4096
    offsets = [rng.randrange(blocks) * 4096 for _ in range(ctx["random_reads"])]
    start = time.perf_counter()
    fd = os.open(path, os.O_RDONLY)
    for off in offsets:
        assert len(os.pread(fd, 4096, off)) == 4096
    os.close(fd)
    return len(offsets) / (time.perf_counter() - start)


def tar_extract(t: Target, ctx: dict) -> float:
    dest = t.root / "tree"
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir()
    start = time.perf_counter()
    sh("tar", "-xf", str(ctx["tarball"]), cwd=dest)
    return time.perf_counter() - start


def tar_create(t: Target, ctx: dict) -> float:
    drop_caches()
    out = ctx["scratch"] / "out.tar"
    start = time.perf_counter()
    # To a real file: GNU tar skips reading file data when the archive is /dev/null.
    sh("tar", "-cf", str(out), ".", cwd=t.root / "tree")
    elapsed = time.perf_counter() - start
    out.unlink()
    return elapsed


def rsync_in(t: Target, ctx: dict) -> float:
    dest = t.root / "rsynced"
    if dest.exists():
        shutil.rmtree(dest)
    start = time.perf_counter()
    sh("rsync", "-aHAXS", "--numeric-ids", f"{ctx['tree']}/", f"{dest}/")
    return time.perf_counter() - start


def rsync_nochange(t: Target, ctx: dict) -> float:
    start = time.perf_counter()
    sh("rsync", "-aHAXS", "--numeric-ids", f"{ctx['tree']}/", f"{t.root / 'rsynced'}/")
    return time.perf_counter() - start


def find_du(t: Target, ctx: dict) -> float:
    drop_caches()
    start = time.perf_counter()
    sh("find", str(t.root / "rsynced"), "-printf", "%s %p\n")
    sh("du", "-s", str(t.root / "rsynced"))
    return time.perf_counter() - start


def remove(t: Target, ctx: dict) -> float:
    start = time.perf_counter()
    sh("rm", "-rf", str(t.root / "rsynced"))
    return time.perf_counter() - start


WORKLOADS = [
    Workload("seq_write", "sequential write (+fsync)", "MB/s", seq_write),
    Workload("cold_read", "cold sequential read", "MB/s", cold_read),
    Workload("rand_read", "random 4 KiB reads (cold)", "op/s", random_reads),
    Workload("tar_x", "tar extraction", "s", tar_extract),
    Workload("tar_c", "tar c of the tree", "s", tar_create),
    Workload("rsync", "rsync -aHAXS in", "s", rsync_in),
    Workload("rsync_nc", "rsync, nothing changed", "s", rsync_nochange),
    Workload("find_du", "find + du (cold)", "s", find_du),
    Workload("rm", "rm -rf of the tree", "s", remove),
]

# Targets from the issue: throughput at least this share of plain; time at most this multiple.
TARGETS = {"seq_write": 0.5, "cold_read": 0.7, "tar_x": 15, "rsync": 10, "rsync_nc": 10, "rm": 10}


def make_tarball(tree: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w") as tar:
        tar.add(tree, arcname=".", filter=lambda ti: None if "site-packages" in ti.name else ti)
    return dest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs of each workload (default 3)")
    parser.add_argument("--size", default="1G", help="size of the sequential file (default 1G)")
    parser.add_argument("--random-reads", type=int, default=2000)
    parser.add_argument("--only", help="comma-separated workloads: " +
                        ",".join(w.name for w in WORKLOADS))  # fmt: skip
    parser.add_argument("--dir", help="work directory (default: a temporary one under /var/tmp)")
    parser.add_argument("--mount-options", default="", help="-o options for mount.walrusfs")
    parser.add_argument("--tree", help="tree to extract and rsync (default: Python's stdlib)")
    parser.add_argument(
        "--network", default="none",
        help="the filesystem's network: none (default: the filesystem alone), or the URL of a"
             " running devnet's publisher (uploads then run in the background, as in use)",
    )  # fmt: skip
    args = parser.parse_args()

    import sysconfig

    work = Path(args.dir or tempfile.mkdtemp(prefix="walrusfs-bench-", dir="/var/tmp"))
    work.mkdir(parents=True, exist_ok=True)
    scratch = work / "scratch"
    scratch.mkdir(exist_ok=True)
    tree_src = Path(args.tree or sysconfig.get_paths()["stdlib"])
    tree = scratch / "tree"
    if not tree.exists():
        sh("rsync", "-aHS", "--exclude=/site-packages/", f"{tree_src}/", f"{tree}/")
    entries = sum(len(d) + len(f) for _, d, f in os.walk(tree))
    size = parse_size(args.size)
    ctx = {
        "size": size,
        "data": make_data(size),
        "tarball": make_tarball(tree, scratch / "tree.tar"),
        "tree": tree,
        "scratch": scratch,
        "random_reads": args.random_reads,
    }
    selected = [w for w in WORKLOADS if not args.only or w.name in args.only.split(",")]
    print(f"tree: {entries} entries, {sum(f.stat().st_size for f in tree.rglob('*') if f.is_file() and not f.is_symlink()) / 1e6:.0f} MB;"
          f" sequential file {size / 2**30:.2f} GiB; {args.runs} runs each; medians")  # fmt: skip
    results: dict[str, dict[str, list[float]]] = {
        w.name: {"plain": [], "walrusfs": []} for w in selected
    }
    for run in range(args.runs):
        for kind in ("plain", "walrusfs") if run % 2 == 0 else ("walrusfs", "plain"):
            network = (["--network", "none"] if args.network == "none"
                       else ["--publisher", args.network, "--no-embedded-devnet"])  # fmt: skip
            t = Target(kind, work / kind, kind == "walrusfs", args.mount_options, network)
            t.setup()
            try:
                for w in selected:
                    value = w.run(t, ctx)
                    results[w.name][kind].append(value)
                    print(
                        f"  run {run + 1} {kind:8s} {w.name:9s} {value:10.2f} {w.unit}", flush=True
                    )
            finally:
                t.teardown()

    print()
    print(f"{'workload':32s} {'plain':>12s} {'walrusfs':>12s} {'ratio':>8s}  target")
    failed = 0
    for w in selected:
        plain = statistics.median(results[w.name]["plain"])
        ours = statistics.median(results[w.name]["walrusfs"])
        ratio = ours / plain
        target = TARGETS.get(w.name)
        verdict = ""
        if target is not None:
            if w.unit == "s":
                ok = ratio <= target
                verdict = f"<= {target}x {'ok' if ok else 'MISSED'}"
            else:
                ok = ratio >= target
                verdict = f">= {target}x {'ok' if ok else 'MISSED'}"
            failed += not ok
        print(
            f"{w.label:32s} {plain:9.2f} {w.unit:4s} {ours:9.2f} {w.unit:4s} {ratio:7.2f}x  {verdict}"
        )
    if not args.dir:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
