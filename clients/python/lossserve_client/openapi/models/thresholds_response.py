from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

from ..models.thresholds_response_kind import ThresholdsResponseKind

if TYPE_CHECKING:
    from ..models.evaluate_response import EvaluateResponse


T = TypeVar("T", bound="ThresholdsResponse")


@_attrs_define
class ThresholdsResponse:
    """
    Attributes:
        after (EvaluateResponse):
        before (EvaluateResponse):
        kind (ThresholdsResponseKind):
        task (str):
        values (list[float]):
    """

    after: EvaluateResponse
    before: EvaluateResponse
    kind: ThresholdsResponseKind
    task: str
    values: list[float]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        after = self.after.to_dict()

        before = self.before.to_dict()

        kind = self.kind.value

        task = self.task

        values = self.values

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "after": after,
                "before": before,
                "kind": kind,
                "task": task,
                "values": values,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.evaluate_response import EvaluateResponse

        d = dict(src_dict)
        after = EvaluateResponse.from_dict(d.pop("after"))

        before = EvaluateResponse.from_dict(d.pop("before"))

        kind = ThresholdsResponseKind(d.pop("kind"))

        task = d.pop("task")

        values = cast(list[float], d.pop("values"))

        thresholds_response = cls(
            after=after,
            before=before,
            kind=kind,
            task=task,
            values=values,
        )

        thresholds_response.additional_properties = d
        return thresholds_response

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
