"""Shared test configuration: offline, headless, one torch thread count for the whole run."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


TORCH_THREADS = min(2, os.cpu_count() or 1)


def pytest_configure(config):
    """The torch CPU thread count for the whole run, set here once (not per test).

    Two threads, the CI machine's cores: the training tests (test_learning) need both to stay
    well inside the per-test timeout.
    """
    import torch

    torch.set_num_threads(TORCH_THREADS)


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _torch_threads_stay_set():
    """Commands under test call ``torch.set_num_threads(--threads)``: put the run's count back."""
    yield
    import torch

    if torch.get_num_threads() != TORCH_THREADS:
        torch.set_num_threads(TORCH_THREADS)
