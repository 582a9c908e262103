"""Keys and primitives: Argon2id key wrapping, derived subkeys, AEAD sealing, keyed hashing.

Everything other layers need is importable from here. See docs/crypto.md for the key
hierarchy, the byte formats and what the network can learn.
"""

from .aead import KEY_SIZE, NONCE_SIZE, SEAL_OVERHEAD, TAG_SIZE, open_sealed, seal
from .errors import BadKeyFile, CryptoError, Tampered, WrongPassphrase
from .hashing import CHUNK_ID_SIZE, chunk_id
from .keyfile import read_key_file, write_key_file
from .keys import (
    MASTER_KEY_SIZE,
    WRAPPED_SIZE,
    KdfParams,
    new_master_key,
    read_kdf_params,
    rewrap,
    unwrap_master_key,
    wrap_master_key,
)
from .padding import PAD_OVERHEAD, pad, pad_target, padded_size, unpad
from .subkeys import Keys

__all__ = [
    "CHUNK_ID_SIZE",
    "KEY_SIZE",
    "MASTER_KEY_SIZE",
    "NONCE_SIZE",
    "PAD_OVERHEAD",
    "SEAL_OVERHEAD",
    "TAG_SIZE",
    "WRAPPED_SIZE",
    "BadKeyFile",
    "CryptoError",
    "KdfParams",
    "Keys",
    "Tampered",
    "WrongPassphrase",
    "chunk_id",
    "new_master_key",
    "open_sealed",
    "pad",
    "pad_target",
    "padded_size",
    "read_kdf_params",
    "read_key_file",
    "rewrap",
    "seal",
    "unpad",
    "unwrap_master_key",
    "wrap_master_key",
    "write_key_file",
]
