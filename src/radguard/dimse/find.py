"""C-FIND constants shared by the confirmation step (PS3.4 C.4.1, C.6.2)."""

from __future__ import annotations

__all__ = ["FIND_MODEL"]

FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"
"""Study Root Query/Retrieve Information Model - FIND (PS3.4 C.6.2)."""
