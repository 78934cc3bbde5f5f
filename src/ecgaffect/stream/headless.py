"""A live run without a window: open the source, score, print, stop cleanly.

:func:`run_headless` is what ``ecgaffect live`` does once it has a scorer and a source.
"""

from __future__ import annotations

import logging
import signal as signal_module
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from ecgaffect.stream import factories
from ecgaffect.stream.pipeline import PipelineState

__all__ = ["run_headless"]

log = logging.getLogger(__name__)


def run_headless(
    scorer: Any,
    source: Any,
    out: TextIO,
    *,
    hop_s: float,
    duration_s: float | None = None,
    record: Path | None = None,
    outlet: bool = True,
    outlet_name: str = "ecgaffect-affect",
    publish_ecg: str | None = None,
    markers: str | None = None,
) -> int:
    """Score ``source`` until it ends, ``duration_s`` passes, Ctrl-C or SIGTERM.

    Returns the exit status: 0, or 1 when a recording could not write every sample.

    Opens ``source``, builds the sinks (:func:`~ecgaffect.stream.factories.make_sinks`) and
    the pipeline (:func:`~ecgaffect.stream.factories.make_pipeline`); ``markers`` (not None)
    receives LSL text markers from the stream of that name (``""``: any). Everything opened
    here (source, recorder, outlets, marker inlet) is closed on the way out, whatever ends
    the run, so a recording always gets its footers. Prints a summary line to ``out``
    (and the recorder's, which says what did not reach the file).

    Returns:
        0, or 1 when the recording misses samples (a full disk).

    Raises:
        RuntimeError: the pipeline failed.
    """
    source.open()  # the source's rate (LSL: from the stream) is needed by the sinks
    try:
        sinks = factories.make_sinks(
            scorer,
            source,
            out,
            record=record,
            outlet=outlet,
            outlet_name=outlet_name,
            publish_ecg=publish_ecg,
        )
    except BaseException:
        source.close()
        raise
    try:
        pipeline = factories.make_pipeline(source, scorer, hop_s=hop_s, sinks=sinks)
    except BaseException:
        source.close()
        for sink in sinks:
            sink.close()
        raise

    stop = threading.Event()
    restore = None
    if threading.current_thread() is threading.main_thread():
        restore = signal_module.signal(signal_module.SIGTERM, lambda *_: stop.set())
    t_end = None if duration_s is None else time.monotonic() + duration_s
    inlet = None
    interrupted = False
    try:
        with pipeline:
            if markers is not None:
                inlet = factories.make_marker_inlet(pipeline, markers)
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
    from ecgaffect.stream.recorder import XdfRecorder

    recorders = [s for s in sinks if isinstance(s, XdfRecorder)]
    not_written = sum(rec.samples_lost for rec in recorders)
    c = pipeline.counters
    print(
        f"live: {'interrupted' if interrupted else pipeline.state.value}; "
        f"{c.samples_in} samples, {c.windows_scored} windows scored, "
        f"{c.windows_skipped_calibrating} skipped while calibrating, "
        f"{c.windows_dropped} dropped, {c.gaps} gaps, {c.samples_lost} samples lost"
        + (f"; {not_written} samples NOT WRITTEN to the recording" if not_written else ""),
        file=out,
        flush=True,
    )
    for note in pipeline.notes():
        print(f"live: {note}", file=out, flush=True)
    for rec in recorders:
        print(rec.summary(), file=out, flush=True)
    if pipeline.state is PipelineState.FAILED:
        raise RuntimeError(f"live pipeline failed: {pipeline.error}")
    if not_written:
        return 1  # the recording misses data (full disk): say so in the exit status
    return 0
