"""The naive peer: about twenty lines of FastAPI + ONNX Runtime, a JSON route of its own.

    python fastapi_ort.py MODEL.onnx PORT

``POST /predict`` with ``{"instances": [[64 floats], ...]}`` answers
``{"logits": [[...]], "probabilities": [[...]]}``; uvicorn with uvloop and httptools, one
process, the model run on the event loop (what the FastAPI tutorial's ``async def`` does).
"""

from __future__ import annotations

import sys

import _ort
import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
model = _ort.session(sys.argv[1])


class Instances(BaseModel):
    instances: list[list[float]]


@app.post("/predict")
async def predict(body: Instances) -> dict[str, list[list[float]]]:
    logits, probabilities = _ort.run(model, np.asarray(body.instances, dtype=np.float32))
    return {"logits": logits.tolist(), "probabilities": probabilities.tolist()}


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    port = int(sys.argv[2])
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
