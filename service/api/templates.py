"""Inference requests decoded from everything but their tensors' bytes, kept for the next
request that says the same (:class:`~.memo.Memo`).

A client sends the same request again and again but for its tensors' values: the same
model, shapes, datatypes and outputs. Decoding that part (JSON or protobuf, then every
check of names, datatypes, shapes and sizes) is about a tenth of a small request's CPU.
So each transport keys what it received without the tensors' bytes (REST: the
binary-extension header and the body's length; gRPC: the message without its
``raw_input_contents`` and their lengths), and on a repeat builds the request from the
kept :class:`Template` and the new bytes. Only requests whose every input is numeric and
sent as raw bytes are kept: the key then decides every check the decoder makes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from ..models.engine import InferRequest

__all__ = ["Template", "template_of"]


@dataclass(frozen=True)
class Template:
    """A decoded request without its tensors: each input's name, dtype, shape, element
    count and where its bytes are (which buffer, at which offset)."""

    request: InferRequest
    """The request, its ``inputs`` empty."""
    tensors: tuple[tuple[str, np.dtype[Any], tuple[int, ...], int, tuple[int, int]], ...]

    def request_of(self, buffers: Sequence[Any]) -> InferRequest:
        """The request with its tensors read (copied, writable) from ``buffers``."""
        inputs = {
            name: np.frombuffer(buffers[index], dtype, count, offset).reshape(shape).copy()
            for name, dtype, shape, count, (index, offset) in self.tensors
        }
        return replace(self.request, inputs=inputs)


def template_of(request: InferRequest, places: Sequence[tuple[int, int]]) -> Template | None:
    """``request`` as a template, its tensors' bytes at ``places`` (one ``(buffer index,
    offset)`` per input, in order); None when an input is not numeric."""
    tensors = []
    for (name, array), place in zip(request.inputs.items(), places, strict=True):
        if array.dtype == object:
            return None
        tensors.append((name, array.dtype, array.shape, array.size, place))
    return Template(replace(request, inputs={}), tuple(tensors))
