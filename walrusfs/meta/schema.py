"""The metadata schema: read this file to learn walrusfs's data model.

Everything the filesystem knows about its tree lives in one SQLite database (WAL mode) in the
filesystem directory. File contents live in the block cache (cache/) and, once uploaded, in
chunks packed into Walrus blobs (store/); the `blocks` table ties the two together.

Invariants that hold after every committed transaction:
- Every row of `dentries` names an existing inode; every inode except the root and the
  orphans (nlink = 0, still open or still known to the kernel) has at least one dentry.
- `inodes.nlink` equals the number of dentries naming the inode, plus, for a directory,
  one for its own "." and one for the ".." of each subdirectory.
- A directory has exactly one dentry, and `inodes.parent` names the directory holding it.
- A block row exists only for a block that is not a hole; a missing row reads as zeros.
"""

from __future__ import annotations

# Bump when the schema changes incompatibly; mount refuses databases of another version.
SCHEMA_VERSION = 1

ROOT_INODE = 1

SCHEMA = """
-- Fixed facts about the filesystem, set by mkfs (block_size, uuid, created_ns,
-- schema_version) and a few that change (clean_unmount: 1 when the last mount ended
-- cleanly, 0 while mounted, so the next mount knows whether to run crash recovery).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value ANY NOT NULL
) STRICT;

-- One row per file, directory, symlink, device node, FIFO or socket.
CREATE TABLE inodes (
    -- The inode number, which is also the FUSE node id and st_ino. AUTOINCREMENT: a
    -- number is never reused, so the kernel can never confuse a new inode with one it
    -- still remembers. The root is 1.
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    -- st_mode exactly as set: file type bits and all twelve permission bits.
    mode      INTEGER NOT NULL,
    uid       INTEGER NOT NULL,
    gid       INTEGER NOT NULL,
    -- Regular files: length in bytes. Symlinks: length of the target. Others: 0.
    size      INTEGER NOT NULL DEFAULT 0,
    -- Link count (see the invariant in the module docstring). 0 means orphaned: the inode
    -- is deleted as soon as no handle is open and the kernel has forgotten it, or by crash
    -- recovery at the next mount.
    nlink     INTEGER NOT NULL,
    -- Device number of character and block devices, else 0.
    rdev      INTEGER NOT NULL DEFAULT 0,
    -- Times in nanoseconds since the epoch.
    atime_ns  INTEGER NOT NULL,
    mtime_ns  INTEGER NOT NULL,
    ctime_ns  INTEGER NOT NULL,
    -- Directories only: the inode of the directory that holds this one (the root holds
    -- itself). NULL for everything else, which may have many parents through hard links.
    parent    INTEGER,
    -- Regular files: how many rows of `blocks` this inode has, so st_blocks needs no count.
    nblocks   INTEGER NOT NULL DEFAULT 0
) STRICT;

-- Directory entries. The rowid is the entry's readdir position: entries are listed in
-- rowid order, and a position stays valid however the directory changes around it.
-- AUTOINCREMENT so a position is never handed to a different entry later.
CREATE TABLE dentries (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    parent INTEGER NOT NULL,
    -- Any bytes but '/' and NUL, at most 255 of them.
    name   BLOB NOT NULL,
    inode  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX dentries_by_name ON dentries(parent, name);
-- Serves readdir: entries of one directory in position (rowid) order.
CREATE INDEX dentries_by_parent ON dentries(parent);

-- Symlink targets (any bytes but NUL).
CREATE TABLE symlinks (
    inode  INTEGER PRIMARY KEY,
    target BLOB NOT NULL
) STRICT;

-- Extended attributes in every namespace (user., trusted., security., system.), names and
-- values stored exactly as given. POSIX ACLs are the system.posix_acl_* attributes.
CREATE TABLE xattrs (
    inode INTEGER NOT NULL,
    name  BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (inode, name)
) STRICT, WITHOUT ROWID;

-- The data of small files, kept here instead of in a cache file of their own: creating a
-- file on the cache disk costs more than the rest of a small file's write path together.
-- A regular file is "inline" exactly while it has a row here; `data` is then the file's
-- whole content (length = inodes.size, holes as zeros). It moves to a cache file when it
-- outgrows the inline limit (cache/blockcache.py).
CREATE TABLE inline_data (
    inode INTEGER PRIMARY KEY,
    data  BLOB NOT NULL
) STRICT;

-- The block map: which blocks of a regular file hold data, and where that data is.
-- Block n covers bytes [n * block_size, (n + 1) * block_size). No row: a hole (zeros).
-- state: 1 DIRTY  the cache (file or inline data) holds the block, newer than any uploaded
--                 chunk;
--        2 CLEAN  the cache holds the block, identical to chunk `chunk`;
--        3 REMOTE only chunk `chunk` holds the block (evicted from the cache).
-- chunk: the chunk last uploaded for this block (see the data path), NULL if never.
CREATE TABLE blocks (
    inode   INTEGER NOT NULL,
    blockno INTEGER NOT NULL,
    state   INTEGER NOT NULL CHECK (state IN (1, 2, 3)),
    chunk   INTEGER,
    PRIMARY KEY (inode, blockno)
) STRICT, WITHOUT ROWID;
-- Serves the uploader, which looks for dirty blocks.
CREATE INDEX blocks_by_state ON blocks(state) WHERE state = 1;
-- Serves readahead within a pack: which remote blocks a chunk would fill.
CREATE INDEX blocks_by_chunk ON blocks(chunk) WHERE chunk IS NOT NULL;

-- Chunks: the sealed, content-named pieces file data is stored as. A block's chunk is named
-- by a keyed BLAKE2b of its plaintext, so identical blocks anywhere share one chunk, and the
-- name tells the network nothing without the key.
CREATE TABLE chunks (
    id       INTEGER PRIMARY KEY,
    -- The 32-byte chunk id (keyed hash of the plaintext); also the AEAD's associated data.
    hash     BLOB NOT NULL UNIQUE,
    -- Where the sealed chunk is: packs.id, and its byte range in the pack's blob.
    pack     INTEGER NOT NULL,
    offset   INTEGER NOT NULL,
    length   INTEGER NOT NULL,
    -- Plaintext length (the sealed chunk is padded, so `length` does not reveal it).
    size     INTEGER NOT NULL,
    -- Blocks naming this chunk. 0: garbage, its space in the pack reclaimable.
    refcount INTEGER NOT NULL
) STRICT;

-- Packs: Walrus blobs holding sealed chunks back to back, and manifest blobs.
CREATE TABLE packs (
    id         INTEGER PRIMARY KEY,
    -- The Walrus blob id, unpadded URL-safe base64.
    blob_id    TEXT NOT NULL,
    -- The blob's Sui Blob object, owned by the filesystem's address (NULL when the
    -- publisher kept none, e.g. a blob that was already certified).
    object_id  TEXT,
    size       INTEGER NOT NULL,
    -- The blob is readable until the start of this epoch, unless renewed.
    end_epoch  INTEGER NOT NULL,
    -- 'data' for chunk packs, 'manifest' for commits, 'superblock' for the anchor's blob.
    kind       TEXT NOT NULL,
    created_ns INTEGER NOT NULL
) STRICT;

-- The manifest commits this filesystem made, in order (see manifest/). The row of a commit
-- is written once its blob is anchored, so it travels with the next commit.
CREATE TABLE commits (
    seq        INTEGER PRIMARY KEY,
    blob_id    TEXT NOT NULL,
    -- SHA-256 of the manifest blob's bytes, as anchored on Sui.
    hash       BLOB NOT NULL,
    -- 'delta' (rows changed since the previous commit) or 'snapshot' (everything).
    kind       TEXT NOT NULL,
    -- Bytes of the blob, and rows it carried.
    size       INTEGER NOT NULL,
    rows       INTEGER NOT NULL,
    created_ns INTEGER NOT NULL
) STRICT;

-- Rows of the shared tables changed since they were last committed, kept by the triggers
-- below (meta/delta.py reads them). k2 is '' for single-column keys. seq is NULL until a
-- commit captures the row; it returns to NULL if the row changes again before that commit
-- is anchored, so a change is never lost between capture and anchoring.
CREATE TABLE changes (
    tbl TEXT NOT NULL,
    k1  ANY NOT NULL,
    k2  ANY NOT NULL,
    seq INTEGER,
    PRIMARY KEY (tbl, k1, k2)
) STRICT, WITHOUT ROWID;
"""

