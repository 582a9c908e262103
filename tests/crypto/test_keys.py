"""The wrapped master key: round trips, wrong passphrases, tampering, the header, rewrapping."""

from __future__ import annotations

import os
import struct

import nacl.pwhash.argon2id as argon2id
import pytest
from crypto.crypto_helpers import cheap_params

from walrusfs.crypto import (
    MASTER_KEY_SIZE,
    WRAPPED_SIZE,
    BadKeyFile,
    CryptoError,
    KdfParams,
    Tampered,
    WrongPassphrase,
    new_master_key,
    open_sealed,
    read_kdf_params,
    rewrap,
    unwrap_master_key,
    wrap_master_key,
)
from walrusfs.crypto.keys import HEADER_SIZE
from walrusfs.errors import WalrusfsError

PW = b"correct horse battery staple"


def test_master_keys_are_random_and_32_bytes() -> None:
    a, b = new_master_key(), new_master_key()
    assert len(a) == len(b) == MASTER_KEY_SIZE == 32
    assert a != b


def test_round_trip(params: KdfParams) -> None:
    master = new_master_key()
    wrapped = wrap_master_key(master, PW, params)
    assert unwrap_master_key(wrapped, PW) == master
    assert master not in wrapped


def test_wrapping_twice_gives_different_bytes(params: KdfParams) -> None:
    master = new_master_key()
    # Same salt and passphrase, so the same KEK: only the random nonce differs.
    assert wrap_master_key(master, PW, params) != wrap_master_key(master, PW, params)


def test_layout(params: KdfParams) -> None:
    wrapped = wrap_master_key(new_master_key(), PW, params)
    assert len(wrapped) == WRAPPED_SIZE == 106
    magic, version, alg, ops, mem, salt = struct.unpack(">4sBBIQ16s", wrapped[:34])
    assert (magic, version, alg) == (b"WFSK", 1, 1)
    assert (ops, mem, salt) == (params.opslimit, params.memlimit, params.salt)
    assert HEADER_SIZE == 34
    assert read_kdf_params(wrapped) == params


def test_wrong_passphrase_is_one_clear_line(params: KdfParams) -> None:
    wrapped = wrap_master_key(new_master_key(), PW, params)
    with pytest.raises(WrongPassphrase) as info:
        unwrap_master_key(wrapped, PW + b"!")
    assert str(info.value) == "wrong passphrase for this filesystem"
    assert isinstance(info.value, CryptoError)
    assert isinstance(info.value, WalrusfsError)


def test_empty_passphrase_does_not_open(params: KdfParams) -> None:
    wrapped = wrap_master_key(new_master_key(), PW, params)
    with pytest.raises(WrongPassphrase):
        unwrap_master_key(wrapped, b"")


def test_refuses_to_wrap_with_an_empty_passphrase_or_a_bad_key(params: KdfParams) -> None:
    with pytest.raises(ValueError):
        wrap_master_key(new_master_key(), b"", params)
    with pytest.raises(ValueError):
        wrap_master_key(b"short", PW, params)


def _field(offset: int) -> str:
    for name, end in (
        ("magic", 4),
        ("version", 5),
        ("algorithm", 6),
        ("opslimit", 10),
        ("memlimit", 18),
        ("salt", 34),
        ("nonce", 58),
    ):
        if offset < end:
            return name
    return "ciphertext"


def test_every_altered_byte_is_refused(params: KdfParams) -> None:
    master = new_master_key()
    wrapped = wrap_master_key(master, PW, params)
    for i in range(len(wrapped)):
        # XOR 1 keeps every altered cost small (memlimit changes by at most 16 MiB, or
        # jumps beyond the cap), so the test never asks Argon2 for gigabytes.
        altered = wrapped[:i] + bytes([wrapped[i] ^ 1]) + wrapped[i + 1 :]
        field = _field(i)
        expected: type[CryptoError]
        if field in ("magic", "version", "algorithm"):
            expected = BadKeyFile
        elif field in ("opslimit", "memlimit"):
            expected = CryptoError  # out of range: BadKeyFile; in range: WrongPassphrase
        else:
            expected = WrongPassphrase
        with pytest.raises(expected):
            unwrap_master_key(altered, PW)


def test_kdf_parameters_are_bound_to_the_ciphertext(params: KdfParams) -> None:
    """The header is associated data: even with the right KEK, a different header fails."""
    wrapped = wrap_master_key(new_master_key(), PW, params)
    kek = params.derive_kek(PW)
    body = wrapped[HEADER_SIZE:]
    open_sealed(kek, body, wrapped[:HEADER_SIZE])  # the untouched header opens
    stronger = KdfParams(salt=params.salt, opslimit=params.opslimit + 1, memlimit=params.memlimit)
    with pytest.raises(Tampered):
        open_sealed(kek, body, stronger.header())
    # Spliced into a wrapped key, the altered header is refused like a wrong passphrase.
    with pytest.raises(WrongPassphrase):
        unwrap_master_key(stronger.header() + body, PW)


