"""rbee-markov: a toy Markov-chain backend for rbee, and a worked example of a plugin.

``rbee_markov.plugin`` is the entry point; ``backend`` and ``source`` hold the two objects it
registers; ``chain`` is the Markov chain itself. See README.md and rbee's docs/plugins.md.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
