"""The master key and its wrapping under a passphrase (Argon2id + XChaCha20-Poly1305).

A filesystem has one random 32-byte master key, made at mkfs and never stored unwrapped.
The passphrase is stretched with Argon2id (libsodium's argon2id13) into a key-encryption key
(KEK) that seals the master key. The wrapped form describes itself, so a machine that has
only the wrapped bytes and the passphrase can open it:

    offset size  field
         0    4  magic "WFSK"
         4    1  format version (1)
         5    1  KDF algorithm (1 = argon2id13)
         6    4  Argon2 opslimit, unsigned big-endian
        10    8  Argon2 memlimit in bytes, unsigned big-endian
        18   16  Argon2 salt
        34   24  XChaCha20-Poly1305 nonce
        58   48  ciphertext of the master key (32) and tag (16)
       106       end

Bytes 0..33 (the header) are the AEAD's associated data, so the version and the KDF
parameters cannot be altered, even to values that would derive the same KEK. Because any
change to the header, salt, nonce or ciphertext makes authentication fail exactly as a wrong
passphrase does, all of these are reported as WrongPassphrase; only bytes that cannot even
be parsed (magic, version, algorithm, out-of-range costs, length) are BadKeyFile.

Argon2id takes most of a second at the default cost and blocks: call `wrap_master_key`,
`unwrap_master_key` and `rewrap` through `trio.to_thread.run_sync` from async code.
"""

from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass
from typing import Literal

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id

from .aead import KEY_SIZE, NONCE_SIZE, TAG_SIZE
from .aead import open_sealed as _open_sealed
from .aead import seal as _seal
from .errors import BadKeyFile, CryptoError, Tampered, WrongPassphrase

log = logging.getLogger(__name__)

MASTER_KEY_SIZE = 32
SALT_SIZE: int = argon2id.SALTBYTES

MAGIC = b"WFSK"
VERSION = 1
ALGORITHM = "argon2id13"
_ALGORITHM_IDS = {ALGORITHM: 1}

_HEADER = struct.Struct(">4sBBIQ16s")
HEADER_SIZE = _HEADER.size
WRAPPED_SIZE = HEADER_SIZE + NONCE_SIZE + MASTER_KEY_SIZE + TAG_SIZE

# Beyond these a wrapped key is refused before Argon2 runs: a damaged or hostile header must
# not make a mount allocate terabytes or spin for hours. Both are well above "sensitive".
MAX_OPSLIMIT = 64
MAX_MEMLIMIT = 4 << 30

