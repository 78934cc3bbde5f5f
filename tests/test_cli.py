import subprocess
import sys

from ecgaffect.cli import main


def test_help_lists_and_exits_cleanly(capsys):
    assert main([]) == 2
    assert "usage: ecgaffect" in capsys.readouterr().out


def test_module_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "ecgaffect", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("ecgaffect ")


def test_every_option_of_every_command_shows_a_default():
    import argparse

    from ecgaffect.cli import build_parser

    def walk(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, [*path, name])
        yield path, parser

    missing = []
    for path, parser in walk(build_parser(), []):
        text = parser.format_help()
        for action in parser._actions:
            if not action.option_strings or isinstance(
                action, argparse._HelpAction | argparse._VersionAction
            ):
                continue
            if action.help in (None, argparse.SUPPRESS):
                continue
            formatted = parser.formatter_class(prog="x")._get_help_string(action) or ""
            if "default" not in formatted:
                missing.append(" ".join(path) + " " + action.option_strings[-1])
        assert "usage:" in text
    assert not missing, missing
