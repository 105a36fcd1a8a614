"""Ollama's API at the queen's root (/api/chat, /api/generate, ...), each request an rbee job."""