Cost = Literal["interactive", "moderate", "sensitive"]
_PRESETS: dict[str, tuple[int, int]] = {
    "interactive": (argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
    "sensitive": (argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE),
}


@dataclass(frozen=True)
class KdfParams:
    """How a passphrase becomes the key-encryption key: Argon2id with this salt and cost.

    The salt is not secret; it is stored in the wrapped key's header.
    """

    salt: bytes
    opslimit: int
    memlimit: int
    algorithm: str = ALGORITHM

    def __post_init__(self) -> None:
        if self.algorithm not in _ALGORITHM_IDS:
            raise ValueError(f"unknown KDF algorithm {self.algorithm!r}")
        if not isinstance(self.salt, bytes) or len(self.salt) != SALT_SIZE:
            raise ValueError(f"an Argon2 salt is {SALT_SIZE} bytes")
        if not argon2id.OPSLIMIT_MIN <= self.opslimit <= MAX_OPSLIMIT:
            raise ValueError(
                f"Argon2 opslimit {self.opslimit} is outside {argon2id.OPSLIMIT_MIN}..{MAX_OPSLIMIT}"
            )
        if not argon2id.MEMLIMIT_MIN <= self.memlimit <= MAX_MEMLIMIT:
            raise ValueError(
                f"Argon2 memlimit {self.memlimit} is outside "
                f"{argon2id.MEMLIMIT_MIN}..{MAX_MEMLIMIT} bytes"
            )

    @classmethod
    def new(cls, cost: Cost = "moderate") -> KdfParams:
        """Parameters with a fresh random salt and one of libsodium's cost presets.

        "moderate" (3 passes over 256 MiB, about half a second) is the default for real
        filesystems; "interactive" (64 MiB) suits small machines; "sensitive" (1 GiB) costs
        an attacker, and every mount, several seconds.
        """
        try:
            opslimit, memlimit = _PRESETS[cost]
        except KeyError:
            raise ValueError(f"unknown KDF cost {cost!r} (use {', '.join(_PRESETS)})") from None
        return cls(salt=os.urandom(SALT_SIZE), opslimit=opslimit, memlimit=memlimit)

    def with_new_salt(self) -> KdfParams:
        """The same cost with a fresh salt."""
        return KdfParams(
            salt=os.urandom(SALT_SIZE),
            opslimit=self.opslimit,
            memlimit=self.memlimit,
            algorithm=self.algorithm,
        )

    def derive_kek(self, passphrase: bytes) -> bytes:
        """The 32-byte key-encryption key for `passphrase`. Slow on purpose; blocking."""
        try:
            return argon2id.kdf(KEY_SIZE, passphrase, self.salt, self.opslimit, self.memlimit)
        except (nacl.exceptions.RuntimeError, MemoryError):
            raise CryptoError(
                f"Argon2id failed: not enough memory for {self.memlimit >> 20} MiB?"
            ) from None

    def header(self) -> bytes:
        """The wrapped key's header for these parameters (format version 1)."""
        return _HEADER.pack(
            MAGIC,
            VERSION,
            _ALGORITHM_IDS[self.algorithm],
            self.opslimit,
            self.memlimit,
            self.salt,
        )


def new_master_key() -> bytes:
    """A fresh random 32-byte master key."""
    return os.urandom(MASTER_KEY_SIZE)


def read_kdf_params(wrapped: bytes) -> KdfParams:
    """The KDF parameters stored in a wrapped key, without unwrapping it.

    Raises BadKeyFile if `wrapped` is not a wrapped key of a version this code reads.
    """
    if not isinstance(wrapped, bytes | bytearray | memoryview):
        raise BadKeyFile("not a walrusfs key: expected bytes")
    data = bytes(wrapped)
    if len(data) < _HEADER.size or data[:4] != MAGIC:
        raise BadKeyFile("not a walrusfs key (no WFSK header)")
    _magic, version, alg_id, opslimit, memlimit, salt = _HEADER.unpack_from(data)
    if version != VERSION:
        raise BadKeyFile(
            f"walrusfs key format version {version} is not supported (this walrusfs reads {VERSION})"
        )
    if len(data) != WRAPPED_SIZE:
        raise BadKeyFile(f"walrusfs key is {len(data)} bytes, expected {WRAPPED_SIZE}: damaged")
    algorithms = {v: k for k, v in _ALGORITHM_IDS.items()}
    if alg_id not in algorithms:
        raise BadKeyFile(f"walrusfs key uses unknown KDF algorithm {alg_id}")
    try:
        return KdfParams(
            salt=salt, opslimit=opslimit, memlimit=memlimit, algorithm=algorithms[alg_id]
        )
    except ValueError as exc:
        raise BadKeyFile(f"walrusfs key has unusable KDF parameters: {exc}") from None


def wrap_master_key(master: bytes, passphrase: bytes, params: KdfParams) -> bytes:
    """Seal `master` under the KEK Argon2id derives from `passphrase` with `params`."""
    if not isinstance(master, bytes) or len(master) != MASTER_KEY_SIZE:
        raise ValueError(f"a master key is {MASTER_KEY_SIZE} bytes")
    if not isinstance(passphrase, bytes) or not passphrase:
        raise ValueError("the passphrase must be non-empty bytes")
    if params.opslimit < argon2id.OPSLIMIT_INTERACTIVE or (
        params.memlimit < argon2id.MEMLIMIT_INTERACTIVE
    ):
        log.warning(
            "wrapping the master key with Argon2id costs below libsodium's interactive preset"
        )
    header = params.header()
    return header + _seal(params.derive_kek(passphrase), master, header)


def unwrap_master_key(wrapped: bytes, passphrase: bytes) -> bytes:
    """The master key inside `wrapped`.

    Raises WrongPassphrase if the passphrase's KEK does not authenticate it (a wrong
    passphrase, or a wrapped key altered after it was written: the two look the same), and
    BadKeyFile if `wrapped` cannot be parsed.
    """
    params = read_kdf_params(wrapped)
    header = bytes(wrapped[:HEADER_SIZE])
    try:
        master = _open_sealed(
            params.derive_kek(bytes(passphrase)), bytes(wrapped[HEADER_SIZE:]), header
        )
    except Tampered:
        raise WrongPassphrase() from None
    if len(master) != MASTER_KEY_SIZE:  # authentic yet wrong: only a writer bug could do it
        raise BadKeyFile(f"walrusfs key holds {len(master)} bytes, not a master key")
    return master


def rewrap(
    wrapped: bytes,
    old_passphrase: bytes,
    new_passphrase: bytes,
    params: KdfParams | None = None,
) -> bytes:
    """The same master key wrapped under `new_passphrase`; the data needs no change.

    Without `params` the old cost is kept with a fresh salt. The old wrapped bytes still open
    with the old passphrase: rewrapping replaces a copy, it does not revoke the others.
    """
    master = unwrap_master_key(wrapped, old_passphrase)
    if params is None:
        params = read_kdf_params(wrapped).with_new_salt()
    return wrap_master_key(master, new_passphrase, params)
