"""engine: bulk work over many items, on a local process pool (both cores by default)."""

from radguard.engine.pool import run_batched
from radguard.engine.shared import WorkerDied, run_shared

__all__ = ["WorkerDied", "run_batched", "run_shared"]
