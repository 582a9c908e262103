from fsmount import FsUnderTest
from netfs import NetFs


def test_write_flush_restore(netfs: NetFs, tmp_path) -> None:
    (netfs.mnt / "hello").write_bytes(b"hello walrus")
    assert "committed" in netfs.flush()
    netfs.umount()
    other = FsUnderTest(tmp_path, name="restored")
    netfs.restore_into(other)
    try:
        assert (other.mnt / "hello").read_bytes() == b"hello walrus"
    finally:
        other.cleanup()
