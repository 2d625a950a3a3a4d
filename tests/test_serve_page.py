"""The page at ``/`` in headless Chromium: the search, the history and the top-K with titles render
(the DOM after its JavaScript ran), and a screenshot is taken. Skipped, with the reason, where
Chromium is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from urllib.parse import quote

import pytest

pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from spectran.serve.launch import ServerProcess
from test_serve_http import server_env, synthetic_run  # noqa: F401 - the trained run fixture

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--virtual-time-budget=15000", "--window-size=1200,1000"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("needs Chromium for the page test: install the Debian package 'chromium'")


class _Cells(HTMLParser):
    """Text of the cells of table#top's body rows, and of the elements by id."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self.by_id: dict[str, str] = {}
        self._in_top = self._in_cell = False
        self._open_ids: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "top":
            self._in_top = True
        if self._in_top and tag == "tr":
            self.rows.append([])
        if self._in_top and tag == "td":
            self._in_cell = True
            self.rows[-1].append("")
        if "id" in a:
            self._open_ids.append((tag, a["id"]))
            self.by_id[a["id"]] = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self._in_top = False
        if tag == "td":
            self._in_cell = False
        if self._open_ids and self._open_ids[-1][0] == tag:
            self._open_ids.pop()

    def handle_data(self, data):
        if self._in_cell:
            self.rows[-1][-1] += data
        for _, name in self._open_ids:
            self.by_id[name] += data


def _browse(chromium: str, url: str, profile, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args, url], capture_output=True,
                          text=True, timeout=120, check=False, env=dict(os.environ, HOME=str(profile)))


def test_the_page_shows_the_top_k_with_titles(tmp_path, request):
    chromium = _chromium()
    run, cache, rec = request.getfixturevalue("synthetic_run")
    history = [3, 11, 19]
    word = rec.catalog.texts[10].split()[0]
    with ServerProcess(run, ["--threads", "1"], env=server_env(cache)) as server:
        url = f"{server.url}/?history={','.join(map(str, history))}&k=5&q={quote(word)}"
        dom = _browse(chromium, url, tmp_path / "profile-dom", "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        shot = tmp_path / "page.png"
        png = _browse(chromium, url, tmp_path / "profile-shot", f"--screenshot={shot}")
        assert png.returncode == 0, png.stderr[-2000:]
    page = _Cells()
    page.feed(dom.stdout)
    assert 'data-ready="top-5"' in dom.stdout, dom.stdout[-3000:]
    want = rec.recommend(history, k=5)
    cells = [r for r in page.rows if r]
    assert [int(r[1]) for r in cells] == [i for i, _ in want]  # the top-K of this history, in order
    assert [r[3] for r in cells] == [rec.catalog.texts[rec.catalog.row_of[str(i)]] for i, _ in want]  # titles
    assert [float(r[4]) for r in cells] == pytest.approx([s for _, s in want], abs=1e-4)
    for item in history:  # the history lists its items' texts
        assert rec.catalog.texts[item - 1] in page.by_id["history"]
    assert word in page.by_id["results"] and "spectran" in page.by_id["run"]
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    keep = os.environ.get("SPECTRAN_SCREENSHOT_DIR")
    if keep:  # where a person can look at it
        shutil.copy(shot, os.path.join(keep, "serve_page.png"))
