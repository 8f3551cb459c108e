"""A procedural editing world with an exact oracle, simulated annotators and shipped tiny models."""
