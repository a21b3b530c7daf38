from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field
from typing_extensions import Self

from ..types import UNSET, Unset

T = TypeVar("T", bound="SharedMemoryRegion")


@_attrs_define
class SharedMemoryRegion:
    """A registered region.

    Attributes:
        byte_size (int):
        key (str): The object's name, as shm_open takes it: '/input0'.
        name (str):
        offset (int | Unset):  Default: 0.
    """

    byte_size: int
    key: str
    name: str
    offset: int | Unset = 0
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        byte_size = self.byte_size

        key = self.key

        name = self.name

        offset = self.offset

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "byte_size": byte_size,
                "key": key,
                "name": name,
            }
        )
        if offset is not UNSET:
            field_dict["offset"] = offset

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        byte_size = d.pop("byte_size")

        key = d.pop("key")

        name = d.pop("name")

        offset = d.pop("offset", UNSET)

        shared_memory_region = cls(
            byte_size=byte_size,
            key=key,
            name=name,
            offset=offset,
        )

        shared_memory_region.additional_properties = d
        return shared_memory_region

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
