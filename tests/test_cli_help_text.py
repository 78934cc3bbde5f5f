"""Help pages and console hygiene (issue 12 item 12): plain text, did-you-mean, defaults,
quiet logging and a quiet liblsl."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np
import pytest

from ecgaffect.cli import build_parser, did_you_mean, main, plain_text
from ecgaffect.stream._lsl import lsl_config_with_log_level


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    for a in parser._actions:
        if isinstance(a, argparse._SubParsersAction):
            return dict(a.choices)
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_no_rest_markup_in_any_help_page(name):
    text = _subcommands()[name].format_help()
    for mark in ("``", ":func:", ":class:", ":mod:", ":meth:", ":data:"):
        assert mark not in text, f"{name} --help shows {mark!r}"


def test_plain_text_strips_roles_and_literals():
    assert plain_text("see :func:`~ecgaffect.a.b` and ``--x``") == "see ecgaffect.a.b and --x"


def test_train_help_documents_only_the_protocols_it_accepts():
    text = _subcommands()["train"].format_help()
    assert "window-kfold" not in text
    assert "loso" in text


def test_did_you_mean_for_commands_and_options(capsys):
    with pytest.raises(SystemExit):
        main(["lvie"])
    assert "did you mean 'live'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["model-info", "--jsno"])
    assert "--jsno -> --json" in capsys.readouterr().err
    msg = "argument COMMAND: invalid choice: 'zzzz' (choose from 'live', 'gui')"
    assert did_you_mean(msg, build_parser()) == msg  # nothing close: no guess


def test_model_info_without_a_path_describes_the_packaged_model(capsys):
    assert main(["model-info"]) == 0
    out = capsys.readouterr().out
    assert "default_model" in out


def test_score_without_model_uses_the_packaged_model(tmp_path, capsys):
    from ecg_fixtures import synthetic_ecg_uv

    rec = tmp_path / "rec.npy"
    np.save(rec, synthetic_ecg_uv(90.0, 130.0, seed=3).astype(np.float32))
    out = tmp_path / "scores.csv"
    assert main(["score", str(rec), "--fs-hz", "130", "-o", str(out), "--no-progress"]) == 0
    assert out.is_file()
    assert "scored windows" in capsys.readouterr().out


def test_lsl_log_level_added_without_losing_user_settings():
    cfg = "[multicast]\nResolveScope = machine\n"
    out = lsl_config_with_log_level(cfg, "warning")
    assert out.startswith(cfg)
    assert "[log]\nlevel = -1" in out
    mine = "[log]\nlevel = 3\n"
    assert lsl_config_with_log_level(mine, "error") == mine  # the user's choice wins
    with pytest.raises(ValueError, match="log level"):
        lsl_config_with_log_level("", "loud")


def test_live_console_has_no_log_lines_and_liblsl_is_quiet(tmp_path):
    """A live run with an LSL outlet: stdout holds the legend, scores and summary only;
    stderr has no timestamped INFO lines and no liblsl INFO lines."""
    from ecg_fixtures import synthetic_ecg_uv

    rec = tmp_path / "rec.npy"
    np.save(rec, synthetic_ecg_uv(75.0, 130.0, seed=4).astype(np.float32))
    cfg = tmp_path / "lsl_api.cfg"
    cfg.write_text("[multicast]\nResolveScope = machine\n")
    env = {k: v for k, v in os.environ.items() if k != "ECGAFFECT_KEEP_LSL_CONFIG"}
    env["LSLAPICFG"] = str(cfg)
    name = f"ecgaffect-test-quiet-{os.getpid()}"
    proc = subprocess.run(
        [sys.executable, "-m", "ecgaffect", "live", "--replay", str(rec), "--fs-hz", "130",
         "--speed", "20", "--outlet-name", name],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "INFO|" not in proc.stderr  # liblsl
    assert " INFO " not in proc.stderr and "INFO ecgaffect" not in proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert any(ln.startswith("#") for ln in lines)  # score lines
    assert lines[-1].startswith("live:") or any(ln.startswith("live:") for ln in lines)
