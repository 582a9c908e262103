"""Errors that need a devnet with special limits: 413, 451, 403 and 429."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from devnet.devnet_helpers import assert_error, make_config

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.encoding import ShareCoder
from walrusfs.devnet.node import NodeFaults

BLOCKED = os.urandom(1000)
BLOCKED_ID = ShareCoder(4).encode(BLOCKED).metadata.blob_id_text()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundDevnet]:
    config = make_config(
        Path(tmp_path_factory.mktemp("limited")),
        nodes=4,
        max_read_size=1 << 20,
        blocklist=frozenset({BLOCKED_ID}),
        max_concurrent_stores=1,
        max_queued_stores=0,
    )  # default body limit: 10 MiB
    with BackgroundDevnet(config) as devnet:
        yield devnet


def test_body_limit(limited: BackgroundDevnet, http: httpx.Client) -> None:
    url = limited.info.publisher_url
    assert http.put(f"{url}/v1/blobs", content=os.urandom(10 << 20)).status_code == 200
    response = http.put(f"{url}/v1/blobs", content=b"\0" * ((10 << 20) + 1))
    assert_error(response, 413, "PAYLOAD_TOO_LARGE", "PAYLOAD_TOO_LARGE")


def test_blocked_blob(limited: BackgroundDevnet, http: httpx.Client) -> None:
    url = limited.info.publisher_url
    assert_error(
        http.put(f"{url}/v1/blobs", content=BLOCKED),
        451,
        "FORBIDDEN_BLOB",
        "UNAVAILABLE_FOR_LEGAL_REASONS",
    )
    assert_error(
        http.get(f"{url}/v1/blobs/{BLOCKED_ID}"),
        451,
        "FORBIDDEN_BLOB",
        "UNAVAILABLE_FOR_LEGAL_REASONS",
    )


def test_read_limit(limited: BackgroundDevnet, http: httpx.Client) -> None:
    url = limited.info.publisher_url
    small = http.put(f"{url}/v1/blobs", content=os.urandom(1 << 20)).json()
    large = http.put(f"{url}/v1/blobs", content=os.urandom((1 << 20) + 1)).json()
    small_id = small["newlyCreated"]["blobObject"]["blobId"]
    large_id = large["newlyCreated"]["blobObject"]["blobId"]
    assert http.get(f"{url}/v1/blobs/{small_id}").status_code == 200
    assert_error(http.get(f"{url}/v1/blobs/{large_id}"), 403, "BLOB_TOO_LARGE", "SIZE_EXCEEDED")


def test_busy_publisher(limited: BackgroundDevnet) -> None:
    """One store slot and no queue: of two concurrent stores, one gets 429."""
    url = limited.info.publisher_url
    nodes = limited.info.n_shards
    for index in range(nodes):
        limited.set_faults(index, NodeFaults(write_delay=1.0))
    responses: list[httpx.Response] = []

    def put() -> None:
        with httpx.Client(timeout=60) as client:
            responses.append(client.put(f"{url}/v1/blobs", content=os.urandom(2000)))

    threads = [threading.Thread(target=put) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for index in range(nodes):
            limited.set_faults(index, NodeFaults())
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 429]
    busy = next(r for r in responses if r.status_code == 429)
    assert_error(busy, 429, "TOO_MANY_REQUESTS", "RESOURCE_EXHAUSTED")
