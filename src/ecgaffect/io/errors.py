"""The errors every file reader of :mod:`ecgaffect.io` raises.

All of them are :class:`FileFormatError`, a :class:`~ecgaffect.datasets.base.DatasetError`
(hence a :class:`ValueError`) whose message starts with the file's path and says what was
expected. Callers that skip bad files catch :class:`FileFormatError` (or ``ValueError``);
nothing a reader raises on a damaged file is a bare ``struct.error``, ``zipfile.BadZipFile``,
``MemoryError`` or the like.
"""

from __future__ import annotations

from ecgaffect.datasets.base import DatasetError

__all__ = ["FileFormatError", "FileSizeLimitError", "NonFiniteSamplesError"]


class FileFormatError(DatasetError):
    """A file is not what its reader expects; the message names the file and why.

    ``FileFormatError(path, message)``: ``str(exc)`` is ``"<path>: <message>"``.
    """


class FileSizeLimitError(FileFormatError):
    """A size read from a file (a channel count, a sample count, an array shape, the
    decompressed size) is larger than the file can hold or than the reader's limit.
    """


class NonFiniteSamplesError(FileFormatError):
    """The samples a reader would return contain NaN or infinite values."""
