"""How rbee's processes prove to each other who they are, beyond the shared API key.

Every process of a cluster holds the same API key, so the key alone cannot tell one hive
from another: these secrets do (docs/api.md, "Hives and workers").

- **A hive's secret.** The queen issues one when a hive registers, answers it once, and asks
  for it (header ``X-Rbee-Hive-Token``) on every heartbeat; it lives only in the two
  processes' memory and a new registration replaces it.
- **Proving a URL.** A hive registering sends a fresh random ``nonce``; the queen then asks
  ``GET URL/identity?challenge=C`` and wants ``proof(nonce, name, C)`` back. Only the
  process at that URL which sent the nonce can answer it, and the nonce itself never
  leaves that process but in the registration (an HMAC, not an echo: anyone holding the key
  may read ``/identity``, so an echoed nonce would be anyone's).
- **A hive the queen started itself** (its local hive, a Ray node's) gets a launch token in
  its environment; with it, it may take its name back from another URL (a restart on a new
  port).
- **A worker's token.** A hive gives each worker it starts a token in its environment (never
  its command line, which ``ps`` shows) and asks for it (``X-Rbee-Worker-Token``) on that
  worker's heartbeats.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "HIVE_LAUNCH_TOKEN_ENV",
    "HIVE_LAUNCH_TOKEN_HEADER",
    "HIVE_TOKEN_HEADER",
    "MAX_CHALLENGE",
    "WORKER_TOKEN_ENV",
    "WORKER_TOKEN_HEADER",
    "PART_TOKEN_ENV",
    "WORKER_PARTS_ENV",
    "new_secret",
    "proof",
    "same_secret",
]

HIVE_TOKEN_HEADER = "X-Rbee-Hive-Token"
HIVE_LAUNCH_TOKEN_HEADER = "X-Rbee-Hive-Launch-Token"
HIVE_LAUNCH_TOKEN_ENV = "RBEE_HIVE_LAUNCH_TOKEN"
WORKER_TOKEN_HEADER = "X-Rbee-Worker-Token"
WORKER_TOKEN_ENV = "RBEE_WORKER_TOKEN"
# A part of a split model (rbee_core.model_split) gets its token from its hive, and a split
# worker the parts it reaches (JSON, tokens included) from its own.
PART_TOKEN_ENV = "RBEE_PART_TOKEN"
WORKER_PARTS_ENV = "RBEE_WORKER_PARTS"
MAX_CHALLENGE = 256  # characters of an /identity challenge (the queen sends 22)


def new_secret() -> str:
    """A fresh secret: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def proof(nonce: str, name: str, challenge: str) -> str:
    """What a hive answers a challenge with: HMAC-SHA256 keyed by its registration nonce, of
    its name and the challenge."""
    message = f"{name}\n{challenge}".encode()
    return hmac.new(nonce.encode(), message, hashlib.sha256).hexdigest()


def same_secret(given: str | None, expected: str | None) -> bool:
    """Whether ``given`` is ``expected``, in constant time; nothing matches a missing one."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
