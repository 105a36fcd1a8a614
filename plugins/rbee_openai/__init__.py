"""The OpenAI-compatible API: /v1/models, /v1/chat/completions, /v1/completions.

A queen plugin: every OpenAI request is an ordinary rbee job underneath, with the same
scheduling, records and cancellation.
"""
