from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

if TYPE_CHECKING:
    from ..models.predict_body_instances_type_1_item import PredictBodyInstancesType1Item


T = TypeVar("T", bound="PredictBody")


@_attrs_define
class PredictBody:
    """``POST /models/{model_name}/predict``: feature rows, as KServe's v1 ``instances``.

    Attributes:
        instances (list[list[float]] | list[PredictBodyInstancesType1Item]): Feature rows, each as long as the model's
            input (see its card), or objects keyed by feature name. A model trained on a table takes objects keyed by column
            name (its card's columns): numbers, strings for categories, null or an absent key for an empty cell.
    """

    instances: list[list[float]] | list[PredictBodyInstancesType1Item]

    def to_dict(self) -> dict[str, Any]:
        instances: list[dict[str, Any]] | list[list[float]]
        if isinstance(self.instances, list):
            instances = []
            for instances_type_0_item_data in self.instances:
                instances_type_0_item = instances_type_0_item_data

                instances.append(instances_type_0_item)

        else:
            instances = []
            for instances_type_1_item_data in self.instances:
                instances_type_1_item = instances_type_1_item_data.to_dict()
                instances.append(instances_type_1_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "instances": instances,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.predict_body_instances_type_1_item import PredictBodyInstancesType1Item

        d = dict(src_dict)

        def _parse_instances(
            data: object,
        ) -> list[list[float]] | list[PredictBodyInstancesType1Item]:
            try:
                if not isinstance(data, list):
                    raise TypeError()
                instances_type_0 = []
                _instances_type_0 = data
                for instances_type_0_item_data in _instances_type_0:
                    instances_type_0_item = cast(list[float], instances_type_0_item_data)

                    instances_type_0.append(instances_type_0_item)

                return instances_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, list):
                raise TypeError()
            instances_type_1 = []
            _instances_type_1 = data
            for instances_type_1_item_data in _instances_type_1:
                instances_type_1_item = PredictBodyInstancesType1Item.from_dict(
                    instances_type_1_item_data
                )

                instances_type_1.append(instances_type_1_item)

            return instances_type_1

        instances = _parse_instances(d.pop("instances"))

        predict_body = cls(
            instances=instances,
        )

        return predict_body
