"""ECG sources that all look the same to the pipeline (see :mod:`.base`)."""

from ecgaffect.stream.sources.base import (
    EcgChunk,
    HeartRate,
    Marker,
    Source,
    SourceError,
    SourceState,
    SourceStatus,
)

__all__ = [
    "EcgChunk",
    "HeartRate",
    "Marker",
    "Source",
    "SourceError",
    "SourceState",
    "SourceStatus",
]
