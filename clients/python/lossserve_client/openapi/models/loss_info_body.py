from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

if TYPE_CHECKING:
    from ..models.loss_info_body_params_schema import LossInfoBodyParamsSchema


T = TypeVar("T", bound="LossInfoBody")


@_attrs_define
class LossInfoBody:
    """
    Attributes:
        formula (str):
        name (str):
        params_schema (LossInfoBodyParamsSchema):
        reference (str):
        sample_separable (bool):
        summary (str):
        tasks (list[str]):
        when_to_use (str):
    """

    formula: str
    name: str
    params_schema: LossInfoBodyParamsSchema
    reference: str
    sample_separable: bool
    summary: str
    tasks: list[str]
    when_to_use: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        formula = self.formula

        name = self.name

        params_schema = self.params_schema.to_dict()

        reference = self.reference

        sample_separable = self.sample_separable

        summary = self.summary

        tasks = self.tasks

        when_to_use = self.when_to_use

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "formula": formula,
                "name": name,
                "params_schema": params_schema,
                "reference": reference,
                "sample_separable": sample_separable,
                "summary": summary,
                "tasks": tasks,
                "when_to_use": when_to_use,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.loss_info_body_params_schema import LossInfoBodyParamsSchema

        d = dict(src_dict)
        formula = d.pop("formula")

        name = d.pop("name")

        params_schema = LossInfoBodyParamsSchema.from_dict(d.pop("params_schema"))

        reference = d.pop("reference")

        sample_separable = d.pop("sample_separable")

        summary = d.pop("summary")

        tasks = cast(list[str], d.pop("tasks"))

        when_to_use = d.pop("when_to_use")

        loss_info_body = cls(
            formula=formula,
            name=name,
            params_schema=params_schema,
            reference=reference,
            sample_separable=sample_separable,
            summary=summary,
            tasks=tasks,
            when_to_use=when_to_use,
        )

        loss_info_body.additional_properties = d
        return loss_info_body

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
