"""The ONNX Runtime session every peer server builds: lossserve's session options.

One intra-op thread, one inter-op thread, no spinning (``service/models/repository.py``),
on ``CPUExecutionProvider``. Each peer script runs in its own venv (``bench/peers.py`` sets
them up), with this folder first on ``sys.path``.
"""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

OUTPUTS = ("logits", "probabilities")


def session(path: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("PEER_ORT_THREADS", "1"))
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def run(model: ort.InferenceSession, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, probabilities) of a float32 [batch, features] array."""
    name = model.get_inputs()[0].name
    logits, probabilities = model.run(list(OUTPUTS), {name: features.astype(np.float32)})
    return np.asarray(logits), np.asarray(probabilities)
