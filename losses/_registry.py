"""The typed registry: ``name -> LossSpec``, and the base of every loss module.

The registry is an explicit mapping filled from :mod:`losses._catalog`; registering a
duplicate name raises, and an unknown name raises with a did-you-mean hint.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ._reduction import Reduction
from ._validation import Params, Task, params_trusted, validate_params

__all__ = [
    "Coupling",
    "LossModule",
    "LossSpec",
    "Registry",
    "element_wise",
    "per_sample",
]


class Coupling(str, Enum):
    """Which logits one logit's loss term depends on; it decides how the Hessian is taken.

    ``ELEMENT``: each logit on its own (the Hessian is diagonal: one Hessian-vector product).
    ``SAMPLE``: the logits of one sample together (block-diagonal: one product per class).
    ``BATCH``: the whole batch (dense: the exact diagonal costs one product per logit).
    """

    ELEMENT = "element"
    SAMPLE = "sample"
    BATCH = "batch"


LossFunction = Callable[..., Tensor]


def element_wise(params: Params, task: Task) -> Coupling:
    """The coupling of a loss whose every logit has its own term."""
    return Coupling.ELEMENT


def per_sample(params: Params, task: Task) -> Coupling:
    """The coupling of a loss that is a sum of per-sample terms."""
    return Coupling.SAMPLE


@dataclass(frozen=True)
class LossSpec:
    """Everything the library and the service know about one loss."""

    name: str
    function: LossFunction
    module: type[LossModule]
    params: type[Params]
    tasks: frozenset[Task]
    summary: str
    formula: str
    reference: str
    when_to_use: str
    coupling: Callable[[Params, Task], Coupling]
    """The coupling for given params and task (``scope='batch'`` couples the batch); it
    decides how the exact Hessian diagonal is taken, so it has no default."""
    sample_separable: bool = True
    """True when the loss is a sum of per-sample terms for every parameter setting."""
    hessian_diagonal: LossFunction | None = None
    """A closed form of the exact Hessian diagonal, called as the loss function is (same
    arguments, params included); ``losses.derivatives`` prefers it to Hessian-vector
    products. The registry-wide tests hold it to autograd's full Hessian."""
    derivatives: Callable[..., tuple[Tensor, Tensor, Tensor] | None] | None = None
    """The value, gradient and exact Hessian diagonal from one closed-form pass (sharing
    what the three have in common), called as the loss function is: what
    ``losses.derivatives(..., hessian=True)`` takes when given, instead of autograd's value
    and gradient and then :attr:`hessian_diagonal`. It may answer None for inputs it has no
    such form for (sigmoid focal's soft targets): the general path runs then."""

    def validate(self, params: Mapping[str, Any] | None = None) -> Params:
        """Validate ``params`` against this loss's schema."""
        return validate_params(self.name, self.params, dict(params or {}))

    def json_schema(self) -> dict[str, Any]:
        """The JSON Schema of the params, the one the service publishes."""
        return self.params.model_json_schema()


class Registry(Mapping[str, LossSpec]):
    """An explicit ``name -> LossSpec`` mapping; duplicates and unknown names raise."""

    def __init__(self) -> None:
        self._specs: dict[str, LossSpec] = {}

    def register(self, spec: LossSpec) -> LossSpec:
        if spec.name in self._specs:
            raise ValueError(f"Expected a new loss name, got {spec.name!r} registered twice")
        self._specs[spec.name] = spec
        return spec

    def unregister(self, name: str) -> LossSpec:
        """Remove ``name`` (tests that register a loss use this to restore the registry)."""
        spec = self[name]
        del self._specs[name]
        return spec

    def __getitem__(self, name: str) -> LossSpec:
        try:
            return self._specs[name]
        except KeyError:
            pass
        if not isinstance(name, str):
            raise TypeError(f"Expected a loss name as str, got {type(name).__name__}")
        close = difflib.get_close_matches(name, list(self._specs), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown loss {name!r}; expected one of: {', '.join(sorted(self._specs))}.{hint}"
        )

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._specs))

    def __len__(self) -> int:
        return len(self._specs)


class LossModule(nn.Module):
    """Base of the thin ``nn.Module`` wrappers.

    ``__init__`` validates the hyperparameters against the loss's params model and keeps
    per-class lists as buffers (so ``.to(device)`` moves them); ``forward`` only calls the
    function and never changes the module's state.
    """

    function: ClassVar[LossFunction]
    params_model: ClassVar[type[Params]]
    loss_name: ClassVar[str]

    def __init__(self, *, reduction: str = "mean", **params: Any) -> None:
        super().__init__()
        self.reduction = Reduction.parse(reduction).value
        validated = validate_params(self.loss_name, self.params_model, params)
        self._scalars: dict[str, Any] = {}
        self._buffer_names: list[str] = []
        for key, value in validated.model_dump().items():
            if isinstance(value, list):
                self.register_buffer(key, torch.tensor(value, dtype=torch.float32))
                self._buffer_names.append(key)
            else:
                self._scalars[key] = value

    def hyperparameters(self) -> dict[str, Any]:
        """The validated hyperparameters, per-class ones as the stored buffers."""
        values = dict(self._scalars)
        for key in self._buffer_names:
            values[key] = getattr(self, key)
        return values

    def forward(
        self, logits: Tensor, targets: Tensor, sample_weight: Tensor | None = None
    ) -> Tensor:
        fn = type(self).function
        with params_trusted():  # validated in __init__
            return fn(
                logits,
                targets,
                reduction=self.reduction,
                sample_weight=sample_weight,
                **self.hyperparameters(),
            )

    def extra_repr(self) -> str:
        items = {**self._scalars, "reduction": self.reduction}
        return ", ".join(f"{k}={v!r}" for k, v in items.items())
