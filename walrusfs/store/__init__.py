"""The data path: block to chunk (keyed hash, dedup) to sealed chunk to pack to Walrus blob, and back."""
