"""The model repository on disk, and one validated ONNX Runtime session per model.

Layout: ``<repo>/<model>/<version>/model.onnx`` beside ``card.json``; versions are positive
integers and the latest one is served. Opening a model checks, before anything can serve
it:

- the name is a :data:`~lossserve.models.card.MODEL_NAME` (one path segment, so nothing can
  climb out of the repository);
- ``card.json`` parses, and names this model and version;
- the sha256 of ``model.onnx`` is the card's (the session is built from the very bytes that
  were hashed, so the file cannot change in between);
- the ONNX graph has the card's one input (name, dtype, shape: ``-1`` where the graph's
  axis is dynamic) and ``logits`` / ``probabilities`` outputs with one column per label;
- the card's thresholds have one value per label.

The session runs on ``CUDAExecutionProvider`` where that provider loads, else on
``CPUExecutionProvider``; :attr:`LoadedModel.provider` is what ``session.get_providers()``
says was chosen, never what was asked for. A problem raises
:class:`~lossserve.core.errors.InvalidArgument` (a bad name or a broken model) or
:class:`~lossserve.core.errors.NotFound` (no such model) with a message that names the model,
the version and the file, and no server path.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from pydantic import ValidationError

from ..core.documents import ascii_count
from ..core.errors import InvalidArgument, NotFound
from .card import MODEL_NAME, ModelCard

__all__ = [
    "CARD_FILE",
    "CPU",
    "CUDA",
    "MODEL_FILE",
    "OUTPUTS",
    "LoadedModel",
    "ModelRepository",
    "check_model_name",
]

MODEL_FILE = "model.onnx"
CARD_FILE = "card.json"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
OUTPUTS = ("logits", "probabilities")
"""The graph outputs every served model must have, each of shape [batch, labels]."""

_ORT_TYPES = {"FP32": ("tensor(float)", "float32"), "BYTES": ("tensor(string)", "string")}
"""An input's ONNX Runtime type, and its type's name in the card, by OIP datatype."""
log = logging.getLogger("lossserve.models")
_LOGGER_LOCK = threading.Lock()


def check_model_name(name: object) -> str:
    """``name`` if it is a valid model name (a single safe path segment), else raise."""
    if not isinstance(name, str) or not MODEL_NAME.fullmatch(name):
        shown = (
            repr(name) if not isinstance(name, str) or len(name) <= 80 else repr(name[:80]) + "..."
        )
        raise InvalidArgument(
            "model name: expected 1-64 letters, digits, '_', '.' or '-', starting with a "
            f"letter or digit, got {shown}"
        )
    return name


_OUTPUTS = list(OUTPUTS)
"""The outputs every run asks ONNX Runtime for, in order."""


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """One version of a model, validated against its card, with its ONNX Runtime session."""

    name: str
    version: int
    card: ModelCard
    session: ort.InferenceSession
    provider: str
    """The execution provider the session runs on (``session.get_providers()[0]``)."""

    @cached_property
    def inputs(self) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
        """The card's inputs as ``(name, OIP datatype, shape)``, read once (every request
        is checked against them)."""
        return tuple((name, datatype, tuple(shape)) for name, datatype, shape in self.card.inputs())

    @property
    def input_names(self) -> list[str]:
        return [name for name, _, _ in self.inputs]

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``logits`` and ``probabilities`` for a batch of rows (the card's inputs)."""
        logits, probabilities = self.session.run(_OUTPUTS, inputs)
        return {"logits": np.asarray(logits), "probabilities": np.asarray(probabilities)}


def _fail(name: str, version: int | str, reason: str) -> InvalidArgument:
    return InvalidArgument(f"failed to load model {name!r} version {version}: {reason}")


