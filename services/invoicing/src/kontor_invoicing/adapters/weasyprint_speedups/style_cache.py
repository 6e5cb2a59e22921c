"""Computed styles kept from one invoice to the next (a speed-up for WeasyPrint).

WeasyPrint computes the style of every element of every document anew: each of the 221 CSS
properties is worked out in Python the first time layout or drawing asks for it. For a one-page
invoice that was the largest single cost, about a quarter of a render (cProfile,
bench/render_invoices.py). Yet an invoice's elements are the same elements every time: the computed
style of an element depends only on the declarations the cascade gave it, on its parent's computed
style, and on whether it is the root or a pseudo-element. Those are the key here.

For each key this module computes one *template* style once, with all its properties, and hands
every document a copy of it (a dict copy, a few microseconds). A copy, because WeasyPrint changes
some styles while it builds and lays out boxes (a table's margins move to its wrapper; a page's
counters are set): one document's changes must not reach the next.

The declarations in the key are the style sheets' own objects, identified by `id()`; each template
keeps them alive, so an id cannot be reused by another object while its template exists. The cache
is bounded (least recently used templates go first).

Scope: only what runs inside `StyleCache.active()` uses the cache; every other WeasyPrint document
in the process (the benchmark's "WeasyPrint default") is computed by WeasyPrint's own code. Styles
are computed before the first page exists, so style sheets that use viewport units (vw, vh) must
not be rendered through the cache; the invoice's do not.

`install()` wraps `weasyprint.css.StyleFor.set_computed_styles` with a copy of WeasyPrint 70's that
differs only in where the style comes from, and line layout's `strut` with one that keeps its result
with the template (it depends on the font values alone, which WeasyPrint never changes on a copy).
WeasyPrint has no hook for this; for any other WeasyPrint version `install()` leaves it alone and logs
a warning, so an upgrade is never silently wrong, only slower until this copy is brought up to date.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
from collections import OrderedDict
from functools import cached_property

from weasyprint import css
from weasyprint.css import AnonymousStyle, ComputedStyle, InitialStyle
from weasyprint.layout import inline

from kontor_invoicing.adapters.weasyprint_speedups.patching import scope, written_for_this_weasyprint

_original = css.StyleFor.set_computed_styles
_original_strut = inline.strut
_computing = threading.RLock()
_active: contextvars.ContextVar[StyleCache | None] = contextvars.ContextVar("kontor_style_cache", default=None)


def _from_template(self, key):
    """A copy's value it does not have yet: the template's, computed there once, whichever thread asks first."""
    with _computing:
        value = self[key] = self.template.style[key]
    return value


class _Copy(ComputedStyle):
    """One document's copy of a template: what the template has computed, and the rest from it on demand."""

    def __init__(self, template: _Template, parent_style, cascaded, pseudo_type, root_style, base_url, font_config,
                 initial_page_sizes) -> None:
        super().__init__(parent_style, cascaded, pseudo_type, root_style, base_url, font_config, initial_page_sizes)
        self.update(template.style)
        self.specified = template.style.specified  # read, never written: the copy computes nothing itself
        self.template = template

    __missing__ = _from_template

    @cached_property
    def anonymous_style(self):
        return _AnonymousCopy(self, self.template.anonymous)


class _AnonymousCopy(AnonymousStyle):
    """The same for the style of anonymous boxes (table wrappers, lines, ...)."""

    def __init__(self, parent_style: _Copy, template: _Template) -> None:
        super().__init__(parent_style)
        self.update(template.style)
        self.template = template

    __missing__ = _from_template


class _Template:
    """A style computed once, lazily, by WeasyPrint's own code; what its key refers to by id; its strut."""

    __slots__ = ("_anonymous", "keeps", "strut", "style")
    _anonymous: _Template | None
    strut: tuple | None

    def __init__(self, style: ComputedStyle | AnonymousStyle, keeps: tuple = ()) -> None:
        self.style, self.keeps, self.strut, self._anonymous = style, keeps, None, None

    @property
    def anonymous(self) -> _Template:
        """The template of the style of this style's anonymous boxes."""
        if self._anonymous is None:
            self._anonymous = _Template(self.style.anonymous_style)
        return self._anonymous


