"""Writers of small fake AMIGOS / DREAMER / WESAD copies in the official file layouts.

They produce the same containers, variable names and cell/struct nesting as the published
files (MATLAB cells as numpy object arrays, structs as structured arrays, a Python-2-style
latin1 pickle for WESAD), but with short synthetic ECG so tests stay fast. End-to-end tests
(pretrain -> finetune -> evaluate per dataset) can reuse them.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import scipy.io

from ecg_fixtures import synthetic_ecg_uv

AMIGOS_RATINGS = 12


def cell(items) -> np.ndarray:
    """A MATLAB 1 x n cell array."""
    out = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        out[0, i] = item
    return out


# ------------------------------------------------------------------------------- AMIGOS


def amigos_ratings(subject_index: int, trial: int) -> np.ndarray:
    """The 1 x 12 self-assessment row written for (subject, 0-based trial)."""
    arousal = 1.0 + (trial * 3 + subject_index) % 9
    valence = 1.0 + (trial * 5 + 2 * subject_index + 4) % 9
    dominance = 1.0 + (trial + subject_index) % 9
    basic = [(trial + k) % 2 for k in range(7)]
    return np.array([[arousal, valence, dominance, 5.0, 3.0, *basic]], dtype=np.float64)


def write_amigos(
    root: Path,
    subjects=(1, 2),
    *,
    short_s: float = 16.0,
    long_s: float = 24.0,
    empty: tuple[tuple[int, int], ...] = (),
    all_nan: tuple[tuple[int, int], ...] = (),
    nan_gap: tuple[tuple[int, int, float], ...] = (),
    no_long_videos: tuple[int, ...] = (),
    no_long_ratings: tuple[int, ...] = (),
    original: bool = False,
    original_order: list[int] | None = None,
) -> dict[str, Path]:
    """Write ``Data_Preprocessed_Pxx.mat`` (and ``Data_Original_Pxx.mat``) per subject.

    Trials are 1-based in the ``empty`` / ``all_nan`` / ``nan_gap`` tuples; ``nan_gap`` is
    ``(subject, trial, gap_s)`` and puts a NaN gap of that length in the middle of the ECG.
    ``original_order`` (0-based trial indices) writes the original file's trials, and its
    ``VideoIDs``, in that order instead of the preprocessed file's.
    Lead II (column 15) carries ``synthetic_ecg_uv(seed=100*s+t)``; lead III is its negation
    plus 7, so tests can tell the columns apart.
    """
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for s in subjects:
        joined, labels, original_ecg = [], [], []
        for t in range(20):
            dur = short_s if t < 16 else long_s
            ecg = synthetic_ecg_uv(dur, 128.0, seed=100 * s + t)
            data = np.zeros((ecg.size, 17))
            data[:, 14], data[:, 15], data[:, 16] = ecg, -ecg + 7.0, 3.0
            ecg256 = synthetic_ecg_uv(dur, 256.0, seed=100 * s + t)
            orig = np.column_stack([np.arange(ecg256.size) / 256.0, ecg256, -ecg256 + 7.0])
            rating = amigos_ratings(s, t)
            if (s, t + 1) in empty or (t >= 16 and s in no_long_videos):
                data, orig = np.zeros((0, 0)), np.zeros((0, 0))
                if s in no_long_videos:
                    rating = np.zeros((0, 0))
            if (s, t + 1) in all_nan:
                data[:, 14:16] = np.nan
                orig[:, 1:] = np.nan
            for gs, gt, gap_s in nan_gap:
                if (gs, gt) == (s, t + 1):
                    mid, n = data.shape[0] // 2, round(gap_s * 128)
                    data[mid : mid + n, 14:16] = np.nan
            if t >= 16 and s in no_long_ratings:
                rating = np.full((1, AMIGOS_RATINGS), np.nan)
            joined.append(data)
            labels.append(rating)
            original_ecg.append(orig)
        video_ids = cell([f"{(t * 7 + 3) % 40 + 1}" for t in range(20)])
        path = root / f"Data_Preprocessed_P{s:02d}" / f"Data_Preprocessed_P{s:02d}.mat"
        path.parent.mkdir(exist_ok=True)
        scipy.io.savemat(
            path,
            {
                "joined_data": cell(joined),
                "labels_selfassessment": cell(labels),
                "labels_ext_annotation": cell([np.zeros((3, 3))] * 20),
                "VideoIDs": video_ids,
            },
            do_compression=True,
        )
        files[f"P{s:02d}"] = path
        if original:
            opath = root / f"Data_Original_P{s:02d}.mat"
            order = original_order if original_order is not None else list(range(20))
            scipy.io.savemat(
                opath,
                {
                    "ECG_DATA": cell([original_ecg[i] for i in order]),
                    "VideoIDs": cell([video_ids[0, i] for i in order]),
                },
                do_compression=True,
            )
            files[f"P{s:02d}_original"] = opath
    return files


def truncate(path: Path, fraction: float = 0.5) -> None:
    """Cut a file to a fraction of its size (a broken download)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])


# ------------------------------------------------------------------------------ DREAMER


def dreamer_scores(subject_index: int, n_clips: int, offset: int) -> np.ndarray:
    """18 x 1 ratings on 1-5 written for a subject (``offset`` differs per rating kind)."""
    return (1.0 + (np.arange(n_clips) + subject_index + offset) % 5).reshape(-1, 1)


def _struct(**fields) -> np.ndarray:
    """A MATLAB 1 x 1 struct."""
    out = np.empty((1, 1), dtype=[(k, object) for k in fields])
    for k, v in fields.items():
        out[0, 0][k] = v
    return out


def _col_cell(items) -> np.ndarray:
    out = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        out[i, 0] = item
    return out


