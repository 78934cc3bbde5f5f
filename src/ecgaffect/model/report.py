"""Evaluation reports: ``results.json``, ``config.json``, PNG plots, ``report.md``/``.html``.

:func:`write_report` turns the results dict of an :mod:`ecgaffect.model.evaluate` comparison
into a run directory:

- ``results.json``: the results, machine-readable (keys: ``kind``, ``protocol``, ``encoder``,
  ``data``, ``folds``, and per comparison ``summary`` / ``fraction_summary`` /
  ``pretext_summary``; ``paper_comparison`` when paper numbers were given);
- ``config.json``: the exact configuration, protocol, seeds, package versions
  (:func:`~ecgaffect.model.training.environment_info`), data description, WindowSet
  fingerprint and label scheme, so a run can be repeated and compared;
- ``plots/*.png`` (matplotlib, Agg backend): learning curves from every ``metrics.jsonl`` under
  the run directory, the labelled-fraction curve, summed confusion matrices, pretext accuracy;
- ``report.md`` and ``report.html`` (tables; the HTML embeds the PNGs as data URIs).

Paper numbers (``--paper-results FILE.json``, e.g. ``docs/paper_results_tac.json``) are put
beside ours with the protocol of each named, since the paper's window-level numbers are not
comparable with a subject-independent run.
"""

from __future__ import annotations

import base64
import html
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ecgaffect.model.training import environment_info, json_default

log = logging.getLogger(__name__)

__all__ = [
    "RESULT_KEYS",
    "load_paper_results",
    "paper_comparison",
    "plot_confusion_matrices",
    "plot_label_fraction",
    "plot_learning_curves",
    "plot_pretext",
    "write_report",
]

#: Keys every ``results.json`` has.
RESULT_KEYS = ("kind", "protocol", "encoder", "data", "folds")
_MODEL_ORDER = ("fully-supervised", "self-supervised")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _fmt(entry: Mapping[str, Any] | None, metric: str) -> str:
    if not entry or metric not in entry:
        return "–"
    m = entry[metric]
    return f"{m['mean']:.3f} ± {m['std']:.3f}"


# -- paper numbers --------------------------------------------------------------------------
def load_paper_results(path: str | Path) -> dict[str, Any]:
    """Read a paper-results JSON file (format: ``docs/paper_results_tac.json``).

    Required keys: ``source`` (where the numbers come from), ``protocol`` (how they were
    measured) and ``results``: ``{scheme: {dataset: {task: {model: {"accuracy", "f1_paper"}}}}}``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--paper-results {str(p)!r} does not exist")
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"--paper-results {str(p)!r} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError(
            f"--paper-results {str(p)!r} holds a JSON {type(doc).__name__}; expected an object "
            "with 'source', 'protocol' and 'results' (see docs/paper_results_tac.json)"
        )
    missing = [k for k in ("source", "protocol", "results") if k not in doc]
    if missing:
        raise ValueError(
            f"--paper-results {str(p)!r} lacks the keys {missing}; expected an object with "
            "'source', 'protocol' and 'results' (see docs/paper_results_tac.json)"
        )
    return doc


def paper_comparison(results: Mapping[str, Any], paper: Mapping[str, Any]) -> dict[str, Any]:
    """Rows of our mean ± std beside the paper's numbers for the same dataset/task/model."""
    data = results.get("data", {})
    scheme = data.get("label_scheme") or "binary"
    datasets = list(data.get("datasets") or [])
    table = paper["results"].get(scheme, {})
    rows = []
    summary = results.get("summary") or {}
    for model in [m for m in _MODEL_ORDER if m in summary] + [
        m for m in summary if m not in _MODEL_ORDER
    ]:
        for task, entry in summary[model].items():
            ref = None
            for ds in datasets:
                ref = table.get(ds, {}).get(task, {}).get(model) or ref
            rows.append(
                {
                    "model": model,
                    "task": task,
                    "accuracy": entry["accuracy"]["mean"],
                    "accuracy_std": entry["accuracy"]["std"],
                    "f1_paper": entry["f1_paper"]["mean"],
                    "f1_paper_std": entry["f1_paper"]["std"],
                    "paper_accuracy": ref.get("accuracy") if ref else None,
                    "paper_f1": ref.get("f1_paper") if ref else None,
                }
            )
    ours = results["protocol"]["label"]
    return {
        "source": paper["source"],
        "paper_protocol": paper["protocol"],
        "our_protocol": ours,
        "comparable": results["protocol"]["name"] == paper.get("protocol_name"),
        "datasets": datasets,
        "label_scheme": scheme,
        "rows": rows,
    }


