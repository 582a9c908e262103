"""Where the devnet's storage nodes run: in the devnet's own trio loop, or in a process of their own.

A storage node's work per share (HTTP, checking the metadata against the blob id, hashing the
share, writing it durably, signing) is Python that holds its process's GIL. With the nodes in
the publisher's process, a store's node work and publisher work queue for one core; with the
nodes in a node-host process (the default), they run on the other core, and the publisher,
aggregator and ledger keep theirs. Both ways, every node is its own HTTP server on 127.0.0.1
with its own directory, and talks to its peers over HTTP, exactly as before.

`LocalNodes` runs nodes in the current trio loop; the node-host process is a `LocalNodes` too,
driven by `NodeHostProcess` over its stdin/stdout, one JSON object per line:

    -> {"op": "start", "index": i, "port": p}      <- {"port": bound, "publicKey": base64}
    -> {"op": "stop", "index": i}                  <- {}
    -> {"op": "faults", "index": i, "faults": {…}} <- {}
    -> {"op": "ready"}                             <- {}     (the committee is published)
    any failure                                    <- {"error": "one line"}

The first line the process reads is its configuration (devnet directory, system parameters,
node settings); it answers {"ready": true} once it can serve. The process reads chain state from
the ledger's database, read-only (devnet.ledgerview), and ends when its stdin closes, so it never
outlives the devnet that started it.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import trio

from walrusfs.devnet import gcsettings
from walrusfs.devnet.errors import DevnetError
from walrusfs.devnet.node import NodeFaults, NodeSettings, StorageNode
from walrusfs.devnet.registry import NodeChainView, SystemParams
from walrusfs.devnet.retrieval import FetchPolicy

log = logging.getLogger(__name__)

_STOP_TIMEOUT = 10.0


class NodeRunner(Protocol):
    """Starts and stops the devnet's storage nodes, wherever they run."""

    async def start(self, index: int, port: int) -> tuple[int, bytes]:
        """Start node `index` on `port` (0: any); returns its bound port and public key."""
        ...

    async def stop(self, index: int) -> None:
        """Stop node `index` (server and maintenance) and wait until it has stopped."""
        ...

    async def set_faults(self, index: int, faults: NodeFaults) -> None: ...

    async def committee_ready(self) -> None:
        """The committee is published: nodes may start their maintenance (and repair)."""
        ...


def node_directory(directory: Path, index: int) -> Path:
    return directory / "nodes" / f"node-{index:02d}"


