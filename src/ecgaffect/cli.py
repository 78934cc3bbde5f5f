"""The ``ecgaffect`` console script.

Each subcommand is a module of :mod:`ecgaffect.commands` (listed in
:data:`ecgaffect.commands.COMMAND_MODULES`) with ``register(subparsers)`` and ``run(args)``;
this file only builds the parser from them, gives every help page the same format, sets up
logging and turns expected errors into one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from ecgaffect import __version__
from ecgaffect.commands import COMMAND_MODULES

log = logging.getLogger(__name__)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's default and keeps the description's line breaks.

    Flags read "(default: off)" / "(default: on)"; options whose help already explains the
    default keep their own wording instead of getting a second "(default: ...)".
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS:
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text  # required positional: no default to show
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            return text
        if isinstance(action, argparse._StoreTrueAction):
            shown = "off"
        elif isinstance(action, argparse._StoreFalseAction):
            shown = "on"
        elif action.default is None:
            shown = "none"
        elif isinstance(action.default, list | tuple):
            shown = " ".join(str(v) for v in action.default) or "none"
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})"


def build_parser() -> argparse.ArgumentParser:
    """The ``ecgaffect`` parser with every command of :mod:`ecgaffect.commands`."""
    parser = argparse.ArgumentParser(
        prog="ecgaffect",
        description="Affective state (arousal, valence, stress) from single-lead ECG.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ecgaffect {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"ecgaffect.commands.{name}").register(sub)
    _use_formatter(parser)
    return parser


def _use_formatter(parser: argparse.ArgumentParser) -> None:
    """Give every (nested) subcommand the same help format, whoever registered it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.formatter_class = HelpFormatter
                _use_formatter(child)


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.INFO if verbose < 2 else logging.DEBUG)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    if verbose == 0 and not quiet:
        # Our own progress messages at INFO, third-party libraries at WARNING.
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("ecgaffect").setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ecgaffect ARGV``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _setup_logging(args.verbose, args.quiet)
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, ImportError, RuntimeError) as exc:
        if args.verbose >= 2:
            raise
        print(f"ecgaffect {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return int(result or 0)
