"""``ecgaffect live``: run the live pipeline headless (console line, LSL outlet, recorder).

Sources, outlets, the recorder and the scorer are imported lazily, so the command works with
whatever parts are installed and says clearly which one is missing.
"""

from __future__ import annotations

import argparse
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
    src.add_argument(
        "--replay", metavar="FILE", type=Path, help="replay a recording (.xdf, .csv, .npy, ...)"
    )
    src.add_argument(
        "--replay-dataset",
        metavar="NAME",
        help="replay one session of a dataset (swell, amigos, dreamer, wesad, ...); "
        "needs --root and --session",
    )
    p.add_argument("--address", metavar="A", help="Polar: BLE address or name to connect to")
    p.add_argument("--speed", type=float, default=1.0, help="replay speed (1 = real time)")
    p.add_argument("--root", metavar="PATH", type=Path, help="--replay-dataset: dataset folder")
    p.add_argument(
        "--session",
        metavar="KEY",
        help="--replay-dataset: session key 'dataset/subject/trial' (or 'subject/trial')",
    )
    p.add_argument(
        "--ecg-channel",
        metavar="CH",
        help="ECG channel label or index (--lsl, and the column/channel of a --replay file)",
    )
    p.add_argument("--model", type=Path, help="exported model (default: the packaged model)")
    p.add_argument("--hop", type=float, default=1.0, help="seconds between scores")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--record", metavar="FILE.xdf", type=Path, help="record to an XDF file")
    p.add_argument("--no-outlet", dest="outlet", action="store_false", help="no LSL affect outlet")
    p.add_argument(
        "--outlet-name", default="ecgaffect-affect", help="name of the LSL affect stream"
    )
    p.add_argument(
        "--publish-ecg",
        nargs="?",
        const="ecgaffect-ecg",
        metavar="NAME",
        help="re-broadcast the raw ECG as an LSL stream (with per-sample timestamps)",
    )
    p.add_argument(
        "--markers",
        nargs="?",
        const="",
        metavar="NAME",
        help="receive text markers from an LSL marker stream (any, or the one named NAME) "
        "into the recording and the console",
    )
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
    from ecgaffect.model.scorer import Scorer

    return Scorer.load(path)


def _channel(value: str | None) -> str | int | None:
    """``--ecg-channel``: an index when it is a whole number, else a label."""
    if value is None:
        return None
    return int(value) if value.strip().lstrip("-").isdigit() else value


def polar_source(address: str | None) -> Any:
    """The Polar H10 source (tests replace this to inject the fake bleak backend)."""
    from ecgaffect.stream.sources.polar import PolarH10Source

    return PolarH10Source(address)


def lsl_source(name: str, channel: str | int | None) -> Any:
    """The LSL inlet source for stream ``name``."""
    from ecgaffect.stream.sources.lsl import LslSource

    return LslSource(name, channel=channel)


def load_replay_file(path: Path, channel: str | int | None) -> Any:
    """A recording file as a :class:`~ecgaffect.datasets.session.Session`, through
    :func:`ecgaffect.io.load_session` (every format it reads; ``channel`` picks the ECG
    channel or column)."""
    if not path.exists():
        raise FileNotFoundError(f"--replay {str(path)!r}: no such file")
    from ecgaffect.io import load_session

    return load_session(path, channel=channel)


def load_dataset_session(name: str, root: Path | None, key: str | None) -> Any:
    """Session ``key`` of dataset ``name`` under ``root`` (``datasets.registry.load_dataset``).

    ``key`` is ``dataset/subject/trial`` or ``subject/trial``.
    """
    if root is None or key is None:
        raise ValueError(
            f"--replay-dataset {name!r} needs --root PATH (the dataset folder) and "
            "--session KEY ('subject/trial'; `ecgaffect datasets` lists them)"
        )
    if not root.exists():
        raise FileNotFoundError(f"--root {str(root)!r}: no such folder")
    from ecgaffect.datasets.registry import load_dataset

    sessions = load_dataset(name, root)
    for s in sessions:
        if key in (s.key, f"{s.subject}/{s.trial}"):
            return s
    keys = [s.key for s in sessions]
    shown = ", ".join(keys[:10]) + (f", ... ({len(keys)} in all)" if len(keys) > 10 else "")
    raise ValueError(
        f"--session {key!r}: no such session in {name} at {str(root)!r}; "
        f"available: {shown or 'none'}"
    )


def make_source(args: argparse.Namespace) -> Any:
    """The source the options ask for (not opened yet)."""
    channel = _channel(args.ecg_channel)
    if args.replay is not None or args.replay_dataset is not None:
        if not (args.speed > 0):
            raise ValueError(
                f"--speed must be > 0 (1 = real time, inf = flat out), got {args.speed}"
            )
        if args.replay is not None:
            session = load_replay_file(args.replay, channel)
        else:
            session = load_dataset_session(args.replay_dataset, args.root, args.session)
        from ecgaffect.stream.sources.replay import ReplaySource

        return ReplaySource(session, speed=args.speed)
    if args.lsl is not None:
        return lsl_source(args.lsl, channel)
    return polar_source(args.address)


