"""``ecgaffect model-info [MODEL]``: print a model's card (``--json``: the raw JSON).

MODEL is a model file or a packaged model's name (``stress``, ``demo``). Without it: the
default model's card (the validated stress model), then the packaged models, one line each.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``model-info`` subcommand."""
    from ecgaffect.model import DEFAULT_MODEL

    p = sub.add_parser("model-info", help="print an exported model's card", description=__doc__)
    p.add_argument(
        "file",
        nargs="?",
        default=None,
        metavar="MODEL",
        help="a .safetensors model file or a packaged model's name: 'stress' (validated on "
        f"EEGMAT) or 'demo' (NOT validated); default: {DEFAULT_MODEL}, and the list of "
        "packaged models",
    )
    p.add_argument("--json", action="store_true", help="print the raw card JSON")
    p.set_defaults(func=run)


def packaged_lines() -> list[str]:
    """``packaged models:`` and one line per packaged model: name, default, validation."""
    from ecgaffect.model import DEFAULT_MODEL, PACKAGED_MODELS, packaged_models
    from ecgaffect.model.export import read_card

    found = packaged_models()
    lines = ["packaged models (--model NAME):"]
    for name in [DEFAULT_MODEL] + [n for n in PACKAGED_MODELS if n != DEFAULT_MODEL]:
        tag = " (default)" if name == DEFAULT_MODEL else ""
        if name not in found:
            lines.append(f"  {name}{tag} — not installed ({PACKAGED_MODELS[name]})")
            continue
        card = read_card(found[name])
        lines.append(f"  {name}{tag} — {card.name}: {card.validation_oneline()}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Print the card of ``args.file`` (or of the default model, and the packaged list)."""
    from ecgaffect.model import PACKAGED_MODELS, resolve_model
    from ecgaffect.model.export import read_card, sniff_format

    path = resolve_model(args.file, option="model-info")
    card = read_card(path)
    if args.json:
        print(card.to_json())
        return 0
    if args.file is None:
        which = " (the default model: packaged 'stress')"
    elif str(args.file) in PACKAGED_MODELS:
        which = f" (the packaged {str(args.file)!r} model)"
    else:
        which = ""
    print(f"file:           {path} ({sniff_format(path)}){which}")
    print(card.summary())
    if args.file is None:
        print("\n".join(packaged_lines()))
    return 0
