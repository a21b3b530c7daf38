"""The decisions of a served model through the unmodified tritonclient, http and grpc.

    python triton_decisions.py HTTP_HOST:PORT GRPC_HOST:PORT MODEL INPUTS.npz

Prints ``{"http": [...], "grpc": [...]}``: the ``decisions`` output of one ``infer`` call with
the inputs of ``INPUTS.npz`` (one array per model input: numbers as FP32, strings as
BYTES), over each protocol. A script of its own: tritonclient.grpc's generated protobuf
package cannot share an interpreter with lossserve's (see tests/contract/conftest.py).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient  # type: ignore[import-untyped]
import tritonclient.http as httpclient  # type: ignore[import-untyped]


def decisions(
    module: object, client: object, model: str, inputs: dict[str, np.ndarray]
) -> list[object]:
    tensors = []
    for name, array in inputs.items():
        datatype = "BYTES" if array.dtype == object else "FP32"
        tensor = module.InferInput(name, list(array.shape), datatype)  # type: ignore[attr-defined]
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    asked = [module.InferRequestedOutput("decisions")]  # type: ignore[attr-defined]
    result = client.infer(model, tensors, outputs=asked)  # type: ignore[attr-defined]
    values: list[object] = result.as_numpy("decisions").tolist()
    return values


def main() -> None:
    http_url, grpc_url, model, path = sys.argv[1:5]
    with np.load(path, allow_pickle=False) as archive:
        inputs = {
            name: archive[name].astype(object if archive[name].dtype.kind == "U" else np.float32)
            for name in archive.files
        }
    answer = {
        "http": decisions(httpclient, httpclient.InferenceServerClient(http_url), model, inputs),
        "grpc": decisions(grpcclient, grpcclient.InferenceServerClient(grpc_url), model, inputs),
    }
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
