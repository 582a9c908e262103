"""SQLite (WAL) metadata: inodes, directory entries, symlinks, extended attributes and the block map."""