# The tables a manifest carries, with their key columns. Everything else (inline data,
# block states, settings, the change log) is this machine's cache, rebuilt on restore.
SHARED_TABLES: dict[str, tuple[str, ...]] = {
    "inodes": ("id",),
    "dentries": ("id",),
    "symlinks": ("inode",),
    "xattrs": ("inode", "name"),
    "blocks": ("inode", "blockno"),
    "chunks": ("id",),
    "packs": ("id",),
    "commits": ("seq",),
}


def _change_triggers() -> str:
    out = []
    for table, keys in SHARED_TABLES.items():
        for when, row in (("INSERT", "NEW"), ("UPDATE", "NEW"), ("DELETE", "OLD")):
            k1 = f"{row}.{keys[0]}"
            k2 = f"{row}.{keys[1]}" if len(keys) > 1 else "''"
            # Block rows change state all the time; only their chunk is shared.
            on = "UPDATE OF chunk" if (table == "blocks" and when == "UPDATE") else when
            out.append(
                f"CREATE TRIGGER {table}_{when.lower()}_tracked AFTER {on} ON {table} BEGIN"
                f" INSERT INTO changes (tbl, k1, k2, seq) VALUES ('{table}', {k1}, {k2}, NULL)"
                " ON CONFLICT DO UPDATE SET seq = NULL WHERE seq IS NOT NULL; END;"
            )
    # Key columns are never updated (a renamed entry gets a new row), so the key of an
    # UPDATE's NEW row is also its OLD one.
    return "\n".join(out)


# A chunk's reference count follows the blocks naming it, whatever changes them.
_REFCOUNT_TRIGGERS = """
CREATE TRIGGER blocks_insert_ref AFTER INSERT ON blocks WHEN NEW.chunk IS NOT NULL BEGIN
    UPDATE chunks SET refcount = refcount + 1 WHERE id = NEW.chunk; END;
CREATE TRIGGER blocks_delete_ref AFTER DELETE ON blocks WHEN OLD.chunk IS NOT NULL BEGIN
    UPDATE chunks SET refcount = refcount - 1 WHERE id = OLD.chunk; END;
CREATE TRIGGER blocks_update_ref AFTER UPDATE OF chunk ON blocks
    WHEN OLD.chunk IS NOT NEW.chunk BEGIN
    UPDATE chunks SET refcount = refcount - 1 WHERE id = OLD.chunk;
    UPDATE chunks SET refcount = refcount + 1 WHERE id = NEW.chunk; END;
"""

SCHEMA += _change_triggers() + _REFCOUNT_TRIGGERS

BLOCK_DIRTY = 1
BLOCK_CLEAN = 2
BLOCK_REMOTE = 3
