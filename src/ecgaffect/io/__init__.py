"""File formats: every reader and writer of a file format lives here, once.

XDF (reader and the one writer), TMSi Poly5, EDF/EDF+, WFDB, unit names, and the single
path -> Session function used by the CLI, the GUI and the replay source. Every reader raises
:class:`FileFormatError` (a ``ValueError``) naming the file on a damaged or unexpected file.
"""

from ecgaffect.io.errors import FileFormatError, FileSizeLimitError, NonFiniteSamplesError
from ecgaffect.io.paths import SUPPORTED_SUFFIXES, load_session

__all__ = [
    "SUPPORTED_SUFFIXES",
    "FileFormatError",
    "FileSizeLimitError",
    "NonFiniteSamplesError",
    "load_session",
]
