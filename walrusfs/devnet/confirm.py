"""Storage confirmations: what a node signs, and how a certificate is checked.

A node that holds its share of a blob signs, with its Ed25519 key, the message

    b"walrusfs-devnet/storage-confirmation/v1\\x00"
    || node index (u16 LE) || node public key (32 bytes) || epoch (u32 LE) || blob id (32 bytes)

so a signature cannot be replayed for another blob, another epoch or as another node. (Walrus
nodes sign a BCS `Confirmation` with BLS keys and let the chain aggregate them; the devnet keeps
the idea and uses one signature per node.) A certificate is a set of confirmations from at
least n - f distinct committee members; every registry implementation checks it with
`check_certificate`.
"""

from __future__ import annotations

import logging
import os
import struct
from pathlib import Path

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from walrusfs.devnet.errors import InvalidCertificate, StaleCertificate
from walrusfs.devnet.registry import Committee, StorageConfirmation

log = logging.getLogger(__name__)

DOMAIN = b"walrusfs-devnet/storage-confirmation/v1\x00"
_MESSAGE_LEN = len(DOMAIN) + 2 + 32 + 4 + 32


def confirmation_message(node_index: int, public_key: bytes, epoch: int, blob_id: bytes) -> bytes:
    if len(public_key) != 32 or len(blob_id) != 32:
        raise ValueError("public key and blob id are 32 bytes each")
    return DOMAIN + struct.pack("<H", node_index) + public_key + struct.pack("<I", epoch) + blob_id


def parse_confirmation_message(message: bytes) -> tuple[int, bytes, int, bytes]:
    """(node index, public key, epoch, blob id) from a message; ValueError if malformed."""
    if len(message) != _MESSAGE_LEN or not message.startswith(DOMAIN):
        raise ValueError("not a devnet storage confirmation")
    rest = message[len(DOMAIN) :]
    (index,) = struct.unpack_from("<H", rest, 0)
    public_key = rest[2:34]
    (epoch,) = struct.unpack_from("<I", rest, 34)
    blob_id = rest[38:70]
    return index, public_key, epoch, blob_id


def load_or_create_key(path: Path) -> SigningKey:
    """The node's signing key, kept as a 32-byte seed in a 0600 file (created durably)."""
    try:
        seed = path.read_bytes()
    except FileNotFoundError:
        seed = os.urandom(32)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, seed)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    if len(seed) != 32:
        raise ValueError(f"{path} does not hold a 32-byte Ed25519 seed")
    return SigningKey(seed)


def sign_confirmation(
    key: SigningKey, node_index: int, epoch: int, blob_id: bytes
) -> StorageConfirmation:
    message = confirmation_message(node_index, bytes(key.verify_key), epoch, blob_id)
    return StorageConfirmation(node_index, message, key.sign(message).signature)


def confirmation_claims(
    confirmation: StorageConfirmation, committee: Committee, epoch: int, blob_id: bytes
) -> bool:
    """True if the message says what a valid confirmation by the committee member it names,
    for this blob and epoch, says; the signature is not checked (`verify_confirmation`)."""
    try:
        index, public_key, signed_epoch, signed_blob = parse_confirmation_message(
            confirmation.message
        )
    except ValueError:
        return False
    if index != confirmation.node_index or not 0 <= index < len(committee.members):
        return False
    member = committee.member(index)
    return public_key == member.public_key and signed_epoch == epoch and signed_blob == blob_id


def verify_confirmation(
    confirmation: StorageConfirmation, committee: Committee, epoch: int, blob_id: bytes
) -> bool:
    """True if this is a valid signature by the committee member it names, for this blob/epoch."""
    if not confirmation_claims(confirmation, committee, epoch, blob_id):
        return False
    member = committee.member(confirmation.node_index)
    try:
        VerifyKey(member.public_key).verify(confirmation.message, confirmation.signature)
    except (BadSignatureError, ValueError):
        return False
    return True


def check_certificate(
    committee: Committee,
    quorum: int,
    blob_id: bytes,
    epoch: int,
    current_epoch: int,
    confirmations: tuple[StorageConfirmation, ...],
) -> frozenset[int]:
    """The indexes of `quorum` distinct nodes whose confirmations are valid: checking stops
    once a quorum is found (a signature costs 80 µs, and this runs under the ledger's lock).

    Raises StaleCertificate if `epoch` is not `current_epoch`, InvalidCertificate if fewer than
    `quorum` distinct nodes signed validly.
    """
    if epoch != current_epoch:
        raise StaleCertificate(
            f"confirmations were signed in epoch {epoch}, the current epoch is {current_epoch}"
        )
    signers: set[int] = set()
    for c in confirmations:
        if len(signers) >= quorum:
            break
        if c.node_index not in signers and verify_confirmation(c, committee, epoch, blob_id):
            signers.add(c.node_index)
    if len(signers) < quorum:
        raise InvalidCertificate(
            f"only {len(signers)} valid storage confirmations, {quorum} needed"
        )
    return frozenset(signers)
