"""GET /demo: a live page of the public API (login, /ws, messages, presence, resume, refresh)."""
