"""``ecgaffect evaluate ssl-vs-baseline|label-fraction|pretext``: the paper's comparisons.

``evaluate`` runs one of the paper's three comparisons under a protocol (default:
subject-independent k-fold) and writes a report run directory (``report.md``,
``report.html``, ``results.json``, ``config.json``, ``plots/``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ecgaffect.commands._common import (
    add_protocol,
    add_training,
    cli_options,
    eval_config_from_args,
    percent,
    print_eval_summary,
    setup_torch,
)
from ecgaffect.datasets.selection import (
    add_source_arguments,
    data_info,
    describe_source,
    windows_from_args,
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``evaluate`` with its three comparisons."""
    from ecgaffect.model.evaluate import DEFAULT_FRACTIONS

    ev = sub.add_parser(
        "evaluate",
        help="the paper's comparisons under a cross-validation protocol, with a report",
        description=__doc__,
    )
    evsub = ev.add_subparsers(dest="comparison", metavar="COMPARISON", required=True)
    helps = {
        "ssl-vs-baseline": "self-supervised (frozen transferred encoder) vs fully-supervised",
        "label-fraction": "accuracy vs fraction of labelled training windows, both models",
        "pretext": "pretext accuracy per transformation on held-out windows",
    }
    for name, text in helps.items():
        p = evsub.add_parser(name, help=text, description=text)
        add_source_arguments(p, labelled=True)
        add_protocol(p)
        if name != "pretext":
            p.add_argument(
                "--encoder",
                type=Path,
                default=None,
                help="reuse one pretrained encoder (encoder.pt or run dir) across folds instead "
                "of pretraining per fold; reported as a shared encoder",
            )
        if name == "label-fraction":
            p.add_argument(
                "--fractions",
                type=percent,
                nargs="+",
                default=[f * 100 for f in DEFAULT_FRACTIONS],
                metavar="PERCENT",
                help="labelled fractions in percent (stratified, nested, seeded)",
            )
        add_training(p)
        p.add_argument(
            "--out", type=Path, default=None, help="run directory (default: runs/evaluate-...)"
        )
        p.set_defaults(func=run, comparison=name)
    st = evsub.add_parser(
        "stress",
        help="EEGMAT stress: HRV vs SSL vs random vs fully-supervised, LOSO, "
        "population and personal baseline",
        description="Rest vs mental arithmetic on EEGMAT (leave-one-subject-out; ECG through "
        "130 Hz; the first 60 s calibrate and are not scored): HRV features, the SSL CNN, a "
        "random encoder, SSL+HRV, the fully-supervised CNN; report.md + results.json.",
    )
    st.add_argument("--dataset", choices=["eegmat"], default="eegmat", help="labelled dataset")
    st.add_argument("--root", type=Path, required=True, help="EEGMAT folder")
    st.add_argument(
        "--encoder", type=Path, required=True, help="pretrained encoder.pt / checkpoint.pt"
    )
    st.add_argument("--encoder-data", default="", help="what the encoder was pretrained on")
    st.add_argument("--fs-epochs", type=int, default=5, help="fully-supervised CNN epochs")
    st.add_argument("--fs-folds", type=int, default=4, help="subject folds for the CNN")
    st.add_argument("--dense-epochs", type=int, default=200, help="dense-head epochs")
    st.add_argument("--out", type=Path, required=True, help="report directory")
    st.set_defaults(func=run_stress, comparison="stress")


def run_stress(args: argparse.Namespace) -> int:
    """``ecgaffect evaluate stress``: the EEGMAT table (see docs/results/eegmat_stress)."""
    from ecgaffect.model.stress_eval import evaluate_eegmat

    res = evaluate_eegmat(
        args.root,
        args.encoder,
        args.out,
        encoder_data=args.encoder_data,
        fs_epochs=args.fs_epochs,
        fs_folds=args.fs_folds,
        dense_epochs=args.dense_epochs,
        command="ecgaffect evaluate stress --root ROOT --encoder ENCODER --out OUT",
    )
    for name, r in res["rows"].items():
        print(
            f"{name:<52} population {r['population']['balanced_accuracy']:.3f}  "
            f"personal {r['personal']['balanced_accuracy']:.3f}"
        )
    print(f"report: {Path(args.out) / 'report.md'}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the comparison, write the report, print the summary."""
    from ecgaffect.model.evaluate import RUNNERS
    from ecgaffect.model.report import load_paper_results, write_report

    setup_torch(args)
    paper = load_paper_results(args.paper_results) if args.paper_results else None
    config = eval_config_from_args(args, getattr(args, "encoder", None))
    ws = windows_from_args(args, labelled=True)
    out = args.out or Path("runs") / f"evaluate-{args.comparison}-{time.strftime('%Y%m%d-%H%M%S')}"
    desc = describe_source(args)
    results = RUNNERS[args.comparison](
        ws, config, out, data_description=desc, progress=not args.no_progress
    )
    paths = write_report(
        out,
        results,
        {"evaluation": config.to_dict(), "cli": cli_options(args), "data_info": data_info(ws)},
        paper=paper,
    )
    print_eval_summary(results)
    print(f"report: {paths['html']}")
    return 0
