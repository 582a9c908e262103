"""A storage node's share log (walrusfs.devnet.sharelog): records, replay, damage, space."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from devnet.devnet_helpers import make_config, poll, store

from walrusfs.devnet.background import BackgroundDevnet
from walrusfs.devnet.blobid import blob_id_to_text
from walrusfs.devnet.buffers import POOL
from walrusfs.devnet.sharelog import ALIGN, MAGIC, NewRecord, Record, ShareLog, scan

SIZES = (0, 1, ALIGN, 5000, 262144, 300_001)


def _blob_id() -> str:
    return blob_id_to_text(os.urandom(32))


def _read(log: ShareLog, record: Record) -> bytes:
    lease = POOL.get(record.data_len)
    try:
        assert log.read(record, lease.aligned)
        return bytes(lease.view)
    finally:
        lease.release()


@pytest.fixture(params=["disk", "shm"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A directory on the test's filesystem, and one on tmpfs (often no O_DIRECT there)."""
    if request.param == "disk":
        return tmp_path / "shares"
    if not Path("/dev/shm").is_dir():
        pytest.skip("no /dev/shm")
    directory = Path(tempfile.mkdtemp(prefix="walrusfs-test-", dir="/dev/shm"))
    request.addfinalizer(lambda: shutil.rmtree(directory, ignore_errors=True))
    return directory / "shares"


def test_shares_survive_a_restart_and_read_back(where: Path) -> None:
    log = ShareLog(where, segment_size=256 << 10)
    shares = {_blob_id(): os.urandom(size) for size in SIZES}
    records = {
        b: log.append(b, b"metadata of " + b.encode(), 7, 1.5, d).commit()
        for b, d in shares.items()
    }
    for blob_id, data in shares.items():
        assert _read(log, records[blob_id]) == data
    assert len(log.segments()) >= 2  # it rolled over to a new segment
    log.close()
    log = ShareLog(where, segment_size=256 << 10)
    live, _verified = log.replay()
    assert set(live) == set(shares)
    for blob_id, data in shares.items():
        record = live[blob_id]
        assert (record.metadata, record.stored_epoch, record.stored_at) == (
            b"metadata of " + blob_id.encode(),
            7,
            1.5,
        )
        assert _read(log, record) == data
    found = scan(where)
    for blob_id, data in shares.items():
        path, offset, length = found[blob_id]
        with open(path, "rb") as f:
            f.seek(offset)
            assert f.read(length) == data
    log.close()


def test_appends_committed_together_share_one_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = ShareLog(tmp_path / "shares")
    log.append(_blob_id(), b"m", 1, 1.0, b"first").commit()  # the segment exists
    syncs: list[int] = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real(fd))[1])
    shares = {_blob_id(): os.urandom(5000 + i) for i in range(3)}
    pending = [log.append(b, b"m", 1, 1.0, d) for b, d in shares.items()]
    records = [p.commit() for p in pending]
    assert len(syncs) == 1
    for record, data in zip(records, shares.values(), strict=True):
        assert _read(log, record) == data
    log.close()
    reopened = ShareLog(tmp_path / "shares")
    live, _verified = reopened.replay()
    reopened.close()
    assert set(shares) <= set(live)


