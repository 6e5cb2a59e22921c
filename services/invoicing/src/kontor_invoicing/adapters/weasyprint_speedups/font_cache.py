"""Font subsets made once per process instead of once per invoice (a speed-up for WeasyPrint).

For every document WeasyPrint subsets each font it embeds to the glyphs that document uses (HarfBuzz,
two passes over the whole font) and then compresses the subset at zlib level 9. For a one-page
invoice in DejaVu Sans and DejaVu Sans Bold that was about a tenth of a render (py-spy,
bench/render_invoices.py).

Invoices are written in a small alphabet. So this module subsets each font once to a fixed
*repertoire* (printable Latin-1, the euro sign and the typographic marks the invoice uses), compresses
that once, and gives every document whose glyphs all lie in the repertoire that same subset. A
document that uses a glyph outside it (a client's name in another script, say) is subset by
WeasyPrint as before. WeasyPrint subsets with the glyph ids retained, so a larger subset of the same
font draws the same glyphs: pages are the same; the PDF carries the glyphs of the repertoire (about
20 KiB more per font, compressed). The output depends only on the document, never on what was
rendered before.

WeasyPrint also makes each document's `Font` objects anew, reading the whole font file and a dozen
values from HarfBuzz; inside `active()` a document gets a copy of the `Font` made first for the same
font description and size, with nothing used yet. One `FontSubsets` serves one font configuration
(the renderer's), so the description and size say which font file it is.

Scope: only documents written inside `FontSubsets.active()` use it, and their font streams are swapped
for the compressed subset by `FontSubsets.compress(pdf)`, which the renderer calls from WeasyPrint's
`finisher` hook. `install()` wraps `weasyprint.pdf.fonts.Font.clean` and `weasyprint.pdf.stream.Stream.add_font`;
WeasyPrint has no hook for this. For any other WeasyPrint version `install()` leaves it alone and logs a warning.
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import io
import logging
import threading
import zlib
from dataclasses import dataclass

import pydyf
from fontTools.ttLib import TTFont
from weasyprint.pdf import fonts, stream
from weasyprint.text.ffi import pango
from weasyprint.text.fonts import get_pango_font_hb_face, get_pango_font_key

from kontor_invoicing.adapters.weasyprint_speedups.patching import scope, written_for_this_weasyprint

log = logging.getLogger(__name__)

REPERTOIRE = "".join(map(chr, [*range(0x20, 0x7F), *range(0xA0, 0x100)])) + "€–—‘’‚“”„…•·×−\u2009\u202f"
_original_clean = fonts.Font.clean
_original_add_font = stream.Stream.add_font
_active: contextvars.ContextVar[FontSubsets | None] = contextvars.ContextVar("kontor_font_subsets", default=None)


@dataclass(frozen=True)
class Subset:
    glyphs: frozenset[int]
    data: bytes  # the subset font file, as WeasyPrint embeds it
    compressed: bytes  # the same, compressed as pydyf would (zlib level 9)


class FontSubsets:
    """Repertoire subsets per font file, shared by the documents written inside `active()`."""

    def __init__(self) -> None:
        self._subsets: dict[tuple, Subset] = {}
        self._fonts: dict[tuple, fonts.Font] = {}
        self._lock = threading.Lock()
        self.reused = self.declined = 0

    def active(self) -> contextlib.AbstractContextManager:
        return scope(_active, self)

    def subset(self, font: fonts.Font, hinting: bool) -> Subset:
        """The repertoire subset of this font, made on first use."""
        key = (font.family, font.weight, font.style, font.index, font.glyph_count, len(font.file_content), hinting)
        with self._lock:
            if key not in self._subsets:
                ttfont = TTFont(io.BytesIO(font.file_content), fontNumber=font.index, lazy=True)
                cmap = ttfont.getBestCmap() or {}
                glyphs = frozenset(ttfont.getGlyphID(cmap[ord(c)]) for c in REPERTOIRE if ord(c) in cmap) | {0}
                full = font.file_content
                font.subset(dict.fromkeys(glyphs, ""), hinting)  # WeasyPrint's own subsetting, to the repertoire
                data, font.file_content = font.file_content, full
                compressor = zlib.compressobj(level=9)
                subset = Subset(glyphs, data, compressor.compress(data) + compressor.flush())
                self._subsets[key] = subset
                log.info("font subset made", extra={"family": font.family, "weight": font.weight,
                                                    "glyphs": len(glyphs), "bytes": len(subset.compressed)})
            return self._subsets[key]

    def font(self, pango_font, key: int, description, font_size: float) -> fonts.Font:
        """A document's new `Font`: a copy of the one made first for this font and size, with no glyph used yet
        and the HarfBuzz objects of this Pango font (the first one's may be gone)."""
        with self._lock:
            template = self._fonts.get((key, font_size))
        if template is None:
            template = fonts.Font(pango_font, description, font_size)
            with self._lock:
                if len(self._fonts) >= 256:  # an invoice uses two or three; bounded all the same
                    self._fonts.clear()
                template = self._fonts.setdefault((key, font_size), template)
        font = copy.copy(template)
        font.hb_font, font.hb_face = pango.pango_font_get_hb_font(pango_font), get_pango_font_hb_face(pango_font)
        font.widths, font.to_unicode, font.missing, font.used_in_forms = {}, {}, {}, False
        return font

    def compress(self, pdf: pydyf.PDF) -> None:
        """Gives the document's repertoire font streams their bytes compressed once (WeasyPrint's finisher)."""
        by_data = {id(subset.data): subset for subset in self._subsets.values()}
        for obj in pdf.objects:
            if isinstance(obj, pydyf.Stream) and obj.compress and len(obj.stream) == 1:
                subset = by_data.get(id(obj.stream[0]))
                if subset is not None and obj.stream[0] is subset.data:
                    obj.stream = [subset.compressed]
                    obj.extra["Filter"] = "/FlateDecode"
                    obj.compress = False


def _clean(self: fonts.Font, to_unicode: dict, hinting: bool) -> None:
    """WeasyPrint's `Font.clean`; inside `FontSubsets.active()` a plain font whose glyphs lie in the repertoire
    gets the repertoire subset instead."""
    cache = _active.get()
    plain = not (self.missing or "fvar" in self.tables or self.png or self.svg or self.colr)
    if cache is None or not to_unicode or not plain:
        return _original_clean(self, to_unicode, hinting)
    subset = cache.subset(self, hinting)
    if not subset.glyphs.issuperset(to_unicode):
        cache.declined += 1
        return _original_clean(self, to_unicode, hinting)
    cache.reused += 1
    self.file_content = subset.data


def _add_font(self: stream.Stream, pango_font) -> tuple[fonts.Font, float]:
    """WeasyPrint 70's `Stream.add_font`; inside `FontSubsets.active()` a document's font is a copy of one made
    before: making it reads the whole font file and a dozen HarfBuzz values, the same for every invoice."""
    cache = _active.get()
    if cache is None:
        return _original_add_font(self, pango_font)
    key, description, font_size = get_pango_font_key(pango_font)
    if key not in self._fonts:
        self._fonts[key] = cache.font(pango_font, key, description, font_size)
    return self._fonts[key], font_size


def install() -> bool:
    """Lets `FontSubsets.active()` take effect; False if this WeasyPrint is not the one copied."""
    if not written_for_this_weasyprint("Font subsets"):
        return False
    fonts.Font.clean = _clean
    stream.Stream.add_font = _add_font
    return True
