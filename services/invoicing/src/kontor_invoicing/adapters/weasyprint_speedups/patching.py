"""What the WeasyPrint speed-ups (style_cache, pango_cache, font_cache) share: the one WeasyPrint version
their copies of its code were written for, and the scope in which they act."""
from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

import weasyprint

log = logging.getLogger(__name__)

COPIED_FROM = "70.0"


def written_for_this_weasyprint(what: str) -> bool:
    """True for the WeasyPrint version the copies were written for; else a warning, and WeasyPrint's own code."""
    if weasyprint.__version__ == COPIED_FROM:
        return True
    log.warning("%s not installed: written for WeasyPrint %s, found %s", what, COPIED_FROM, weasyprint.__version__)
    return False


@contextlib.contextmanager
def scope(variable: contextvars.ContextVar, value) -> Iterator[None]:
    """`variable` is `value` inside the block (per thread and task), as it was after it."""
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)
