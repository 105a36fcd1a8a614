"""Prometheus metrics for the queen: ``GET /metrics``."""
