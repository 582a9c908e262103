"""The control channel: how `walrusfs flush` and friends reach a mounted filesystem's daemon.

An abstract Unix socket named after the filesystem directory (so no path length limit and
nothing to clean up after a crash). One JSON object per line each way. Only root and the
daemon's own user are answered (SO_PEERCRED).

Requests: {"op": "flush"} (commit now; answers when anchored) and {"op": "status"}.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from walrusfs.errors import WalrusfsError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlError(WalrusfsError):
    pass


def socket_name(directory: str) -> bytes:
    digest = hashlib.sha256(os.path.realpath(directory).encode()).hexdigest()[:32]
    return b"\0walrusfs/" + digest.encode()


def _peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid


async def serve(
    directory: str,
    handler: Handler,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        await sock.bind(socket_name(directory))
    except OSError as exc:
        raise ControlError(f"another daemon answers for {directory}: {exc}") from None
    sock.listen(8)
    listener = trio.SocketListener(sock)
    me = os.getuid()

    async def one(stream: trio.SocketStream) -> None:
        async with stream:
            uid = _peer_uid(stream.socket)  # type: ignore[arg-type]
            if uid not in (0, me):
                await stream.send_all(b'{"ok": false, "error": "permission denied"}\n')
                return
            buf = b""
            while b"\n" not in buf:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buf += data
            try:
                request = json.loads(buf.split(b"\n", 1)[0])
                reply = await handler(request)
            except WalrusfsError as exc:
                reply = {"ok": False, "error": str(exc)}
            except Exception as exc:
                log.exception("control request failed")
                reply = {"ok": False, "error": f"internal error: {exc}"}
            await stream.send_all(json.dumps(reply).encode() + b"\n")

    async with trio.open_nursery() as nursery:
        task_status.started()
        await trio.serve_listeners(one, [listener], handler_nursery=nursery)


def request(
    directory: str, message: dict[str, Any], timeout: float | None = None
) -> dict[str, Any]:
    """Send one request to the daemon of `directory` and return its answer (blocking)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(socket_name(directory))
        except OSError:
            raise ControlError(f"no filesystem daemon answers for {directory}") from None
        sock.sendall(json.dumps(message).encode() + b"\n")
        buf = b""
        while b"\n" not in buf:
            data = sock.recv(65536)
            if not data:
                raise ControlError("the filesystem daemon closed the connection")
            buf += data
    reply: dict[str, Any] = json.loads(buf.split(b"\n", 1)[0])
    if not reply.get("ok"):
        raise ControlError(str(reply.get("error", "the request failed")))
    return reply
