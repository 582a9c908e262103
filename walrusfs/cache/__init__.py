"""The write-back block cache on local disk: dirty and clean blocks, eviction, fsync durability."""
