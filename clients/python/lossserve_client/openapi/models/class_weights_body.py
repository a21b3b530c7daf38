from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

from ..models.class_weights_body_strategy import ClassWeightsBodyStrategy
from ..types import UNSET, Unset

T = TypeVar("T", bound="ClassWeightsBody")


@_attrs_define
class ClassWeightsBody:
    """
    Attributes:
        beta (float | Unset):  Default: 0.999.
        counts (list[float] | None | Unset): Per-class counts; or give labels.
        labels (list[int] | None | Unset): Class indices; or give counts.
        num_classes (int | None | Unset):
        strategy (ClassWeightsBodyStrategy | Unset):  Default: ClassWeightsBodyStrategy.BALANCED.
    """

    beta: float | Unset = 0.999
    counts: list[float] | None | Unset = UNSET
    labels: list[int] | None | Unset = UNSET
    num_classes: int | None | Unset = UNSET
    strategy: ClassWeightsBodyStrategy | Unset = ClassWeightsBodyStrategy.BALANCED

    def to_dict(self) -> dict[str, Any]:
        beta = self.beta

        counts: list[float] | None | Unset
        if isinstance(self.counts, Unset):
            counts = UNSET
        elif isinstance(self.counts, list):
            counts = self.counts

        else:
            counts = self.counts

        labels: list[int] | None | Unset
        if isinstance(self.labels, Unset):
            labels = UNSET
        elif isinstance(self.labels, list):
            labels = self.labels

        else:
            labels = self.labels

        num_classes: int | None | Unset
        if isinstance(self.num_classes, Unset):
            num_classes = UNSET
        else:
            num_classes = self.num_classes

        strategy: str | Unset = UNSET
        if not isinstance(self.strategy, Unset):
            strategy = self.strategy.value

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if beta is not UNSET:
            field_dict["beta"] = beta
        if counts is not UNSET:
            field_dict["counts"] = counts
        if labels is not UNSET:
            field_dict["labels"] = labels
        if num_classes is not UNSET:
            field_dict["num_classes"] = num_classes
        if strategy is not UNSET:
            field_dict["strategy"] = strategy

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        beta = d.pop("beta", UNSET)

        def _parse_counts(data: object) -> list[float] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                counts_type_0 = cast(list[float], data)

                return counts_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[float] | None | Unset, data)

        counts = _parse_counts(d.pop("counts", UNSET))

        def _parse_labels(data: object) -> list[int] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                labels_type_0 = cast(list[int], data)

                return labels_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[int] | None | Unset, data)

        labels = _parse_labels(d.pop("labels", UNSET))

        def _parse_num_classes(data: object) -> int | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(int | None | Unset, data)

        num_classes = _parse_num_classes(d.pop("num_classes", UNSET))

        _strategy = d.pop("strategy", UNSET)
        strategy: ClassWeightsBodyStrategy | Unset
        if isinstance(_strategy, Unset):
            strategy = UNSET
        else:
            strategy = ClassWeightsBodyStrategy(_strategy)

        class_weights_body = cls(
            beta=beta,
            counts=counts,
            labels=labels,
            num_classes=num_classes,
            strategy=strategy,
        )

        return class_weights_body
