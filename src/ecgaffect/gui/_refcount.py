"""Work around PySide6 releasing references to ``None``/``True`` it never took (CPython < 3.12).

With PySide6/shiboken6 6.12 on CPython 3.11, every call of a wrapped C++ method that returns
``void`` (``QPainter.setPen``, ``QLabel.setText``, ``QApplication.processEvents``...) returns
``None`` without taking a reference to it, and some ``bool`` returns do the same for
``True``. Each call therefore lowers ``sys.getrefcount(None)`` by one. A window that draws at
30 frames per second makes thousands of such calls per second; after about half a minute the
count falls below the references the interpreter still holds, and when those are released
(at the latest during interpreter finalisation) CPython aborts with
``Fatal Python error: none_dealloc`` (exit 134). Python 3.12 made these singletons immortal
(their count is never decremented), so the bug is harmless there.

:func:`install` detects the bug (a void call must not change the count) and, only when it is
present, raises the counts of ``None``, ``True`` and ``False`` by ``2**40``: the same effect
as 3.12's immortal objects, at the observed rate (a few thousand lost references a second)
good for centuries. Nothing is ever freed by this; these objects are never freed anyway.
The real fix is upstream (a PySide6 release without the bug, or Python >= 3.12).
"""

from __future__ import annotations

import ctypes
import logging
import sys

__all__ = ["BOOST", "install", "pyside_drops_none_refs"]

log = logging.getLogger(__name__)

#: How much :func:`install` raises the reference counts by.
BOOST = 2**40

_installed = False


def pyside_drops_none_refs(calls: int = 256) -> bool:
    """True when a void PySide6 call lowers ``None``'s reference count (the bug above)."""
    from PySide6 import QtCore

    obj = QtCore.QObject()
    before = sys.getrefcount(None)
    for _ in range(calls):
        obj.setObjectName("probe")
    lost = before - sys.getrefcount(None)
    # unrelated frees in between could lower the count a little, but not by `calls`
    return lost >= calls // 2


def install() -> bool:
    """Apply the work-around if this interpreter and PySide6 need it; True when applied.

    Idempotent. Does nothing on CPython >= 3.12 (immortal singletons) and on debug builds
    (where the reference count is not the first field of an object).
    """
    global _installed
    if _installed:
        return True
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    if hasattr(sys, "gettotalrefcount"):  # debug build: object header differs
        return False
    if not pyside_drops_none_refs():
        return False
    for obj in (None, True, False):
        before = sys.getrefcount(obj)
        ctypes.c_ssize_t.from_address(id(obj)).value += BOOST
        if sys.getrefcount(obj) - before < BOOST // 2:  # layout not as expected: undo
            ctypes.c_ssize_t.from_address(id(obj)).value -= BOOST
            log.warning("could not apply the PySide6 reference-count work-around")
            return False
    _installed = True
    log.debug(
        "PySide6 releases references to None it does not own (CPython %d.%d); "
        "raised the counts of None/True/False by 2**40 to keep them alive",
        *sys.version_info[:2],
    )
    return True
