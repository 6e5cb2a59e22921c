"""What the WeasyPrint speed-ups (style_cache, pango_cache, font_cache) share: the versions of WeasyPrint
and pydyf their copies of WeasyPrint's code were written for (`WRITTEN_FOR`, the one place they are
recorded), the guard that installs them only for those versions, and the scope in which they act."""
from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator

import pydyf
import weasyprint

log = logging.getLogger(__name__)

# The versions the copies of WeasyPrint's code (and font_cache's use of pydyf's streams) were written for.
# services/invoicing/pyproject.toml pins exactly these (tests/test_speedups.py checks that it does).
WRITTEN_FOR = {"weasyprint": "70.0", "pydyf": "0.13.0"}
COPIED_FROM = WRITTEN_FOR["weasyprint"]

# speed-ups whose install() declined for a reason other than the versions (e.g. a C struct of another size)
_declined: dict[str, str] = {}


def installed_versions() -> dict[str, str]:
    """The versions of WeasyPrint and pydyf this process has imported."""
    return {"weasyprint": weasyprint.__version__, "pydyf": pydyf.__version__}


def version_mismatch() -> str | None:
    """Why the installed versions are not the ones the copies were written for; None if they are."""
    installed = installed_versions()
    differing = [f"{name} {installed[name]} installed, written for {written}"
                 for name, written in WRITTEN_FOR.items() if installed[name] != written]
    return "; ".join(differing) or None


def written_for_this_weasyprint(what: str) -> bool:
    """True for the WeasyPrint and pydyf versions the copies were written for; else a warning, and
    WeasyPrint's own code."""
    reason = version_mismatch()
    if reason is None:
        return True
    log.warning("%s not installed: %s", what, reason)
    return False


def decline(what: str, reason: str) -> bool:
    """An install() that does not patch for a reason of its own: logged, reported by `status()`; False."""
    _declined[what] = reason
    log.warning("%s not installed: %s", what, reason)
    return False


def declined() -> dict[str, str]:
    """The speed-ups that declined to install for a reason other than the versions, with the reason."""
    return dict(_declined)


@contextlib.contextmanager
def scope(variable: contextvars.ContextVar, value) -> Iterator[None]:
    """`variable` is `value` inside the block (per thread and task), as it was after it."""
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)
