"""Dataset loaders: everything becomes a :class:`~ecgaffect.datasets.session.Session`.

Loaders never import :mod:`ecgaffect.stream` or :mod:`ecgaffect.gui`.
"""

from ecgaffect.datasets.session import Event, LabelScheme, Segment, Session, get_scheme

__all__ = ["Event", "LabelScheme", "Segment", "Session", "get_scheme"]
