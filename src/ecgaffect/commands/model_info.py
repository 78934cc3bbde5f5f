"""``ecgaffect model-info [FILE]``: print a model's card (``--json``: the raw JSON).

Without FILE: the packaged default model's card.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ecgaffect.commands._common import packaged_model


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``model-info`` subcommand."""
    p = sub.add_parser("model-info", help="print an exported model's card", description=__doc__)
    p.add_argument(
        "file",
        nargs="?",
        type=Path,
        default=None,
        help="ecgaffect model file (.safetensors; default: the packaged model)",
    )
    p.add_argument("--json", action="store_true", help="print the raw card JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the card of ``args.file`` (or of the packaged model)."""
    from ecgaffect.model.export import read_card, sniff_format

    path = args.file if args.file is not None else packaged_model()
    card = read_card(path)
    if args.json:
        print(card.to_json())
    else:
        packaged = " (the packaged default model)" if args.file is None else ""
        print(f"file:           {path} ({sniff_format(path)}){packaged}")
        print(card.summary())
    return 0
