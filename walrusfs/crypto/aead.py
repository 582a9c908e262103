"""Authenticated encryption: XChaCha20-Poly1305-IETF with a random nonce and associated data.

A sealed value is `nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`. The nonce is drawn from
the operating system for every call: 192-bit nonces make collisions negligible however many
values one key seals, so no counter has to be kept, persisted or shared between machines.
The associated data binds a ciphertext to its place (a chunk to its chunk id, a manifest to
its sequence number): the same bytes presented anywhere else fail to open.

Both functions are pure and keep no state, so they may run in worker threads
(`trio.to_thread.run_sync`); libsodium releases the GIL while it works.
"""

from __future__ import annotations

import os

import nacl.exceptions
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_ABYTES,
    crypto_aead_xchacha20poly1305_ietf_decrypt,
    crypto_aead_xchacha20poly1305_ietf_encrypt,
    crypto_aead_xchacha20poly1305_ietf_KEYBYTES,
    crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
)

from .errors import Tampered

KEY_SIZE: int = crypto_aead_xchacha20poly1305_ietf_KEYBYTES
NONCE_SIZE: int = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
TAG_SIZE: int = crypto_aead_xchacha20poly1305_ietf_ABYTES
SEAL_OVERHEAD: int = NONCE_SIZE + TAG_SIZE
"""Bytes `seal` adds to a plaintext: the nonce in front and the tag behind."""


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_SIZE:
        raise ValueError(f"an AEAD key is {KEY_SIZE} bytes")


def seal(key: bytes, plaintext: bytes | memoryview, ad: bytes) -> bytes:
    """Encrypt and authenticate `plaintext`, binding it to the associated data `ad`."""
    _check_key(key)
    nonce = os.urandom(NONCE_SIZE)
    # PyNaCl takes bytes only; a memoryview costs one copy, small beside the cipher itself.
    message = plaintext if isinstance(plaintext, bytes) else bytes(plaintext)
    return nonce + crypto_aead_xchacha20poly1305_ietf_encrypt(message, bytes(ad), nonce, key)


def open_sealed(
    key: bytes, sealed: bytes | memoryview, ad: bytes, *, what: str = "sealed data"
) -> bytes:
    """The plaintext of `seal(key, plaintext, ad)`.

    Raises Tampered (naming `what`) if any byte of `sealed` or `ad` differs from what was
    sealed, if `sealed` is truncated, or if it was sealed under another key.
    """
    _check_key(key)
    data = sealed if isinstance(sealed, bytes) else bytes(sealed)
    if len(data) < SEAL_OVERHEAD:
        raise Tampered(
            f"{what} is truncated ({len(data)} bytes, at least {SEAL_OVERHEAD} expected)"
        )
    nonce, ciphertext = data[:NONCE_SIZE], data[NONCE_SIZE:]
    try:
        return crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, bytes(ad), nonce, key)
    except nacl.exceptions.CryptoError:
        raise Tampered(
            f"{what} failed authentication: it was modified or belongs elsewhere"
        ) from None
