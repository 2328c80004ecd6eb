"""Shared fixtures. Tests never read ../shared: they use skimage.data photos and synthetic arrays."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np
import pytest


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="run tests marked slow")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: use --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """512x512x3 uint8 photo from scikit-image."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def camera() -> np.ndarray:
    """512x512 uint8 grayscale photo from scikit-image."""
    from skimage import data

    return data.camera()


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
