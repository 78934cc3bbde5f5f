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


def _all_parsers():
    import argparse

    from ecgaffect.cli import build_parser

    def walk(parser, path):
        yield path, parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    yield from walk(child, [*path, name])

    return list(walk(build_parser(), []))


def test_no_rest_markup_in_any_help():
    parsers = _all_parsers()
    assert len(parsers) > 12  # every command and the nested ones (datasets, evaluate)
    bad = []
    for path, parser in parsers:
        text = parser.format_help()
        for mark in ("``", ":func:", ":mod:", ":class:", ":data:", ":meth:"):
            if mark in text:
                bad.append((" ".join(path), mark))
    assert not bad, bad


def test_plain_text_strips_rest_roles():
    from ecgaffect.cli import plain_text

    assert plain_text("``x y`` and :func:`~a.b.fn` in :mod:`a.b`") == "x y and fn in a.b"
    assert plain_text(":class:`Name <a.b.Name>`") == "Name"


def test_mistyped_subcommand_suggests_the_closest(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["demmo"])
    assert exc.value.code == 2
    assert "did you mean 'demo'?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["datasets", "inf"])
    assert "did you mean 'info'?" in capsys.readouterr().err


def test_mistyped_option_suggests_the_closest(capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["score", "rec.csv", "-o", "x.csv", "--normalisation", "live"])
    assert exc.value.code == 2
    assert "did you mean '--normalization'?" in capsys.readouterr().err


def test_train_documents_only_the_protocols_it_accepts(capsys):
    import pytest

    from ecgaffect.cli import build_parser

    train = {" ".join(p): x for p, x in _all_parsers()}["train"]
    assert "window-kfold" not in train.format_help()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--protocol", "window-kfold"])
    assert "invalid choice" in capsys.readouterr().err
    evaluate = {" ".join(p): x for p, x in _all_parsers()}["evaluate ssl-vs-baseline"]
    assert "window-kfold" in evaluate.format_help()  # evaluate does run it


def test_no_flag_reads_off_by_default():
    live = {" ".join(p): x for p, x in _all_parsers()}["live"]
    text = " ".join(live.format_help().split())
    # a --no-X flag never reads "(default: on)" (which would say the outlet is off)
    assert "do not publish the scores on an LSL affect outlet (published by default)" in text
    assert "--no-outlet (default: on)" not in text
    for p, x in _all_parsers():
        for a in x._actions:
            if any(o.startswith("--no-") for o in a.option_strings):
                assert "(default: on)" not in (x._get_formatter()._get_help_string(a) or ""), p


def test_model_info_without_a_path_describes_the_default_and_lists_the_packaged(capsys):
    assert main(["model-info"]) == 0
    out = capsys.readouterr().out
    assert "stress_model.safetensors" in out
    assert "(the default model: packaged 'stress')" in out
    table = out[out.index("validation per output:") :].splitlines()
    assert table[1].split() == ["output", "validated", "dataset", "metric"]
    assert table[2].split()[:3] == ["stress", "yes", "EEGMAT"]
    assert "LOSO balanced accuracy" in table[2]
    listing = out[out.index("packaged models (--model NAME):") :].splitlines()
    assert listing[1].startswith("  stress (default) — eegmat-stress-baseline-v2: validated: ")
    assert "EEGMAT, LOSO balanced accuracy" in listing[1]
    assert listing[2].startswith("  demo — ecgaffect-default-demo: NOT validated")
    assert len(listing) == 3


def test_model_info_by_name_has_no_listing_and_flags_the_demo(capsys):
    assert main(["model-info", "demo"]) == 0
    out = capsys.readouterr().out
    assert "default_model.safetensors" in out
    assert "(the packaged 'demo' model)" in out
    assert "demo model — not validated for affect" in out
    rows = out[out.index("validation per output:") :].splitlines()[2:4]
    assert [r.split()[:2] for r in rows] == [["arousal", "no"], ["valence", "no"]]
    assert "packaged models" not in out
    assert main(["model-info", "no-such-model"]) == 1
    assert "no such file (give a model file, or a packaged model: stress, demo)" in (
        capsys.readouterr().err
    )


def test_score_uses_the_validated_default_and_takes_names(tmp_path, capsys, monkeypatch):
    import numpy as np

    from ecgaffect.model import offline

    seen = {}

    def fake_score(scorer, recording, **kw):
        seen["name"] = scorer.card.name
        return {"window_start_s": np.zeros(0)}

    monkeypatch.setattr(offline, "score_recording", fake_score)
    monkeypatch.setattr(offline, "write_table", lambda table, p: None)
    assert main(["score", str(tmp_path / "r.npy"), "-o", str(tmp_path / "s.csv")]) == 0
    assert seen["name"] == "eegmat-stress-baseline-v2"
    out = capsys.readouterr().out
    assert "scoring with the default model eegmat-stress-baseline-v2" in out
    assert "stress: VALIDATED on EEGMAT" in out
    argv = ["score", str(tmp_path / "r.npy"), "--model", "demo", "-o", str(tmp_path / "s.csv")]
    assert main(argv) == 0
    assert seen["name"] == "ecgaffect-default-demo"
    out = capsys.readouterr().out
    assert "scoring with the packaged model ecgaffect-default-demo" in out
    assert "arousal: NOT VALIDATED (demo model" in out


