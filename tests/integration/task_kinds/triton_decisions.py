"""The decisions of a served model through the unmodified tritonclient, http and grpc.

    python triton_decisions.py HTTP_HOST:PORT GRPC_HOST:PORT MODEL ROWS.npy

Prints ``{"http": [...], "grpc": [...]}``: the ``decisions`` output of one ``infer`` call with
every row, over each protocol. A script of its own: tritonclient.grpc's generated protobuf
package cannot share an interpreter with lossserve's (see tests/contract/conftest.py).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import tritonclient.grpc as grpcclient  # type: ignore[import-untyped]
import tritonclient.http as httpclient  # type: ignore[import-untyped]


def decisions(module: object, client: object, model: str, rows: np.ndarray) -> list[object]:
    tensor = module.InferInput("features", list(rows.shape), "FP32")  # type: ignore[attr-defined]
    tensor.set_data_from_numpy(rows)
    asked = [module.InferRequestedOutput("decisions")]  # type: ignore[attr-defined]
    result = client.infer(model, [tensor], outputs=asked)  # type: ignore[attr-defined]
    values: list[object] = result.as_numpy("decisions").tolist()
    return values


def main() -> None:
    http_url, grpc_url, model, path = sys.argv[1:5]
    rows = np.load(path).astype(np.float32)
    answer = {
        "http": decisions(httpclient, httpclient.InferenceServerClient(http_url), model, rows),
        "grpc": decisions(grpcclient, grpcclient.InferenceServerClient(grpc_url), model, rows),
    }
    print(json.dumps(answer))


if __name__ == "__main__":
    main()
