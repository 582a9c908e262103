"""The data path: block to chunk (keyed hash, dedup) to sealed chunk to pack to Walrus blob, and back.

Pure pieces without a database: the cache layer decides what to upload and records it.
"""
