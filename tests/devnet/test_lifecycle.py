"""Epochs and expiry, restarts, and the `walrusfs devnet` command."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from devnet.devnet_helpers import assert_error, make_config, poll, store

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.encoding import ShareCoder
from walrusfs.devnet.errors import DevnetConfigError
from walrusfs.devnet.info import probe_devnet


def share_gone(devnet: BackgroundDevnet, index: int, blob_id: str) -> Callable[[], bool]:
    return lambda: devnet.share_location(index, blob_id) is None


def test_blobs_expire_at_their_end_epoch(tmp_path: Path, http: httpx.Client) -> None:
    config = make_config(tmp_path / "dn", nodes=4, epoch_seconds=1.5)
    with BackgroundDevnet(config) as devnet:
        url = devnet.info.publisher_url
        short_data, long_data = os.urandom(3000), os.urandom(3001)
        short = store(http, url, short_data, "?epochs=1")["newlyCreated"]["blobObject"]
        long = store(http, url, long_data, "?epochs=3")["newlyCreated"]["blobObject"]
        end = short["storage"]["endEpoch"]
        assert end == short["storage"]["startEpoch"] + 1
        assert long["storage"]["endEpoch"] >= end + 2
        assert http.get(f"{url}/v1/blobs/{short['blobId']}").content == short_data
        poll(lambda: devnet.current_epoch() >= end, timeout=10)
        # The 1-epoch blob is gone from the start of its end epoch; the 3-epoch one is not.
        assert_error(
            http.get(f"{url}/v1/blobs/{short['blobId']}"), 404, "BLOB_NOT_FOUND", "NOT_FOUND"
        )
        assert_error(
            http.get(f"{url}/v1/blobs/by-object-id/{short['id']}"),
            404,
            "BLOB_NOT_FOUND",
            "NOT_FOUND",
        )
        assert devnet.current_epoch() < long["storage"]["endEpoch"]
        assert http.get(f"{url}/v1/blobs/{long['blobId']}").content == long_data
        # Every node deletes the expired blob's share, and keeps the other.
        for index in range(4):
            poll(share_gone(devnet, index, short["blobId"]))
            assert devnet.share_location(index, long["blobId"]) is not None


def test_state_survives_a_restart(tmp_path: Path, http: httpx.Client) -> None:
    config = make_config(tmp_path / "dn", nodes=4)
    blobs = {}
    with BackgroundDevnet(config) as devnet:
        url = devnet.info.publisher_url
        for size in (0, 10, 300_000):
            data = os.urandom(size)
            blobs[store(http, url, data, "?epochs=3")["newlyCreated"]["blobObject"]["blobId"]] = (
                data
            )
        epoch = devnet.current_epoch()
        address = devnet.info.publisher_address
        balance = devnet.registry.balance(address)
        first_nodes = devnet.info.node_urls
    with BackgroundDevnet(config) as devnet:
        url = devnet.info.publisher_url
        assert devnet.info.publisher_address == address
        assert devnet.registry.balance(address) == balance
        assert devnet.current_epoch() >= epoch
        # Nodes listen on new ports after a restart; the committee follows them.
        committee = devnet.registry.committee()
        assert tuple(m.url for m in committee.members) == devnet.info.node_urls
        assert len(first_nodes) == len(devnet.info.node_urls)
        for blob_id, data in blobs.items():
            response = http.get(f"{url}/v1/blobs/{blob_id}")
            assert response.status_code == 200 and response.content == data
        # A blob stored again is recognised as certified: the objects survived too.
        blob_id, data = next(iter(blobs.items()))
        assert "alreadyCertified" in store(http, url, data)
    # The node count of a devnet directory is fixed.
    try:
        BackgroundDevnet(make_config(tmp_path / "dn", nodes=5)).start()
    except DevnetConfigError as exc:
        assert "4 storage nodes" in str(exc)
    else:
        raise AssertionError("a devnet started with the wrong node count")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "walrusfs.cli.control", "devnet", *args]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_cli_runs_prints_and_stops(tmp_path: Path, http: httpx.Client, signum: int) -> None:
    process = subprocess.Popen(
        _cli("--dir", str(tmp_path / "dn"), "--nodes", "4", "--port", "0", "--epoch-seconds", "60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        text = "".join(lines)
        match = re.search(r"publisher and aggregator on (http://127\.0\.0\.1:(\d+))", text)
        graphql = re.search(r"Sui GraphQL: +(http://127\.0\.0\.1:(\d+)/graphql)\n", text)
        sui = re.search(r"faucet \(SUI\): +(\S+/v2/gas)\n", text)
        wal = re.search(r"faucet \(WAL\): +(\S+/v2/wal)\n", text)
        assert match and graphql and sui and wal, text
        assert len(re.findall(r"on http://", text)) == 1  # scripts find the publisher by it
        assert "4 storage nodes" in text and str(tmp_path / "dn") in text
        assert "60 s per epoch" in text
        url = match[1]
        # Another process recognises the devnet on either port, and learns the same things.
        info = probe_devnet(int(match[2]))
        assert info is not None and probe_devnet(int(graphql[2])) == info
        assert (info.publisher_url, info.graphql_url) == (url, graphql[1])
        assert (info.faucet_url, info.wal_faucet_url) == (sui[1], wal[1])
        assert info.pid == process.pid and info.directory == tmp_path / "dn"
        # Fund an address from the HTTP faucet and store a blob it owns.
        owner = "0x" + os.urandom(32).hex()
        granted = http.post(wal[1], json={"FixedAmountRequest": {"recipient": owner}})
        assert granted.status_code == 201
        blob = store(http, url, b"hello", f"?send_object_to={owner}")["newlyCreated"]
        assert http.get(f"{url}/v1/blobs/{blob['blobObject']['blobId']}").content == b"hello"
        process.send_signal(signum)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "stopped" in out
    assert "Traceback" not in err
    assert probe_devnet(int(match[2])) is None and probe_devnet(int(graphql[2])) is None


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            _cli("--dir", str(tmp_path / "a"), "--nodes", "1", "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert result.stderr.strip() == f"walrusfs: port {port} is already in use (publisher)"
        result = subprocess.run(
            _cli(
                "--dir",
                str(tmp_path / "b"),
                "--nodes",
                "1",
                "--port",
                "0",
                "--ledger-port",
                str(port),
            ),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 1
        assert result.stderr.strip() == f"walrusfs: port {port} is already in use (Sui ledger)"
    (tmp_path / "file").write_text("not a directory")
    result = subprocess.run(
        _cli("--dir", str(tmp_path / "file"), "--port", "0"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == f"walrusfs: {tmp_path / 'file'} is not a directory"
    old = tmp_path / "old"
    old.mkdir()
    (old / "registry.sqlite3").write_bytes(b"")  # a devnet from before the ledger
    result = subprocess.run(
        _cli("--dir", str(old), "--port", "0"), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"walrusfs: {old} holds a devnet from before its Sui ledger; remove it or use another "
        "directory"
    )
    result = subprocess.run(_cli("--nodes", "0"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run(_cli("--help"), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "--epoch-seconds" in result.stdout


def test_node_cleans_up_after_a_crash(tmp_path: Path, http: httpx.Client) -> None:
    """Records cut short by a crash are skipped at start, later writes land after them, and
    a share whose record never became durable is repaired from the node's peers."""
    with BackgroundDevnet(make_config(tmp_path / "dn", nodes=4)) as devnet:
        url = devnet.info.publisher_url
        data = os.urandom(50_000)
        blob_id = store(http, url, data)["newlyCreated"]["blobObject"]["blobId"]
        devnet.stop_node(2)
        where = devnet.share_location(2, blob_id)
        assert where is not None
        segment, offset, _length = where
        original = devnet.node_share(2, blob_id)
        with open(segment, "r+b") as f:
            # As if the node died before the blob's record was durable: its header is gone.
            header_start = offset - 4096
            f.seek(header_start)
            assert f.read(8) == b"WFSNODE1"
            f.seek(header_start)
            f.write(bytes(4096))
            # And a later append torn half way.
            f.seek(0, os.SEEK_END)
            f.write(b"WFSNODE1" + os.urandom(6000))
        assert devnet.share_location(2, blob_id) is None
        devnet.start_node(2)
        poll(lambda: devnet.node_share(2, blob_id) == original)  # repaired, after the torn tail
        devnet.stop_node(0)
        devnet.stop_node(1)  # now node 2's share is needed
        response = http.get(f"{url}/v1/blobs/{blob_id}")
        assert response.status_code == 200 and response.content == data
        devnet.start_node(0)
        devnet.start_node(1)
        devnet.stop_node(2)
        devnet.start_node(2)  # and its log replays past the damage after a restart too
        devnet.stop_node(3)
        devnet.stop_node(0)
        response = http.get(f"{url}/v1/blobs/{blob_id}")
        assert response.status_code == 200 and response.content == data


