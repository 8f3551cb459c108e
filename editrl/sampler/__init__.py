"""Test-time scaling: editor adapters, best-of-N and pruned search."""