def test_hostile_costs_are_refused_before_argon2_runs(params: KdfParams) -> None:
    wrapped = wrap_master_key(new_master_key(), PW, params)
    for ops, mem in ((params.opslimit, 1 << 40), (1000, params.memlimit), (0, params.memlimit)):
        header = struct.pack(">4sBBIQ16s", b"WFSK", 1, 1, ops, mem, params.salt)
        with pytest.raises(BadKeyFile, match="KDF parameters"):
            unwrap_master_key(header + wrapped[HEADER_SIZE:], PW)


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "not a walrusfs key"),
        (b"garbage" * 20, "not a walrusfs key"),
        (b"WFSK\x02" + bytes(101), "version 2 is not supported"),
        (b"WFSK\x01\x07" + bytes(100), "unknown KDF algorithm 7"),
    ],
)
def test_garbage_is_a_bad_key_file(blob: bytes, message: str) -> None:
    with pytest.raises(BadKeyFile, match=message) as info:
        unwrap_master_key(blob, PW)
    assert "\n" not in str(info.value)


def test_truncated_or_extended_keys_are_bad(params: KdfParams) -> None:
    wrapped = wrap_master_key(new_master_key(), PW, params)
    for blob in (wrapped[:-1], wrapped + b"\0", wrapped[:HEADER_SIZE]):
        with pytest.raises(BadKeyFile, match="damaged"):
            unwrap_master_key(blob, PW)


def test_rewrap_keeps_the_master_key(params: KdfParams) -> None:
    master = new_master_key()
    old = wrap_master_key(master, PW, params)
    new = rewrap(old, PW, b"a new passphrase")
    assert unwrap_master_key(new, b"a new passphrase") == master
    with pytest.raises(WrongPassphrase):
        unwrap_master_key(new, PW)
    with pytest.raises(WrongPassphrase):
        unwrap_master_key(old, b"a new passphrase")
    # Rewrapping does not revoke: the old copy still opens with the old passphrase.
    assert unwrap_master_key(old, PW) == master
    # Same cost, fresh salt.
    new_params, old_params = read_kdf_params(new), read_kdf_params(old)
    assert (new_params.opslimit, new_params.memlimit) == (old_params.opslimit, old_params.memlimit)
    assert new_params.salt != old_params.salt


def test_rewrap_with_new_params(params: KdfParams) -> None:
    master = new_master_key()
    old = wrap_master_key(master, PW, params)
    target = KdfParams(salt=os.urandom(16), opslimit=2, memlimit=argon2id.MEMLIMIT_MIN * 2)
    new = rewrap(old, PW, b"other", target)
    assert read_kdf_params(new) == target
    assert unwrap_master_key(new, b"other") == master


def test_rewrap_needs_the_old_passphrase(params: KdfParams) -> None:
    old = wrap_master_key(new_master_key(), PW, params)
    with pytest.raises(WrongPassphrase):
        rewrap(old, b"guess", b"other")


def test_presets() -> None:
    moderate = KdfParams.new()
    assert (moderate.opslimit, moderate.memlimit) == (
        argon2id.OPSLIMIT_MODERATE,
        argon2id.MEMLIMIT_MODERATE,
    )
    assert moderate.algorithm == "argon2id13"
    sensitive = KdfParams.new("sensitive")
    assert sensitive.memlimit == argon2id.MEMLIMIT_SENSITIVE
    a, b = KdfParams.new("interactive"), KdfParams.new("interactive")
    assert (a.opslimit, a.memlimit) == (
        argon2id.OPSLIMIT_INTERACTIVE,
        argon2id.MEMLIMIT_INTERACTIVE,
    )
    assert len(a.salt) == 16 and a.salt != b.salt
    with pytest.raises(ValueError, match="unknown KDF cost"):
        KdfParams.new("extreme")  # type: ignore[arg-type]


def test_round_trip_at_interactive_cost() -> None:
    master = new_master_key()
    wrapped = wrap_master_key(master, PW, KdfParams.new("interactive"))
    assert unwrap_master_key(wrapped, PW) == master


def test_params_validate() -> None:
    with pytest.raises(ValueError):
        KdfParams(salt=b"short", opslimit=1, memlimit=8192)
    with pytest.raises(ValueError):
        KdfParams(salt=bytes(16), opslimit=1, memlimit=8192, algorithm="scrypt")
    with pytest.raises(ValueError):
        KdfParams(salt=bytes(16), opslimit=1, memlimit=1024)


def test_distinct_salts_give_distinct_keks() -> None:
    a, b = cheap_params(), cheap_params()
    assert a.derive_kek(PW) != b.derive_kek(PW)
    assert a.derive_kek(PW) == a.derive_kek(PW)
