"""Nubo backend: REST API and real-time WebSocket over PostgreSQL, Redis and MongoDB."""

__version__ = "0.1.0"
