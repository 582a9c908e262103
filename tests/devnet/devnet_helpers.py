"""Helpers shared by the devnet's tests (imported as a plain module: tests/devnet is on sys.path)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from walrusfs.devnet.network import DevnetConfig
from walrusfs.devnet.retrieval import FetchPolicy

FAST_FETCH = FetchPolicy(request_timeout=5.0, hedge_after=0.3)


def make_config(directory: Path, **overrides: Any) -> DevnetConfig:
    """A devnet for tests: free ports, quick maintenance and hedging, long epochs."""
    settings: dict[str, Any] = {
        "port": 0,
        "epoch_seconds": 3600.0,
        "maintenance_interval": 0.2,
        "fetch": FAST_FETCH,
    }
    settings.update(overrides)
    return DevnetConfig(directory=directory, **settings)


def poll(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Wait until `predicate()` is truthy and return it; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def assert_error(response: httpx.Response, code: int, reason: str, status: str) -> None:
    """`response` is Walrus's JSON error body with this code, status name and reason."""
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (code, status)
    assert isinstance(error["message"], str) and error["message"]
    assert error["details"] == [
        {
            "@type": "ErrorInfo",
            "reason": reason,
            "domain": "daemon.walrus.space",
            "metadata": {},
        }
    ]


def store(http: httpx.Client, url: str, data: bytes, query: str = "") -> dict[str, Any]:
    response = http.put(f"{url}/v1/blobs{query}", content=data)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
