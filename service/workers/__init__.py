"""The device worker pool: one worker per device, bounded queues, deadlines, fault handling."""

from lossserve.workers._child import keep_freed_memory
from lossserve.workers.pool import (
    Job,
    Split,
    WorkerCrash,
    WorkerPool,
    WorkerStats,
    default_devices,
)

__all__ = [
    "Job",
    "Split",
    "WorkerCrash",
    "WorkerPool",
    "WorkerStats",
    "default_devices",
    "keep_freed_memory",
]
