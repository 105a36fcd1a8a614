"""Anthropic's Messages API (/v1/messages), each request an rbee job."""
