"""One module per CLI workflow; each exposes ``register(subparsers)`` and stays thin over the library."""
