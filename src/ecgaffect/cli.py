"""The ``ecgaffect`` console script.

Each subcommand is a module of :mod:`ecgaffect.commands` (listed in
:data:`ecgaffect.commands.COMMAND_MODULES`) with ``register(subparsers)`` and ``run(args)``;
this file only builds the parser from them, gives every help page the same format, sets up
logging and turns expected errors into one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import difflib
import logging
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from ecgaffect import __version__
from ecgaffect.commands import COMMAND_MODULES

log = logging.getLogger(__name__)


_REST_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|obj|exc|ref|doc):`~?([^`]+)`")
_REST_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str) -> str:
    """``text`` (a docstring-derived description) without reST markup: ``x`` -> x,
    :func:`~a.b` -> a.b, so help pages read as plain text."""
    return _REST_LITERAL.sub(r"\1", _REST_ROLE.sub(r"\1", text))


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's default, keeps the description's line breaks, drops reST markup.

    Flags read "(default: off)" / "(default: on)"; options whose help already explains the
    default keep their own wording instead of getting a second "(default: ...)".
    """

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return super()._fill_text(plain_text(text), width, indent)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = plain_text(action.help or "")
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


_INVALID_CHOICE = re.compile(r"invalid choice: '([^']*)' \(choose from (.*)\)")
_UNRECOGNIZED = re.compile(r"unrecognized arguments: (.*)")


def did_you_mean(message: str, parser: argparse.ArgumentParser) -> str:
    """``message`` (an argparse error) with "did you mean ...?" for a mistyped subcommand,
    choice or option, when a close match exists."""
    m = _INVALID_CHOICE.search(message)
    if m:
        choices = re.findall(r"'([^']*)'", m.group(2))
        close = difflib.get_close_matches(m.group(1), choices, n=2, cutoff=0.6)
        if close:
            return f"{message}; did you mean {' or '.join(repr(c) for c in close)}?"
        return message
    m = _UNRECOGNIZED.search(message)
    if m:
        options = sorted(_all_options(parser))
        hints = []
        for word in m.group(1).split():
            flag = word.split("=", 1)[0]
            if flag.startswith("--"):
                close = difflib.get_close_matches(flag, options, n=1, cutoff=0.7)
                if close:
                    hints.append(f"{flag} -> {close[0]}")
        if hints:
            return f"{message}; did you mean {', '.join(hints)}?"
    return message


def _all_options(parser: argparse.ArgumentParser) -> set[str]:
    """Every ``--option`` of ``parser`` and its subcommands (argparse reports unknown ones
    from the top-level parser)."""
    out = {o for a in parser._actions for o in a.option_strings if o.startswith("--")}
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            for child in a.choices.values():
                out |= _all_options(child)
    return out


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" hints on mistyped commands and options."""

    def error(self, message: str) -> NoReturn:
        super().error(did_you_mean(message, self))


def build_parser() -> argparse.ArgumentParser:
    """The ``ecgaffect`` parser with every command of :mod:`ecgaffect.commands`."""
    parser = Parser(
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


#: Commands whose standard output is a live console of scores: our INFO messages would be
#: mixed into it, so they need ``-v``.
CONSOLE_COMMANDS = frozenset({"live", "demo", "gui", "gateway", "calibrate"})


def _setup_logging(verbose: int, quiet: bool, command: str | None = None) -> None:
    """Log to stderr: warnings and errors; our own progress at INFO too (except under a live
    console, where that needs ``-v``); ``-vv`` everything with time stamps; ``-q`` errors."""
    level = logging.WARNING if quiet else (logging.INFO if verbose < 2 else logging.DEBUG)
    fmt = (
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        if verbose >= 2
        else "%(levelname)s %(name)s: %(message)s"
    )
    logging.basicConfig(level=level, format=fmt)
    if verbose == 0 and not quiet:
        # Our own progress messages at INFO, third-party libraries at WARNING.
        logging.getLogger().setLevel(logging.WARNING)
        ours = logging.WARNING if command in CONSOLE_COMMANDS else logging.INFO
        logging.getLogger("ecgaffect").setLevel(ours)
    if quiet:
        logging.getLogger().setLevel(logging.ERROR)
    from ecgaffect.stream._lsl import quiet_liblsl

    # liblsl prints INFO lines to stderr by default; before its first use, keep it to warnings
    # (errors with -q, everything with -vv), leaving the user's lsl_api.cfg settings in place
    quiet_liblsl("error" if quiet else ("warning" if verbose < 2 else "debug"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ecgaffect ARGV``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    _setup_logging(args.verbose, args.quiet, args.command)
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
