"""walrusfs: an encrypted FUSE filesystem on Walrus, with its manifest anchored on Sui.

The package is split into the layers of DESIGN.md; arrows go down only:
fs → meta, cache → store, crypto, manifest, leases → walrus, chain. devnet imports
nothing from the filesystem layers, and cli ties everything together.
"""

__version__ = "0.1.0"
