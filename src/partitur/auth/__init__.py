"""Sources, write keys and admin tokens. Keys are random, shown once, and stored hashed."""

from partitur.auth.keys import Keys, Source

__all__ = ["Keys", "Source"]
