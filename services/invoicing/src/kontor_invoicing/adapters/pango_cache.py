"""Pango contexts and font descriptions shared between WeasyPrint's text layouts (a speed-up).

WeasyPrint builds a new Pango context and a new font description for every piece of text it lays
out and again for every piece it draws: twice per line of an invoice, about 15 % of a one-page
render (profiled with py-spy, bench/render_invoices.py). Both depend only on a few style values
(font map, direction, language; family, style, stretch, weight, size, caps, variations), so this
module keeps them, keyed by those values and per thread (Pango objects are not shared between
threads). A layout made from a shared context is the same as one made from a fresh context with
the same settings: the rendered pages are byte for byte the same (tests/test_pdf.py checks it).

Scope: only text laid out inside `active()` uses the caches; every other WeasyPrint document in the
process (the benchmark's "WeasyPrint default") goes through WeasyPrint's own code.

`install()` replaces `weasyprint.text.line_break.Layout.setup` with a copy of WeasyPrint 70's that
differs only in where the context and the font description come from. WeasyPrint has no hook for
this; for any other WeasyPrint version `install()` leaves it alone and logs a warning, so an
upgrade is never silently wrong, only slower until this copy is brought up to date.
"""
from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections.abc import Iterator

import weasyprint
from weasyprint.text import line_break
from weasyprint.text.constants import LST_TO_ISO, PANGO_DIRECTION
from weasyprint.text.ffi import FROM_UNITS, ffi, gobject, pango, unicode_to_char_p
from weasyprint.text.fonts import font_features, get_font_description

log = logging.getLogger(__name__)

COPIED_FROM = "70.0"
_original_setup = line_break.Layout.setup
_local = threading.local()
_active = contextvars.ContextVar("kontor_pango_cache", default=False)


@contextlib.contextmanager
def active() -> Iterator[None]:
    """Text laid out and drawn in this block shares contexts and font descriptions."""
    token = _active.set(True)
    try:
        yield
    finally:
        _active.reset(token)


def _caches() -> tuple[dict, dict]:
    if not hasattr(_local, "contexts"):
        _local.contexts, _local.descriptions = {}, {}
    return _local.contexts, _local.descriptions


def _context(font_map, direction: str, lang: str | None):
    """A Pango context and its language for these settings, made once per thread."""
    contexts, _ = _caches()
    key = (font_map, direction, lang)
    if key not in contexts:
        context = ffi.gc(pango.pango_font_map_create_context(font_map), gobject.g_object_unref)
        pango.pango_context_set_round_glyph_positions(context, False)
        pango.pango_context_set_base_dir(context, PANGO_DIRECTION[direction])
        if lang:
            lang_p, _ = unicode_to_char_p(lang)
            language = pango.pango_language_from_string(lang_p)
            pango.pango_context_set_language(context, language)
        else:
            language = pango.pango_language_get_default()
        contexts[key] = (context, language)
    return contexts[key]


def _font_description(style):
    """The Pango font description of a style, made once per thread and set of font values."""
    _, descriptions = _caches()
    key = (tuple(style["font_family"]), style["font_style"], style["font_stretch"], style["font_weight"],
           style["font_size"], style["font_variant_caps"], repr(style["font_variation_settings"]))
    if key not in descriptions:
        descriptions[key] = get_font_description(style)
    return descriptions[key]


def _setup(self, style) -> None:
    """WeasyPrint 70's `Layout.setup`, with the context and the font description from the caches."""
    if not _active.get():
        return _original_setup(self, style)
    self.style = style
    self.first_line_direction = 0

    if style["font_language_override"] != "normal":
        lang = LST_TO_ISO.get(style["font_language_override"].lower(), style["font_language_override"])
    else:
        lang = style["lang"] or None
    pango_context, self.language = _context(style.font_config.font_map, style["direction"], lang)

    assert not isinstance(style["font_family"], str), "font_family should be a list"
    font_description = _font_description(style)
    self.layout = ffi.gc(pango.pango_layout_new(pango_context), gobject.g_object_unref)
    pango.pango_layout_set_auto_dir(self.layout, False)
    pango.pango_layout_set_font_description(self.layout, font_description)  # Pango copies it

    if style["text_decoration_line"] != "none":
        metrics = ffi.gc(pango.pango_context_get_metrics(pango_context, font_description, self.language),
                         pango.pango_font_metrics_unref)
        self.ascent = FROM_UNITS * pango.pango_font_metrics_get_ascent(metrics)
        self.underline_position = FROM_UNITS * pango.pango_font_metrics_get_underline_position(metrics)
        self.strikethrough_position = FROM_UNITS * pango.pango_font_metrics_get_strikethrough_position(metrics)
        self.underline_thickness = FROM_UNITS * pango.pango_font_metrics_get_underline_thickness(metrics)
        self.strikethrough_thickness = FROM_UNITS * pango.pango_font_metrics_get_strikethrough_thickness(metrics)
    else:
        self.ascent = None
        self.underline_position = None
        self.strikethrough_position = None

    features = font_features(
        style["font_kerning"], style["font_variant_ligatures"], style["font_variant_position"],
        style["font_variant_caps"], style["font_variant_numeric"], style["font_variant_alternates"],
        style["font_variant_east_asian"], style["font_feature_settings"])
    if features:
        features = ",".join(f"{key} {value}" for key, value in features.items()).encode()
        attr = style.font_config.font_features.setdefault(features, pango.pango_attr_font_features_new(features))
        attr_list = pango.pango_attr_list_new()
        pango.pango_attr_list_insert(attr_list, attr)
        pango.pango_layout_set_attributes(self.layout, attr_list)


def install() -> bool:
    """Lets `active()` take effect; False if this WeasyPrint is not the one copied."""
    if weasyprint.__version__ != COPIED_FROM:
        log.warning("Pango cache not installed: written for WeasyPrint %s, found %s",
                    COPIED_FROM, weasyprint.__version__)
        return False
    line_break.Layout.setup = _setup
    return True
