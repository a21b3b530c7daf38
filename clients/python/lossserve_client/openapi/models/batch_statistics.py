from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

if TYPE_CHECKING:
    from ..models.duration import Duration


T = TypeVar("T", bound="BatchStatistics")


@_attrs_define
class BatchStatistics:
    """
    Attributes:
        batch_size (int):
        compute_infer (Duration):
        compute_input (Duration):
        compute_output (Duration):
    """

    batch_size: int
    compute_infer: Duration
    compute_input: Duration
    compute_output: Duration
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        batch_size = self.batch_size

        compute_infer = self.compute_infer.to_dict()

        compute_input = self.compute_input.to_dict()

        compute_output = self.compute_output.to_dict()

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "batch_size": batch_size,
                "compute_infer": compute_infer,
                "compute_input": compute_input,
                "compute_output": compute_output,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.duration import Duration

        d = dict(src_dict)
        batch_size = d.pop("batch_size")

        compute_infer = Duration.from_dict(d.pop("compute_infer"))

        compute_input = Duration.from_dict(d.pop("compute_input"))

        compute_output = Duration.from_dict(d.pop("compute_output"))

        batch_statistics = cls(
            batch_size=batch_size,
            compute_infer=compute_infer,
            compute_input=compute_input,
            compute_output=compute_output,
        )

        batch_statistics.additional_properties = d
        return batch_statistics

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
