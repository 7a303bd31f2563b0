"""What a page section gets (:class:`PageInputs`) and gives (:class:`Section`), and the registry of
sections (``SECTIONS``), in page order.

A section is a function of the page's inputs that returns its HTML and the data its plots draw, or
None when it has nothing to show (no learning-rate search was run, say). A plot is an element
``<figure class="plot" data-plot="ID">`` in the HTML and ``data["plots"][ID]`` in the data: a spec of
one of the kinds ``page.js`` draws (``strip``: values per row with mean, interval, the paper's figure
and a verdict; ``scatter``: points against a chosen x axis with the front drawn; ``lines``: series
of (x, y)). Everything a plot draws is in the data, so the page's download buttons hand it over.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from hut.registry import Registry
from hut.results.judge.claims import ClaimResult
from hut.results.render.doc import Doc
from hut.results.tables.base import Built, Inputs


@dataclass(frozen=True)
class PageInputs:
    inp: Inputs
    built: Mapping[str, Built]
    claims: Sequence[ClaimResult]
    claims_elsewhere: Sequence[Mapping[str, Any]]
    report: Doc | None
    read: Sequence[str]  # the record paths (relative to results_dir) the outputs were built from
    shipped: bool  # whether those records are copied beside the page (records/<path>)
    figures: Sequence[str] = ()  # image files beside the page (relative paths)


@dataclass
class Section:
    key: str
    title: str
    html: str
    plots: dict[str, dict] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)  # anything else its script or downloads need


@dataclass(frozen=True)
class SectionSpec:
    key: str
    title: str
    order: int  # where on the page: smaller first
    build: Callable[[PageInputs], Section | None]


SECTIONS: Registry[SectionSpec] = Registry("page section")


def section(key: str, title: str, order: int):
    """Decorator: register a section builder at its place on the page (``order``: smaller first)."""
    def deco(fn: Callable[[PageInputs], Section | None]):
        SECTIONS.add(key, SectionSpec(key, title, order, fn))
        return fn
    return deco


def ordered() -> list[SectionSpec]:
    return sorted((SECTIONS.get(k) for k in SECTIONS.names()), key=lambda s: (s.order, s.key))