# -- plots ----------------------------------------------------------------------------------
def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def plot_learning_curves(run_dir: Path, out: Path) -> list[Path]:
    """Training loss per epoch of every pretrain / fine-tune run under ``run_dir``."""
    plt = _pyplot()
    groups: dict[str, list[tuple[str, list[dict]]]] = {}
    for f in sorted(run_dir.rglob("metrics.jsonl")):
        rel = f.parent.relative_to(run_dir)
        stage = "pretrain" if rel.name == "pretrain" else "finetune"
        rows = _read_jsonl(f)
        if rows:
            groups.setdefault(stage, []).append((str(rel), rows))
    paths = []
    for stage, runs in groups.items():
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, rows in runs:
            epochs = [r["epoch"] for r in rows]
            ax.plot(epochs, [r["train_loss"] for r in rows], marker=".", label=name, lw=1)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_title(f"learning curves: {stage}")
        if len(runs) <= 12:
            ax.legend(fontsize=6)
        fig.tight_layout()
        path = out / f"learning_curves_{stage}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)
    return paths


def plot_label_fraction(results: Mapping[str, Any], out: Path) -> list[Path]:
    """Accuracy (mean ± std over folds) vs labelled fraction, one panel per task."""
    plt = _pyplot()
    fs = results["fraction_summary"]
    fractions = [float(f) for f in fs]
    tasks: list[str] = []
    for per_model in fs.values():
        for entry in per_model.values():
            tasks += [t for t in entry if t not in tasks]
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.5 * len(tasks), 3.8), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        models = sorted({m for per_model in fs.values() for m in per_model})
        for model in models:
            pts = [
                (f * 100, fs[k][model][task]["accuracy"])
                for f, k in zip(fractions, fs, strict=True)
                if task in fs[k].get(model, {})
            ]
            if pts:
                x = [p[0] for p in pts]
                y = np.array([p[1]["mean"] for p in pts])
                e = np.array([p[1]["std"] for p in pts])
                ax.errorbar(x, y, yerr=e, marker="o", capsize=3, label=model)
        ax.set_xscale("log")
        ax.set_xticks([f * 100 for f in fractions], [f"{f * 100:g}" for f in fractions])
        ax.minorticks_off()
        ax.set_xlabel("labelled training windows (%)")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1.02)
        ax.set_title(task)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "label_fraction.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


def plot_confusion_matrices(results: Mapping[str, Any], out: Path) -> list[Path]:
    """Confusion matrices summed over folds, one image per model and task."""
    plt = _pyplot()
    classes = results["data"]["tasks"]
    paths = []
    for model, per_task in (results.get("summary") or {}).items():
        for task, entry in per_task.items():
            cm = np.asarray(entry["confusion_matrix"])
            names = classes.get(task, [str(i) for i in range(len(cm))])
            fig, ax = plt.subplots(figsize=(1.2 * len(cm) + 2.2, 1.1 * len(cm) + 1.8))
            ax.imshow(cm, cmap="Blues")
            for i in range(cm.shape[0]):
                for j in range(cm.shape[1]):
                    dark = cm[i, j] > cm.max() / 2
                    ax.text(
                        j,
                        i,
                        str(cm[i, j]),
                        ha="center",
                        va="center",
                        color="white" if dark else "black",
                    )
            ax.set_xticks(range(len(names)), names)
            ax.set_yticks(range(len(names)), names)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(f"{task}: {model}", fontsize=9)
            fig.tight_layout()
            path = out / f"confusion_{model}_{task}.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            paths.append(path)
    return paths


