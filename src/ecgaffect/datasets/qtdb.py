"""PhysioNet QT Database 1.0.0 (Laguna et al. 1997): 105 two-lead records x 15 min, 250 Hz.

Unlabelled sessions for self-supervised pretraining, read by
:mod:`ecgaffect.datasets.physionet_wfdb` (both leads as separate sessions by default,
``lead=`` picks one; gain-0 headers noted and the DC offset removed per session). Point
``root`` at the folder with ``selNNNN.hea`` / ``selNNNN.dat`` (annotation files are ignored).
Licence ODC-By 1.0; cite Laguna P, Mark RG, Goldberger AL, Moody GB, Computers in Cardiology
24:673-676, 1997, and PhysioNet (Goldberger et al., Circulation 2000).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ecgaffect.datasets.base import LoadReport
from ecgaffect.datasets.physionet_wfdb import load_wfdb_sessions
from ecgaffect.datasets.physionet_wfdb import source_files as _source_files
from ecgaffect.datasets.session import Session

__all__ = ["DATASET", "load_sessions", "source_files"]

DATASET = "qtdb"


def source_files(root: str | Path, **options: Any) -> list[Path]:
    return _source_files(root, **options)


def load_sessions(
    root: str | Path,
    *,
    skip_bad: bool = False,
    report: LoadReport | None = None,
    lead: str | int = "all",
    records: list[str] | None = None,
    remove_dc: bool = True,
    max_gap_s: float = 1.0,
    progress: bool = False,
) -> list[Session]:
    """Every QTDB record as unlabelled sessions; see :func:`load_wfdb_sessions`."""
    return load_wfdb_sessions(
        DATASET,
        root,
        skip_bad=skip_bad,
        report=report,
        lead=lead,
        records=records,
        remove_dc=remove_dc,
        max_gap_s=max_gap_s,
        progress=progress,
    )
