"""The embedded local network: storage nodes, publisher/aggregator, and a Sui ledger. Imports nothing from the filesystem layers."""
