"""Tabular data as users have it: numeric and categorical (string) columns, empty cells,
ID-like columns.

A user file whose feature columns are all numbers and complete trains on them as they are.
Otherwise its columns are sorted into numbers (empty cells allowed) and categories
(strings; an empty cell is the category ``""``), ID-like columns are left out, and the
preprocessing is fitted with scikit-learn on the training split alone: numbers imputed with
the median and standardised (``SimpleImputer`` + ``StandardScaler``), categories one-hot
encoded (``OneHotEncoder(handle_unknown="ignore")``: a category never seen in training is
all zeros, never an error). :func:`preprocessing_onnx` exports it with skl2onnx and
:func:`attach` joins it in front of the network with ``onnx.compose``, so the served model
takes the raw columns: ``numeric`` (FP32 ``[batch, numbers]``, NaN a missing cell) and
``categorical`` (BYTES ``[batch, categories]``), in the card's column order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..models.card import CATEGORICAL_INPUT, NUMERIC_INPUT, category

__all__ = [
    "CATEGORICAL_INPUT",
    "NUMERIC_INPUT",
    "RawColumns",
    "Tabular",
    "attach",
    "classify_column",
    "fit_tabular",
]

PREPROCESSED = "preprocessed"
"""The preprocessing graph's output, joined to the network's ``features`` input."""
_ID_NAME = re.compile(r"(^|[_\W])(id|uuid|guid|key)$", re.IGNORECASE)
_MIN_ID_ROWS = 20

F32 = npt.NDArray[np.float32]
Objects = npt.NDArray[np.object_]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    return isinstance(value, str) and not value.strip()


def classify_column(values: npt.NDArray[Any]) -> str | None:
    """``"number"``, ``"category"`` or None (a mix of numbers and strings) for a 1-D column;
    empty cells do not count."""
    if values.dtype.kind in "biuf":
        return "number"
    if values.dtype.kind in "US":
        return "category"
    kinds = set()
    for value in values:
        if _is_missing(value):
            continue
        if isinstance(value, bool | np.bool_ | int | float | np.integer | np.floating):
            kinds.add("number")
        elif isinstance(value, str | bytes):
            kinds.add("category")
        else:
            return None
    if len(kinds) > 1:
        return None
    return kinds.pop() if kinds else "number"


def numbers(values: npt.NDArray[Any]) -> F32:
    """A numeric column as float32, NaN where a cell is empty."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float32)
    return np.array([np.nan if _is_missing(v) else float(v) for v in values], dtype=np.float32)


def categories(values: npt.NDArray[Any]) -> Objects:
    """A categorical column as str objects, ``""`` where a cell is empty."""
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        if _is_missing(value):
            out[i] = ""
        else:
            out[i] = category(value.decode() if isinstance(value, bytes) else str(value))
    return out


def id_like(name: str, kind: str, values: npt.NDArray[Any]) -> bool:
    """A column that names rows rather than describes them: categories all different (one
    per row), or whole numbers all different under a name such as ``id`` or ``user_id``."""
    if len(values) < _MIN_ID_ROWS:
        return False
    if kind == "category":
        present = [v for v in values if v != ""]
        return len(present) == len(values) and len(set(present)) == len(present)
    column = numbers(values)
    whole = bool(np.all(np.isfinite(column)) and np.all(column == np.round(column)))
    return whole and bool(_ID_NAME.search(name)) and len(np.unique(column)) == len(column)


@dataclass(frozen=True)
class RawColumns:
    """Rows of the raw columns: numbers (NaN: empty) and categories (``""``: empty)."""

    numeric: F32
    """``(N, numbers)`` float32."""
    categorical: Objects
    """``(N, categories)`` str objects."""

    def take(self, mask: npt.NDArray[np.bool_]) -> RawColumns:
        return RawColumns(self.numeric[mask], self.categorical[mask])

    def feed(self) -> dict[str, np.ndarray]:
        """The served model's inputs for these rows."""
        feed: dict[str, np.ndarray] = {}
        if self.numeric.shape[1]:
            feed[NUMERIC_INPUT] = np.ascontiguousarray(self.numeric)
        if self.categorical.shape[1]:
            feed[CATEGORICAL_INPUT] = self.categorical
        return feed


