"""Shared test configuration: offline, headless, single-threaded torch for stable timings."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
