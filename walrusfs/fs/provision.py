"""Making a filesystem on a network, and rebuilding one from its anchor on a fresh machine.

Creating: a wallet (imported or new), funds on the devnet, a master key wrapped with the
passphrase, the superblock stored as a permanent blob owned by the filesystem's address (its
Sui Blob object is the anchor), and a first commit of the empty tree, so the anchor always
names a head and a restore works from the first moment.

Restoring: the anchor's head and superblock, the master key unwrapped with the passphrase,
the chain of commits back to a snapshot fetched and checked link by link, and the metadata
rebuilt from it. File data stays on Walrus until read.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import uuid as uuid_mod
from dataclasses import dataclass
from pathlib import Path

import httpx

from walrusfs.crypto import (
    KdfParams,
    Keys,
    new_master_key,
    read_key_file,
    unwrap_master_key,
    wrap_master_key,
    write_key_file,
)
from walrusfs.errors import WalrusfsError
from walrusfs.fs import config as fsconfig
from walrusfs.fs import filesystem
from walrusfs.fs.committer import capture, publish
from walrusfs.fs.filesystem import Filesystem
from walrusfs.fs.remote import Remote, connect
from walrusfs.manifest.anchor import AnchorView
from walrusfs.manifest.format import Head, Superblock
from walrusfs.meta import delta
from walrusfs.meta.tree import now_ns

log = logging.getLogger(__name__)


class ProvisionError(WalrusfsError):
    pass


@dataclass(frozen=True)
class Created:
    uuid: str
    anchor: str
    address: str
    cost: int


def writer_id(fs: Filesystem) -> str:
    """Who this cache directory is, on the anchor: its own id and the host it is on."""
    wid = fs.db.get_setting("writer_id")
    if wid is None:
        wid = str(uuid_mod.uuid4())
        fs.db.set_setting("writer_id", wid)
        fs.db.commit()
    return f"{wid} {socket.gethostname()}"


async def fund_devnet(remote: Remote) -> None:
    """Ask the devnet's faucets for SUI (gas) and WAL (storage) for the filesystem."""
    faucet = remote.network.chain().faucet_url
    if faucet is None:
        return
    async with httpx.AsyncClient(timeout=30) as client:
        for url in (faucet, faucet.rsplit("/", 1)[0] + "/wal"):
            r = await client.post(url, json={"FixedAmountRequest": {"recipient": remote.address}})
            if r.status_code >= 300:
                raise ProvisionError(f"the devnet faucet {url} refused: {r.text[:200]}")


def _write_wallet(directory: str, network: fsconfig.Network, key: str | None) -> str:
    from walrusfs.chain import generate_key, write_wallet

    return write_wallet(
        Path(directory) / fsconfig.WALLET_DIR, network.chain(), key or generate_key()
    )


async def create(
    directory: str,
    network: fsconfig.Network,
    passphrase: bytes,
    *,
    wallet_key: str | None = None,
    block_size: int = filesystem.DEFAULT_BLOCK_SIZE,
    kdf: KdfParams | None = None,
    lease_epochs: int = 53,
) -> Created:
    """Create a filesystem in `directory` on `network` (see the module docstring)."""
    fs_uuid = filesystem.create(directory, block_size=block_size)
    try:
        address = _write_wallet(directory, network, wallet_key)
        cfg = fsconfig.Config(network=network, address=address, lease_epochs=lease_epochs)
        master = new_master_key()
        wrapped = wrap_master_key(master, passphrase, kdf or KdfParams.new())
        write_key_file(os.path.join(directory, fsconfig.KEY_FILE), wrapped)
        async with connect(directory, cfg) as remote:
            if network.name == "devnet":
                await fund_devnet(remote)
            superblock = Superblock(fs_uuid, block_size, now_ns(), wrapped)
            stored = await remote.blobs.put(superblock.encode(), permanent=True)
            if stored.object_id is None:
                raise ProvisionError("the publisher kept the superblock's Blob object")
            cfg = cfg.with_changes(anchor=stored.object_id)
            fsconfig.save(directory, cfg)
            fs = Filesystem(directory)
            try:
                ops = remote.anchor_ops(stored.object_id)
                view = await ops.read()
                view = await ops.claim(view, writer_id(fs))
                fs.db.execute(
                    "INSERT INTO packs (blob_id, object_id, size, end_epoch, kind, created_ns)"
                    " VALUES (?, ?, ?, ?, 'superblock', ?)",
                    (stored.blob_id, stored.object_id, stored.size, stored.end_epoch, now_ns()),
                )
                seq, captured = capture(fs.db, view, fs.directory, uuid=fs_uuid, snapshot=True)
                view, _ = await publish(fs.db, ops, Keys.derive(master), view, seq, captured)
                await ops.release(view)
            finally:
                fs.close(clean=True)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return Created(fs_uuid, stored.object_id, address, stored.cost)


