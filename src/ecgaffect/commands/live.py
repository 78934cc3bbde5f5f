"""``ecgaffect live``: run the live pipeline headless (console line, LSL outlet, recorder)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any, TextIO

from ecgaffect.stream import factories
from ecgaffect.stream.console import LEGEND
from ecgaffect.stream.headless import run_headless
from ecgaffect.stream.shards import (
    Share,
    Workers,
    parse_share,
    python_command,
    share_record_path,
    threads_per_share,
)
from ecgaffect.stream.sources.base import Source


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``live`` subcommand."""
    p = sub.add_parser(
        "live",
        help="score a live ECG stream (Polar H10, LSL or a replayed recording)",
        description=(
            "Run the live pipeline headless: prints one line per score (heart rate, signal\n"
            "quality, class probabilities, latency), publishes scores on an LSL outlet and\n"
            "optionally records everything to XDF. Stop with Ctrl-C."
        ),
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--polar", action="store_true", help="a Polar H10 over Bluetooth LE")
    src.add_argument(
        "--lsl",
        metavar="NAME",
        nargs="+",
        help="the LSL ECG stream(s) with these names (several: one participant each, scored "
        "in one batched model call per hop, one affect outlet each)",
    )
    src.add_argument(
        "--lsl-type",
        metavar="TYPE",
        help="the first LSL stream of this type (e.g. ECG); with --all every one of them",
    )
    src.add_argument(
        "--study",
        metavar="FILE",
        type=Path,
        help="score a study file's participants (.toml/.json, as `gateway --study`): their "
        "ECG streams P01-ECG, ... (one participant each, as --lsl P01-ECG P02-ECG ...)",
    )
    src.add_argument(
        "--replay", metavar="FILE", type=Path, help="replay a recording (.xdf, .csv, .npy, ...)"
    )
    src.add_argument(
        "--replay-dataset",
        metavar="NAME",
        help="replay one session of a dataset (swell, amigos, dreamer, wesad, ...); "
        "needs --root and --session",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="with --lsl-type: score every stream of that type on the network, one "
        "participant each, looking again every --rescan seconds for new ones",
    )
    p.add_argument(
        "--rescan",
        type=float,
        default=5.0,
        metavar="S",
        help="--all: seconds between looks for new streams (default: 5)",
    )
    p.add_argument(
        "--share",
        metavar="I/K",
        help="several LSL streams: score only share I of K (1 <= I <= K) -- the streams whose "
        "source id (else name; --lsl: the name given) hashes there (SHA-256 mod K), so K scorers "
        "started with the same K, on one machine or several, split the streams with no overlap",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="K",
        help="several LSL streams: run K scorer processes on this machine (this one is share "
        "1/K, K-1 children --share 2/K..K/K), past the one core one process uses; --record "
        "FILE.xdf then writes one file per share, FILE-share1ofK.xdf ...",
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
    p.add_argument(
        "--fs-hz",
        type=float,
        metavar="HZ",
        help="--replay: sampling rate of a file that does not store it (.csv, .npy)",
    )
    p.add_argument(
        "--units",
        metavar="U",
        help="--replay: unit of the samples when the file does not say (uV, mV, V; default uV)",
    )
    p.add_argument(
        "--model",
        type=Path,
        help="a .safetensors model file or a packaged model's name: 'stress' (validated on "
        "EEGMAT, relative to your baseline) or 'demo' (NOT validated); default: stress",
    )
    p.add_argument(
        "--profile",
        metavar="NAME",
        help="personal-baseline models: reuse this profile's saved baseline, or save the one "
        "the calibration minute takes",
    )
    p.add_argument(
        "--hop", type=float, default=1.0, metavar="S", help="seconds between scores (default: 1)"
    )
    # hidden alias: the spelling `datasets` used before it took --hop too
    p.add_argument("--hop-s", dest="hop", type=float, help=argparse.SUPPRESS)
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--record", metavar="FILE.xdf", type=Path, help="record to an XDF file")
    p.add_argument(
        "--no-outlet",
        dest="outlet",
        action="store_false",
        help="do not publish the scores on an LSL affect outlet (published by default)",
    )
    p.add_argument(
        "--outlet-name",
        default="ecgaffect-affect",
        help="name of the LSL affect stream (one participant; several: each participant's is "
        "named after its ECG stream, P01-ECG -> P01-affect)",
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
    p.set_defaults(func=run)


def make_source(args: argparse.Namespace) -> Source:
    """The source the options ask for (not opened yet)."""
    if getattr(args, "lsl_type", None) is not None:
        from ecgaffect.stream.sources.lsl import LslSource

        return LslSource(type=args.lsl_type, channel=factories.parse_channel(args.ecg_channel))
    return factories.make_source(
        polar_address=args.address,
        lsl_name=args.lsl[0] if args.lsl else None,
        replay_file=args.replay,
        replay_dataset=args.replay_dataset,
        root=args.root,
        session_key=args.session,
        channel=factories.parse_channel(args.ecg_channel),
        speed=args.speed,
        fs_hz=getattr(args, "fs_hz", None),
        units=getattr(args, "units", None),
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Run until the source ends, ``--duration`` passes, Ctrl-C or SIGTERM; 0 on success, 1
    when the recording misses samples (full disk).
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
    if args.fs_hz is not None and not (args.fs_hz > 0 and math.isfinite(args.fs_hz)):
        raise ValueError(f"--fs-hz must be a positive number of Hz, got {args.fs_hz}")
    if (args.fs_hz is not None or args.units is not None) and args.replay is None:
        raise ValueError("--fs-hz and --units apply to --replay FILE only")
    if getattr(args, "study", None) is not None:
        args.lsl = study_stream_names(args.study)  # then scored exactly as --lsl NAME ...
        args.study = None
    share = parse_share(args.share) if args.share is not None else None
    workers = args.workers
    if workers is not None and not workers >= 1:
        raise ValueError(f"--workers expects a number of processes >= 1, got {workers}")
    if workers is not None and share is not None:
        raise ValueError("--workers starts its own shares: give --workers K or --share I/K")
    lab = bool(args.all) or (args.lsl is not None and len(args.lsl) > 1)
    if (share is not None or workers is not None) and not (lab or args.lsl is not None):
        raise ValueError(
            "--share and --workers split several LSL streams: use them with --lsl NAME ... "
            "or --lsl-type TYPE --all"
        )
    lab = lab or share is not None or workers is not None
    if args.all and args.lsl_type is None:
        raise ValueError("--all needs --lsl-type TYPE (e.g. --lsl-type ECG --all)")
    if lab and args.publish_ecg:
        raise ValueError("--publish-ecg applies to one stream; the lab streams are on LSL already")
    if not args.rescan > 0:
        raise ValueError(f"--rescan must be > 0 seconds, got {args.rescan}")
    if workers is not None and workers > 1:
        return _run_workers(args, workers, out)
    scorer: Any = factories.load_scorer(args.model)
    scorer.profile = args.profile
    if lab:
        from ecgaffect.stream.multi import run_lab

        print(LEGEND, file=out, flush=True)
        return run_lab(
            scorer,
            out,
            hop_s=args.hop,
            names=args.lsl or (),
            resolve_type=args.lsl_type if args.all else None,
            rescan_s=args.rescan,
            duration_s=args.duration,
            record=args.record,
            outlet=args.outlet,
            markers=args.markers,
            channel=factories.parse_channel(args.ecg_channel),
            share=share,
        )
    source = make_source(args)
    print(LEGEND, file=out, flush=True)
    return run_headless(  # 1: the recording misses samples (full disk)
        scorer,
        source,
        out,
        hop_s=args.hop,
        duration_s=args.duration,
        record=args.record,
        outlet=args.outlet,
        outlet_name=args.outlet_name,
        publish_ecg=args.publish_ecg,
        markers=args.markers,
    )


def study_stream_names(path: Path) -> list[str]:
    """The ECG stream names (``P01-ECG``, ...) of a study file's participants, as a gateway
    publishes them; :class:`~ecgaffect.stream.study.StudyFileError` if the file is unusable.
    """
    from ecgaffect.stream.gateway import stream_name
    from ecgaffect.stream.study import load_study

    return [stream_name(p.id, "ECG") for p in load_study(path).participants]


def share_argv(args: argparse.Namespace, share: Share) -> list[str]:
    """The ``live`` options of a lab run (``args``) for the scorer of ``share``."""
    argv = ["live", "--share", str(share)]
    if args.lsl is not None:
        argv += ["--lsl", *args.lsl]
    else:
        argv += ["--lsl-type", args.lsl_type, "--all", "--rescan", repr(args.rescan)]
    argv += ["--hop", repr(args.hop)]
    for flag, value in (
        ("--ecg-channel", args.ecg_channel),
        ("--model", args.model),
        ("--profile", args.profile),
        ("--duration", None if args.duration is None else repr(args.duration)),
        ("--record", None if args.record is None else share_record_path(args.record, share)),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if not args.outlet:
        argv.append("--no-outlet")
    if args.markers is not None:
        argv += ["--markers", args.markers] if args.markers else ["--markers"]
    return argv


def _run_workers(args: argparse.Namespace, k: int, out: TextIO) -> int:
    """``--workers K``: children for shares 2..K, this process scores share 1/K.

    SIGTERM (and Ctrl-C) reach the children: they are terminated when this process ends,
    and a child that ends early is reported while the others go on.
    """
    import signal
    import threading
    import time

    shares = [Share(i, k) for i in range(1, k + 1)]
    own = argparse.Namespace(**vars(args))
    own.share, own.workers = str(shares[0]), None
    if args.record is not None:
        own.record = share_record_path(args.record, shares[0])
    restore = None
    if threading.current_thread() is threading.main_thread():
        # until run_lab sets its own handler (loading the model takes seconds): end cleanly

        def on_term(*_: object) -> None:
            raise KeyboardInterrupt

        restore = signal.signal(signal.SIGTERM, on_term)
    import os

    # one process per share: the cores shared out between their torch threads, unless the
    # user set OMP_NUM_THREADS
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env:
        threads = threads_per_share(k)
        env["OMP_NUM_THREADS"] = str(threads)
        import torch

        torch.set_num_threads(threads)
    cmd = python_command()
    workers = Workers(
        [[*cmd, *share_argv(args, s)] for s in shares[1:]],
        [str(s) for s in shares[1:]],
        out,
        env=env,
    )
    t0 = time.monotonic()
    rc = 1
    try:
        rc = run(own, out)
    finally:
        # --duration ran out: the children (started at about the same time) end by themselves
        ran_out = args.duration is not None and time.monotonic() - t0 >= args.duration
        workers.stop(timeout_s=0.0 if ran_out and workers.wait(timeout_s=30.0) else 10.0)
        if restore is not None:
            signal.signal(signal.SIGTERM, restore)
    if workers.failed:
        print(f"workers: shares {', '.join(workers.failed)} failed", file=out, flush=True)
        return rc or 1
    return rc
