"""Contributes Ollama's API (``/api/...``) to the queen."""

from __future__ import annotations

from typing import Any

from litestar import Router

from rbee_core import hookimpl
from rbee_ollama.errors import ollama_error_handlers
from rbee_ollama.model_routes import MODEL_ROUTES
from rbee_ollama.routes import GENERATION_ROUTES

__all__ = ["ollama_router", "rbee_queen_routes"]

ollama_router = Router(
    path="/api",
    route_handlers=[*GENERATION_ROUTES, *MODEL_ROUTES],
    exception_handlers=ollama_error_handlers,
)


@hookimpl
def rbee_queen_routes() -> list[Any]:
    return [ollama_router]
