"""HTML pages the services answer with (the client's confirmation page, e-mail previews):
the headers that keep them from running script, being framed or leaking their address.

Every value in such a page is escaped by its template (Jinja2 autoescape); the
Content-Security-Policy is the second line: no script, no plugin, no frame, no external
resource at all, styles only inline (the pages carry their own `<style>`), forms only to
where the page came from.
"""
from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi.responses import HTMLResponse

DESIGN_CSS = Path(__file__).with_name("design.css")


@cache
def design_css() -> str:
    """Kontor's stylesheet (design.css), for a page's inline `<style>`: the portal and the client's
    confirmation page look the same (trusted text: insert it unescaped, e.g. `{{ design_css() | safe }}`)."""
    return DESIGN_CSS.read_text(encoding="utf-8")


def content_security_policy(*, forms: bool = False) -> str:
    """`forms`: the page posts a form to its own origin (else no form may be sent anywhere)."""
    return "; ".join((
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'" if forms else "form-action 'none'",
    ))


def security_headers(*, forms: bool = False) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(forms=forms),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }


def html_page(html: str, *, status_code: int = 200, forms: bool = False) -> HTMLResponse:
    """An HTML answer with the security headers (`forms`: see `content_security_policy`)."""
    return HTMLResponse(html, status_code=status_code, headers=security_headers(forms=forms))
