"""What the process-level tests share: a replica's environment, request builders, metrics.

The server processes themselves come from ``bench/_server.py`` (``start_server``,
``wait_ready``, ``stop_server``), the same helper the benchmarks use.
"""

from __future__ import annotations

import base64
import os
from typing import Any

import numpy as np
from lossserve_client.proto.lossserve.v1 import loss_service_pb2 as pb
from prometheus_client.parser import text_string_to_metric_families

SERVICE_ENV: dict[str, str] = {
    **os.environ,
    "LOSSSERVE_DEVICES": '["cpu"]',  # one worker: jobs queue behind each other
    "OMP_NUM_THREADS": "1",
}
"""The environment of a replica: one CPU worker, one torch thread."""

HEALTH_ROUTES = frozenset(
    {
        "/metrics",
        "/v2/health/ready",
        "/v2/health/live",
        "/v2/models/{model_name}/ready",
        "/grpc.health.v1.Health/Check",
    }
)


def batch(rows: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded float32 logits ``[rows, classes]`` and int64 class targets ``[rows]``."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(rows, classes)).astype(np.float32)
    targets = rng.integers(0, classes, size=rows).astype(np.int64)
    return logits, targets


def b64_tensor(array: np.ndarray) -> dict[str, Any]:
    """The REST ``{"shape", "dtype", "b64"}`` tensor encoding."""
    return {
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "b64": base64.b64encode(array.tobytes()).decode(),
    }


def loss_body(
    loss: str,
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    return_grad: bool = False,
    return_hessian: bool = False,
) -> dict[str, Any]:
    """A ``POST /loss`` body with b64 tensors."""
    return {
        "loss": loss,
        "logits": b64_tensor(logits),
        "targets": b64_tensor(targets),
        "return_grad": return_grad,
        "return_hessian": return_hessian,
    }


def loss_message(
    loss: str,
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    return_grad: bool = False,
    return_hessian: bool = False,
) -> pb.ComputeLossRequest:
    """The same request as :func:`loss_body`, as a ``ComputeLoss`` message."""

    def tensor(array: np.ndarray) -> pb.Tensor:
        return pb.Tensor(shape=list(array.shape), dtype=str(array.dtype), data=array.tobytes())

    return pb.ComputeLossRequest(
        loss=loss,
        logits=tensor(logits),
        targets=tensor(targets),
        return_grad=return_grad,
        return_hessian=return_hessian,
    )


def served_requests(metrics_text: str) -> dict[str, float]:
    """Requests a replica answered, by transport, from its ``/metrics`` (health checks and
    scrapes left out)."""
    counts = {"http": 0.0, "grpc": 0.0}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "lossserve_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels["route"] not in HEALTH_ROUTES:
                counts[sample.labels["transport"]] += sample.value
    return counts


def queued_jobs(metrics_text: str) -> float:
    """Jobs waiting in a replica's worker queues (not counting the running ones)."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == "lossserve_worker_queue_depth"
        for sample in family.samples
    )
