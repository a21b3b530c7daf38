"""The LitServe peer: a ``litserve.LitAPI`` running ONNX Runtime, on its own ``/predict``.

    python litserve_ort.py MODEL.onnx PORT

``POST /predict`` with ``{"instances": [[64 floats], ...]}`` answers
``{"logits": [[...]], "probabilities": [[...]]}``; one API server and one inference worker
on the CPU, no batching (LitServe's defaults otherwise).
"""

from __future__ import annotations

import sys

import _ort
import litserve as ls
import numpy as np


class OrtAPI(ls.LitAPI):  # type: ignore[misc]
    def setup(self, device: str) -> None:
        self.session = _ort.session(sys.argv[1])

    def decode_request(self, request):  # type: ignore[no-untyped-def]
        """``request`` is the parsed JSON body: LitServe reads this parameter's annotation to
        choose what to pass, so it has none."""
        return np.asarray(request["instances"], dtype=np.float32)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _ort.run(self.session, x)

    def encode_response(
        self, output: tuple[np.ndarray, np.ndarray]
    ) -> dict[str, list[list[float]]]:
        logits, probabilities = output
        return {"logits": logits.tolist(), "probabilities": probabilities.tolist()}


if __name__ == "__main__":
    server = ls.LitServer(OrtAPI(), accelerator="cpu", devices=1, workers_per_device=1)
    server.run(
        host="127.0.0.1",
        port=int(sys.argv[2]),
        num_api_servers=1,
        log_level="warning",
        generate_client_file=False,
    )
