"""Helpers of the crypto tests: Argon2id at libsodium's minimum cost, so wrapping is instant.

Only the tests of the presets themselves pay for a real cost (interactive: 64 MiB, ~0.1 s).
"""

from __future__ import annotations

import os

import nacl.pwhash.argon2id as argon2id

from walrusfs.crypto import KdfParams


def cheap_params() -> KdfParams:
    return KdfParams(
        salt=os.urandom(16), opslimit=argon2id.OPSLIMIT_MIN, memlimit=argon2id.MEMLIMIT_MIN
    )
