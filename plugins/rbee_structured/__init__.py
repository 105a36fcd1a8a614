"""Constrained decoding: output held to a JSON Schema, token by token (llguidance).

Shared by the backends, which mask each job's logits to what keeps its output valid, and the
queen, which compiles a job's schema before accepting it, so a schema that cannot be
enforced is a 400 naming the problem and never a failed or hung job.

Why llguidance: one library serves both engines (a mask over token ids works on torch's
logits and on llama.cpp's alike), so both accept the same schemas with the same errors; it
computes a mask in tens of microseconds on CPU, per sequence, which is what rbee's batch
engines need (each row of a batch has its own job, constrained or not); and it is what
llama.cpp itself links for its own JSON-schema support when built with LLGUIDANCE.
"""
