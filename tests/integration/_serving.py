"""What the process-level tests share: request builders and readings of ``/metrics``.

A replica's environment is :data:`tests.processes.SERVICE_ENV`; the tensors are encoded by
the wire package's :mod:`lossserve_proto.tensors`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from lossserve_proto.lossserve.v1 import loss_service_pb2 as pb
from lossserve_proto.tensors import encode_b64, encode_tensor

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


def loss_body(
    loss: str,
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    return_grad: bool = False,
    return_hessian: bool = False,
    params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``POST /loss`` body with b64 tensors."""
    return {
        "loss": loss,
        "params": params or {},
        "logits": encode_b64(logits),
        "targets": encode_b64(targets),
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
    params: dict[str, Any] | None = None,
) -> pb.ComputeLossRequest:
    """The same request as :func:`loss_body`, as a ``ComputeLoss`` message."""
    return pb.ComputeLossRequest(
        loss=loss,
        params_json=json.dumps(params or {}),
        logits=encode_tensor(logits),
        targets=encode_tensor(targets),
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


WORKER_QUEUE = "lossserve_worker_queue_depth"
"""Jobs waiting in a replica's worker queues (not counting the running ones)."""
MODEL_QUEUE = "lossserve_model_queue_depth"
MODEL_RUNNING = "lossserve_model_running_batches"
"""Requests waiting in the models' dynamic batchers."""


def waiting(metrics_text: str, gauge: str) -> float:
    """The sum of ``gauge`` (:data:`WORKER_QUEUE`, :data:`MODEL_QUEUE`) in a ``/metrics``."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics_text)
        if family.name == gauge
        for sample in family.samples
    )


TABLE_HEADER = ["customer_id", "age", "income", "country", "plan", "churned"]


def write_table(path: Path, rows: int = 400, seed: int = 0) -> Path:
    """A CSV as users have them: an ID column, two numeric and two categorical columns
    with about 5% of their cells empty, and a yes/no label."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(TABLE_HEADER)
        for index in range(rows):
            age, income = rng.normal(40, 10), rng.normal(5, 1)
            country, plan = rng.choice(["US", "FR", "DE", "JP"]), rng.choice(["basic", "pro"])
            score = 0.08 * (age - 40) + 1.5 * (plan == "pro") + (country == "JP")
            churned = "yes" if score + rng.normal() > 1.2 else "no"
            cells = [f"C-{index:05d}", f"{age:.1f}", f"{income:.2f}", country, plan, churned]
            for column in (1, 2, 3, 4):
                if rng.random() < 0.05:
                    cells[column] = ""
            writer.writerow(cells)
    return path
