"""A self-contained ``index.html``: our tables beside the papers' published ones, sample grids, figures.

No JavaScript, no external files: images are embedded as base64 PNG (so the page survives being
copied alone); links to the underlying ``results.json`` / ``results.md`` are relative to the page.
Tables come from our Markdown results (``| a | b |`` lines) and are converted here.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path

from radsynth.atomic import atomic_write_text

SCALE_NOTE = (
    "Our numbers come from different (smaller, public or procedural) data, smaller images and much shorter "
    "training than the papers'; compare the direction of the differences between training sets, not the values."
)


@dataclass(frozen=True)
class PaperTable:
    """A table transcribed from a paper, with where it comes from."""

    markdown: str
    citation: str


@dataclass
class Section:
    """One part of the report: text, our tables (Markdown) each with an optional published table, images, links."""

    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, str, PaperTable | None]] = field(default_factory=list)  # (caption, our markdown, paper)
    images: list[tuple[Path, str]] = field(default_factory=list)  # (png path, caption)
    links: list[tuple[Path, str]] = field(default_factory=list)  # (file, label)
    departures: str = ""  # the one line naming every remaining departure of this table's protocol from the paper


DEPARTURES_LABEL = "Departures from the paper:"


def _cell(text: str) -> str:
    return html.escape(text.strip())


def markdown_to_html(markdown: str) -> str:
    """Markdown tables (``|``-lines, second line the ``---`` rule) -> <table>; other non-empty lines -> <p>."""
    out: list[str] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1].strip()) <= set("|-: ") and "-" in lines[i + 1]:
            header = [c for c in line.strip("|").split("|")]
            rows = []
            i += 2
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i].strip().strip("|").split("|"))
                i += 1
            out.append("<table>\n<thead><tr>" + "".join(f"<th>{_cell(c)}</th>" for c in header) + "</tr></thead>\n<tbody>")
            out += ["<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in rows]
            out.append("</tbody>\n</table>")
            continue
        if line.startswith("#"):
            out.append(f"<h4>{_cell(line.lstrip('#'))}</h4>")
        elif line:
            out.append(f"<p>{_cell(line)}</p>")
        i += 1
    return "\n".join(out)


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'


STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 1400px; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.85em; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead { background: #eee; }
.pair { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
.pair > div { flex: 1 1 500px; }
.departures { border-left: 4px solid #c05050; padding: 0.2em 1em; font-size: 0.9em; }
.note { background: #fff7d6; border-left: 4px solid #e0b000; padding: 0.5em 1em; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 640px; image-rendering: pixelated; border: 1px solid #ccc; }
figcaption { font-size: 0.8em; max-width: 640px; }
"""


def render(title: str, sections: list[Section], page_dir: Path, intro: list[str] | None = None) -> str:
    """The whole page as a string; links are written relative to ``page_dir``."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
        f"<style>{STYLE}</style>", "</head>", "<body>", f"<h1>{html.escape(title)}</h1>",
    ]
    parts += [f"<p>{html.escape(p)}</p>" for p in intro or []]
    parts.append(f'<p class="note">{html.escape(SCALE_NOTE)}</p>')
    parts.append("<ul>" + "".join(f'<li><a href="#s{k}">{html.escape(s.title)}</a></li>' for k, s in enumerate(sections)) + "</ul>")
    for k, section in enumerate(sections):
        parts.append(f'<section id="s{k}"><h2>{html.escape(section.title)}</h2>')
        parts += [f"<p>{html.escape(p)}</p>" for p in section.text]
        for caption, ours, paper in section.tables:
            parts.append(f"<h3>{html.escape(caption)}</h3>")
            if paper is None:
                parts.append(f'<div class="ours">{markdown_to_html(ours)}</div>')
            else:
                parts.append('<div class="pair">')
                parts.append(f'<div class="ours"><h4>This run</h4>{markdown_to_html(ours)}</div>')
                parts.append(f'<div class="paper"><h4>Published ({html.escape(paper.citation)})</h4>{markdown_to_html(paper.markdown)}</div>')
                parts.append("</div>")
        if section.departures:
            parts.append(f'<p class="departures"><strong>{DEPARTURES_LABEL}</strong> {html.escape(section.departures)}</p>')
        parts += [_image(path, caption) for path, caption in section.images if Path(path).exists()]
        links = [(p, label) for p, label in section.links if Path(p).exists()]
        if links:
            parts.append("<p>Files: " + ", ".join(
                f'<a href="{html.escape(Path(os.path.relpath(p, page_dir)).as_posix())}">{html.escape(label)}</a>' for p, label in links) + "</p>")
        parts.append("</section>")
    parts += ["</body>", "</html>"]
    return "\n".join(parts)


def write_report(run_dir: Path, title: str, sections: list[Section], intro: list[str] | None = None) -> Path:
    """Write ``run_dir/report/index.html`` (atomically) and return its path."""
    page = Path(run_dir) / "report" / "index.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(page, render(title, sections, page.parent, intro))
    return page
