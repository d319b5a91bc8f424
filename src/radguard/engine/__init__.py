"""engine: bulk work over many items, on a local process pool (both cores by default)."""

from radguard.engine.pool import run_batched

__all__ = ["run_batched"]
