"""OpenAI's Responses API (/v1/responses), each request an rbee job."""