def _model_info(scorer: Any) -> dict[str, Any]:
    card = scorer.card
    info: dict[str, Any] = {"name": getattr(card, "name", "model")}
    for key in ("fs_hz", "window_s", "normalization", "label_scheme", "demo", "training_data"):
        value = getattr(card, key, None)
        if value is not None and value != "" and value != {}:
            info[key] = value
    return info


def make_sinks(args: argparse.Namespace, scorer: Any, source: Any, out: Any) -> list[Sink]:
    """Console line, XDF recorder (--record), LSL affect outlet (unless --no-outlet) and
    raw ECG outlet (--publish-ecg). ``source`` is open, so its rate is known."""
    classes = {t: list(scorer.classes(t)) for t in scorer.tasks}
    sinks: list[Sink] = [ConsoleSink(out)]
    try:
        if args.record is not None:
            from ecgaffect.stream.recorder import XdfRecorder

            sinks.append(
                XdfRecorder(
                    args.record,
                    ecg_fs_hz=float(source.fs_hz),
                    score_classes=classes,
                    metadata={
                        "source": str(source.name),
                        "model": str(getattr(scorer.card, "name", "")),
                    },
                    timestamp_scale=getattr(source, "timestamp_scale", 1.0),
                )
            )
        if args.outlet or args.publish_ecg:
            from ecgaffect.stream import outlets
        if args.outlet:
            sinks.append(
                outlets.AffectOutlet(classes, name=args.outlet_name, model_info=_model_info(scorer))
            )
        if args.publish_ecg:
            sinks.append(outlets.EcgOutlet(float(source.fs_hz), name=args.publish_ecg))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def make_pipeline(source: Any, scorer: Any, args: argparse.Namespace, sinks: list) -> Pipeline:
    return Pipeline(source, scorer, hop_s=args.hop, sinks=sinks)


def make_marker_inlet(args: argparse.Namespace, pipeline: Pipeline) -> Any:
    """``--markers``: an LSL marker inlet whose markers go to every sink of ``pipeline``."""
    from ecgaffect.stream.outlets import MarkerInlet

    return MarkerInlet(pipeline.add_marker, name=args.markers or None)


# -- the command ----------------------------------------------------------------------------
def run_live(args: argparse.Namespace, out: Any = None) -> int:
    """Run until the source ends, ``--duration`` passes, Ctrl-C or SIGTERM; 0 on success.

    Everything opened here (source, recorder, outlets, marker inlet) is closed on the way
    out, whatever ends the run, so a recording always gets its footers.
    """
    out = out or sys.stdout
    if args.hop <= 0:
        raise ValueError(f"--hop must be > 0 seconds, got {args.hop}")
    if args.duration is not None and args.duration <= 0:
        raise ValueError(f"--duration must be > 0 seconds, got {args.duration}")
    if args.record is not None and not args.record.parent.is_dir():
        raise FileNotFoundError(
            f"--record {str(args.record)!r}: folder {str(args.record.parent)!r} does not exist"
        )
    scorer = load_scorer(args.model)
    source = make_source(args)
    source.open()  # the source's rate (LSL: from the stream) is needed by the sinks
    try:
        sinks = make_sinks(args, scorer, source, out)
    except BaseException:
        source.close()
        raise
    try:
        pipeline = make_pipeline(source, scorer, args, sinks)
    except BaseException:
        source.close()
        for sink in sinks:
            sink.close()
        raise

    stop = threading.Event()
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = signal_module.signal(signal_module.SIGTERM, lambda *_: stop.set())
    t_end = None if args.duration is None else time.monotonic() + args.duration
    inlet = None
    interrupted = False
    try:
        with pipeline:
            if args.markers is not None:
                inlet = make_marker_inlet(args, pipeline)
            while not stop.is_set():
                if pipeline.wait(0.1):
                    break
                if t_end is not None and time.monotonic() >= t_end:
                    break
    except KeyboardInterrupt:
        interrupted = True
        log.info("interrupted; shutting down")
    finally:
        if inlet is not None:
            inlet.close()
        pipeline.stop()
        if restore is not None:
            signal_module.signal(signal_module.SIGTERM, restore)
    c = pipeline.counters
    print(
        f"live: {'interrupted' if interrupted else pipeline.state.value}; "
        f"{c.samples_in} samples, {c.windows_scored} windows scored, "
        f"{c.windows_skipped_calibrating} skipped while calibrating, "
        f"{c.windows_dropped} dropped, {c.gaps} gaps, {c.samples_lost} samples lost",
        file=out,
        flush=True,
    )
    from ecgaffect.stream.recorder import XdfRecorder

    recorders = [s for s in sinks if isinstance(s, XdfRecorder)]
    for rec in recorders:
        print(rec.summary(), file=out, flush=True)
    if pipeline.state is PipelineState.FAILED:
        raise RuntimeError(f"live pipeline failed: {pipeline.error}")
    if any(rec.samples_lost for rec in recorders):
        return 1  # the recording misses data (full disk): say so in the exit status
    return 0
