from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from typing_extensions import Self

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.b64_tensor import B64Tensor
    from ..models.binary_tensor import BinaryTensor
    from ..models.evaluate_body_params import EvaluateBodyParams


T = TypeVar("T", bound="EvaluateBody")


@_attrs_define
class EvaluateBody:
    """
    Attributes:
        logits (B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]):
        targets (B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]):
        loss (None | str | Unset): A registry loss whose mean to report.
        params (EvaluateBodyParams | Unset):
        thresholds (B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]] | None | Unset):
            Binary/multilabel: per-class thresholds on the logits (predict when logit >= t; default 0); multiclass: per-
            class additive logit offsets.
    """

    logits: B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]
    targets: B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]
    loss: None | str | Unset = UNSET
    params: EvaluateBodyParams | Unset = UNSET
    thresholds: (
        B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]] | None | Unset
    ) = UNSET

    def to_dict(self) -> dict[str, Any]:
        from ..models.b64_tensor import B64Tensor
        from ..models.binary_tensor import BinaryTensor

        logits: dict[str, Any] | list[bool | float] | list[list[bool | float]]
        if isinstance(self.logits, list):
            logits = []
            for logits_type_0_item_data in self.logits:
                logits_type_0_item: bool | float
                logits_type_0_item = logits_type_0_item_data
                logits.append(logits_type_0_item)

        elif isinstance(self.logits, list):
            logits = []
            for logits_type_1_item_data in self.logits:
                logits_type_1_item = []
                for logits_type_1_item_item_data in logits_type_1_item_data:
                    logits_type_1_item_item: bool | float
                    logits_type_1_item_item = logits_type_1_item_item_data
                    logits_type_1_item.append(logits_type_1_item_item)

                logits.append(logits_type_1_item)

        elif isinstance(self.logits, B64Tensor):
            logits = self.logits.to_dict()
        else:
            logits = self.logits.to_dict()

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

        loss: None | str | Unset
        if isinstance(self.loss, Unset):
            loss = UNSET
        else:
            loss = self.loss

        params: dict[str, Any] | Unset = UNSET
        if not isinstance(self.params, Unset):
            params = self.params.to_dict()

        thresholds: dict[str, Any] | list[bool | float] | list[list[bool | float]] | None | Unset
        if isinstance(self.thresholds, Unset):
            thresholds = UNSET
        elif isinstance(self.thresholds, list):
            thresholds = []
            for thresholds_type_0_item_data in self.thresholds:
                thresholds_type_0_item: bool | float
                thresholds_type_0_item = thresholds_type_0_item_data
                thresholds.append(thresholds_type_0_item)

        elif isinstance(self.thresholds, list):
            thresholds = []
            for thresholds_type_1_item_data in self.thresholds:
                thresholds_type_1_item = []
                for thresholds_type_1_item_item_data in thresholds_type_1_item_data:
                    thresholds_type_1_item_item: bool | float
                    thresholds_type_1_item_item = thresholds_type_1_item_item_data
                    thresholds_type_1_item.append(thresholds_type_1_item_item)

                thresholds.append(thresholds_type_1_item)

        elif isinstance(self.thresholds, B64Tensor) or isinstance(self.thresholds, BinaryTensor):
            thresholds = self.thresholds.to_dict()
        else:
            thresholds = self.thresholds

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "logits": logits,
                "targets": targets,
            }
        )
        if loss is not UNSET:
            field_dict["loss"] = loss
        if params is not UNSET:
            field_dict["params"] = params
        if thresholds is not UNSET:
            field_dict["thresholds"] = thresholds

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.b64_tensor import B64Tensor
        from ..models.binary_tensor import BinaryTensor
        from ..models.evaluate_body_params import EvaluateBodyParams

        d = dict(src_dict)

        def _parse_logits(
            data: object,
        ) -> B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]]:
            try:
                if not isinstance(data, list):
                    raise TypeError()
                logits_type_0 = []
                _logits_type_0 = data
                for logits_type_0_item_data in _logits_type_0:

                    def _parse_logits_type_0_item(data: object) -> bool | float:
                        return cast(bool | float, data)

                    logits_type_0_item = _parse_logits_type_0_item(logits_type_0_item_data)

                    logits_type_0.append(logits_type_0_item)

                return logits_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                logits_type_1 = []
                _logits_type_1 = data
                for logits_type_1_item_data in _logits_type_1:
                    logits_type_1_item = []
                    _logits_type_1_item = logits_type_1_item_data
                    for logits_type_1_item_item_data in _logits_type_1_item:

                        def _parse_logits_type_1_item_item(data: object) -> bool | float:
                            return cast(bool | float, data)

                        logits_type_1_item_item = _parse_logits_type_1_item_item(
                            logits_type_1_item_item_data
                        )

                        logits_type_1_item.append(logits_type_1_item_item)

                    logits_type_1.append(logits_type_1_item)

                return logits_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                logits_type_2 = B64Tensor.from_dict(data)

                return logits_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            if not isinstance(data, dict):
                raise TypeError()
            logits_type_3 = BinaryTensor.from_dict(data)

            return logits_type_3

        logits = _parse_logits(d.pop("logits"))

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

        def _parse_loss(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        loss = _parse_loss(d.pop("loss", UNSET))

        _params = d.pop("params", UNSET)
        params: EvaluateBodyParams | Unset
        if isinstance(_params, Unset):
            params = UNSET
        else:
            params = EvaluateBodyParams.from_dict(_params)

        def _parse_thresholds(
            data: object,
        ) -> (
            B64Tensor | BinaryTensor | list[bool | float] | list[list[bool | float]] | None | Unset
        ):
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                thresholds_type_0 = []
                _thresholds_type_0 = data
                for thresholds_type_0_item_data in _thresholds_type_0:

                    def _parse_thresholds_type_0_item(data: object) -> bool | float:
                        return cast(bool | float, data)

                    thresholds_type_0_item = _parse_thresholds_type_0_item(
                        thresholds_type_0_item_data
                    )

                    thresholds_type_0.append(thresholds_type_0_item)

                return thresholds_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, list):
                    raise TypeError()
                thresholds_type_1 = []
                _thresholds_type_1 = data
                for thresholds_type_1_item_data in _thresholds_type_1:
                    thresholds_type_1_item = []
                    _thresholds_type_1_item = thresholds_type_1_item_data
                    for thresholds_type_1_item_item_data in _thresholds_type_1_item:

                        def _parse_thresholds_type_1_item_item(data: object) -> bool | float:
                            return cast(bool | float, data)

                        thresholds_type_1_item_item = _parse_thresholds_type_1_item_item(
                            thresholds_type_1_item_item_data
                        )

                        thresholds_type_1_item.append(thresholds_type_1_item_item)

                    thresholds_type_1.append(thresholds_type_1_item)

                return thresholds_type_1
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                thresholds_type_2 = B64Tensor.from_dict(data)

                return thresholds_type_2
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                thresholds_type_3 = BinaryTensor.from_dict(data)

                return thresholds_type_3
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(
                B64Tensor
                | BinaryTensor
                | list[bool | float]
                | list[list[bool | float]]
                | None
                | Unset,
                data,
            )

        thresholds = _parse_thresholds(d.pop("thresholds", UNSET))

        evaluate_body = cls(
            logits=logits,
            targets=targets,
            loss=loss,
            params=params,
            thresholds=thresholds,
        )

        return evaluate_body
