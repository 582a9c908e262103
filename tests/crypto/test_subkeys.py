"""Subkeys: distinct per purpose, deterministic, different per master, never in a repr."""

from __future__ import annotations

import dataclasses

import pytest

from walrusfs.crypto import Keys, new_master_key

MASTER = bytes(range(32))


def test_known_answers() -> None:
    # Pinned: a change here would make every existing filesystem unreadable.
    keys = Keys.derive(MASTER)
    assert keys.chunk_naming.hex() == (
        "ff1496f2de57ffc3aca6f1122120d49b0c3915d1cfb91302755e9a37dab112f1"
    )
    assert keys.data.hex() == "ead3e1b5e51d0041f307e2b0dabdd3c140f9cd35993f48a0db861dce454caf53"
    assert keys.manifest.hex() == (
        "ec6587ac15f1c92cf51e5808155568876cef08e43f2bf9128929f421f79c84db"
    )


def test_distinct_and_sized() -> None:
    keys = Keys.derive(new_master_key())
    values = [getattr(keys, f.name) for f in dataclasses.fields(keys)]
    assert len(values) == 3
    assert all(isinstance(v, bytes) and len(v) == 32 for v in values)
    assert len(set(values)) == len(values)


def test_deterministic() -> None:
    master = new_master_key()
    assert Keys.derive(master) == Keys.derive(bytes(master))


def test_different_masters_share_nothing() -> None:
    a, b = Keys.derive(new_master_key()), Keys.derive(new_master_key())
    mine = {a.chunk_naming, a.data, a.manifest}
    assert mine.isdisjoint({b.chunk_naming, b.data, b.manifest})


def test_subkeys_are_not_the_master() -> None:
    keys = Keys.derive(MASTER)
    assert MASTER not in (keys.chunk_naming, keys.data, keys.manifest)


def test_secrets_stay_out_of_repr() -> None:
    keys = Keys.derive(MASTER)
    for text in (repr(keys), str(keys), f"{keys!r} {[keys]}"):
        for secret in (keys.chunk_naming, keys.data, keys.manifest):
            assert secret.hex() not in text
            assert repr(secret) not in text
    assert repr(keys) == "Keys(<secret>)"


def test_frozen() -> None:
    keys = Keys.derive(MASTER)
    with pytest.raises(dataclasses.FrozenInstanceError):
        keys.data = bytes(32)  # type: ignore[misc]


def test_master_must_be_32_bytes() -> None:
    with pytest.raises(ValueError):
        Keys.derive(b"x" * 31)
