"""walrusfs on a network: encrypted, packed, anchored, restorable from the anchor alone."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fsmount import FsUnderTest, command, rsync, wait_until
from netfs import NetFs
from proxy import TamperingProxy
from trees import make_special_tree, real_tree

RSYNC_COPY = ["-aHAXS", "--numeric-ids"]
RSYNC_CHECK = ["-anciHAXS", "--numeric-ids", "--delete"]
# The standard library without its own test suite: ~4,000 real files.
TREE_EXCLUDES = ["--exclude=/site-packages/", "--exclude=/test/"]


def differences(source: str, dest: Path, *extra: str) -> list[str]:
    out = rsync(*RSYNC_CHECK, *extra, source, f"{dest}/").stdout
    return [line for line in out.splitlines() if line.strip()]


def db_rows(fs: FsUnderTest, sql: str, params: tuple = ()) -> list[tuple]:
    con = sqlite3.connect(f"file:{fs.dir / 'meta.db'}?mode=ro", uri=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_rsync_flush_and_mount_again_from_the_anchor_alone(netfs: NetFs, tmp_path: Path) -> None:
    special = make_special_tree(tmp_path / "special")
    (netfs.mnt / "stdlib").mkdir()
    (netfs.mnt / "special").mkdir()
    rsync(*RSYNC_COPY, *TREE_EXCLUDES, f"{real_tree()}/", f"{netfs.mnt}/stdlib/")
    rsync(*RSYNC_COPY, f"{special}/", f"{netfs.mnt}/special/")
    assert "committed" in netfs.flush()
    netfs.umount()

    # Delete the cache directory: what is left is the network, the anchor, the wallet key
    # (kept aside, as a user would) and the passphrase.
    netfs.export_key()
    assert netfs.anchor
    shutil.rmtree(netfs.dir)
    again = FsUnderTest(tmp_path, name=netfs.dir.name)
    netfs.restore_into(again)
    try:
        assert differences(f"{special}/", again.mnt / "special") == []
        assert differences(f"{real_tree()}/", again.mnt / "stdlib", *TREE_EXCLUDES) == []
    finally:
        again.cleanup()


def test_nothing_leaves_the_machine_in_plaintext(netfs: NetFs, devnet) -> None:
    marker = b"WALRUSFS-PLAINTEXT-MARKER-7f3a9c"
    name_marker = "walrusfs-secret-name-c41b"
    d = netfs.mnt / name_marker
    d.mkdir()
    sizes = list(range(3000, 3300, 7))  # files of many sizes
    for i, size in enumerate(sizes):
        (d / f"sized-{i}").write_bytes(os.urandom(size))
    (d / f"{name_marker}.txt").write_bytes(marker * 3000)  # > one block: a cache file
    (d / "small").write_bytes(b"small " + marker)  # inline
    os.setxattr(d / "small", "user.note", marker)
    (d / "link").symlink_to(name_marker + "-target")
    assert "committed" in netfs.flush()
    netfs.umount()  # the final commit too

    needles = [marker, name_marker.encode(), marker[:16], name_marker.encode()[:16]]
    found = []
    for root, _, files in os.walk(devnet.info.directory):
        for f in files:
            data = Path(root, f).read_bytes()
            found += [(f, n) for n in needles if n in data]
    assert found == []
    # The same search does find plaintext where there is some: the local cache.
    assert marker in b"".join(p.read_bytes() for p in netfs.dir.rglob("*") if p.is_file())
    # What a reader of a pack sees of one file is a padded length: a few sizes for many.
    seen = {
        r[0] for r in db_rows(netfs, "SELECT length FROM chunks WHERE size BETWEEN 3000 AND 3300")
    }
    assert len(seen) <= 3 < len(sizes)
    assert not seen & {size + 40 for size in sizes}  # never the size plus a fixed overhead


def test_tampered_pack_and_tampered_manifest_are_refused(
    netfs: NetFs, tmp_path: Path, devnet
) -> None:
    (netfs.mnt / "big").write_bytes(os.urandom(3 << 20))
    (netfs.mnt / "small").write_bytes(b"important little file")
    netfs.flush()
    netfs.umount()
    data_packs = [r[0] for r in db_rows(netfs, "SELECT blob_id FROM packs WHERE kind = 'data'")]
    head = db_rows(netfs, "SELECT blob_id FROM commits ORDER BY seq DESC LIMIT 1")[0][0]
    assert data_packs

    with TamperingProxy(devnet.info.aggregator_url) as proxy:
        # A manifest that does not match the anchored digest: the restore refuses it.
        proxy.tamper = {head}
        bad = FsUnderTest(tmp_path, name="badmanifest")
        proc = netfs.restore_into(bad, check=False, aggregator=proxy.url)
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert "manifest" in proc.stderr and "digest" in proc.stderr
        assert not bad.is_mounted()

        # Packs that decode to other bytes: reads fail, they never return the bytes.
        proxy.tamper = set(data_packs)
        good = FsUnderTest(tmp_path, name="badpacks")
        netfs.restore_into(good, aggregator=proxy.url)
        try:
            for name in ("big", "small"):
                with pytest.raises(OSError) as e:
                    (good.mnt / name).read_bytes()
                assert e.value.errno == 5  # EIO
            assert "failed authentication" in good.log()
            # The honest network again: the same mount reads the true bytes.
            proxy.tamper = set()
            assert (good.mnt / "small").read_bytes() == b"important little file"
        finally:
            good.cleanup()


def test_one_writer_at_a_time_and_snapshots_beside_it(netfs: NetFs, tmp_path: Path) -> None:
    (netfs.mnt / "f").write_bytes(b"version 1")
    netfs.flush()
    first = int(db_rows(netfs, "SELECT MAX(seq) FROM commits")[0][0])
    (netfs.mnt / "f").write_bytes(b"version 2")
    (netfs.mnt / "new").write_bytes(b"only later")
    netfs.flush()

    # Another machine, read-write: refused while the first mount lives.
    other = FsUnderTest(tmp_path, name="elsewhere")
    proc = netfs.restore_into(other, check=False)
    assert proc.returncode != 0 and "read-write elsewhere" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not other.is_mounted()
    # From this machine too (a second mount of the same directory is refused by its lock).
    second = tmp_path / "second-mnt"
    second.mkdir()
    proc = command("mount.walrusfs", "--passphrase-file", str(netfs.pp), str(netfs.dir),
                   str(second), check=False)  # fmt: skip
    assert proc.returncode != 0 and "in use" in proc.stderr

    # A snapshot of the first commit, read-only, beside the read-write mount.
    snap = tmp_path / "snap"
    snap.mkdir()
    command("mount.walrusfs", "--passphrase-file", str(netfs.pp), "-o", f"snapshot={first}",
            str(netfs.dir), str(snap))  # fmt: skip
    try:
        assert (snap / "f").read_bytes() == b"version 1"
        assert not (snap / "new").exists()
        with pytest.raises(OSError):
            (snap / "x").write_bytes(b"")
        assert (netfs.mnt / "f").read_bytes() == b"version 2"
        log = command("walrusfs", "log", str(netfs.mnt)).stdout
        assert re.search(rf"^\s+{first}\s", log, re.M) and "snapshot" in log
    finally:
        command("umount.walrusfs", str(snap))


def _stored(fs: NetFs) -> int:
    return int(db_rows(fs, "SELECT COALESCE(SUM(size), 0) FROM packs")[0][0])


def test_dedup_and_packing(netfs: NetFs, tmp_path: Path) -> None:
    # A 100 MiB tree copied twice adds under 1%.
    src = tmp_path / "tree"
    src.mkdir()
    for i in range(100):
        (src / f"f{i:03d}").write_bytes(os.urandom(1 << 20))
    rsync("-a", f"{src}/", f"{netfs.mnt}/one/")
    netfs.flush()
    once = _stored(netfs)
    assert once >= 100 << 20
    rsync("-a", f"{src}/", f"{netfs.mnt}/two/")
    netfs.flush()
    twice = _stored(netfs)
    assert (twice - once) / once < 0.01, (once, twice)

    # 10,000 small files end up in a handful of packs.
    packs_before = len(db_rows(netfs, "SELECT 1 FROM packs WHERE kind = 'data'"))
    small = netfs.mnt / "small"
    small.mkdir()
    for i in range(10_000):
        (small / f"s{i:05d}").write_bytes(os.urandom(200 + i % 3000))
    netfs.flush()
    packs = len(db_rows(netfs, "SELECT 1 FROM packs WHERE kind = 'data'")) - packs_before
    print(f"10,000 small files: {packs} packs")
    assert 1 <= packs <= 5


WRITER = textwrap.dedent(
    """
    import hashlib, os, sys
    mnt, journal = sys.argv[1], sys.argv[2]
    jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    i = 0
    while True:
        i += 1
        data = os.urandom((i % 7) * 300_000 + 1000)
        path = os.path.join(mnt, f"f{i}")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.write(jfd, f"f{i} {hashlib.sha256(data).hexdigest()}\\n".encode())
        os.fsync(jfd)
    """
)


def test_sigkill_during_upload_loses_nothing_fsynced(netfs: NetFs, tmp_path: Path) -> None:
    import hashlib

    journal = tmp_path / "journal"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(netfs.mnt), str(journal)])
    flusher = None
    try:
        wait_until(lambda: journal.exists() and len(journal.read_text().splitlines()) >= 20,
                   timeout=60, what="fsynced files")  # fmt: skip
        # Start an upload, and kill the daemon in the middle of it: a pack is stored, more
        # data is still dirty.
        flusher = subprocess.Popen(
            [sys.executable, "-m", "walrusfs.cli.control", "flush", str(netfs.mnt)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: netfs.status()["packs_stored"] >= 1, timeout=60, what="a pack")
        assert netfs.status()["dirty_bytes"] > 0
        netfs.kill(writers=[writer])
    finally:
        writer.kill()
        writer.wait()
        if flusher is not None:
            flusher.kill()
            flusher.wait()
    expected = dict(line.split() for line in journal.read_text().splitlines() if " " in line)
    assert len(expected) >= 20

    netfs.mount()
    assert "did not end cleanly" in netfs.log()
    netfs.flush()
    netfs.umount()
    fresh = FsUnderTest(tmp_path, name="fresh")
    netfs.restore_into(fresh)
    try:
        for name, digest in expected.items():
            assert hashlib.sha256((fresh.mnt / name).read_bytes()).hexdigest() == digest, name
    finally:
        fresh.cleanup()


def test_wrong_passphrase_is_one_clear_error(devnet, tmp_path: Path) -> None:
    fs = NetFs(tmp_path, devnet.info.publisher_url)
    fs.mkfs()
    wrong = tmp_path / "wrong"
    fd = os.open(wrong, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not the passphrase\n")
    os.close(fd)
    proc = command("mount.walrusfs", "--passphrase-file", str(wrong), str(fs.dir), str(fs.mnt),
                   check=False)  # fmt: skip
    assert proc.returncode != 0
    assert proc.stderr.strip() == "mount.walrusfs: wrong passphrase for this filesystem"
    assert not fs.is_mounted()
    fs.mount()  # nothing was harmed
    (fs.mnt / "f").write_bytes(b"x" * 300_000)  # a cache file, not inline
    fs.cleanup()

    # Keys and configuration 0600, the directories 0700.
    def mode(p: Path) -> int:
        return p.stat().st_mode & 0o777

    assert mode(fs.dir) == 0o700 and mode(fs.dir / "cache") == 0o700
    for name in ("key", "walrusfs.json", "meta.db", "mount.log", "lock"):
        assert mode(fs.dir / name) == 0o600, name
    assert mode(fs.dir / "wallet") == 0o700
    assert all(mode(p) == 0o600 for p in (fs.dir / "wallet").iterdir())
    cache_files = [p for p in (fs.dir / "cache").rglob("*") if p.is_file()]
    assert cache_files and all(mode(p) == 0o600 for p in cache_files)


def test_mount_without_a_network_says_so(devnet, tmp_path: Path) -> None:
    fs = NetFs(tmp_path, devnet.info.publisher_url)
    fs.mkfs()
    cfg = fs.config
    cfg["network"]["publishers"] = ["http://127.0.0.1:9"]
    cfg["network"]["aggregators"] = ["http://127.0.0.1:9"]
    cfg["network"]["chain_overrides"]["graphql_url"] = "http://127.0.0.1:9/graphql"
    import json

    (fs.dir / "walrusfs.json").write_text(json.dumps(cfg))
    proc = command("mount.walrusfs", "--passphrase-file", str(fs.pp), str(fs.dir), str(fs.mnt),
                   check=False, timeout=600)  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "cannot reach" in proc.stderr
    assert not fs.is_mounted()


def test_a_mount_whose_head_moved_stops_writing(netfs: NetFs, tmp_path: Path) -> None:
    (netfs.mnt / "a").write_bytes(b"1")
    netfs.flush()
    # Someone takes the filesystem over from elsewhere and commits.
    other = FsUnderTest(tmp_path, name="usurper")
    netfs.restore_into(other, "takeover")
    try:
        (other.mnt / "b").write_bytes(b"2")
        command("walrusfs", "flush", str(other.mnt))
    finally:
        other.cleanup()
    (netfs.mnt / "c").write_bytes(b"3")
    proc = command("walrusfs", "flush", str(netfs.mnt), check=False)
    assert proc.returncode != 0 and "moved" in proc.stderr
    with pytest.raises(OSError) as e:
        (netfs.mnt / "d").write_bytes(b"4")
    assert e.value.errno == 30  # EROFS
    assert (netfs.mnt / "c").read_bytes() == b"3"  # kept locally
    assert "stops writing" in netfs.log()


def test_changing_the_passphrase_rewraps_the_key_and_touches_no_data(
    netfs: NetFs, tmp_path: Path
) -> None:
    (netfs.mnt / "f").write_bytes(b"kept")
    netfs.flush()
    new = tmp_path / "new-passphrase"
    fd = os.open(new, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"a much better passphrase\n")
    os.close(fd)
    packs = db_rows(netfs, "SELECT COUNT(*) FROM packs")[0][0]
    # While mounted: through the daemon, which stays the writer.
    command("walrusfs", "passphrase", "--passphrase-file", str(netfs.pp),
            "--new-passphrase-file", str(new), str(netfs.mnt))  # fmt: skip
    (netfs.mnt / "g").write_bytes(b"after")
    netfs.flush()
    netfs.umount()
    assert db_rows(netfs, "SELECT COUNT(*) FROM packs WHERE kind = 'data'")[0][0] <= packs
    proc = command("mount.walrusfs", "--passphrase-file", str(netfs.pp), str(netfs.dir),
                   str(netfs.mnt), check=False)  # fmt: skip
    assert "wrong passphrase" in proc.stderr
    # Another machine, with the new passphrase.
    netfs.pp.write_bytes(b"a much better passphrase\n")
    fresh = FsUnderTest(tmp_path, name="fresh")
    netfs.restore_into(fresh)
    try:
        assert (fresh.mnt / "f").read_bytes() == b"kept"
        assert (fresh.mnt / "g").read_bytes() == b"after"
    finally:
        fresh.cleanup()


def test_the_cache_stays_within_its_size_and_evicted_data_comes_back(
    devnet, tmp_path: Path
) -> None:
    with TamperingProxy(devnet.info.publisher_url) as proxy:
        fs = NetFs(tmp_path, proxy.url)
        fs.mkfs()
        fs.mount("cache_size=4M")
        try:
            files = {f"f{i}": os.urandom(1 << 20) for i in range(12)}
            for name, data in files.items():
                (fs.mnt / name).write_bytes(data)
            fs.flush()
            wait_until(lambda: fs.status()["cached_bytes"] <= 4 << 20, timeout=60,
                       what="eviction")  # fmt: skip
            # The kernel's page cache still holds the files: drop it, so reads reach us.
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            before = proxy.requests
            for name, data in files.items():
                assert (fs.mnt / name).read_bytes() == data
            assert proxy.requests > before  # evicted blocks came back from the network
        finally:
            fs.cleanup()


def test_working_from_the_cache_while_the_network_is_away(devnet, tmp_path: Path) -> None:
    import threading

    with TamperingProxy(devnet.info.publisher_url) as proxy:
        fs = NetFs(tmp_path, proxy.url)
        fs.mkfs()
        fs.mount("dirty_limit=3M")
        try:
            (fs.mnt / "before").write_bytes(b"cached")
            proxy.down = True
            # Metadata, reads and small writes go on as usual.
            assert (fs.mnt / "before").read_bytes() == b"cached"
            (fs.mnt / "dir").mkdir()
            (fs.mnt / "dir" / "small").write_bytes(b"x" * 1000)
            os.rename(fs.mnt / "before", fs.mnt / "dir" / "after")
            # Past the dirty limit, a writer waits instead of filling the disk.
            big = os.urandom(12 << 20)
            done = threading.Event()

            def write_big() -> None:
                (fs.mnt / "big").write_bytes(big)
                done.set()

            writer = threading.Thread(target=write_big, daemon=True)
            writer.start()
            wait_until(lambda: fs.status()["dirty_bytes"] >= 3 << 20, timeout=60,
                       what="dirty data up to the limit")  # fmt: skip
            # Uploads are tried (after the upload delay) and fail: the filesystem says so.
            wait_until(lambda: fs.status()["offline"], timeout=60, what="a failed upload")
            assert not done.is_set()
            assert fs.status()["dirty_bytes"] < 12 << 20
            # The network returns: the upload resumes, the writer finishes, nothing is lost.
            proxy.down = False
            wait_until(done.is_set, timeout=120, what="the writer to finish")
            fs.flush()
            assert (fs.mnt / "big").read_bytes() == big
            assert (fs.mnt / "dir" / "after").read_bytes() == b"cached"
        finally:
            proxy.down = False
            fs.cleanup()


def test_an_idle_filesystem_makes_no_commits(netfs: NetFs) -> None:
    (netfs.mnt / "f").write_bytes(b"data")
    assert "committed" in netfs.flush()
    seq = db_rows(netfs, "SELECT MAX(seq) FROM commits")[0][0]
    # Nothing changed since: neither a flush nor the unmount commits again.
    assert "nothing new" in netfs.flush()
    netfs.umount()
    assert db_rows(netfs, "SELECT MAX(seq) FROM commits")[0][0] == seq
