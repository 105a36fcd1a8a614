"""llm-worker-rbee: one process per loaded model; streams tokens over HTTP/SSE."""
