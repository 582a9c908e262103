"""Epochs and expiry, restarts, and the `walrusfs devnet` command."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from devnet.devnet_helpers import assert_error, make_config, poll, store

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.errors import DevnetConfigError
from walrusfs.devnet.info import probe_devnet


def gone_file(path: Path) -> Callable[[], bool]:
    return lambda: not path.exists()


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
            gone: Path = devnet.share_path(index, short["blobId"])
            poll(gone_file(gone))
            assert devnet.share_path(index, long["blobId"]).exists()


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
    """Leftovers of writes cut short are dropped at start, and what is missing is repaired."""
    with BackgroundDevnet(make_config(tmp_path / "dn", nodes=4)) as devnet:
        url = devnet.info.publisher_url
        data = os.urandom(50_000)
        blob_id = store(http, url, data)["newlyCreated"]["blobObject"]["blobId"]
        devnet.stop_node(2)
        share = devnet.share_path(2, blob_id)
        index = devnet.node_directory(2) / "blobs.sqlite3"
        original = share.read_bytes()
        # As if the node died between writing the share and committing its index row.
        with closing(sqlite3.connect(index)) as db, db:
            db.execute("DELETE FROM blobs WHERE blob_id = ?", (blob_id,))
        junk = share.with_name("junk.share.tmp")
        junk.write_bytes(b"half a write")
        orphan = share.with_name(f"{'Q' * 43}.share")  # a share never confirmed
        orphan.write_bytes(b"never certified")
        devnet.start_node(2)
        assert not junk.exists() and not orphan.exists()
        poll(lambda: _index_has(index, blob_id) and share.exists())
        assert share.read_bytes() == original
        devnet.stop_node(0)
        devnet.stop_node(1)  # now node 2's share is needed
        response = http.get(f"{url}/v1/blobs/{blob_id}")
        assert response.status_code == 200 and response.content == data


def _index_has(index: Path, blob_id: str) -> bool:
    with closing(sqlite3.connect(index)) as db:
        return (
            db.execute("SELECT 1 FROM blobs WHERE blob_id = ?", (blob_id,)).fetchone() is not None
        )


def test_a_node_imports_the_meta_files_of_old_devnets(tmp_path: Path, http: httpx.Client) -> None:
    """Nodes used to keep a JSON <blobId>.meta per blob; they are moved into the index."""
    with BackgroundDevnet(make_config(tmp_path / "dn", nodes=4)) as devnet:
        url = devnet.info.publisher_url
        data = os.urandom(30_000)
        blob_id = store(http, url, data)["newlyCreated"]["blobObject"]["blobId"]
        for index in range(4):
            devnet.stop_node(index)
        for index in range(4):
            db_path = devnet.node_directory(index) / "blobs.sqlite3"
            with closing(sqlite3.connect(db_path)) as db, db:
                metadata, epoch, at = db.execute(
                    "SELECT metadata, stored_epoch, stored_at FROM blobs WHERE blob_id = ?",
                    (blob_id,),
                ).fetchone()
                db.execute("DELETE FROM blobs")
            record = {
                "metadata": base64.b64encode(metadata).decode(),
                "storedEpoch": epoch,
                "storedAt": at,
                "shareStat": None,
            }
            meta = devnet.share_path(index, blob_id).with_suffix(".meta")
            meta.write_text(json.dumps(record))
        for index in range(4):
            devnet.start_node(index)
            assert not devnet.share_path(index, blob_id).with_suffix(".meta").exists()
            assert _index_has(devnet.node_directory(index) / "blobs.sqlite3", blob_id)
        response = http.get(f"{url}/v1/blobs/{blob_id}")
        assert response.status_code == 200 and response.content == data
