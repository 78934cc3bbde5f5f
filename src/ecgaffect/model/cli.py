"""``ecgaffect pretrain`` / ``ecgaffect finetune`` (filled in by the model work)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # noqa: ARG001
    return None