def _versions(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    numbers = (ascii_count(child.name) for child in directory.iterdir() if child.is_dir())
    return sorted(n for n in numbers if n is not None and n >= 1)


def _dims_match(card_shape: list[int], graph_shape: list[Any]) -> bool:
    """The card's ``-1`` matches a dynamic graph axis (a name or None); others match equal."""
    if len(card_shape) != len(graph_shape):
        return False
    for want, have in zip(card_shape, graph_shape, strict=True):
        dynamic = not isinstance(have, int) or have < 0
        if (want == -1) != dynamic or (want != -1 and want != have):
            return False
    return True


class ModelRepository:
    """The models under ``root``; :meth:`open` builds a validated session for one of them.

    Args:
        root: the repository folder.
        threads: ONNX Runtime intra-op threads per session (0: its default, every core).
    """

    def __init__(self, root: Path, *, threads: int = 1) -> None:
        self.root = root
        self._threads = threads

    def names(self) -> list[str]:
        """Every model folder with a valid name (sorted); folders with other names are
        ignored, since nothing could ask for them."""
        if not self.root.is_dir():
            return []
        return sorted(
            child.name
            for child in self.root.iterdir()
            if child.is_dir() and MODEL_NAME.fullmatch(child.name)
        )

    def versions(self, name: str) -> list[int]:
        """The model's version numbers on disk, ascending (empty for an unknown model)."""
        return _versions(self.root / check_model_name(name))

    def contains(self, name: str) -> bool:
        return (self.root / check_model_name(name)).is_dir()

    def open(self, name: str) -> LoadedModel:
        """Validate and open the latest version of ``name`` (see the module docstring)."""
        check_model_name(name)
        versions = self.versions(name)
        if not versions:
            if not self.contains(name):
                raise NotFound(f"model {name!r} is not in the repository")
            raise NotFound(
                f"model {name!r} has no version folder: expected {name}/<version>/{MODEL_FILE}"
            )
        version = versions[-1]
        directory = self.root / name / str(version)
        card = self._card(name, version, directory)
        path = directory / MODEL_FILE
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _fail(name, version, f"{MODEL_FILE} cannot be read ({exc.strerror})") from None
        digest = hashlib.sha256(data).hexdigest()
        if digest != card.sha256:
            raise _fail(
                name,
                version,
                f"the sha256 of {MODEL_FILE} is {digest}, expected {card.sha256} "
                f"({CARD_FILE}); the file is corrupt or was replaced",
            )
        session = self._session(name, version, data)
        self._check_graph(name, version, card, session)
        provider = session.get_providers()[0]
        return LoadedModel(
            name=name, version=version, card=card, session=session, provider=provider
        )

    def _card(self, name: str, version: int, directory: Path) -> ModelCard:
        try:
            card = ModelCard.read(directory)
        except FileNotFoundError:
            raise _fail(name, version, f"{CARD_FILE} is missing") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise _fail(name, version, f"{CARD_FILE} cannot be read ({exc})") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "card"
            raise _fail(name, version, f"{CARD_FILE} is invalid: {where}: {first['msg']}") from None
        if card.name != name or card.version != version:
            raise _fail(
                name,
                version,
                f"{CARD_FILE} describes model {card.name!r} version {card.version}, "
                f"expected {name!r} version {version}",
            )
        if len(card.labels) < 1:
            raise _fail(name, version, f"{CARD_FILE} has no labels")
        if card.task == "binary" and len(card.labels) != 2:
            raise _fail(
                name,
                version,
                f"{CARD_FILE} has {len(card.labels)} labels for a binary task, expected 2 "
                "([negative, positive])",
            )
        if len(card.thresholds) != card.output_columns:
            each = "one (the positive class)" if card.task == "binary" else "one per label"
            raise _fail(
                name,
                version,
                f"{CARD_FILE} has {len(card.thresholds)} thresholds, expected {each} "
                f"({card.output_columns})",
            )
        return card

    def _session(self, name: str, version: int, data: bytes) -> ort.InferenceSession:
        options = ort.SessionOptions()
        if self._threads:
            options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # Idle threads sleep instead of spinning: other models and the server share the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        providers = [CUDA, CPU] if CUDA in ort.get_available_providers() else [CPU]
        try:
            with _LOGGER_LOCK:
                # ORT logs its own lines when CUDA does not load; we log one JSON line instead.
                ort.set_default_logger_severity(4)
                try:
                    session = ort.InferenceSession(data, options, providers=providers)
                finally:
                    ort.set_default_logger_severity(3)
        except Exception as exc:  # ORT raises its own exception types for a bad graph
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _fail(
                name, version, f"{MODEL_FILE} does not load in ONNX Runtime: {reason}"
            ) from None
        if CUDA in providers and session.get_providers()[0] != CUDA:
            log.info(
                "CUDAExecutionProvider did not load; the model runs on the CPU",
                extra={"model": name, "version": version, "provider": session.get_providers()[0]},
            )
        return session

    @staticmethod
    def _check_graph(
        name: str, version: int, card: ModelCard, session: ort.InferenceSession
    ) -> None:
        inputs = session.get_inputs()
        expected = card.inputs()
        names = [spec[0] for spec in expected]
        described = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
        if [i.name for i in inputs] != names:
            wanted = f"one input {names[0]!r}" if len(names) == 1 else f"inputs {names}"
            raise _fail(
                name,
                version,
                f"{MODEL_FILE} has inputs [{described}], expected {wanted} ({CARD_FILE})",
            )
        for graph, (input_name, datatype, shape) in zip(inputs, expected, strict=True):
            ort_type, card_type = _ORT_TYPES[datatype]
            if graph.type != ort_type:
                raise _fail(
                    name,
                    version,
                    f"input {input_name!r} of {MODEL_FILE} is {graph.type}, expected "
                    f"{ort_type} ({card_type} in {CARD_FILE})",
                )
            if not _dims_match(shape, list(graph.shape)):
                raise _fail(
                    name,
                    version,
                    f"input {input_name!r} of {MODEL_FILE} has shape {graph.shape}, expected "
                    f"{shape} ({CARD_FILE}; -1 is the dynamic batch axis)",
                )
            if len(shape) != 2 or shape[0] != -1:
                raise _fail(
                    name,
                    version,
                    f"{CARD_FILE}: expected input shape [-1, features], got {shape}",
                )
        outputs = {o.name: o for o in session.get_outputs()}
        labels = card.output_columns
        for output in OUTPUTS:
            if output not in outputs:
                raise _fail(
                    name,
                    version,
                    f"{MODEL_FILE} has outputs {sorted(outputs)}, expected {list(OUTPUTS)}",
                )
            shape = list(outputs[output].shape)
            width = shape[-1] if shape else None
            if len(shape) != 2 or (isinstance(width, int) and width != labels):
                raise _fail(
                    name,
                    version,
                    f"output {output!r} of {MODEL_FILE} has shape {shape}, expected "
                    f"[batch, {labels}] (one column per label; a binary model's one "
                    "column is its positive class)",
                )
