"""Loss requests through system shared memory, for a client on the server's host.

A :class:`SharedTensors` owns one POSIX shared-memory segment, registered with the server as
a region (the Open Inference Protocol's system shared memory extension, which the server
allows with ``LOSSSERVE_ALLOW_SHARED_MEMORY=true``). A call writes its tensors into the
segment and asks the loss model ``loss.<name>`` to read them there and to write the gradient
and Hessian diagonal there too, so that none of them crosses a socket; only the loss value
comes back in the answer. The segment grows (a new one, registered anew) when a call needs
more room (at least doubling, under a new region name), and is unregistered and removed
by :meth:`SharedTensors.close`. Calls from several threads take turns (:attr:`lock`).

:func:`loss_call` says what a call sends, for either transport to encode.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Any

import numpy as np

__all__ = ["DATATYPES", "LossCall", "Place", "SharedTensors", "loss_call", "loss_result"]

DATATYPES = {
    np.dtype("float16"): "FP16",
    np.dtype("float32"): "FP32",
    np.dtype("float64"): "FP64",
    np.dtype("int32"): "INT32",
    np.dtype("int64"): "INT64",
}
"""The Open Inference Protocol's names of the dtypes a loss model takes."""

_ALIGN = 64
_MIN_BYTES = 1 << 20


@dataclass(frozen=True)
class Place:
    """A tensor in the segment: ``byte_size`` bytes from ``offset``."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    offset: int
    byte_size: int

    def parameters(self, region: str) -> dict[str, Any]:
        return {
            "shared_memory_region": region,
            "shared_memory_byte_size": self.byte_size,
            "shared_memory_offset": self.offset,
        }


@dataclass(frozen=True)
class LossCall:
    """An inference request of a loss model, its tensors in shared memory."""

    model: str
    parameters: dict[str, Any]
    inputs: tuple[Place, ...]
    outputs: tuple[Place, ...]
    """The gradient and Hessian diagonal asked for (``loss`` comes in the answer)."""


class SharedTensors:
    """A registered segment of this client's; ``register(name, key, byte_size)`` and
    ``unregister(name)`` call the server."""

    def __init__(
        self, register: Callable[[str, str, int], None], unregister: Callable[[str], None]
    ) -> None:
        self._register = register
        self._unregister = unregister
        self.region = ""
        """The registered region's name: a new one with each segment (a registration the
        server kept after a failed unregister cannot block the next)."""
        self._memory: shared_memory.SharedMemory | None = None
        self.lock = threading.Lock()
        """Held by a call from writing the tensors to reading the answer (the segment is
        one: calls from several threads take turns)."""

    def close(self) -> None:
        """Unregister the region and remove the segment."""
        memory, self._memory = self._memory, None
        if memory is None:
            return
        try:
            self._unregister(self.region)
        finally:
            memory.close()
            memory.unlink()

    def _room(self, size: int) -> shared_memory.SharedMemory:
        if self._memory is not None and self._memory.size >= size:
            return self._memory
        grown = 2 * self._memory.size if self._memory is not None else _MIN_BYTES
        self.close()
        memory = shared_memory.SharedMemory(create=True, size=max(size, grown))
        self.region = f"lossclient-{os.getpid()}-{secrets.token_hex(6)}"
        try:
            self._register(self.region, "/" + memory.name, memory.size)
        except BaseException:
            memory.close()
            memory.unlink()
            raise
        self._memory = memory
        return memory

    def place(
        self, tensors: dict[str, np.ndarray], outputs: dict[str, tuple[int, ...]]
    ) -> tuple[tuple[Place, ...], tuple[Place, ...]]:
        """Write ``tensors`` into the segment, and make room after them for ``outputs``
        (FP32 of those shapes): their places, in order."""
        places: list[Place] = []
        end = 0
        named = [(name, DATATYPES[a.dtype], a.shape, a.nbytes) for name, a in tensors.items()]
        named += [(name, "FP32", shape, 4 * int(np.prod(shape))) for name, shape in outputs.items()]
        for name, datatype, shape, size in named:
            places.append(Place(name, datatype, tuple(shape), end, size))
            end = -(-(end + size) // _ALIGN) * _ALIGN
        memory = self._room(end)
        target = np.frombuffer(_buffer(memory), np.uint8)
        for place, array in zip(places, tensors.values(), strict=False):
            data = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
            target[place.offset : place.offset + place.byte_size] = data
        del target  # no view of the segment outlives the call: close() needs none
        return tuple(places[: len(tensors)]), tuple(places[len(tensors) :])

    def read(self, place: Place) -> np.ndarray:
        """A copy of an output the server wrote (the segment is written again next call)."""
        if self._memory is None:
            raise RuntimeError("the shared-memory segment is closed")
        count = int(np.prod(place.shape))
        view = np.frombuffer(_buffer(self._memory), np.float32, count, place.offset)
        array = view.reshape(place.shape).copy()
        del view
        return array


def _buffer(memory: shared_memory.SharedMemory) -> memoryview:
    if memory.buf is None:  # closed
        raise RuntimeError("the shared-memory segment is closed")
    return memory.buf


def _parameter(value: Any) -> Any:
    """A loss parameter as a protocol parameter: lists and objects as JSON in a string."""
    return json.dumps(value) if isinstance(value, list | dict | tuple) else value


def loss_result(
    shared: SharedTensors, call: LossCall, request: dict[str, Any], value: np.ndarray
) -> dict[str, Any]:
    """The fields of a ``LossResult``: ``value`` as the answer carried it (``[1]`` for mean
    and sum, a scalar here), the gradient and Hessian read from the segment."""
    arrays = {place.name: shared.read(place) for place in call.outputs}
    return {
        "loss": request["loss"],
        "reduction": request["reduction"],
        "value": value.reshape(()) if request["reduction"] != "none" else value,
        "grad": arrays.get("grad"),
        "hessian_diag": arrays.get("hessian_diag"),
        "device": "",
    }


def loss_call(
    shared: SharedTensors, request: dict[str, Any], tensors: dict[str, np.ndarray]
) -> LossCall:
    """The loss model call of a ``compute_loss`` request, its tensors written to ``shared``."""
    for name, array in tensors.items():
        if array.dtype not in DATATYPES:
            raise TypeError(
                f"{name}: expected one of {', '.join(str(d) for d in DATATYPES)} for shared "
                f"memory, got {array.dtype}"
            )
    shape = tensors["logits"].shape
    outputs = {name: shape for name, asked in _ASKED.items() if request[asked]}
    inputs, placed = shared.place(tensors, outputs)
    parameters = {key: _parameter(value) for key, value in request["params"].items()}
    parameters["reduction"] = request["reduction"]
    return LossCall(f"loss.{request['loss']}", parameters, inputs, placed)


_ASKED = {"grad": "return_grad", "hessian_diag": "return_hessian"}
