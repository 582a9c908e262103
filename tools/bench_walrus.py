#!/usr/bin/env python3
"""Store and read throughput of the Walrus devnet, through walrusfs's Walrus client.

    tools/bench_walrus.py                      # devnet in this process, 1 MiB and 64 MiB
    tools/bench_walrus.py --devnet-process     # devnet as `walrusfs devnet` in a child process
    tools/bench_walrus.py --url http://127.0.0.1:31415   # any running devnet or walrus daemon

For each blob size and concurrency it makes `--runs` runs. A run stores distinct blobs
(random bytes, so every store is new), `--concurrency` in flight at any time, and reads each
back whole the same way. It prints the median throughput (MB/s = 10^6 bytes per second, the
blob's own bytes, not the encoded ones) with the spread, and the CPU time spent per blob by
this process and its descendants (the devnet's processes, when it runs here or as a child):
on a shared machine the throughput moves with the neighbours' load, the CPU per blob much
less.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.network import DevnetConfig
from walrusfs.walrus import WalrusClient

MiB = 1 << 20
_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu() -> float:
    """CPU seconds (user + system) used so far by this process and its descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(name)] = int(fields[1])
        times[int(name)] = (int(fields[11]) + int(fields[12])) / _TICK
    mine = {os.getpid()}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in mine and pid not in mine:
                mine.add(pid)
                grew = True
    return sum(times.get(pid, 0.0) for pid in mine)


def _size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)i?B?", text, re.IGNORECASE)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 1M or 64MiB")
    return int(match[1]) * {"": 1, "K": 1 << 10, "M": MiB, "G": 1 << 30}[match[2].upper()]


@contextmanager
def devnet_url(args: argparse.Namespace) -> Iterator[str]:
    if args.url:
        yield args.url.rstrip("/")
        return
    with tempfile.TemporaryDirectory(prefix="bench-walrus-", dir=args.dir) as directory:
        max_body = max(args.sizes) + MiB
        if args.devnet_process:
            command = [
                sys.executable,
                "-m",
                "walrusfs.cli.control",
                "devnet",
                "--dir",
                directory,
                "--port",
                "0",
                "--nodes",
                str(args.nodes),
                "--max-body",
                str(max_body),
                "--quiet",
            ]
            process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
            try:
                assert process.stdout is not None
                url = None
                for line in process.stdout:
                    found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
                    if found:
                        url = found[1]
                    if line.startswith("Press Ctrl-C"):
                        break
                if url is None:
                    raise SystemExit("the devnet did not start")
                yield url
            finally:
                process.terminate()
                process.wait(timeout=30)
        else:
            config = DevnetConfig(
                directory=Path(directory), nodes=args.nodes, port=0, max_body=max_body
            )
            with BackgroundDevnet(config) as devnet:
                yield devnet.info.publisher_url


async def bench_size(
    client: WalrusClient, size: int, runs: int, concurrency: int, epochs: int
) -> tuple[list[float], list[float], float, float]:
    """Per-run store and read throughputs (bytes/s) and the CPU seconds per blob stored and
    per blob read. A run stores distinct blobs of `size` bytes, `concurrency` in flight
    until all are done (a new store starts as soon as one ends), then reads them back the
    same way. Small blobs get several per slot, so that a run measures a steady stream
    rather than one burst's start and finish."""
    base = os.urandom(size)
    count = max(concurrency, min(4 * concurrency, (256 << 20) // max(size, 1)))
    store_rates: list[float] = []
    read_rates: list[float] = []
    cpu = {"store": 0.0, "read": 0.0}
    for run in range(runs):
        blobs = [
            (run * count + i).to_bytes(8, "little") + base[8:] if size >= 8 else os.urandom(size)
            for i in range(count)
        ]
        ids: list[str] = [""] * count

        async def store(i: int, blobs: list[bytes] = blobs, ids: list[str] = ids) -> None:
            result = await client.store(blobs[i], epochs=epochs)
            assert result.newly_created, "a benchmark blob was already certified"
            ids[i] = result.blob_id

        async def read(i: int, blobs: list[bytes] = blobs, ids: list[str] = ids) -> None:
            data = await client.read(ids[i])
            assert len(data) == size and data[:8] == blobs[i][:8], "read back wrong bytes"

        for action, rates, kind in ((store, store_rates, "store"), (read, read_rates, "read")):
            todo = iter(range(count))

            async def worker(
                action: Callable[[int], Awaitable[None]] = action, todo: Iterator[int] = todo
            ) -> None:
                for i in todo:
                    await action(i)

            cpu_before = tree_cpu()
            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(worker)
            rates.append(size * count / (time.perf_counter() - started))
            cpu[kind] += tree_cpu() - cpu_before
        del blobs
    blobs_done = runs * count
    return store_rates, read_rates, cpu["store"] / blobs_done, cpu["read"] / blobs_done


def fmt(rates: list[float], cpu: float) -> str:
    median = statistics.median(rates) / 1e6
    spread = f"({min(rates) / 1e6:.0f}-{max(rates) / 1e6:.0f})"
    return f"{median:8.1f} MB/s {spread:<9} {cpu * 1e3:7.1f} ms"


async def main(args: argparse.Namespace) -> None:
    with devnet_url(args) as url:
        async with WalrusClient(
            publishers=[url], aggregators=[url], deadline=600, request_timeout=300
        ) as client:
            print(
                f"devnet: {url} ({'existing' if args.url else 'child process' if args.devnet_process else 'this process'})"
            )
            print(
                f"{'blob':>8} {'conc':>4} {'runs':>4}   {'store (median, range, cpu/blob)':<34} "
                f"{'read (median, range, cpu/blob)':<34}"
            )
            for size in args.sizes:
                for concurrency in args.concurrency:
                    await bench_size(client, size, 1, concurrency, args.epochs)  # warm-up
                    stores, reads, store_cpu, read_cpu = await bench_size(
                        client, size, args.runs, concurrency, args.epochs
                    )
                    label = f"{size / MiB:g} MiB" if size >= MiB else f"{size} B"
                    print(
                        f"{label:>8} {concurrency:>4} {args.runs:>4}   "
                        f"{fmt(stores, store_cpu):<34} {fmt(reads, read_cpu):<34}",
                        flush=True,
                    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=_size, default=[MiB, 64 * MiB])
    parser.add_argument("--runs", type=int, default=5, help="measured runs per size (median)")
    parser.add_argument(
        "--concurrency",
        nargs="+",
        type=int,
        default=[1, 4, 16],
        help="blobs in flight at once (a publisher under load has several)",
    )
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--url", help="benchmark this publisher/aggregator instead")
    parser.add_argument(
        "--devnet-process", action="store_true", help="run the devnet as a child process"
    )
    parser.add_argument("--dir", help="where the temporary devnet lives (default: $TMPDIR)")
    return parser.parse_args()


if __name__ == "__main__":
    trio.run(main, parse_args())
