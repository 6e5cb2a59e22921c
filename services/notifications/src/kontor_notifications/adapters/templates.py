"""Rendering an e-mail from its Jinja2 template: subject, plain text and HTML, in one language.

Each template `templates/emails/<name>.<language>.j2` defines three blocks: `subject`,
`text` and `html` (the HTML block escapes, the text block does not); `m` holds the macros
of `_macros.j2`. The HTML body is
wrapped in `templates/_layout.html`.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from kontor.clock import BERLIN
from kontor.money import format_money

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"
ENV = Environment(loader=FileSystemLoader([TEMPLATES_DIR / "emails", TEMPLATES_DIR]), trim_blocks=True,
                  lstrip_blocks=True, autoescape=select_autoescape(["html"]), keep_trailing_newline=False,
                  undefined=StrictUndefined)
TEMPLATE_NAMES = tuple(sorted({p.name.split(".")[0] for p in (TEMPLATES_DIR / "emails").glob("*.j2")
                               if not p.name.startswith("_")}))


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def _helpers(language: str) -> dict:
    de = language == "de"

    def money(amount, currency: str) -> str:
        return "" if amount is None else format_money(Decimal(str(amount)), currency, language)

    def date(value) -> str:
        if not value:
            return ""
        d = value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        return d.strftime("%d.%m.%Y" if de else "%d %B %Y")

    def datetime(value) -> str:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        local = moment.astimezone(BERLIN)
        return local.strftime("%d.%m.%Y, %H:%M Uhr" if de else "%d %B %Y, %H:%M (Berlin time)")

    def qty(value) -> str:
        text = f"{Decimal(str(value)).normalize():f}"
        return text.replace(".", ",") if de else text

    return {"money": money, "date": date, "datetime": datetime, "qty": qty, "language": language, "de": de}


def render(template: str, language: str, context: dict) -> Rendered:
    """Raises jinja2 errors for a missing template or a value the template needs but the event lacks."""
    tpl = ENV.get_template(f"{template}.{language}.j2")
    helpers = _helpers(language)
    # blocks are rendered one by one, so the shared macros come in through the context
    macros = ENV.get_template("_macros.j2").make_module(helpers)
    ctx = tpl.new_context({**context, **helpers, "m": macros})
    subject = " ".join("".join(tpl.blocks["subject"](ctx)).split())
    text = "".join(tpl.blocks["text"](ctx)).strip() + "\n"
    body = "".join(tpl.blocks["html"](ctx)).strip()
    # the html block's output is markup already: its autoescaping template escaped every value in it
    html = ENV.get_template("_layout.html").render(language=language, subject=subject,
                                                   body=Markup(body))  # noqa: S704
    return Rendered(subject, text, html)
