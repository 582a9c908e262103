"""Walrus's JSON error body, as the publisher, aggregator and storage nodes send it.

    {"error": {"code": 404, "status": "NOT_FOUND", "message": "...",
               "details": [{"@type": "ErrorInfo", "reason": "BLOB_NOT_FOUND",
                            "domain": "daemon.walrus.space", "metadata": {}}]}}

`status` is the gRPC-style name Walrus pairs with each HTTP code.
"""

from __future__ import annotations

import json

from walrusfs.devnet.httpserver import Response

DAEMON_DOMAIN = "daemon.walrus.space"
STORAGE_DOMAIN = "storage.walrus.space"

# Walrus's status names (walrus-storage-node-client api/errors.rs) by the HTTP code they carry.
# 400 is INVALID_ARGUMENT or FAILED_PRECONDITION; callers pick with `status=`.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "SIZE_EXCEEDED",
    404: "NOT_FOUND",
    413: "PAYLOAD_TOO_LARGE",
    416: "RANGE_NOT_SATISFIABLE",
    429: "RESOURCE_EXHAUSTED",
    451: "UNAVAILABLE_FOR_LEGAL_REASONS",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_body(
    code: int, reason: str, message: str, *, domain: str = DAEMON_DOMAIN, status: str | None = None
) -> bytes:
    body = {
        "error": {
            "code": code,
            "status": status or STATUS_NAMES.get(code, "UNKNOWN"),
            "message": message,
            "details": [{"@type": "ErrorInfo", "reason": reason, "domain": domain, "metadata": {}}],
        }
    }
    return json.dumps(body, separators=(",", ":")).encode()


def error_response(
    code: int,
    reason: str,
    message: str,
    *,
    domain: str = DAEMON_DOMAIN,
    status: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    return Response(
        code,
        error_body(code, reason, message, domain=domain, status=status),
        headers=list(headers or []),
        content_type="application/json",
    )


def json_response(value: object, code: int = 200) -> Response:
    return Response(
        code, json.dumps(value, separators=(",", ":")).encode(), content_type="application/json"
    )
