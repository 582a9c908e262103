"""The Sui client: pysui behind an asyncio bridge; Blob objects, extension, deletion and the anchor.

Open a `SuiChainClient` for a `NetworkConfig` (from networks.toml via `network(name)`) and a
wallet directory (`write_wallet` with a key from `generate_key`, `key_from_keystore` or
`key_from_text`). All operations are trio coroutines.
"""

from .client import SuiChainClient
from .config import NetworkConfig, load_networks, network
from .errors import (
    AnchorConflict,
    BlobExpired,
    BlobNotCertified,
    BlobNotDeletable,
    ChainConfigError,
    ChainError,
    ChainUnavailable,
    EpochsOutOfRange,
    InsufficientGas,
    InsufficientWal,
    MissingMetadata,
    ObjectMissing,
    StaleObjects,
    TransactionFailed,
    TransactionRejected,
)
from .types import (
    Anchor,
    Balances,
    BlobInfo,
    BlobPage,
    DeleteResult,
    ExtendResult,
    ExtensionQuote,
    GasUsed,
    WalrusState,
)
from .wallet import address_of, generate_key, key_from_keystore, key_from_text, write_wallet

__all__ = [
    "Anchor",
    "AnchorConflict",
    "Balances",
    "BlobExpired",
    "BlobInfo",
    "BlobNotCertified",
    "BlobNotDeletable",
    "BlobPage",
    "ChainConfigError",
    "ChainError",
    "ChainUnavailable",
    "DeleteResult",
    "EpochsOutOfRange",
    "ExtendResult",
    "ExtensionQuote",
    "GasUsed",
    "InsufficientGas",
    "InsufficientWal",
    "MissingMetadata",
    "NetworkConfig",
    "ObjectMissing",
    "StaleObjects",
    "SuiChainClient",
    "TransactionFailed",
    "TransactionRejected",
    "WalrusState",
    "address_of",
    "generate_key",
    "key_from_keystore",
    "key_from_text",
    "load_networks",
    "network",
    "write_wallet",
]
