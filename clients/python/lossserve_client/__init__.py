"""Python client of lossserve: one facade, :class:`LossClient`, over REST or gRPC.

::

    import numpy as np
    from lossserve_client import LossClient

    # or LossClient.grpc("127.0.0.1:50051")
    with LossClient.rest("http://127.0.0.1:8000") as client:
        logits = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
        targets = np.array([0, 1, 2, 0, 0, 1, 0, 0])
        result = client.compute_loss("focal", logits, targets, return_grad=True)
        print(result.value, result.grad.shape)

Generated code, never edited by hand (``make generate`` writes it):
:mod:`lossserve_client.openapi` (the REST client, from ``openapi/openapi.json``) and
:mod:`lossserve_proto` (messages, gRPC stubs and their type stubs, from ``proto/``),
which the server uses too.
"""

from .client import (
    DEFAULT_BINARY_BYTES,
    DEFAULT_CHUNK_BYTES,
    GRPC_OPTIONS,
    RETRY_POLICY,
    LossClient,
)
from .types import (
    ClassMetrics,
    EvaluateUpdate,
    LossInfo,
    LossResult,
    LossServeError,
    Metrics,
    Prediction,
    Thresholds,
)

__all__ = [
    "DEFAULT_BINARY_BYTES",
    "DEFAULT_CHUNK_BYTES",
    "GRPC_OPTIONS",
    "RETRY_POLICY",
    "ClassMetrics",
    "EvaluateUpdate",
    "LossClient",
    "LossInfo",
    "LossResult",
    "LossServeError",
    "Metrics",
    "Prediction",
    "Thresholds",
]
