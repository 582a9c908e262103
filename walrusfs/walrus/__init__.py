"""The Walrus client: publisher and aggregator HTTP API with retries and failover. Knows nothing of inodes."""
