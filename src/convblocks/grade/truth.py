"""The reference the grader compares against: the vectorized top-level functions.

One line picks it; :mod:`convblocks.loops` (the literal loops, same semantics, slower)
is the fallback. Both send a tied maximum's gradient to the first maximum only.
"""

from __future__ import annotations

from convblocks import course as reference  # fallback: from convblocks import loops as reference

__all__ = ["reference"]
