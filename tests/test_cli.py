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
