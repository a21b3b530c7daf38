"""Prometheus metrics and one-JSON-object-a-line logs, shared by both transports."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

import losses

if TYPE_CHECKING:
    from .core.state import ServiceState
    from .models.engine import ModelStats

__all__ = ["JsonFormatter", "Metrics", "configure_logging", "loss_label"]

_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO") -> None:
    """Every line the server writes as one JSON object: lossserve's loggers, and uvicorn's
    and grpc's Python loggers (uvicorn's "Invalid HTTP request received.", say)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("lossserve", "uvicorn", "uvicorn.error", "uvicorn.access", "grpc"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper() if name == "lossserve" else logging.WARNING)
        logger.propagate = False


def loss_label(loss: object) -> str:
    """A bounded metrics label for a loss the client named: the registry name, ``""`` when
    none was named, else ``unknown``."""
    if not loss:
        return ""
    return loss if isinstance(loss, str) and loss in losses.names() else "unknown"


_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class _ModelCollector(Collector):
    """Each served model's counters at the last scrape (Triton's ``nv_inference_*``, with
    queue and compute time as cumulative microsecond counters and the rows per run as a
    histogram), from the same numbers as ``/v2/models/{m}/stats``."""

    def __init__(self) -> None:
        self.stats: list[ModelStats] = []

    def collect(self) -> Iterator[Metric]:
        labels = ["model", "version"]
        families = {
            "requests": CounterMetricFamily(
                "lossserve_model_requests",
                "Inference requests by outcome (success, failure).",
                labels=[*labels, "outcome"],
            ),
            "rows": CounterMetricFamily(
                "lossserve_model_inference_rows", "Rows inferred.", labels=labels
            ),
            "runs": CounterMetricFamily(
                "lossserve_model_executions",
                "Model runs (merged requests run once).",
                labels=labels,
            ),
            "request_us": CounterMetricFamily(
                "lossserve_model_request_duration_us",
                "Microseconds the successful requests took in the model (queue and run).",
                labels=labels,
            ),
            "queue_us": CounterMetricFamily(
                "lossserve_model_queue_duration_us",
                "Microseconds the requests waited in the batcher for their run.",
                labels=labels,
            ),
            "compute_us": CounterMetricFamily(
                "lossserve_model_compute_infer_duration_us",
                "Microseconds of the runs the requests were in.",
                labels=labels,
            ),
        }
        sizes = HistogramMetricFamily(
            "lossserve_model_batch_size", "Rows a model run.", labels=labels
        )
        for item in self.stats:
            key = [item.name, item.version]
            families["requests"].add_metric([*key, "success"], item.success_count)
            families["requests"].add_metric([*key, "failure"], item.fail_count)
            families["rows"].add_metric(key, item.inference_count)
            families["runs"].add_metric(key, item.execution_count)
            families["request_us"].add_metric(key, item.success_ns / 1e3)
            families["queue_us"].add_metric(key, item.queue_ns / 1e3)
            families["compute_us"].add_metric(key, item.compute_ns / 1e3)
            buckets, total, count = [], 0.0, 0
            for bound in _BATCH_BUCKETS:
                count_here = sum(b.count for b in item.batch_stats if b.batch_size <= bound)
                buckets.append((str(bound), count_here))
            count = sum(b.count for b in item.batch_stats)
            total = float(item.batch_rows)
            buckets.append(("+Inf", count))
            sizes.add_metric(key, buckets, total)
        yield from families.values()
        yield sizes


class Metrics:
    """The service's metrics in a registry of its own (one per app, so tests can isolate)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # process_* (CPU, memory, file descriptors) and python_* (version, GC), as every
        # Prometheus client's default registry has them
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.models = _ModelCollector()
        self.registry.register(self.models)
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        """The labelled request counter and histogram of each label set seen."""
        self.requests = Counter(
            "lossserve_requests",
            "Requests by route, loss and status.",
            ["transport", "route", "loss", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "lossserve_request_seconds",
            "Request latency by route and loss.",
            ["transport", "route", "loss"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.queue_depth = Gauge(
            "lossserve_worker_queue_depth",
            "Jobs waiting per worker.",
            ["device"],
            registry=self.registry,
        )
        self.worker_alive = Gauge(
            "lossserve_worker_alive",
            "1 when the worker runs.",
            ["device"],
            registry=self.registry,
        )
        self.worker_replaced = Gauge(
            "lossserve_worker_replaced",
            "Times the worker was replaced.",
            ["device"],
            registry=self.registry,
        )
        self.model_info = Gauge(
            "lossserve_model_info",
            "1 for each model served, with its version and ONNX Runtime execution provider.",
            ["model", "version", "provider"],
            registry=self.registry,
        )
        self.model_queue = Gauge(
            "lossserve_model_queue_depth",
            "Requests waiting in the model's dynamic batcher.",
            ["model"],
            registry=self.registry,
        )

        self.model_running = Gauge(
            "lossserve_model_running_batches",
            "Model runs in progress.",
            ["model"],
            registry=self.registry,
        )

    def observe(
        self, route: str, loss: str, status: str, seconds: float, transport: str = "http"
    ) -> None:
        """Count one request. ``route`` must come from a bounded set (the app's route
        templates, the server's RPC names); ``loss`` is whatever the client sent, so only a
        registry name is kept, anything else counts as ``unknown``. ``status``: a gRPC status
        code's name, on both transports (:func:`lossserve.api.http.status_name`)."""
        label = loss_label(loss)
        key = (transport, route, label, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.requests.labels(transport, route, label, str(status)),
                self.latency.labels(transport, route, label),
            )
        children[0].inc()
        children[1].observe(seconds)

    def refresh(self, state: ServiceState) -> None:
        """Read the worker gauges and the models' counters at scrape time."""
        for index, worker in enumerate(state.pool.stats()):
            device = f"{worker.device}#{index}"
            self.queue_depth.labels(device).set(worker.queued)
            self.worker_alive.labels(device).set(1 if worker.alive else 0)
            self.worker_replaced.labels(device).set(worker.replaced)
        self.model_info.clear()
        self.model_queue.clear()
        self.model_running.clear()
        for model in state.models.live_models():
            self.model_info.labels(model.name, str(model.version), model.provider).set(1)
        stats = state.models.stats()
        for model_stats in stats:
            self.model_queue.labels(model_stats.name).set(model_stats.queued)
            self.model_running.labels(model_stats.name).set(model_stats.running)
        self.models.stats = stats
