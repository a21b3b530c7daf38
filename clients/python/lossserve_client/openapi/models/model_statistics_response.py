from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

if TYPE_CHECKING:
    from ..models.model_statistics import ModelStatistics


T = TypeVar("T", bound="ModelStatisticsResponse")


@_attrs_define
class ModelStatisticsResponse:
    """Triton's statistics extension.

    Attributes:
        model_stats (list[ModelStatistics]):
    """

    model_stats: list[ModelStatistics]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        model_stats = []
        for model_stats_item_data in self.model_stats:
            model_stats_item = model_stats_item_data.to_dict()
            model_stats.append(model_stats_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "model_stats": model_stats,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.model_statistics import ModelStatistics

        d = dict(src_dict)
        model_stats = []
        _model_stats = d.pop("model_stats")
        for model_stats_item_data in _model_stats:
            model_stats_item = ModelStatistics.from_dict(model_stats_item_data)

            model_stats.append(model_stats_item)

        model_statistics_response = cls(
            model_stats=model_stats,
        )

        model_statistics_response.additional_properties = d
        return model_statistics_response

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
