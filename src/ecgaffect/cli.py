"""The ``ecgaffect`` console script.

Each subcommand is a module of :mod:`ecgaffect.commands` (listed in
:data:`ecgaffect.commands.COMMAND_MODULES`) with ``register(subparsers)`` and ``run(args)``;
this file only builds the parser from them, gives every help page the same format, sets up
logging and turns expected errors into one clear line instead of a traceback.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import re
import sys
from collections.abc import Sequence

from ecgaffect import __version__
from ecgaffect.commands import COMMAND_MODULES

log = logging.getLogger(__name__)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Shows every option's default and keeps the description's line breaks.

    Flags read "(default: off)": whether the flag is given, also for ``--no-X`` flags
    (``--no-outlet``'s "on" read as "no outlet" by default); options whose help already explains the
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
            shown = "off"  # "--no-outlet ... (default: off)": the flag, not what it turns off
        elif action.default is None:
            shown = "none"
        elif isinstance(action.default, list | tuple):
            shown = " ".join(str(v) for v in action.default) or "none"
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser that suggests the closest name for a mistyped command or option.

    Subparsers inherit the class, so ``ecgaffect demmo``, ``ecgaffect datasets inf`` and
    ``--protocol los`` all get a "did you mean ...?".
    """

    def _check_value(self, action: argparse.Action, value: object) -> None:
        if action.choices is not None and value not in action.choices:
            choices = [str(c) for c in action.choices]
            hint = did_you_mean(str(value), choices)
            raise argparse.ArgumentError(
                action,
                f"invalid choice: {value!r}{hint} (choose from {', '.join(choices)})",
            )

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, extras = super().parse_known_args(args, namespace)
        if extras and self.prog == "ecgaffect":  # the root: say which options would do
            options = _option_strings(self, ns)
            hints = [f"{x}{did_you_mean(x.split('=')[0], options)}" for x in extras if x[:1] == "-"]
            if hints and any("did you mean" in h for h in hints):
                self.error("unrecognized arguments: " + "; ".join(hints))
        return ns, extras


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (difflib), or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _option_strings(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> list[str]:
    """Option strings of the (sub)command ``ns`` was parsed for, and the root's."""
    found: list[str] = []
    current: argparse.ArgumentParser | None = parser
    while current is not None:
        nxt = None
        for action in current._actions:
            found.extend(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                chosen = getattr(ns, action.dest or "", None) if action.dest else None
                if chosen in action.choices:
                    nxt = action.choices[chosen]
                else:  # nested groups without dest: the first parser whose defaults match
                    for child in action.choices.values():
                        if child.get_default("func") is getattr(ns, "func", None):
                            nxt = child
                            break
        current = nxt if nxt is not current else None
    return found


_REST_ROLE = re.compile(r":[a-z]+(?::[a-z]+)?:`~?([^`<]*?)(?:\s*<[^>]*>)?`")
_REST_LITERAL = re.compile(r"``([^`]+)``")


def plain_text(text: str | None) -> str | None:
    """Help text without reST markup: ``x`` -> x, :func:`~a.b` -> b, :mod:`a.b` -> a.b.

    Descriptions are often a command module's docstring, which Sphinx renders; ``--help``
    shows plain text.
    """
    if not text:
        return text

    def role(m: re.Match[str]) -> str:
        target = m.group(1).strip()
        tilde = m.group(0).split("`", 1)[1].startswith("~")
        return target.rsplit(".", 1)[-1] if tilde else target

    return _REST_LITERAL.sub(r"\1", _REST_ROLE.sub(role, text))


def _plain_help(parser: argparse.ArgumentParser) -> None:
    """:func:`plain_text` on every description, epilog and option help, nested parsers too."""
    parser.description = plain_text(parser.description)
    parser.epilog = plain_text(parser.epilog)
    for action in parser._actions:
        if isinstance(action.help, str):
            action.help = plain_text(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if isinstance(choice.help, str):
                    choice.help = plain_text(choice.help)
            for child in action.choices.values():
                _plain_help(child)


def build_parser() -> argparse.ArgumentParser:
    """The ``ecgaffect`` parser with every command of :mod:`ecgaffect.commands`."""
    parser = Parser(
        prog="ecgaffect",
        description="Affective state (arousal, valence, stress) from single-lead ECG.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ecgaffect {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log INFO lines too, liblsl's included (-vv: debug); default: warnings and errors",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="log errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"ecgaffect.commands.{name}").register(sub)
    _use_formatter(parser)
    _plain_help(parser)
    return parser


def _use_formatter(parser: argparse.ArgumentParser) -> None:
    """Give every (nested) subcommand the same help format, whoever registered it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.formatter_class = HelpFormatter
                _use_formatter(child)


def _setup_logging(verbose: int, quiet: bool) -> None:
    """Log to stderr: warnings and errors by default, ``-q`` errors, ``-v`` INFO, ``-vv`` DEBUG.

    Without ``-v`` the lines are short (``warning: ...``) so they do not clutter a command's
    own output; with ``-v`` they carry a timestamp and the logger's name. liblsl's own
    INFO lines show only with ``-v`` (see :func:`ecgaffect.stream._lsl.configure_liblsl`).
    """
    if quiet or verbose == 0:
        level, fmt = logging.WARNING, "%(levelname)s: %(message)s"
    else:
        level = logging.INFO if verbose == 1 else logging.DEBUG
        fmt = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(fmt))
    # -q filters at the handler: loggers stay at WARNING, so other handlers (pytest's
    # caplog when main() runs in-process) still see warnings.
    handler.setLevel(logging.ERROR if quiet else logging.NOTSET)
    logging.basicConfig(level=level, handlers=[handler])  # no-op when root has handlers
    logging.getLogger().setLevel(level)
    try:
        from ecgaffect.stream._lsl import configure_liblsl

        configure_liblsl(quiet=quiet or verbose == 0)
    except (ImportError, RuntimeError, OSError) as exc:  # no usable liblsl: commands say so
        log.debug("liblsl not configured: %s", exc)


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
