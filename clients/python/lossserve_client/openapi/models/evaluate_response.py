from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.class_metrics_body import ClassMetricsBody


T = TypeVar("T", bound="EvaluateResponse")


@_attrs_define
class EvaluateResponse:
    """
    Attributes:
        confusion (list[list[int]]):
        loss (float | None):
        macro_f1 (float): scikit-learn's average='macro': the mean F1 of every class (both, binary).
        micro_f1 (float): scikit-learn's average='micro' (a binary task: the accuracy).
        num_samples (int):
        per_class (list[ClassMetricsBody]): Every class, as scikit-learn's average=None (a binary task: 0 and 1).
        task (str):
        f1_positive (float | None | Unset): A binary task's positive-class F1 (average='binary'); else null.
    """

    confusion: list[list[int]]
    loss: float | None
    macro_f1: float
    micro_f1: float
    num_samples: int
    per_class: list[ClassMetricsBody]
    task: str
    f1_positive: float | None | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        confusion = []
        for confusion_item_data in self.confusion:
            confusion_item = confusion_item_data

            confusion.append(confusion_item)

        loss: float | None
        loss = self.loss

        macro_f1 = self.macro_f1

        micro_f1 = self.micro_f1

        num_samples = self.num_samples

        per_class = []
        for per_class_item_data in self.per_class:
            per_class_item = per_class_item_data.to_dict()
            per_class.append(per_class_item)

        task = self.task

        f1_positive: float | None | Unset
        if isinstance(self.f1_positive, Unset):
            f1_positive = UNSET
        else:
            f1_positive = self.f1_positive

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "confusion": confusion,
                "loss": loss,
                "macro_f1": macro_f1,
                "micro_f1": micro_f1,
                "num_samples": num_samples,
                "per_class": per_class,
                "task": task,
            }
        )
        if f1_positive is not UNSET:
            field_dict["f1_positive"] = f1_positive

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.class_metrics_body import ClassMetricsBody

        d = dict(src_dict)
        confusion = []
        _confusion = d.pop("confusion")
        for confusion_item_data in _confusion:
            confusion_item = cast(list[int], confusion_item_data)

            confusion.append(confusion_item)

        def _parse_loss(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        loss = _parse_loss(d.pop("loss"))

        macro_f1 = d.pop("macro_f1")

        micro_f1 = d.pop("micro_f1")

        num_samples = d.pop("num_samples")

        per_class = []
        _per_class = d.pop("per_class")
        for per_class_item_data in _per_class:
            per_class_item = ClassMetricsBody.from_dict(per_class_item_data)

            per_class.append(per_class_item)

        task = d.pop("task")

        def _parse_f1_positive(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        f1_positive = _parse_f1_positive(d.pop("f1_positive", UNSET))

        evaluate_response = cls(
            confusion=confusion,
            loss=loss,
            macro_f1=macro_f1,
            micro_f1=micro_f1,
            num_samples=num_samples,
            per_class=per_class,
            task=task,
            f1_positive=f1_positive,
        )

        evaluate_response.additional_properties = d
        return evaluate_response

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
