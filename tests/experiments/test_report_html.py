"""The HTML report: Markdown tables become tables, images are embedded, links resolve; Chromium renders it."""

import base64
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from radsynth.report import published
from radsynth.report.grids import save_grid
from radsynth.report.html import PaperTable, Section, markdown_to_html, write_report


class PageParser(HTMLParser):
    """Counts tables and their rows, and collects img sources and link targets."""

    def __init__(self):
        super().__init__()
        self.tables, self.rows, self.images, self.links, self.cells = 0, 0, [], [], []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tables += tag == "table"
        self.rows += tag == "tr"
        self._in_cell = tag in ("td", "th")
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "a":
            self.links.append(attrs["href"])

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data)

    def handle_endtag(self, tag):
        self._in_cell = False


def check_page(page: Path) -> PageParser:
    """Parse a report page; every embedded image decodes as PNG and every relative link resolves."""
    parser = PageParser()
    parser.feed(page.read_text(encoding="utf-8"))
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    for href in parser.links:
        if not href.startswith("#"):
            assert (page.parent / href).exists(), href
    return parser


def test_markdown_tables_become_html_tables():
    html = markdown_to_html("# Title\n\n| a | b <x> |\n|---|---|\n| 1 | 2 |\n| 3 | 4 |\n\nA note.")
    parser = PageParser()
    parser.feed(html)
    assert parser.tables == 1 and parser.rows == 3
    assert [c.strip() for c in parser.cells] == ["a", "b <x>", "1", "2", "3", "4"]
    assert "<p>A note.</p>" in html and "&lt;x&gt;" in html


def _page(tmp_path) -> Path:
    grid = save_grid(tmp_path / "grid.png", [np.zeros((16, 16), np.float32), np.ones((16, 16), np.float32)], columns=2)
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "results.md").write_text("x")
    ours = "| Training set | Lung |\n|---|---|\n| Sin-TS | 50.0 |"
    section = Section("Segmentation", ["text"], [("DSC", ours, published.COSINGAN_TABLE4), ("alone", ours, None)],
                      images=[(grid, "a grid"), (tmp_path / "missing.png", "left out")], links=[(tmp_path / "stage" / "results.md", "results")])
    return write_report(tmp_path, "Test report", [section, Section("Other", tables=[("t", ours, PaperTable(ours, "someone"))])])


def test_report_has_our_and_published_tables_images_and_links(tmp_path):
    page = _page(tmp_path)
    parser = check_page(page)
    assert parser.tables == 5  # ours + Table 4, ours alone, ours + "someone"
    assert len(parser.images) == 1 and parser.links.count("../stage/results.md") == 1
    text = page.read_text()
    assert "Zhang et al. 2020, CoSinGAN, Table 4" in text and "different" in text  # citation and the scale note
    assert "76.6 (56.9, 99.4)" in text  # a published OC-TS UNet infection DSC


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")
def test_chromium_loads_the_report(tmp_path):
    page = _page(tmp_path)
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    parser = PageParser()
    parser.feed(dom)
    assert parser.tables == 5 and len(parser.images) == 1
    assert "Test report" in dom and "76.6 (56.9, 99.4)" in dom
