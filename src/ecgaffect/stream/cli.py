"""``ecgaffect live``: run the live pipeline headless (console line, LSL outlet, recorder).

Sources, outlets, the recorder and the scorer are imported lazily, so the command works with
whatever parts are installed and says clearly which one is missing.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import signal as signal_module
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ecgaffect.model import DEFAULT_MODEL_NAMES
from ecgaffect.model import default_model_path as _packaged_model_path
from ecgaffect.stream.console import ConsoleSink
from ecgaffect.stream.pipeline import Pipeline, PipelineState
from ecgaffect.stream.sinks import Sink

__all__ = ["default_model_path", "register", "run_live"]

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``live`` subcommand."""
    from ecgaffect.cli import HelpFormatter

    p = sub.add_parser(
        "live",
        help="score a live ECG stream (Polar H10, LSL or a replayed recording)",
        description=(
            "Run the live pipeline headless: prints one line per score (heart rate, signal\n"
            "quality, class probabilities, latency), publishes scores on an LSL outlet and\n"
            "optionally records everything to XDF. Stop with Ctrl-C."
        ),
        formatter_class=HelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--polar", action="store_true", help="a Polar H10 over Bluetooth LE")
    src.add_argument("--lsl", metavar="NAME", help="an LSL ECG stream with this name")
    src.add_argument("--replay", metavar="FILE", type=Path, help="replay a recording file")
    p.add_argument("--address", metavar="A", help="Polar: BLE address or name to connect to")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time)")
    p.add_argument("--model", type=Path, help="exported model (default: the packaged model)")
    p.add_argument("--hop", type=float, default=1.0, help="seconds between scores")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--record", metavar="FILE.xdf", type=Path, help="record to an XDF file")
    p.add_argument("--no-outlet", dest="outlet", action="store_false", help="no LSL affect outlet")
    p.set_defaults(func=run_live)


# -- pieces (module-level so tests can swap them) ---------------------------------------------
def default_model_path() -> Path | None:
    """The packaged default model (:func:`ecgaffect.model.default_model_path`), or None."""
    return _packaged_model_path()


def load_scorer(path: Path | None) -> Any:
    """Load ``path`` (or the packaged default) with :class:`ecgaffect.model.scorer.Scorer`."""
    if path is None:
        path = default_model_path()
        if path is None:
            raise FileNotFoundError(
                "no --model given and this installation has no packaged default model "
                f"(looked for {', '.join(DEFAULT_MODEL_NAMES)} in ecgaffect/data); "
                "pass --model PATH to an exported .pt or .pt2 model"
            )
    elif not path.is_file():
        raise FileNotFoundError(f"--model {str(path)!r}: no such file")
    scorer_mod = _import("ecgaffect.model.scorer", "loading a model")
    return scorer_mod.Scorer.load(path)


def _import(module: str, purpose: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise ImportError(
                f"{purpose} needs {module}, which is not part of this installation yet"
            ) from exc
        raise


def _class(module: Any, names: tuple[str, ...]) -> Any:
    for name in names:
        if hasattr(module, name):
            return getattr(module, name)
    raise ImportError(f"{module.__name__} has none of {names}")


def make_source(args: argparse.Namespace) -> Any:
    """The source the options ask for."""
    if args.replay is not None:
        if args.speed <= 0:
            raise ValueError(f"--speed must be > 0 (1 = real time), got {args.speed}")
        if not args.replay.exists():
            raise FileNotFoundError(f"--replay {str(args.replay)!r}: no such file")
        mod = _import("ecgaffect.stream.sources.replay", "--replay")
        return mod.ReplaySource(args.replay, speed=args.speed)
    if args.lsl is not None:
        mod = _import("ecgaffect.stream.sources.lsl", "--lsl")
        return _class(mod, ("LslSource", "LSLSource"))(args.lsl)
    mod = _import("ecgaffect.stream.sources.polar", "--polar")
    cls = _class(mod, ("PolarH10Source", "PolarSource"))
    return cls(address=args.address) if args.address else cls()


def make_sinks(args: argparse.Namespace, scorer: Any, out: Any) -> list[Sink]:
    """Console line, LSL affect outlet (unless --no-outlet) and XDF recorder (--record)."""
    sinks: list[Sink] = [ConsoleSink(out)]
    if args.record is not None:
        if not args.record.parent.is_dir():
            raise FileNotFoundError(
                f"--record {str(args.record)!r}: folder {str(args.record.parent)!r} does not exist"
            )
        rec = _import("ecgaffect.stream.recorder", "--record")
        sinks.append(rec.XdfRecorder(args.record))
    if args.outlet:
        try:
            outlets = importlib.import_module("ecgaffect.stream.outlets")
            sinks.append(outlets.AffectOutlet.from_scorer(scorer))
        except (ImportError, AttributeError) as exc:
            log.warning("LSL affect outlet not available (%s); continuing without it", exc)
    return sinks


def make_pipeline(source: Any, scorer: Any, args: argparse.Namespace, sinks: list) -> Pipeline:
    return Pipeline(source, scorer, hop_s=args.hop, sinks=sinks)


# -- the command ----------------------------------------------------------------------------
def run_live(args: argparse.Namespace, out: Any = None) -> int:
    """Run until the source ends, ``--duration`` passes, Ctrl-C or SIGTERM; 0 on success."""
    out = out or sys.stdout
    if args.hop <= 0:
        raise ValueError(f"--hop must be > 0 seconds, got {args.hop}")
    if args.duration is not None and args.duration <= 0:
        raise ValueError(f"--duration must be > 0 seconds, got {args.duration}")
    scorer = load_scorer(args.model)
    source = make_source(args)
    sinks = make_sinks(args, scorer, out)
    try:
        pipeline = make_pipeline(source, scorer, args, sinks)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise

    stop = threading.Event()
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = signal_module.signal(signal_module.SIGTERM, lambda *_: stop.set())
    t_end = None if args.duration is None else time.monotonic() + args.duration
    try:
        with pipeline:
            while not stop.is_set():
                if pipeline.wait(0.1):
                    break
                if t_end is not None and time.monotonic() >= t_end:
                    break
    except KeyboardInterrupt:
        log.info("interrupted; shutting down")
    finally:
        pipeline.stop()
        if restore is not None:
            signal_module.signal(signal_module.SIGTERM, restore)
    c = pipeline.counters
    print(
        f"live: {pipeline.state.value}; {c.samples_in} samples, {c.windows_scored} windows "
        f"scored, {c.windows_dropped} dropped, {c.gaps} gaps, {c.samples_lost} samples lost",
        file=out,
    )
    if pipeline.state is PipelineState.FAILED:
        raise RuntimeError(f"live pipeline failed: {pipeline.error}")
    return 0
