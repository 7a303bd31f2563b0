"""A small document: headings, paragraphs, bullet lists and tables, written as Markdown, LaTeX or HTML.

The reproduction report is one (:mod:`hut.results.report`); its tables are rendered by
:mod:`hut.results.render.formats` like every other table. Markdown's ``**bold**`` and backticks
become LaTeX's and HTML's own.
"""
from __future__ import annotations

from typing import Any, Sequence

from hut.results.render.formats import grid, inline_html, simple
from hut.results.render.table import Table, tex_escape


class Doc:
    def __init__(self):
        self.parts: list[tuple[str, Any]] = []

    def h(self, text: str, level: int = 2):
        self.parts.append(("h", (level, text)))

    def p(self, text: str):
        self.parts.append(("p", text))

    def ul(self, items: Sequence[str]):
        if items:
            self.parts.append(("ul", list(items)))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]):
        if rows:
            self.parts.append(("t", simple(header, rows)))

    def md(self) -> str:
        out = []
        for kind, x in self.parts:
            if kind == "h":
                out += ["#" * x[0] + " " + x[1], ""]
            elif kind == "p":
                out += [x, ""]
            elif kind == "ul":
                out += [f"- {i}" for i in x] + [""]
            else:
                out += grid(x, "md") + [""]
        return "\n".join(out)

    def tex(self) -> str:
        out = []
        for kind, x in self.parts:
            if kind == "h":
                out.append(("\\section*{" if x[0] <= 2 else "\\subsection*{") + tex_escape(x[1]) + "}")
            elif kind == "p":
                out += [tex_escape(x), ""]
            elif kind == "ul":
                out += ["\\begin{itemize}"] + [f"\\item {tex_escape(i)}" for i in x] + ["\\end{itemize}"]
            else:
                out += grid(x, "tex") + [""]
        return "\n".join(out)

    def html(self) -> str:
        out = []
        for kind, x in self.parts:
            if kind == "h":
                level = min(x[0] + 1, 6)  # the page's own title is the h1
                out.append(f"<h{level}>{inline_html(x[1])}</h{level}>")
            elif kind == "p":
                out.append(f"<p>{inline_html(x)}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{inline_html(i)}</li>" for i in x) + "</ul>")
            else:
                out += grid(x, "html")
        return "\n".join(out) + "\n"

    def tables(self) -> list[Table]:
        return [x for kind, x in self.parts if kind == "t"]
