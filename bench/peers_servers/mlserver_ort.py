"""The MLServer peer: a custom runtime running ONNX Runtime (MLServer ships none for ONNX).

``bench/peers.py`` writes ``settings.json`` and ``model-settings.json`` (``implementation``
``mlserver_ort.OrtRuntime``, ``parameters.uri`` the model file) into a folder and runs
``mlserver start FOLDER`` with this folder on ``PYTHONPATH``: MLServer's Open Inference
Protocol v2 over REST and gRPC, no parallel inference workers (the model runs in the
server process, as ``parallel_workers: 0``).
"""

from __future__ import annotations

import _ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OrtRuntime(MLModel):  # type: ignore[misc]
    async def load(self) -> bool:
        self.session = _ort.session(str(self.settings.parameters.uri))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        features = NumpyCodec.decode_input(payload.inputs[0])
        outputs = _ort.run(self.session, features)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[
                NumpyCodec.encode_output(name, array)
                for name, array in zip(_ort.OUTPUTS, outputs, strict=True)
            ],
        )
