"""The KServe peer: a ``kserve.Model`` running ONNX Runtime, served by ``kserve.ModelServer``.

    python kserve_ort.py MODEL.onnx --model_name NAME --http_port P --grpc_port G --workers 1

KServe's own Open Inference Protocol v2 over REST (``POST /v2/models/NAME/infer``) and gRPC
(``inference.GRPCInferenceService/ModelInfer``); the model server's own options (ports,
workers) are read by ``kserve`` itself from the command line.
"""

from __future__ import annotations

import logging
import sys

import _ort
import kserve
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse
from kserve.utils.utils import generate_uuid


class OrtModel(kserve.Model):  # type: ignore[misc]
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        self.session = _ort.session(self.path)
        self.ready = True
        return True

    def predict(
        self, payload: InferRequest, headers: dict[str, str] | None = None
    ) -> InferResponse:
        outputs = _ort.run(self.session, payload.inputs[0].as_numpy())
        infer_outputs = []
        for name, array in zip(_ort.OUTPUTS, outputs, strict=True):
            output = InferOutput(name=name, shape=list(array.shape), datatype="FP32")
            output.set_data_from_numpy(array, binary_data=payload.use_binary_outputs)
            infer_outputs.append(output)
        return InferResponse(
            response_id=payload.id or generate_uuid(),  # as kserve's own model servers
            model_name=self.name,
            infer_outputs=infer_outputs,
            from_grpc=payload.from_grpc,
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=payload.request_outputs,
        )


if __name__ == "__main__":
    path = sys.argv.pop(1)  # kserve parses the rest of the command line itself
    name = sys.argv[sys.argv.index("--model_name") + 1]
    server = kserve.ModelServer()
    # no log line a request (peers.py passes --enable_latency_logging false for the other one)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    server.start([OrtModel(name, path)])
