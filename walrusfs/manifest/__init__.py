"""Commits of the metadata as encrypted deltas and snapshots, and restore on a fresh machine."""
