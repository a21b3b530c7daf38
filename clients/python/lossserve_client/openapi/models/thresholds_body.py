from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.b64_tensor import B64Tensor
    from ..models.binary_tensor import BinaryTensor


T = TypeVar("T", bound="ThresholdsBody")


@_attrs_define
class ThresholdsBody:
    """
    Attributes:
        scores (B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]): Logits or any monotone
            scores, (N,) or (N, C).
        targets (B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]):
        beta (float | Unset): F-beta to maximise (binary, multilabel). Default: 1.0.
    """

    scores: B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]
    targets: B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]
    beta: float | Unset = 1.0

    def to_dict(self) -> dict[str, Any]:
        from ..models.b64_tensor import B64Tensor

        scores: dict[str, Any] | list[bool | float] | list[list[bool | float]]
        if isinstance(self.scores, list):
            scores = []
            for scores_type_0_item_data in self.scores:
                scores_type_0_item: bool | float
                scores_type_0_item = scores_type_0_item_data
                scores.append(scores_type_0_item)

        elif isinstance(self.scores, list):
            scores = []
            for scores_type_1_item_data in self.scores:
                scores_type_1_item = []
                for scores_type_1_item_item_data in scores_type_1_item_data:
                    scores_type_1_item_item: bool | float
                    scores_type_1_item_item = scores_type_1_item_item_data
                    scores_type_1_item.append(scores_type_1_item_item)

                scores.append(scores_type_1_item)

        elif isinstance(self.scores, B64Tensor):
            scores = self.scores.to_dict()
        else:
            scores = self.scores.to_dict()

        targets: dict[str, Any] | list[bool | float] | list[list[bool | float]]
        if isinstance(self.targets, list):
            targets = []
            for targets_type_0_item_data in self.targets:
                targets_type_0_item: bool | float
                targets_type_0_item = targets_type_0_item_data
                targets.append(targets_type_0_item)

        elif isinstance(self.targets, list):
            targets = []
            for targets_type_1_item_data in self.targets:
                targets_type_1_item = []
                for targets_type_1_item_item_data in targets_type_1_item_data:
                    targets_type_1_item_item: bool | float
                    targets_type_1_item_item = targets_type_1_item_item_data
                    targets_type_1_item.append(targets_type_1_item_item)

                targets.append(targets_type_1_item)

        elif isinstance(self.targets, B64Tensor):
            targets = self.targets.to_dict()
        else:
            targets = self.targets.to_dict()

        beta = self.beta

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "scores": scores,
                "targets": targets,
            }
        )
        if beta is not UNSET:
            field_dict["beta"] = beta

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.b64_tensor import B64Tensor
        from ..models.binary_tensor import BinaryTensor

        d = dict(src_dict)

        def _parse_scores(
            data: object,
        ) -> B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]:
            try:
                if not isinstance(data, list):
                    raise TypeError()
                scores_type_0 = []
                _scores_type_0 = data
                for scores_type_0_item_data in _scores_type_0:

                    def _parse_scores_type_0_item(data: object) -> bool | float:
                        return cast(bool | float, data)

                    scores_type_0_item = _parse_scores_type_0_item(scores_type_0_item_data)

                    scores_type_0.append(scores_type_0_item)

                return scores_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                scores_type_1 = []
                _scores_type_1 = data
                for scores_type_1_item_data in _scores_type_1:
                    scores_type_1_item = []
                    _scores_type_1_item = scores_type_1_item_data
                    for scores_type_1_item_item_data in _scores_type_1_item:

                        def _parse_scores_type_1_item_item(data: object) -> bool | float:
                            return cast(bool | float, data)

                        scores_type_1_item_item = _parse_scores_type_1_item_item(
                            scores_type_1_item_item_data
                        )

                        scores_type_1_item.append(scores_type_1_item_item)

                    scores_type_1.append(scores_type_1_item)

                return scores_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                scores_type_2 = B64Tensor.from_dict(data)

                return scores_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            scores_type_3 = BinaryTensor.from_dict(data)

            return scores_type_3

        scores = _parse_scores(d.pop("scores"))

        def _parse_targets(
            data: object,
        ) -> B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]:
            try:
                if not isinstance(data, list):
                    raise TypeError()
                targets_type_0 = []
                _targets_type_0 = data
                for targets_type_0_item_data in _targets_type_0:

                    def _parse_targets_type_0_item(data: object) -> bool | float:
                        return cast(bool | float, data)

                    targets_type_0_item = _parse_targets_type_0_item(targets_type_0_item_data)

                    targets_type_0.append(targets_type_0_item)

                return targets_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                targets_type_1 = []
                _targets_type_1 = data
                for targets_type_1_item_data in _targets_type_1:
                    targets_type_1_item = []
                    _targets_type_1_item = targets_type_1_item_data
                    for targets_type_1_item_item_data in _targets_type_1_item:

                        def _parse_targets_type_1_item_item(data: object) -> bool | float:
                            return cast(bool | float, data)

                        targets_type_1_item_item = _parse_targets_type_1_item_item(
                            targets_type_1_item_item_data
                        )

                        targets_type_1_item.append(targets_type_1_item_item)

                    targets_type_1.append(targets_type_1_item)

                return targets_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                targets_type_2 = B64Tensor.from_dict(data)

                return targets_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            targets_type_3 = BinaryTensor.from_dict(data)

            return targets_type_3

        targets = _parse_targets(d.pop("targets"))

        beta = d.pop("beta", UNSET)

        thresholds_body = cls(
            scores=scores,
            targets=targets,
            beta=beta,
        )

        return thresholds_body
