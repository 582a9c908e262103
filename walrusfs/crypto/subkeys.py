"""Subkeys derived from the master key, one per purpose.

Each subkey is BLAKE2b-256 keyed with the master key, with a personalization naming its
purpose (libsodium's crypto_kdf is the same construction, but PyNaCl does not bind it). The
derivation is deterministic, so every machine that unwraps the master key derives the same
subkeys, and one-way, so a subkey reveals neither the master key nor its siblings.

Separate keys keep each ciphertext in its lane: a sealed chunk can never be opened as a
manifest, nor a manifest as a chunk, whatever associated data an attacker pairs it with, and
chunk ids (a keyed hash) share no key with any cipher.

File names get no key of their own: they live only inside the manifest, which the manifest
key seals whole. A name key would matter only if names were ever encrypted one by one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .keys import MASTER_KEY_SIZE

SUBKEY_SIZE = 32

# Personalizations are at most 16 bytes; "v1" lets a future format derive unrelated keys.
_PERSON_CHUNK_NAMING = b"walrusfs1chunkid"
_PERSON_DATA = b"walrusfs1data"
_PERSON_MANIFEST = b"walrusfs1manifst"


def _derive(master: bytes, person: bytes) -> bytes:
    return hashlib.blake2b(digest_size=SUBKEY_SIZE, key=master, person=person).digest()


@dataclass(frozen=True, repr=False)
class Keys:
    """The filesystem's working keys. Secret: never logged, never written unwrapped.

    chunk_naming: key of the keyed BLAKE2b that turns a block's plaintext into its chunk id.
    data:         AEAD key sealing chunks (associated data: the chunk id).
    manifest:     AEAD key sealing manifest deltas and snapshots and the superblock's
                  encrypted parts.
    """

    chunk_naming: bytes
    data: bytes
    manifest: bytes

    @classmethod
    def derive(cls, master: bytes) -> Keys:
        """The subkeys of `master`: the same master always gives the same keys."""
        if not isinstance(master, bytes) or len(master) != MASTER_KEY_SIZE:
            raise ValueError(f"a master key is {MASTER_KEY_SIZE} bytes")
        return cls(
            chunk_naming=_derive(master, _PERSON_CHUNK_NAMING),
            data=_derive(master, _PERSON_DATA),
            manifest=_derive(master, _PERSON_MANIFEST),
        )

    def __repr__(self) -> str:
        return "Keys(<secret>)"
