"""Pango contexts and font descriptions shared between WeasyPrint's text layouts (a speed-up).

WeasyPrint builds a new Pango context and a new font description for every piece of text it lays
out and again for every piece it draws: twice per line of an invoice, about 15 % of a one-page
render (profiled with py-spy, bench/render_invoices.py). Both depend only on a few style values
(font map, direction, language; family, style, stretch, weight, size, caps, variations), so this
module keeps them, keyed by those values and per thread (Pango objects are not shared between
threads). A layout made from a shared context is the same as one made from a fresh context with
the same settings: the rendered pages are byte for byte the same (tests/test_pdf.py checks it).

Drawing, WeasyPrint makes each text's Pango layout a second time (set-up, text, shaping) and then reads
its glyphs one C field at a time, about a fifth of a render. Inside `active()`:

- a layout is kept from laying out to drawing (`_deactivate`, `_reactivate`) when drawing would build
  the same layout: the same style; a justified line's text is set again, with its spacing;
- `_draw_first_line` draws a line whose glyphs are all plain (no missing glyph, no vertical offset, no
  emoji or bitmap font, no ellipsis; empty glyphs such as tabs are plain) from the glyph records read in
  one go, writing exactly what WeasyPrint writes. Any other line is drawn by WeasyPrint's own
  `draw_first_line`. What WeasyPrint works out per glyph (its piece of the text string: id, offset,
  kerning; its width from Pango) depends only on the font, the size and the glyph's record, so it is
  kept per font and size (`_pieces`); each document's font still gets its own widths and its own
  glyph-to-text map, in WeasyPrint's order.

Scope: only text laid out inside `active()` uses the caches; every other WeasyPrint document in the
process (the benchmark's "WeasyPrint default") goes through WeasyPrint's own code.

`install()` replaces `weasyprint.text.line_break.Layout.setup` with a copy of WeasyPrint 70's that
differs only in where the context and the font description come from, `Layout.deactivate` and
`reactivate` with versions that keep the layout, and `weasyprint.draw.text.draw_first_line` with the
plain-line drawing above. WeasyPrint has no hook for
this; for any other WeasyPrint version `install()` leaves it alone and logs a warning, so an
upgrade is never silently wrong, only slower until this copy is brought up to date.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import Any

from weasyprint.draw import text as draw_text
from weasyprint.text import line_break
from weasyprint.text.constants import LST_TO_ISO, PANGO_DIRECTION
from weasyprint.text.ffi import FROM_UNITS, ffi, gobject, pango, unicode_to_char_p
from weasyprint.text.fonts import font_features, get_font_description

from kontor_invoicing.adapters.weasyprint_speedups.patching import decline, scope, written_for_this_weasyprint

_original_setup = line_break.Layout.setup
_original_deactivate = line_break.Layout.deactivate
_original_reactivate = line_break.Layout.reactivate
_original_draw_first_line = draw_text.draw_first_line
# characters Pango treats as paragraph separators unless a layout is in single-paragraph mode
_UNKNOWN, _EMPTY = pango.PANGO_GLYPH_UNKNOWN_FLAG, pango.PANGO_GLYPH_EMPTY  # a missing glyph, a zero-width one
_SEPARATORS = frozenset("\n\r\x85\u2028\u2029")
_local = threading.local()
_active = contextvars.ContextVar("kontor_pango_cache", default=False)


def active() -> contextlib.AbstractContextManager:
    """Text laid out and drawn in this block shares contexts and font descriptions, and keeps its layouts."""
    return scope(_active, True)


def _caches() -> tuple[dict, dict, dict]:
    """This thread's Pango contexts, font descriptions, and glyph pieces per font and size."""
    if not hasattr(_local, "contexts"):
        _local.contexts, _local.descriptions, _local.pieces = {}, {}, {}
    return _local.contexts, _local.descriptions, _local.pieces


def _context(font_map, direction: str, lang: str | None):
    """A Pango context and its language for these settings, made once per thread."""
    contexts, _, _ = _caches()
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
    _, descriptions, _ = _caches()
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

    assert not isinstance(style["font_family"], str), "font_family should be a list"  # noqa: S101 - WeasyPrint's
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


def _deactivate(self) -> None:
    """After laying out, keep the layout for drawing; after drawing, let it go."""
    if _active.get() and not getattr(self, "kept", False):
        self.kept = True
        return
    self.kept = False
    _original_deactivate(self)


def _reactivate(self, style) -> None:
    """Before drawing: the kept layout where it is what WeasyPrint would build again, else a new one. A
    justified line's kept layout has no width and its text without the spacing: the text is set again."""
    if getattr(self, "kept", False) and self.style is style:
        if self.justification_spacing:
            self.set_text(self.text, justify=True)
        return
    _original_reactivate(self, style)


