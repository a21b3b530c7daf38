from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

T = TypeVar("T", bound="PredictBody")


@_attrs_define
class PredictBody:
    """``POST /models/{model_name}/predict``: feature rows, as KServe's v1 ``instances``.

    Attributes:
        instances (list[list[float]]): Feature rows, each as long as the model's input (see its card).
    """

    instances: list[list[float]]

    def to_dict(self) -> dict[str, Any]:
        instances = []
        for instances_item_data in self.instances:
            instances_item = instances_item_data

            instances.append(instances_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "instances": instances,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        instances = []
        _instances = d.pop("instances")
        for instances_item_data in _instances:
            instances_item = cast(list[float], instances_item_data)

            instances.append(instances_item)

        predict_body = cls(
            instances=instances,
        )

        return predict_body