def plot_pretext(results: Mapping[str, Any], out: Path, paper: Mapping | None = None) -> list[Path]:
    """Held-out pretext accuracy per transformation (mean ± std), paper values beside."""
    plt = _pyplot()
    ps = results["pretext_summary"]
    names = [k for k in ps if k != "recognition_acc"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.bar(
        x - 0.2,
        [ps[n]["mean"] for n in names],
        0.4,
        yerr=[ps[n]["std"] for n in names],
        capsize=3,
        label="this run",
    )
    ref = (paper or {}).get("pretext") or {}
    if ref:
        ax.bar(x + 0.2, [ref.get(n, np.nan) for n in names], 0.4, label="paper")
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("binary accuracy (held-out)")
    ax.set_title("pretext accuracy per transformation")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out / "pretext.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]


# -- tables ---------------------------------------------------------------------------------
def _tables(results: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of every table in the report."""
    tables = []
    summary = results.get("summary")
    if summary:
        rows = []
        for model, per_task in summary.items():
            for task, e in per_task.items():
                rows.append(
                    [
                        task,
                        model,
                        _fmt(e, "accuracy"),
                        _fmt(e, "f1_paper"),
                        _fmt(e, "f1_macro_sklearn"),
                        str(e["n_folds"]),
                    ]
                )
        tables.append(
            (
                "Emotion recognition (mean ± std over folds)",
                [
                    "task",
                    "model",
                    "accuracy",
                    "F1 (paper: 2PR/(P+R))",
                    "macro-F1 (sklearn)",
                    "folds",
                ],
                rows,
            )
        )
    fs = results.get("fraction_summary")
    if fs:
        rows = []
        for frac, per_model in fs.items():
            for model, per_task in per_model.items():
                for task, e in per_task.items():
                    n_lab = results.get("n_labelled", {}).get(frac, [])
                    rows.append(
                        [
                            f"{float(frac) * 100:g} %",
                            str(int(np.mean(n_lab))) if n_lab else "–",
                            task,
                            model,
                            _fmt(e, "accuracy"),
                            _fmt(e, "f1_paper"),
                        ]
                    )
        tables.append(
            (
                "Accuracy vs labelled training windows",
                ["labelled", "windows (mean/fold)", "task", "model", "accuracy", "F1 (paper)"],
                rows,
            )
        )
    ps = results.get("pretext_summary")
    if ps:
        rows = [[name, f"{v['mean']:.3f} ± {v['std']:.3f}"] for name, v in ps.items()]
        tables.append(
            ("Pretext accuracy on held-out windows", ["transformation", "accuracy"], rows)
        )
    pc = results.get("paper_comparison")
    if pc:
        rows = []
        for r in pc["rows"]:
            pa = "–" if r["paper_accuracy"] is None else f"{r['paper_accuracy']:.3f}"
            pf = "–" if r["paper_f1"] is None else f"{r['paper_f1']:.3f}"
            rows.append(
                [
                    r["task"],
                    r["model"],
                    f"{r['accuracy']:.3f} ± {r['accuracy_std']:.3f}",
                    pa,
                    f"{r['f1_paper']:.3f} ± {r['f1_paper_std']:.3f}",
                    pf,
                ]
            )
        tables.append(
            (
                f"Beside the paper ({pc['source']})",
                ["task", "model", "accuracy (ours)", "accuracy (paper)", "F1 (ours)", "F1 (paper)"],
                rows,
            )
        )
    folds = results.get("folds") or []
    rows = [
        [
            str(f["fold"]),
            str(f["n_train"]),
            str(f["n_test"]),
            ", ".join(f["test_subjects"][:6]) + (" …" if len(f["test_subjects"]) > 6 else ""),
        ]
        for f in folds
    ]
    tables.append(("Folds", ["fold", "train windows", "test windows", "test subjects"], rows))
    return tables


def _header_lines(results: Mapping[str, Any]) -> list[str]:
    proto, data, enc = results["protocol"], results["data"], results["encoder"]
    lines = [
        f"Comparison: {results['kind']}",
        f"Protocol: {proto['label']}, {proto['n_folds']} folds, seed {proto['seed']}",
        f"Encoder: {enc['label']}",
        f"Data: {data.get('description') or ', '.join(data.get('datasets') or [])} — "
        f"{data['n_windows']} windows, {data['n_subjects']} subjects",
        f"Label scheme: {data.get('label_scheme')} ({data.get('label_scheme_description')})",
        f"WindowSet fingerprint: {data['fingerprint']}",
    ]
    if not proto["subject_independent"]:
        lines.append(
            "Warning: window-level (subject-dependent) protocol — neighbouring windows of one "
            "clip are in train and test; optimistic for a new user."
        )
    lines += [f"Artifact: {a}" for a in results.get("artifacts", [])]
    pc = results.get("paper_comparison")
    if pc and not pc["comparable"]:
        lines.append(
            f"Note: the paper's numbers were measured with {pc['paper_protocol']}; this run "
            f"used {pc['our_protocol']}, so they are not like-for-like."
        )
    return lines


def _markdown(results, tables, images) -> str:
    out = [f"# ecgaffect evaluation: {results['kind']}", ""]
    out += [f"- {line}" for line in _header_lines(results)] + [""]
    for title, header, rows in tables:
        out += [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        out.append("")
    if images:
        out += ["## Plots", ""]
        out += [f"![{p.stem}](plots/{p.name})" for p in images]
        out.append("")
    return "\n".join(out)


def _html(results, tables, images) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>ecgaffect evaluation: {esc(results['kind'])}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:left}th{background:#eee}img{max-width:100%}</style>",
        "</head><body>",
        f"<h1>ecgaffect evaluation: {esc(results['kind'])}</h1><ul>",
    ]
    parts += [f"<li>{esc(line)}</li>" for line in _header_lines(results)]
    parts.append("</ul>")
    for title, header, rows in tables:
        parts.append(f"<h2>{esc(title)}</h2><table><tr>")
        parts += [f"<th>{esc(h)}</th>" for h in header]
        parts.append("</tr>")
        for r in rows:
            parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>")
        parts.append("</table>")
    if images:
        parts.append("<h2>Plots</h2>")
    for p in images:
        b64 = base64.b64encode(p.read_bytes()).decode("ascii")
        parts.append(
            f"<h3>{esc(p.stem)}</h3><img alt='{esc(p.stem)}' src='data:image/png;base64,{b64}'>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _json_default_or_str(obj: Any) -> Any:
    try:
        return json_default(obj)
    except TypeError:
        return str(obj)


def write_report(
    out_dir: str | Path,
    results: dict[str, Any],
    config: Mapping[str, Any],
    *,
    paper: Mapping[str, Any] | None = None,
    extra: Sequence[str] = (),
) -> dict[str, Path]:
    """Write ``results.json``, ``config.json``, ``plots/*.png``, ``report.md``, ``report.html``.

    Args:
        out_dir: the evaluation's run directory (its ``metrics.jsonl`` files feed the learning
            curves).
        results: a results dict from :mod:`ecgaffect.model.evaluate` (not modified; the
            written ``results.json`` adds ``paper_comparison`` and ``artifacts``).
        config: the run's configuration (``EvalConfig.to_dict()`` plus command-line options).
        paper: paper numbers (:func:`load_paper_results`) to set beside ours.
        extra: more lines for the report header (e.g. exported model paths).

    Returns the written paths by name.
    """
    out = Path(out_dir)
    missing = [k for k in RESULT_KEYS if k not in results]
    if missing:
        raise ValueError(f"results lack the keys {missing}; not an evaluation results dict")
    results = dict(results)  # the additions below stay out of the caller's dict
    if extra:
        results["artifacts"] = list(extra)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    if paper is not None:
        results["paper_comparison"] = paper_comparison(results, paper)
    cfg = {
        **dict(config),
        "kind": results["kind"],
        "protocol": results["protocol"],
        "encoder": results["encoder"],
        "data": results["data"],
        "environment": environment_info(),
    }
    paths = {
        "results": out / "results.json",
        "config": out / "config.json",
    }
    paths["results"].write_text(json.dumps(results, indent=2, default=json_default))
    paths["config"].write_text(json.dumps(cfg, indent=2, default=_json_default_or_str))
    images = plot_learning_curves(out, plots)
    if results.get("fraction_summary"):
        images += plot_label_fraction(results, plots)
    if results.get("summary"):
        images += plot_confusion_matrices(results, plots)
    if results.get("pretext_summary"):
        images += plot_pretext(results, plots, paper)
    tables = _tables(results)
    md = _markdown(results, tables, images)
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text(md)
    paths["html"] = out / "report.html"
    paths["html"].write_text(_html(results, tables, images))
    for p in images:
        paths[f"plot:{p.stem}"] = p
    log.info("report written to %s", paths["html"])
    return paths
