"""Small helpers shared by the LSL source and the LSL outlets/marker inlet."""

from __future__ import annotations

__all__ = ["quote_query_value"]


def quote_query_value(value: str) -> str:
    """``value`` quoted for an LSL resolve predicate (``name='...'``).

    LSL predicates (XPath 1.0) have no escape for the quote character, so a value containing
    a single quote cannot be matched exactly: it is rejected with ValueError.
    """
    if "'" in value:
        raise ValueError(f"LSL query values cannot contain a single quote, got {value!r}")
    return f"'{value}'"