def _draw_first_line(stream, textbox, text_overflow, block_ellipsis, matrix):
    """WeasyPrint 70's `draw_first_line` for a line of plain glyphs, the glyph records read in one go."""
    layout = textbox.pango_layout
    if not _active.get() or text_overflow == "ellipsis" or block_ellipsis != "none" \
            or not textbox.text.strip() or textbox.style["font_size"] < 1e-6:
        return _original_draw_first_line(stream, textbox, text_overflow, block_ellipsis, matrix)
    if not _SEPARATORS.isdisjoint(layout.text):  # the mode changes nothing else, but setting it lays out again
        pango.pango_layout_set_single_paragraph_mode(layout.layout, True)
    first_line, _ = layout.get_first_line()

    runs = []  # (glyph item, pango font, [(glyph, width, x offset)], clusters, {glyph})
    run = first_line.runs[0]
    while run != ffi.NULL:
        glyph_item = run.data
        run = run.next
        glyph_string = glyph_item.glyphs
        count = glyph_string.num_glyphs
        # PangoGlyphInfo: glyph, width, x offset, y offset, attributes (5 × 32 bits)
        fields = ffi.unpack(ffi.cast("int32_t *", glyph_string.glyphs), 5 * count)
        ids = fields[0::5]
        # a vertical offset, or a missing glyph (flagged; the test also declines a few ids that are not)
        if any(fields[3::5]) or (ids and (min(ids) < 0 or max(ids) >= _UNKNOWN)):
            return _original_draw_first_line(stream, textbox, text_overflow, block_ellipsis, matrix)
        glyphs = list(zip(ids, fields[1::5], fields[2::5], strict=True))
        runs.append((glyph_item, glyph_item.item.analysis.font, glyphs, ffi.unpack(glyph_string.log_clusters, count),
                     set(ids)))
    # each run's font, fetched as WeasyPrint does: when the Pango font changes (None: the run before's)
    fonts: list[tuple[Any, float] | None] = []
    previous = None
    for _, pango_font, _, _, _ in runs:
        if pango_font != previous:
            previous = pango_font
            font, font_size = stream.add_font(pango_font)
            if font.bitmap or font.png or font.svg or font.colr:
                return _original_draw_first_line(stream, textbox, text_overflow, block_ellipsis, matrix)
            if pango.pango_version() < 14802:  # https://gitlab.gnome.org/GNOME/pango/-/issues/530
                font_size = textbox.style["font_size"]
            fonts.append((font, font_size))
        else:
            fonts.append(None)

    stream.set_text_matrix(*matrix.values)
    string = ""
    for (glyph_item, pango_font, glyphs, clusters, ids), changed in zip(runs, fonts, strict=True):
        if changed is not None:
            font, font_size = changed
            if string:
                stream.show_text(string)
            string = ""
            stream.set_font_size(font.hash, font_size)
            pieces, logical_widths = _pieces(font.hash, font_size)
        ids.discard(_EMPTY)
        if not ids.issubset(font.to_unicode):
            _map_to_unicode(font.to_unicode, glyph_item, glyphs, clusters, layout)
        widths = font.widths
        for glyph in ids.difference(widths):
            if glyph not in logical_widths:
                pango.pango_font_get_glyph_extents(pango_font, glyph, stream.ink_rect, stream.logical_rect)
                logical_widths[glyph] = round(stream.logical_rect.width * 1000 * FROM_UNITS / font_size)
            widths[glyph] = logical_widths[glyph]
        try:
            body = "".join([pieces[glyph] for glyph in glyphs])
        except KeyError:
            if len(pieces) > _PIECES_LIMIT:  # justified spaces each have their own width: keep it bounded
                pieces.clear()
            for glyph in glyphs:
                if glyph not in pieces:
                    pieces[glyph] = _piece(*glyph, widths.get(glyph[0]), font_size)
            body = "".join([pieces[glyph] for glyph in glyphs])
        string += "<" + body
        if string[-1] == "<":
            string = string[:-1]
        else:
            string += ">"
    stream.show_text(string)
    return []


_PIECES_LIMIT = 16384


def _pieces(font_hash: str, font_size: float) -> tuple[dict, dict]:
    """For one font at one size, per thread: the text-showing piece of each (glyph, Pango width, x offset),
    and each glyph's width in the PDF's units."""
    _, _, pieces = _caches()
    key = (font_hash, font_size)
    if key not in pieces:
        pieces[key] = ({}, {})
    return pieces[key]


def _piece(glyph: int, width: int, x_offset: int, logical_width: int | None, font_size: float) -> str:
    """What WeasyPrint 70 writes into a TJ string for one glyph: its id, with its offset and kerning around it."""
    if glyph == _EMPTY:  # a tab, say: only its width
        return f">{-width / font_size}<"
    if logical_width is None:  # every glyph but an empty one has its width by now
        raise ValueError(f"glyph {glyph:04x} drawn without its width")
    offset = x_offset / font_size
    piece = f">{-offset}<{glyph:04x}" if offset else f"{glyph:04x}"
    kerning = logical_width + offset - width * 1000 * FROM_UNITS / font_size
    return f"{piece}>{int(kerning)}<" if kerning else piece


def _map_to_unicode(to_unicode: dict, glyph_item, glyphs: list, clusters: list, layout) -> None:
    """The text of each glyph not mapped yet, in the order WeasyPrint maps them (the order of the ToUnicode map)."""
    count, offset, utf8_text = len(glyphs), glyph_item.item.offset, layout.text.encode()
    rtl = glyph_item.item.analysis.level % 2
    for i, (glyph, _, _) in enumerate(glyphs):
        if glyph == _EMPTY or glyph in to_unicode:
            continue
        t1 = clusters[i]
        if rtl:
            t2 = glyph_item.item.length if i == 0 else clusters[i - 1]
        else:
            t2 = glyph_item.item.length if i == count - 1 else clusters[i + 1]
        to_unicode[glyph] = utf8_text[offset + t1:offset + t2].decode()


def install() -> bool:
    """Lets `active()` take effect; False if this WeasyPrint is not the one copied."""
    if not written_for_this_weasyprint("Pango cache"):
        return False
    if ffi.sizeof("PangoGlyphInfo") != 20:
        return decline("Pango cache", "unexpected PangoGlyphInfo layout")
    line_break.Layout.setup = _setup
    line_break.Layout.deactivate = _deactivate
    line_break.Layout.reactivate = _reactivate
    draw_text.draw_first_line = _draw_first_line
    return True
