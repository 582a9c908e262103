"""Crash safety: what fsync() returned for survives a SIGKILL of the daemon."""

from __future__ import annotations

import errno
import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fsmount import FsUnderTest, wait_until

# The writer runs in its own process: it writes, fsyncs, and only then records in a journal
# outside the mount what must survive. Three kinds of write: new files, rewrites in place,
# and the durable-replace pattern (temporary file, fsync, rename, fsync the directory).
WRITER = textwrap.dedent(
    """
    import hashlib, os, random, sys
    mnt, journal = sys.argv[1], sys.argv[2]
    rng = random.Random(1234)
    jfd = os.open(journal, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.makedirs(os.path.join(mnt, "d"), exist_ok=True)
    def record(event, name, data):
        os.write(jfd, f"{event} {name} {hashlib.sha256(data).hexdigest()}\\n".encode())
        os.fsync(jfd)
    i = 0
    while True:
        i += 1
        kind = i % 3
        size = rng.choice([0, 1, 4095, 4096, 70000, 1 << 20, (1 << 20) + 1, 3 << 20])
        data = rng.randbytes(size)
        name = (f"new-{i}", f"rewrite-{i % 7}", f"d/replace-{i % 5}")[kind]
        record("begin", name, data)
        if kind == 0:
            fd = os.open(os.path.join(mnt, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
        elif kind == 1:
            fd = os.open(os.path.join(mnt, name), os.O_RDWR | os.O_CREAT, 0o644)
            os.ftruncate(fd, 0)
            os.pwrite(fd, data, 0)
            os.fsync(fd)
            os.close(fd)
        else:
            tmp = os.path.join(mnt, f"d/.tmp-{i}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(tmp, os.path.join(mnt, name))
            dfd = os.open(os.path.join(mnt, "d"), os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(dfd)
            os.close(dfd)
        record("end", name, data)
    """
)


def journal_entries(journal: Path) -> list[tuple[str, str, str]]:
    """(event, name, digest) records, event "begin" before and "end" after each fsync."""
    if not journal.exists():
        return []
    lines = journal.read_text().splitlines()
    return [tuple(line.split()) for line in lines if len(line.split()) == 3]  # type: ignore[misc]


def test_sigkill_during_fsynced_writes_loses_nothing(fs: FsUnderTest, tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(fs.mnt), str(journal)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(
            lambda: sum(e[0] == "end" for e in journal_entries(journal)) >= 60,
            timeout=60,
            what="fsynced writes",
        )
        fs.kill(writers=[writer])
    finally:
        writer.kill()
        writer.wait()

    entries = journal_entries(journal)
    assert sum(e[0] == "end" for e in entries) >= 60
    # What fsync returned for last, per name; and the one operation the kill interrupted.
    durable = {name: digest for event, name, digest in entries if event == "end"}
    in_flight = entries[-1] if entries[-1][0] == "begin" else None
    fs.mount()
    assert "did not end cleanly" in fs.log()
    checked = 0
    for name, digest in durable.items():
        data = (fs.mnt / name).read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if in_flight is not None and in_flight[1] == name:
            if name.startswith("d/replace"):
                # An atomic replace: the old version or the new one, never a mix.
                assert actual in (digest, in_flight[2]), f"{name} torn by the crash"
            continue  # a rewrite in place that fsync never returned for: any state is fair
        assert actual == digest, f"{name} lost what fsync() returned for"
        checked += 1
    assert checked >= 10
    # The recovered filesystem is usable and stays consistent across a clean remount.
    (fs.mnt / "after").write_bytes(b"ok")
    fs.remount()
    assert (fs.mnt / "after").read_bytes() == b"ok"
    assert "did not end cleanly" not in fs.log().split("recovered")[-1]


def test_unfsynced_garbage_past_the_end_does_not_reappear(fs: FsUnderTest) -> None:
    """A crash between writing data and recording it must not resurrect stale bytes."""
    fs.remount("dbcommit=60")  # no group commit between the write and the kill
    p = fs.mnt / "f"
    with open(p, "wb") as f:
        f.write(b"A" * 10)
        f.flush()
        os.fsync(f.fileno())
    with open(p, "r+b") as f:
        f.write(b"B" * 5000)  # extends the file; never fsynced, but close() hands it to us
    fs.kill()
    fs.mount()
    data = p.read_bytes()
    # Without fsync any mix of old and new bytes is fair after a crash, but nothing else.
    assert len(data) in (10, 5000)
    assert set(data) <= {ord("A"), ord("B")}
    os.truncate(p, 10_000)
    assert p.read_bytes()[len(data) :] == b"\0" * (10_000 - len(data))


def test_a_full_disk_is_an_error_that_loses_nothing(tmp_path: Path) -> None:
    """The cache disk fills up: writers get ENOSPC, what was written stays, the filesystem
    goes on working once there is room again."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], check=True)
    fs = FsUnderTest(disk, mnt=tmp_path / "mnt")
    try:
        fs.mkfs()
        fs.mount()
        (fs.mnt / "precious").write_bytes(b"p" * 100_000)
        with pytest.raises(OSError) as e, open(fs.mnt / "filler", "wb") as f:
            for _ in range(64):
                f.write(os.urandom(1 << 20))
                f.flush()
                os.fsync(f.fileno())
        assert e.value.errno == errno.ENOSPC
        assert (fs.mnt / "precious").read_bytes() == b"p" * 100_000
        (fs.mnt / "filler").unlink()
        (fs.mnt / "after").write_bytes(b"room again")
        fs.remount()
        assert (fs.mnt / "precious").read_bytes() == b"p" * 100_000
        assert (fs.mnt / "after").read_bytes() == b"room again"
        assert "Traceback" not in fs.log()
    finally:
        fs.cleanup()
        subprocess.run(["umount", "-l", str(disk)], check=False)