class LocalNodes:
    """Storage nodes in the current trio loop (see `open`)."""

    def __init__(
        self,
        nursery: trio.Nursery,
        directory: Path,
        registry: NodeChainView,
        settings: NodeSettings,
        host: str,
    ) -> None:
        self._nursery = nursery
        self._directory = directory
        self._registry = registry
        self._settings = settings
        self._host = host
        self._scopes: dict[int, trio.CancelScope] = {}
        self._done: dict[int, trio.Event] = {}
        self._faults: dict[int, NodeFaults] = {}
        self._ready = trio.Event()
        self.nodes: dict[int, StorageNode] = {}
        """The running (or last run) node of each index."""

    @classmethod
    @asynccontextmanager
    async def open(
        cls, directory: Path, registry: NodeChainView, settings: NodeSettings, host: str
    ) -> AsyncIterator[LocalNodes]:
        async with trio.open_nursery() as nursery:
            yield cls(nursery, directory, registry, settings, host)
            nursery.cancel_scope.cancel()

    async def start(self, index: int, port: int) -> tuple[int, bytes]:
        if index in self._scopes:
            raise DevnetError(f"node {index} is already running")
        node = StorageNode(
            index, node_directory(self._directory, index), self._registry, self._settings
        )
        node.faults = self._faults.get(index, NodeFaults())
        self.nodes[index] = node
        done = self._done[index] = trio.Event()
        bound: int = await self._nursery.start(self._run, index, node, port, done)
        return bound, node.public_key

    async def _run(
        self,
        index: int,
        node: StorageNode,
        port: int,
        done: trio.Event,
        task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with trio.CancelScope() as scope:
                self._scopes[index] = scope
                await node.run(
                    host=self._host,
                    port=port,
                    committee_ready=self._ready,
                    task_status=task_status,
                )
        finally:
            if self._scopes.get(index) is scope:
                del self._scopes[index]
            done.set()

    async def stop(self, index: int) -> None:
        scope = self._scopes.get(index)
        if scope is None:
            return
        scope.cancel()
        await self._done[index].wait()

    async def set_faults(self, index: int, faults: NodeFaults) -> None:
        self._faults[index] = faults
        node = self.nodes.get(index)
        if node is not None:
            node.faults = faults

    async def committee_ready(self) -> None:
        self._ready.set()


# -- the node-host process, parent side


class NodeHostProcess:
    """Storage nodes in a child process (see the module docstring); use `open`."""

    def __init__(self, process: trio.Process) -> None:
        self._process = process
        self._lock = trio.Lock()
        self._buffer = b""

    @classmethod
    @asynccontextmanager
    async def open(
        cls,
        directory: Path,
        params: SystemParams,
        settings: NodeSettings,
        host: str,
    ) -> AsyncIterator[NodeHostProcess]:
        config = {
            "directory": str(directory),
            "params": asdict(params),
            "settings": {
                "maintenance_interval": settings.maintenance_interval,
                "pending_grace": settings.pending_grace,
                "max_share": settings.max_share,
                "segment_size": settings.segment_size,
                "fetch": asdict(settings.fetch),
            },
            "host": host,
            "logLevel": logging.getLogger().getEffectiveLevel(),
        }
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "walrusfs.devnet.nodehost"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        host_process = cls(process)
        try:
            with trio.fail_after(60):
                reply = await host_process._call(config)
            if not reply.get("ready"):
                raise DevnetError(f"the storage node process did not start: {reply}")
            yield host_process
        finally:
            with trio.CancelScope(shield=True):
                await host_process._close()

    @property
    def pid(self) -> int:
        return self._process.pid

    async def _close(self) -> None:
        process = self._process
        if process.stdin is not None:
            await process.stdin.aclose()  # the process ends when its stdin closes
        with trio.move_on_after(_STOP_TIMEOUT):
            await process.wait()
        if process.returncode is None:
            log.warning("the storage node process did not stop; killing it")
            process.kill()
            await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()

    async def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        process = self._process
        assert process.stdin is not None and process.stdout is not None
        async with self._lock:
            try:
                await process.stdin.send_all(json.dumps(request).encode() + b"\n")
                while b"\n" not in self._buffer:
                    data = await process.stdout.receive_some(65536)
                    if not data:
                        raise DevnetError(f"the storage node process exited ({process.poll()})")
                    self._buffer += data
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise DevnetError(f"the storage node process is gone: {exc}") from None
            line, self._buffer = self._buffer.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise DevnetError(f"storage node process: {reply['error']}")
        return reply

    async def start(self, index: int, port: int) -> tuple[int, bytes]:
        reply = await self._call({"op": "start", "index": index, "port": port})
        return int(reply["port"]), base64.b64decode(reply["publicKey"])

    async def stop(self, index: int) -> None:
        await self._call({"op": "stop", "index": index})

    async def set_faults(self, index: int, faults: NodeFaults) -> None:
        await self._call({"op": "faults", "index": index, "faults": asdict(faults)})

    async def committee_ready(self) -> None:
        await self._call({"op": "ready"})


# -- the node-host process itself


async def _serve_commands(config: dict[str, Any]) -> None:
    from walrusfs.devnet.ledgerview import LedgerView

    directory = Path(config["directory"])
    params = SystemParams(**config["params"])
    raw = config["settings"]
    settings = NodeSettings(
        maintenance_interval=float(raw["maintenance_interval"]),
        pending_grace=float(raw["pending_grace"]),
        max_share=int(raw["max_share"]),
        segment_size=int(raw["segment_size"]),
        fetch=FetchPolicy(**raw["fetch"]),
    )
    view = LedgerView(directory / "ledger.sqlite3", params)
    stdin = trio.lowlevel.FdStream(os.dup(0))
    stdout = trio.lowlevel.FdStream(os.dup(1))

    async def reply(message: dict[str, Any]) -> None:
        await stdout.send_all(json.dumps(message).encode() + b"\n")

    try:
        async with LocalNodes.open(directory, view, settings, str(config["host"])) as nodes:

            async def ready(_request: dict[str, Any]) -> None:
                await nodes.committee_ready()
                gcsettings.settle()  # every node is up; this process is nothing but them

            handlers: dict[str, Callable[[dict[str, Any]], Any]] = {
                "start": lambda r: nodes.start(int(r["index"]), int(r["port"])),
                "stop": lambda r: nodes.stop(int(r["index"])),
                "faults": lambda r: nodes.set_faults(int(r["index"]), NodeFaults(**r["faults"])),
                "ready": ready,
            }
            await reply({"ready": True})
            buffer = b""
            while True:
                data = await stdin.receive_some(65536)
                if not data:
                    return  # the devnet is gone or stopping: so are its nodes
                buffer += data
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    request = json.loads(line)
                    handler = handlers.get(request.get("op"))
                    try:
                        if handler is None:
                            raise DevnetError(f"unknown request {request.get('op')!r}")
                        result = await handler(request)
                    except Exception as exc:
                        log.exception("node host: %s failed", request.get("op"))
                        await reply({"error": f"{type(exc).__name__}: {exc}"})
                        continue
                    if isinstance(result, tuple):
                        port, public_key = result
                        await reply(
                            {"port": port, "publicKey": base64.b64encode(public_key).decode()}
                        )
                    else:
                        await reply({})
    finally:
        view.close()


def main() -> None:
    # Byte by byte: a buffered read could swallow the first command, which the trio loop reads.
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(0, 1)
        if not byte:
            return
        line += byte
    config = json.loads(line)
    logging.basicConfig(
        level=int(config.get("logLevel", logging.WARNING)),
        format="%(asctime)s node-host %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        trio.run(_serve_commands, config)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
