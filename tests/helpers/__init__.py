"""Test helpers shared across packages: a real ``partitur serve`` in a subprocess, HTTP calls."""

from tests.helpers.server import PartiturServer, Reply, free_port, http, servers

__all__ = ["PartiturServer", "Reply", "free_port", "http", "servers"]
