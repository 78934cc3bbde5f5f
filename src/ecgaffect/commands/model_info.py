"""``ecgaffect model-info FILE``: print an exported model's card (``--json``: the raw JSON)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``model-info`` subcommand."""
    p = sub.add_parser("model-info", help="print an exported model's card")
    p.add_argument("file", help="ecgaffect model file (.safetensors)")
    p.add_argument("--json", action="store_true", help="print the raw card JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the card of ``args.file``."""
    from ecgaffect.model.export import read_card, sniff_format

    card = read_card(args.file)
    if args.json:
        print(card.to_json())
    else:
        print(f"file:           {args.file} ({sniff_format(args.file)})")
        print(card.summary())
    return 0
