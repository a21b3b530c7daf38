"""Shared training fixtures: the built-in datasets (loaded once) and tiny training options."""

from __future__ import annotations

import pytest

from lossserve.training import Dataset, TrainOptions, load_dataset


@pytest.fixture(scope="session")
def digits() -> Dataset:
    return load_dataset("digits-lt")


@pytest.fixture(scope="session")
def breast() -> Dataset:
    return load_dataset("breast-cancer-imbalanced")


@pytest.fixture(scope="session")
def synth() -> Dataset:
    return load_dataset("multilabel-synth")


@pytest.fixture
def tiny() -> TrainOptions:
    """A few epochs of a small MLP: enough to exercise everything, fast."""
    return TrainOptions(epochs=4, patience=4, hidden=16)
