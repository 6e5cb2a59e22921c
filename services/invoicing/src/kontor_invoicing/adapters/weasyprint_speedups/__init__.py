"""Speed-ups for WeasyPrint 70: patches of its internals that the invoice renderer (`adapters/pdf.py`) uses.

Profiled (bench/render_invoices.py), WeasyPrint redoes per document what is the same in every invoice.
Each module here keeps that from one invoice to the next, by replacing a few WeasyPrint functions with
copies of WeasyPrint 70's code that differ only in where their result comes from:

- `style_cache`: computed styles, keyed by an element's declarations and its parent's style
  (wraps `weasyprint.css.StyleFor.set_computed_styles` and line layout's `strut`);
- `pango_cache`: Pango contexts and font descriptions, a text's layout kept from laying out to drawing,
  and plain lines drawn from glyph records read in one go (`Layout.setup`, `deactivate`, `reactivate`,
  `weasyprint.draw.text.draw_first_line`);
- `font_cache`: each font read once, subset once to a fixed repertoire and compressed once
  (`weasyprint.pdf.fonts.Font.clean`, `Stream.add_font`, and pydyf's font streams in the finisher);
- `patching`: what they share: the versions they were written for (`WRITTEN_FOR`), the version guard
  (`written_for_this_weasyprint`) and the scope in which they act.

Each acts only inside its `active()` block, so other WeasyPrint documents in the process are untouched.

Why version-guarded: WeasyPrint has no hooks for any of this, so the copies are of private code that
can change in any release. Each `install()` therefore patches only when the installed WeasyPrint and
pydyf are exactly the versions in `WRITTEN_FOR` (services/invoicing/pyproject.toml pins them); with any
other version it leaves WeasyPrint alone and logs a warning: invoices are then rendered by WeasyPrint's
own code, the same pages, only slower, until the copies are brought up to date.

`status()` says whether the speed-ups are active (the service's `/readyz` shows it under "details");
`log_status(logger)` logs it once at start: info when active, a warning when not.

This package imports only `patching` itself, so `status()` works even where another WeasyPrint version
no longer has what the three modules import.
"""
from __future__ import annotations

from typing import Any

from kontor.logging import get_logger
from kontor_invoicing.adapters.weasyprint_speedups.patching import (
    WRITTEN_FOR,
    declined,
    installed_versions,
    version_mismatch,
)

__all__ = ["WRITTEN_FOR", "log_status", "status"]


def status() -> dict[str, Any]:
    """Whether the speed-ups are active, i.e. whether `InvoicePdf(seller)` renders with them:

    {"active": bool, "written_for": {"weasyprint": ..., "pydyf": ...}, "installed": {...}, "reason": str}

    Inactive when the installed WeasyPrint or pydyf is not the version they were written for, or when an
    `install()` declined for a reason of its own; `reason` says which.
    """
    mismatch = version_mismatch()
    reasons = [mismatch] if mismatch else []
    reasons += [f"{what}: {reason}" for what, reason in declined().items()]
    active = not reasons
    return {
        "active": active,
        "written_for": dict(WRITTEN_FOR),
        "installed": installed_versions(),
        "reason": "; ".join(reasons) if reasons else "installed versions are the ones the speed-ups were written for",
    }


def log_status(logger=None) -> dict[str, Any]:
    """Logs `status()` (structured): info when the speed-ups are active, a warning when not; returns it."""
    logger = logger if logger is not None else get_logger(__name__)
    current = status()
    fields = {"written_for": current["written_for"], "installed": current["installed"], "reason": current["reason"]}
    if current["active"]:
        logger.info("weasyprint speed-ups active", **fields)
    else:
        logger.warning("weasyprint speed-ups off: invoices render with WeasyPrint's own code, slower", **fields)
    return current
