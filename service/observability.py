"""Prometheus metrics and one-JSON-object-a-line logs, shared by both transports."""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

import losses

if TYPE_CHECKING:
    from .core.state import ServiceState

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


class Metrics:
    """The service's metrics in a registry of its own (one per app, so tests can isolate)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[str, str, str, int | str], tuple[Any, Any]] = {}
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
        self, route: str, loss: str, status: int | str, seconds: float, transport: str = "http"
    ) -> None:
        """Count one request. ``route`` must come from a bounded set (the app's route
        templates, the server's RPC names); ``loss`` is whatever the client sent, so only a
        registry name is kept, anything else counts as ``unknown``."""
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
        """Read the worker gauges from the pool at scrape time."""
        for index, stats in enumerate(state.pool.stats()):
            device = f"{stats.device}#{index}"
            self.queue_depth.labels(device).set(stats.queued)
            self.worker_alive.labels(device).set(1 if stats.alive else 0)
            self.worker_replaced.labels(device).set(stats.replaced)
        self.model_info.clear()
        self.model_queue.clear()
        self.model_running.clear()
        for model in state.models.live_models():
            self.model_info.labels(model.name, str(model.version), model.provider).set(1)
        for model_stats in state.models.stats():
            self.model_queue.labels(model_stats.name).set(model_stats.queued)
            self.model_running.labels(model_stats.name).set(model_stats.running)
