"""Privacy: consent, erasure and export."""