async def unlock(
    directory: str, remote: Remote, view: AnchorView, passphrase: bytes
) -> tuple[Keys, bytes]:
    """The filesystem's keys. The anchor's wrapped key wins over the local copy (the
    passphrase may have been changed elsewhere), and the local copy follows it."""
    path = os.path.join(directory, fsconfig.KEY_FILE)
    wrapped = view.wrapped_key
    if wrapped is None:
        try:
            wrapped = read_key_file(path)
        except WalrusfsError:
            wrapped = (await remote.anchor_ops(view.anchor.object_id).superblock(view)).wrapped_key
    master = unwrap_master_key(wrapped, passphrase)
    try:
        local = read_key_file(path)
    except WalrusfsError:
        local = None
    if local != wrapped:
        write_key_file(path, wrapped)
    return Keys.derive(master), master


async def change_passphrase(
    directory: str, remote: Remote, view: AnchorView, old: bytes, new: bytes
) -> AnchorView:
    """Re-wrap the master key under a new passphrase. Data is untouched: only the anchor's
    `walrusfs.key` pair (the superblock blob cannot change) and the local key file."""
    from walrusfs.crypto import rewrap

    path = os.path.join(directory, fsconfig.KEY_FILE)
    _, _ = await unlock(directory, remote, view, old)  # checks the old passphrase
    wrapped = rewrap(read_key_file(path), old, new)
    view = await remote.anchor_ops(view.anchor.object_id).set_wrapped_key(view, wrapped)
    write_key_file(path, wrapped)
    return view


async def restore(
    directory: str,
    network: fsconfig.Network,
    anchor_id: str,
    passphrase: bytes,
    *,
    wallet_key: str | None = None,
    wallet_dir: str | None = None,
    seq: int | None = None,
) -> Head:
    """Rebuild a filesystem directory from the anchor (up to commit `seq`, or the head).
    The wallet is made from `wallet_key`, or copied from `wallet_dir`."""
    # The daemon's own log may already be there.
    if os.path.exists(directory) and set(os.listdir(directory)) - {"mount.log"}:
        raise ProvisionError(f"{directory} is not empty")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    try:
        if wallet_dir is not None:
            from walrusfs.chain.wallet import wallet_address

            shutil.copytree(wallet_dir, os.path.join(directory, fsconfig.WALLET_DIR))
            address = wallet_address(Path(directory) / fsconfig.WALLET_DIR)
        else:
            address = _write_wallet(directory, network, wallet_key)
        cfg = fsconfig.Config(network=network, address=address, anchor=anchor_id)
        async with connect(directory, cfg) as remote:
            ops = remote.anchor_ops(anchor_id)
            view = await ops.read()
            if view.head is None:
                raise ProvisionError("the anchor names no commit: nothing to restore")
            superblock = await ops.superblock(view)
            keys, _ = await unlock(directory, remote, view, passphrase)
            head = view.head if seq is None else await ops.find(keys, view.head, seq)
            chain = await ops.load(keys, head)
            filesystem.initialize(
                directory, block_size=superblock.block_size, fs_uuid=superblock.uuid, root=None
            )
            fs = Filesystem(directory)
            try:
                for manifest in chain:
                    delta.apply(fs.db, manifest.payload, directory)
                commit = chain[-1]
                fs.db.execute(
                    "INSERT OR REPLACE INTO commits (seq, blob_id, hash, kind, size, rows,"
                    " created_ns) VALUES (?, ?, ?, ?, 0, 0, ?)",
                    (head.seq, head.blob_id, head.digest, commit.kind_name, commit.created_ns),
                )
                fs.db.execute("DELETE FROM changes")
            finally:
                fs.close(clean=True)
            fsconfig.save(directory, cfg)
            log.info("restored commit %d from %s", head.seq, anchor_id)
            return head
    except BaseException:
        # Leave nothing half restored (but the log that says why).
        for name in os.listdir(directory):
            if name != "mount.log":
                path = os.path.join(directory, name)
                shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
        raise
