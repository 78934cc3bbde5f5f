"""Shared test configuration: offline, headless, single-threaded torch for stable timings."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def pytest_configure(config):
    """One torch CPU thread for the whole run (set here once, not per test)."""
    import torch

    torch.set_num_threads(1)