def write_dreamer(
    root: Path,
    *,
    n_subjects: int = 3,
    n_clips: int = 18,
    stimulus_s: float = 12.0,
    baseline_s: float = 11.0,
    empty: tuple[tuple[int, int], ...] = (),
    all_nan: tuple[tuple[int, int], ...] = (),
    broken_subject: int | None = None,
) -> Path:
    """Write ``root/DREAMER.mat`` with the official struct nesting.

    Column 0 of ``stimuli{t}`` is ``synthetic_ecg_uv(seed=1000*s+t)`` (1-based s and t), column
    1 its negation. ``empty`` / ``all_nan`` name (subject, clip), 1-based. ``broken_subject``
    gets a ScoreValence of the wrong length.
    """
    root.mkdir(parents=True, exist_ok=True)
    # Data is a 1 x 23 cell of 1 x 1 structs: the widely used indexing
    # m["DREAMER"][0, 0]["Data"][0, s]["ECG"][0, 0]["stimuli"][0, 0][t, 0] relies on it.
    subjects = []
    for s in range(1, n_subjects + 1):
        stimuli, baseline = [], []
        for t in range(1, n_clips + 1):
            x = synthetic_ecg_uv(stimulus_s, 256.0, seed=1000 * s + t)
            stim = np.column_stack([x, -x])
            if (s, t) in empty:
                stim = np.zeros((0, 0))
            if (s, t) in all_nan:
                stim[:] = np.nan
            stimuli.append(stim)
            b = synthetic_ecg_uv(baseline_s, 256.0, seed=5000 * s + t)
            baseline.append(np.column_stack([b, -b]))
        valence = dreamer_scores(s, n_clips, 0)
        if broken_subject == s:
            valence = valence[:-2]
        subjects.append(
            _struct(
                Age=np.array([[25.0]]),
                Gender="male",
                EEG=_struct(baseline=_col_cell([np.zeros((2, 14))] * n_clips)),
                ECG=_struct(stimuli=_col_cell(stimuli), baseline=_col_cell(baseline)),
                ScoreValence=valence,
                ScoreArousal=dreamer_scores(s, n_clips, 1),
                ScoreDominance=dreamer_scores(s, n_clips, 2),
            )
        )
    data = cell(subjects)
    top = _struct(
        Data=data,
        EEG_SamplingRate=np.array([[128.0]]),
        ECG_SamplingRate=np.array([[256.0]]),
        EEG_Electrodes=cell(["AF3", "F7"]),
        noOfSubjects=np.array([[float(n_subjects)]]),
        noOfVideoSequences=np.array([[float(n_clips)]]),
        Disclaimer="synthetic test fixture",
        Provider="ecgaffect tests",
        Version="1.0.2",
        Acknowledgement="",
    )
    path = root / "DREAMER.mat"
    scipy.io.savemat(path, {"DREAMER": top}, do_compression=True)
    return path


# -------------------------------------------------------------------------------- WESAD

#: (label code, seconds) runs written for every subject: two labelled runs are separated by
#: undefined (0) or ignored (6) codes, and stress follows baseline directly.
WESAD_RUNS = ((0, 3.0), (1, 12.0), (2, 12.0), (0, 2.0), (3, 11.0), (6, 2.0), (4, 11.0), (0, 1.0))


def wesad_labels(fs_hz: float = 700.0) -> np.ndarray:
    return np.concatenate(
        [np.full(round(d * fs_hz), code, dtype=np.int32) for code, d in WESAD_RUNS]
    )


def write_wesad(
    root: Path,
    subjects=(2, 3),
    *,
    bytes_keys: bool = True,
    numpy1_names: bool = True,
    label_mismatch: int | None = None,
    quest: bool = True,
) -> dict[str, Path]:
    """Write ``root/WESAD/SX/SX.pkl`` (protocol 2, like the Python-2 originals).

    The chest ECG is ``synthetic_ecg_uv(seed=s)/1000`` in mV with the labels of
    :func:`wesad_labels`. ``bytes_keys`` stores the wrist dict keys as bytes (as a Python-2
    ``str`` read without an encoding would be); ``numpy1_names`` rewrites the numpy module
    name to ``numpy.core.multiarray`` as in pickles made by numpy < 2. ``label_mismatch``
    names a subject whose label array is one sample short.
    """
    base = root / "WESAD"
    files = {}
    label = wesad_labels()
    duration_s = label.size / 700.0
    for s in subjects:
        sub = base / f"S{s}"
        sub.mkdir(parents=True, exist_ok=True)
        ecg = (synthetic_ecg_uv(duration_s, 700.0, seed=s) / 1000.0).reshape(-1, 1)
        wrist = {"BVP": np.zeros((4, 1)), "EDA": np.zeros((2, 1))}
        if bytes_keys:
            wrist = {k.encode("latin1"): v for k, v in wrist.items()}
        lab = label[:-1] if label_mismatch == s else label
        data = {
            "signal": {
                "chest": {
                    "ACC": np.zeros((ecg.shape[0], 3)),
                    "ECG": ecg,
                    "EMG": np.zeros_like(ecg),
                    "EDA": np.zeros_like(ecg),
                    "Temp": np.zeros_like(ecg),
                    "Resp": np.zeros_like(ecg),
                },
                "wrist": wrist,
            },
            "label": lab,
            "subject": f"S{s}",
        }
        raw = pickle.dumps(data, protocol=2)
        if numpy1_names:
            raw = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        path = sub / f"S{s}.pkl"
        path.write_bytes(raw)
        if quest:
            (sub / f"S{s}_quest.csv").write_text(f"# Subj;S{s}\n# ORDER;Base;TSST;Medi 1\n")
        files[f"S{s}"] = path
    return files
