"""Keys and primitives: Argon2id key wrapping, derived subkeys, AEAD sealing, keyed hashing."""
