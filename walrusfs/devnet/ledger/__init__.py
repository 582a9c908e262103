"""The devnet's Sui ledger: Sui GraphQL over SQLite state, with the Walrus objects walrusfs uses.

`Ledger` holds the state and is the Python API (faucet, epoch clock, the publisher's certified
Blob objects); `serve_ledger` / `LedgerThread` serve it over HTTP for Sui clients such as pysui.
See docs/ledger.md for the state model and what is supported.
"""

from .errors import (
    InsufficientFunds,
    InvalidSignature,
    LedgerError,
    StaleObjects,
    TransactionRejected,
    Unsupported,
)
from .ledger import (
    BlobRecord,
    CertifiedBlob,
    Coin,
    FaucetGrant,
    Ledger,
    LedgerConfig,
    SystemState,
    blob_id_from_text,
    blob_id_to_text,
)
from .service import LedgerEndpoints, LedgerHttp, LedgerThread, serve_ledger

__all__ = [
    "BlobRecord",
    "CertifiedBlob",
    "Coin",
    "FaucetGrant",
    "InsufficientFunds",
    "InvalidSignature",
    "Ledger",
    "LedgerConfig",
    "LedgerEndpoints",
    "LedgerError",
    "LedgerHttp",
    "LedgerThread",
    "StaleObjects",
    "SystemState",
    "TransactionRejected",
    "Unsupported",
    "blob_id_from_text",
    "blob_id_to_text",
    "serve_ledger",
]
