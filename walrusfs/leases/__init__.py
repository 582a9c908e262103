"""Lease horizon, renewal, pack compaction, garbage collection and cost accounting."""