def test_a_node_imports_the_share_files_of_old_devnets(tmp_path: Path, http: httpx.Client) -> None:
    """Nodes used to keep each share in blobs/<blobId>.share with a JSON .meta file beside it;
    they move them into their share log."""
    with BackgroundDevnet(make_config(tmp_path / "dn", nodes=4)) as devnet:
        url = devnet.info.publisher_url
        data = os.urandom(30_000)
        blob_id = store(http, url, data)["newlyCreated"]["blobObject"]["blobId"]
        encoded = ShareCoder(4).encode(data)
        for index in range(4):
            devnet.stop_node(index)
        for index in range(4):
            directory = devnet.node_directory(index)
            shutil.rmtree(directory / "shares")
            (directory / "blobs").mkdir()
            (directory / "blobs" / f"{blob_id}.share").write_bytes(bytes(encoded.shares[index]))
            record = {
                "metadata": base64.b64encode(encoded.metadata.to_bytes()).decode(),
                "storedEpoch": devnet.current_epoch(),
                "storedAt": time.time(),
                "shareStat": None,
            }
            (directory / "blobs" / f"{blob_id}.meta").write_text(json.dumps(record))
        for index in range(4):
            devnet.start_node(index)
            assert not (devnet.node_directory(index) / "blobs").exists()
            assert devnet.node_share(index, blob_id) == bytes(encoded.shares[index])
        response = http.get(f"{url}/v1/blobs/{blob_id}")
        assert response.status_code == 200 and response.content == data
