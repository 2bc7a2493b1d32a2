"""Shared fixtures: fixed seeds, small thread counts, offline model hubs, a tiny 'lite0'."""

from __future__ import annotations

import os
import random

# Tests never touch a model hub; make any accidental attempt fail fast instead of hanging.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest
import torch

from tests._images import restore_backbone, use_tiny_backbone

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _fixed_seeds():
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny_lite0():
    """The tiny random timm model registered as the ``lite0`` backbone for one test, so the
    command and the recipes run in seconds (the shipped Lite0 is restored afterwards)."""
    previous = use_tiny_backbone("lite0")
    yield
    restore_backbone(previous)


@pytest.fixture(scope="module")
def tiny_lite0_for_module():
    """The tiny ``lite0`` (without flip averaging) for a whole module, as the command's bad-input
    zoos use it: their module-scoped models are fitted with it."""
    previous = use_tiny_backbone("lite0", tta=False)
    yield
    restore_backbone(previous)
