from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

if TYPE_CHECKING:
    from ..models.prediction_body_probabilities import PredictionBodyProbabilities


T = TypeVar("T", bound="PredictionBody")


@_attrs_define
class PredictionBody:
    """
    Attributes:
        labels (list[str]): The labels the learned decision rule picks: one for a binary or multiclass model, any number
            for a multilabel one.
        probabilities (PredictionBodyProbabilities): Every label's probability.
    """

    labels: list[str]
    probabilities: PredictionBodyProbabilities
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        labels = self.labels

        probabilities = self.probabilities.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "labels": labels,
                "probabilities": probabilities,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.prediction_body_probabilities import PredictionBodyProbabilities

        d = dict(src_dict)
        labels = cast(list[str], d.pop("labels"))

        probabilities = PredictionBodyProbabilities.from_dict(d.pop("probabilities"))

        prediction_body = cls(
            labels=labels,
            probabilities=probabilities,
        )

        prediction_body.additional_properties = d
        return prediction_body

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