def _identity(values):
    """A declared value as part of a key: itself where it can be hashed (equal values compute alike), else its
    id (the template keeps the object alive)."""
    try:
        hash(values)
    except TypeError:
        return id(values)
    return values


class StyleCache:
    """Templates of computed styles, shared by the documents rendered inside `active()`."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._templates: OrderedDict[tuple, _Template] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._templates)

    def active(self) -> contextlib.AbstractContextManager:
        return scope(_active, self)

    def style(self, parent: ComputedStyle | None, cascaded: dict, pseudo_type, is_root: bool, root_style,
              base_url, font_config, initial_page_sizes) -> ComputedStyle:
        """This document's computed style for these declarations under this parent: a copy of the template."""
        parent_template = getattr(parent, "template", None) if parent is not None else None
        if parent is not None and parent_template is None:  # parent computed outside the cache
            return ComputedStyle(parent, cascaded, pseudo_type, root_style, base_url, font_config, initial_page_sizes)
        # a weight is (precedence, layer, specificity); @page rules give their specificity as a list
        declared = tuple(sorted((name, _identity(values), weight[:2], tuple(weight[2]))
                                for name, (values, weight) in cascaded.items()))
        key = (id(parent_template), pseudo_type, is_root, base_url, id(font_config), declared)
        with self._lock:
            template = self._templates.get(key)
            if template is not None:
                self._templates.move_to_end(key)
                self.hits += 1
        if template is None:
            root_template = getattr(root_style, "template", None)
            fresh = ComputedStyle(parent_template.style if parent_template else None, dict(cascaded), pseudo_type,
                                  root_template.style if root_template else root_style, base_url, font_config,
                                  initial_page_sizes)
            # the template keeps its parent, the declarations and the font configuration alive: no id is reused
            template = _Template(fresh, (parent_template, [values for values, _ in cascaded.values()], font_config))
            with self._lock:
                template = self._templates.setdefault(key, template)
                self.misses += 1
                while len(self._templates) > self.limit:
                    self._templates.popitem(last=False)
        return _Copy(template, parent, cascaded, pseudo_type, root_style, base_url, font_config, initial_page_sizes)


def _set_computed_styles(self, element, parent, root=None, pseudo_type=None, base_url=None, target_collector=None):
    """WeasyPrint 70's `StyleFor.set_computed_styles`, with the style from the active cache."""
    cache = _active.get()
    if cache is None:
        return _original(self, element, parent, root, pseudo_type, base_url, target_collector)
    cascaded_styles = self.get_cascaded_styles()
    computed_styles = self.get_computed_styles()
    if element == root and pseudo_type is None:
        assert parent is None  # noqa: S101 - as in WeasyPrint's code
        parent_style, root_style, is_root = None, InitialStyle(self.font_config), True
    else:
        assert parent is not None  # noqa: S101 - as in WeasyPrint's code
        parent_style, root_style, is_root = computed_styles[parent, None], computed_styles[root, None], False
    cascaded = cascaded_styles.get((element, pseudo_type), {})
    computed = computed_styles[element, pseudo_type] = cache.style(
        parent_style, cascaded, pseudo_type, is_root, root_style, base_url, self.font_config,
        self.initial_page_sizes)
    if target_collector and computed["anchor"]:
        target_collector.collect_anchor(computed["anchor"])


def _strut(style):
    """WeasyPrint's `strut` (line height and baseline of a style's font), once per template: WeasyPrint caches
    it too, but builds a long text key from 16 style values for every line to look it up."""
    if type(style) not in (_Copy, _AnonymousCopy):
        return _original_strut(style)
    template = style.template
    if template.strut is None:
        template.strut = _original_strut(style)
    return template.strut


def install() -> bool:
    """Lets `StyleCache.active()` take effect; False if this WeasyPrint is not the one copied."""
    if not written_for_this_weasyprint("Style cache"):
        return False
    css.StyleFor.set_computed_styles = _set_computed_styles
    inline.strut = _strut
    return True
