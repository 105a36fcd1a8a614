"""Litestar helpers the rbee daemons share: serving, SSE, and the JSON error shape."""