def test_score_with_a_missing_model_names_it(tmp_path, capsys):
    rc = main(["score", "r.npy", "--model", str(tmp_path / "no.safetensors"), "-o", "s.csv"])
    assert rc == 1
    assert "no.safetensors" in capsys.readouterr().err


_OUTLET = """
import sys
from ecgaffect.stream import _lsl
if sys.argv[1] == "configure":
    _lsl.configure_liblsl(quiet=sys.argv[2] == "quiet")
import pylsl
pylsl.StreamOutlet(pylsl.StreamInfo("ecgaffect-test-quiet", "ECG", 1, 100, "float32", "q1"))
"""


def _outlet_stderr(*argv, cwd):
    import os

    env = {k: v for k, v in os.environ.items() if k != "LSLAPICFG"}  # no user config file
    out = subprocess.run(
        [sys.executable, "-c", _OUTLET, *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )
    return out.stderr


def test_liblsl_info_lines_are_silenced_unless_verbose(tmp_path):
    # Without configuring, liblsl prints INFO lines when the first outlet is made (the
    # control: the check below can fail) ...
    assert "INFO|" in _outlet_stderr("plain", cwd=tmp_path)
    # ... configured quiet (what `ecgaffect` and `ecgaffect -q` do), none; -v keeps them.
    assert "INFO|" not in _outlet_stderr("configure", "quiet", cwd=tmp_path)
    assert "INFO|" in _outlet_stderr("configure", "verbose", cwd=tmp_path)


def test_a_users_lsl_config_file_is_kept(tmp_path, monkeypatch):
    import pylsl

    from ecgaffect.stream import _lsl

    cfg = tmp_path / "lsl_api.cfg"
    cfg.write_text("[lab]\nKnownPeers = {host1}\n")
    monkeypatch.setenv("LSLAPICFG", str(cfg))
    monkeypatch.setattr(pylsl, "set_config_content", lambda content: None)
    content = _lsl.configure_liblsl(quiet=True)
    assert "KnownPeers = {host1}" in content
    assert "level = -2" in content
    cfg.write_text("[log]\nlevel = 0\n")
    assert "level = -2" not in _lsl.configure_liblsl(quiet=True)  # the user's level wins


def test_logging_is_warnings_only_without_v(capsys):
    import logging

    from ecgaffect.cli import _setup_logging

    root = logging.getLogger()
    saved = root.level, list(root.handlers)
    try:
        _setup_logging(0, False)
        assert not logging.getLogger("ecgaffect.stream.pipeline").isEnabledFor(logging.INFO)
        assert logging.getLogger("ecgaffect.model").isEnabledFor(logging.WARNING)
        _setup_logging(1, False)
        assert logging.getLogger("ecgaffect.stream.pipeline").isEnabledFor(logging.INFO)
    finally:
        root.setLevel(saved[0])
        root.handlers[:] = saved[1]


def test_headless_demo_console_has_scores_and_a_summary_but_no_log_lines(tmp_path):
    import os
    import re

    import numpy as np

    from ecg_fixtures import synthetic_ecg_uv

    rec = tmp_path / "rec.npz"
    np.savez(rec, ecg=synthetic_ecg_uv(80.0, 256.0), fs_hz=np.float64(256.0))
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    out = subprocess.run(
        [sys.executable, "-m", "ecgaffect", "demo", "--headless", "--recording", str(rec)]
        + ["--speed", "40", "--duration", "20", "--hop", "5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert any(ln.startswith("#") and "latency" in ln for ln in lines), out.stdout
    assert "arousal low 0.96 per task" in out.stdout  # the legend explains the line
    assert any(ln.startswith("live: finished;") for ln in lines)  # a sentence, not a dict
    both = out.stdout + out.stderr
    assert not re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d", both, re.M), both  # no timestamps
    assert " INFO" not in both
    assert "{" not in out.stdout


_LOG = """
import logging, sys
from ecgaffect.cli import _setup_logging
_setup_logging(int(sys.argv[1]), sys.argv[2] == "q")
for level in ("info", "warning", "error"):
    getattr(logging.getLogger("ecgaffect.x"), level)(level + " line")
"""


def _log_stderr(verbose, quiet):
    out = subprocess.run(
        [sys.executable, "-c", _LOG, str(verbose), "q" if quiet else "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return out.stderr.splitlines()


def test_stderr_log_levels_of_default_q_and_v():
    assert _log_stderr(0, False) == ["WARNING: warning line", "ERROR: error line"]
    assert _log_stderr(0, True) == ["ERROR: error line"]
    verbose = _log_stderr(1, False)
    assert len(verbose) == 3
    assert verbose[0].endswith("INFO    ecgaffect.x: info line")
