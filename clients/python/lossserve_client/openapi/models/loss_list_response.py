from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

if TYPE_CHECKING:
    from ..models.loss_info_body import LossInfoBody


T = TypeVar("T", bound="LossListResponse")


@_attrs_define
class LossListResponse:
    """
    Attributes:
        losses (list[LossInfoBody]):
    """

    losses: list[LossInfoBody]
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        losses = []
        for losses_item_data in self.losses:
            losses_item = losses_item_data.to_dict()
            losses.append(losses_item)

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "losses": losses,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.loss_info_body import LossInfoBody

        d = dict(src_dict)
        losses = []
        _losses = d.pop("losses")
        for losses_item_data in _losses:
            losses_item = LossInfoBody.from_dict(losses_item_data)

            losses.append(losses_item)

        loss_list_response = cls(
            losses=losses,
        )

        loss_list_response.additional_properties = d
        return loss_list_response

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