def test_records_appended_together_go_out_in_one_write(
    where: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = ShareLog(where)
    log.append(_blob_id(), b"m", 1, 1.0, b"first").commit()  # the segment exists
    writes: list[int] = []
    real = os.pwritev
    monkeypatch.setattr(
        os, "pwritev", lambda fd, views, at: (writes.append(fd), real(fd, views, at))[1]
    )
    shares = {_blob_id(): os.urandom(size) for size in SIZES}
    # Half the shares come in pooled, page-aligned buffers (as a node receives them), half not.
    leases = [POOL.get(max(len(d), 1)) for d in shares.values()]
    new = []
    for i, ((blob_id, data), lease) in enumerate(zip(shares.items(), leases, strict=True)):
        lease.view[: len(data)] = data
        aligned = lease.aligned if i % 2 else None
        new.append(NewRecord(blob_id, b"meta " + blob_id.encode(), 3, 2.5, data, aligned))
    pending = log.append_many(new)
    assert len(writes) == 1
    records = [p.commit() for p in pending]
    for lease in leases:
        lease.release()
    for before, after in itertools.pairwise(records):
        assert after.segment == before.segment and after.offset == before.offset + before.size
    for record, (blob_id, data) in zip(records, shares.items(), strict=True):
        assert record.blob_id == blob_id and _read(log, record) == data
    log.close()
    reopened = ShareLog(where)
    live, _verified = reopened.replay()
    assert set(shares) <= set(live)
    for blob_id, data in shares.items():
        assert live[blob_id].metadata == b"meta " + blob_id.encode()
        assert _read(reopened, live[blob_id]) == data
    reopened.close()


def test_dead_and_replaced_records_are_not_replayed(tmp_path: Path) -> None:
    log = ShareLog(tmp_path)
    gone, kept, replaced = _blob_id(), _blob_id(), _blob_id()
    log.mark_dead(log.append(gone, b"m", 1, 1.0, b"gone").commit())
    log.append(kept, b"m", 1, 1.0, b"kept").commit()
    log.append(replaced, b"m", 1, 1.0, b"first").commit()
    log.append(
        replaced, b"m", 2, 2.0, b"second"
    ).commit()  # a re-upload whose old record's mark was lost
    log.close()
    log = ShareLog(tmp_path)
    live, _verified = log.replay()
    assert set(live) == {kept, replaced}
    assert live[replaced].stored_epoch == 2 and _read(log, live[replaced]) == b"second"
    log.close()
    log = ShareLog(tmp_path)
    live, _verified = log.replay()  # the replaced record was marked dead by the first replay
    assert set(live) == {kept, replaced}
    log.close()


def test_torn_records_are_skipped_and_later_ones_kept(tmp_path: Path) -> None:
    log = ShareLog(tmp_path)
    first, torn, after = _blob_id(), _blob_id(), _blob_id()
    log.append(first, b"m", 1, 1.0, os.urandom(9000)).commit()
    record = log.append(torn, b"m", 1, 1.0, os.urandom(9000)).commit()
    log.close()
    (segment,) = tmp_path.glob("*.seg")
    with open(segment, "r+b") as f:
        f.seek(record.offset + 100)  # a header half written
        f.write(os.urandom(200))
        f.seek(0, os.SEEK_END)
        f.write(MAGIC + os.urandom(7000))  # and an append cut short
    log = ShareLog(tmp_path)
    live, _verified = log.replay()
    assert set(live) == {first}
    log.append(after, b"m", 1, 1.0, b"after the damage").commit()
    log.close()
    log = ShareLog(tmp_path)
    live, _verified = log.replay()
    assert set(live) == {first, after}
    assert _read(log, live[after]) == b"after the damage"
    log.close()


def test_changes_behind_the_logs_back_bump_the_generation(tmp_path: Path) -> None:
    log = ShareLog(tmp_path)
    record = log.append(_blob_id(), b"m", 1, 1.0, os.urandom(10000)).commit()
    generation = log.generation(record.segment)
    log.append(_blob_id(), b"m", 1, 1.0, b"our own write").commit()
    assert log.generation(record.segment) == generation
    (segment,) = tmp_path.glob("*.seg")
    with open(segment, "r+b") as f:
        f.seek(record.offset + record.header_len + 5)
        f.write(b"rot")
    assert log.generation(record.segment) == generation + 1
    log.close()


def test_a_new_segment_looked_at_before_its_first_write_is_not_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A scrub may stat a segment between the append that created it and that append's write
    (a 64 MiB blob's shares fill a segment every few stores): that is no change behind the
    log's back, and must not invalidate what was verified in it."""
    log = ShareLog(tmp_path, segment_size=64 << 10)
    seen: list[int] = []
    real_write = ShareLog._write

    def scrub_first(self: ShareLog, segment: Any, views: Any, offset: int) -> None:
        seen.append(self.generation(segment.number))  # before the write lands
        real_write(self, segment, views, offset)

    monkeypatch.setattr(ShareLog, "_write", scrub_first)
    first = log.append(_blob_id(), b"m", 1, 1.0, os.urandom(60_000)).commit()
    second = log.append(_blob_id(), b"m", 1, 1.0, os.urandom(60_000)).commit()
    assert second.segment != first.segment  # the second append started a segment
    assert seen == [0, 0]
    assert log.generation(first.segment) == log.generation(second.segment) == 0
    assert "changed behind" not in caplog.text
    log.close()


def test_verified_segments_are_remembered_across_restarts(tmp_path: Path) -> None:
    log = ShareLog(tmp_path)
    record = log.append(_blob_id(), b"m", 1, 1.0, b"checked").commit()
    log.save_verified({record.segment: True})
    log.close()
    log = ShareLog(tmp_path)
    _live, verified = log.replay()
    assert verified == {record.blob_id}
    log.close()
    (segment,) = tmp_path.glob("*.seg")
    with open(segment, "r+b") as f:
        f.seek(record.offset + record.header_len)
        f.write(b"C")
    log = ShareLog(tmp_path)
    _live, verified = log.replay()
    assert verified == set()  # the segment changed since: hash its shares again
    log.close()


def test_a_segment_is_emptied_by_copying_and_removed(tmp_path: Path) -> None:
    log = ShareLog(tmp_path, segment_size=64 << 10)
    records = [log.append(_blob_id(), b"m", 1, 1.0, os.urandom(20000)).commit() for _ in range(6)]
    first = records[0].segment
    in_first = [r for r in records if r.segment == first]
    assert 1 < len(in_first) < len(records)
    log.mark_dead(in_first[0])
    moved = [log.copy(r) for r in in_first[1:]]
    assert all(m is not None and m.segment != first for m in moved)
    assert log.segments()[first][1] == 0
    # Not while something has it pinned (a read, or an append not yet counted).
    pinned = log._pin(first)
    assert pinned is not None
    assert not log.remove_segment(first)
    assert (tmp_path / f"{first:08d}.seg").exists()
    log._unpin(pinned)
    assert log.remove_segment(first)
    assert not (tmp_path / f"{first:08d}.seg").exists()
    log.close()
    log = ShareLog(tmp_path, segment_size=64 << 10)
    live, _verified = log.replay()
    assert set(live) == {r.blob_id for r in records[1:]}
    log.close()


def test_nodes_give_back_the_space_of_dropped_shares(tmp_path: Path, http: httpx.Client) -> None:
    """Shares of expired blobs are dropped and the segments that held them are removed."""
    config = make_config(tmp_path / "dn", nodes=4, epoch_seconds=2.0, share_segment_size=64 << 10)
    with BackgroundDevnet(config) as devnet:
        url = devnet.info.publisher_url
        short = [
            store(http, url, os.urandom(60_000), "?epochs=1")["newlyCreated"]["blobObject"]
            for _ in range(6)
        ]
        long_data = os.urandom(60_000)
        long = store(http, url, long_data, "?epochs=5")["newlyCreated"]["blobObject"]
        segments = tmp_path / "dn" / "nodes" / "node-00" / "shares"
        before = set(segments.glob("*.seg"))
        assert len(before) >= 3
        end = short[-1]["storage"]["endEpoch"]
        poll(lambda: devnet.current_epoch() >= end, timeout=10)
        for blob in short:
            poll(lambda blob=blob: devnet.share_location(0, blob["blobId"]) is None)
        poll(lambda: len(set(segments.glob("*.seg")) & before) <= 1)
        assert http.get(f"{url}/v1/blobs/{long['blobId']}").content == long_data
        devnet.stop_node(0)
        devnet.start_node(0)
        devnet.stop_node(1)
        devnet.stop_node(2)  # node 0's share of the long blob is needed now
        assert http.get(f"{url}/v1/blobs/{long['blobId']}").content == long_data
