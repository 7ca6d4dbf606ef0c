"""The identity graph: identifiers linked to one profile per person."""