@dataclass(frozen=True)
class Tabular:
    """The fitted preprocessing of a user file's raw columns."""

    numeric: list[str]
    categorical: list[str]
    categories: list[list[str]]
    """Each categorical column's categories seen in training (``""``: an empty cell)."""
    numeric_pipeline: Any
    categorical_pipeline: Any
    splits: dict[str, RawColumns]
    """The raw rows of each split (``train``, ``validation``, ``test``)."""

    @property
    def feature_names(self) -> list[str]:
        """The network's inputs: the numbers, then one per category of each column."""
        names = list(self.numeric)
        for column, seen in zip(self.categorical, self.categories, strict=True):
            names += [f"{column}={value}" for value in seen]
        return names

    def transform(self, raw: RawColumns) -> F32:
        blocks = []
        if self.numeric:
            blocks.append(self.numeric_pipeline.transform(raw.numeric))
        if self.categorical:
            blocks.append(self.categorical_pipeline.transform(raw.categorical))
        return np.ascontiguousarray(np.concatenate(blocks, axis=1), dtype=np.float32)

    def preprocessing_onnx(self) -> Any:
        """The fitted preprocessing as an ONNX graph (skl2onnx): inputs ``numeric`` and/or
        ``categorical``, output ``preprocessed`` (float ``[batch, features]``)."""
        import onnx
        from onnx import compose, helper
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType

        parts = []
        if self.numeric:
            part = convert_sklearn(
                self.numeric_pipeline,
                initial_types=[(NUMERIC_INPUT, FloatTensorType([None, len(self.numeric)]))],
            )
            parts.append(compose.add_prefix(part, "numeric_", rename_inputs=False))
        if self.categorical:
            part = convert_sklearn(
                self.categorical_pipeline,
                initial_types=[
                    (CATEGORICAL_INPUT, StringTensorType([None, len(self.categorical)]))
                ],
            )
            parts.append(compose.add_prefix(part, "categorical_", rename_inputs=False))
        _align(parts)
        model = parts[0] if len(parts) == 1 else compose.merge_models(parts[0], parts[1], [])
        graph = model.graph
        cast = []
        for index, output in enumerate(list(graph.output)):
            name = f"preprocessed_{index}"
            graph.node.append(
                helper.make_node("Cast", [output.name], [name], to=onnx.TensorProto.FLOAT)
            )
            cast.append(name)
        graph.node.append(helper.make_node("Concat", cast, [PREPROCESSED], axis=1))
        del graph.output[:]
        width = len(self.feature_names)
        graph.output.append(
            helper.make_tensor_value_info(PREPROCESSED, onnx.TensorProto.FLOAT, [None, width])
        )
        return model


def _align(models: Sequence[Any]) -> None:
    """Give ``models`` the same opset per domain and IR version (the highest of each), as
    ``onnx.compose`` requires; skl2onnx writes the lowest opset each converter needs."""
    from onnx import helper

    wanted: dict[str, int] = {}
    for model in models:
        for opset in model.opset_import:
            wanted[opset.domain] = max(wanted.get(opset.domain, 0), opset.version)
    ir_version = max(model.ir_version for model in models)
    for model in models:
        del model.opset_import[:]
        model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(wanted.items()))
        model.ir_version = ir_version


def attach(preprocessing: Any, network: Any) -> Any:
    """``network`` (input ``features``) behind ``preprocessing`` (output ``preprocessed``):
    one ONNX model that takes the raw columns."""
    from onnx import compose

    _align([preprocessing, network])
    return compose.merge_models(
        preprocessing, network, io_map=[(PREPROCESSED, network.graph.input[0].name)]
    )


def fit_tabular(
    numeric: Sequence[tuple[str, F32]],
    categorical: Sequence[tuple[str, Objects]],
    assignment: npt.NDArray[np.int64],
    splits: Sequence[str],
) -> Tabular:
    """Fit the preprocessing on the rows of split 0 (train); ``assignment`` gives each row's
    split index."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rows = len(assignment)
    raw = RawColumns(
        np.stack([v for _, v in numeric], axis=1) if numeric else np.empty((rows, 0), np.float32),
        np.stack([v for _, v in categorical], axis=1)
        if categorical
        else np.empty((rows, 0), object),
    )
    train = raw.take(assignment == 0)
    numeric_pipeline = categorical_pipeline = None
    if numeric:
        # keep_empty_features: a column empty in every training row imputes 0, not dropped
        numeric_pipeline = make_pipeline(
            SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()
        ).fit(train.numeric)
    seen: list[list[str]] = []
    if categorical:
        categorical_pipeline = OneHotEncoder(
            handle_unknown="ignore", sparse_output=False, dtype=np.float32
        ).fit(train.categorical)
        seen = [[str(c) for c in values] for values in categorical_pipeline.categories_]
    return Tabular(
        numeric=[name for name, _ in numeric],
        categorical=[name for name, _ in categorical],
        categories=seen,
        numeric_pipeline=numeric_pipeline,
        categorical_pipeline=categorical_pipeline,
        splits={name: raw.take(assignment == k) for k, name in enumerate(splits)},
    )
