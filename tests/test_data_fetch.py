"""spectran data fetch against a loopback mirror: what it builds equals the staged sets; every
failure is one line naming the file and URL, a non-zero exit, and nothing that looks complete."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import pytest

from http_mirror import mirror_files, serve
from spectran.cli import main
from spectran.data.catalog import CATALOG

STAGED = Path(os.environ["SPECTRAN_DATA"]) if os.environ.get("SPECTRAN_DATA") else None
CHEAP = ("office", "ml-100k")  # the others take 5-15 s each to build: SPECTRAN_FETCH_ALL=1


def _staged_files(name: str) -> dict[str, bytes]:
    if STAGED is None:
        pytest.skip("SPECTRAN_DATA is not set: no staged sets to compare with")
    if name not in CHEAP and not os.environ.get("SPECTRAN_FETCH_ALL"):
        pytest.skip(f"{name}: set SPECTRAN_FETCH_ALL=1 to build it too (slow)")
    files = mirror_files(STAGED, name)
    if files is None:
        pytest.skip(f"{name}: not staged with its raw/ files under {STAGED}")
    return files


def _items(path: Path) -> list[tuple[int, str, str]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [(r["item"], r.get("orig_id", ""), r["text"]) for r in rows]


@pytest.mark.parametrize("name", ["office", "ml-100k", "toys", "clothing", "beauty"])
def test_fetch_builds_the_staged_set(tmp_path, capsys, name):
    files = _staged_files(name)
    with serve(files) as mirror:
        assert main(["data", "fetch", name, "--data-dir", str(tmp_path), "--mirror", mirror.url,
                     "--no-progress"]) == 0
    built, staged = tmp_path / name, STAGED / name
    assert (built / "sequences.txt").read_bytes() == (staged / "sequences.txt").read_bytes()
    assert _items(built / "items.jsonl") == _items(staged / "items.jsonl")
    assert json.loads((built / "stats.json").read_text()) == json.loads((staged / "stats.json").read_text())
    assert "Licence:" in (built / "SOURCE.md").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary folder left
    assert f"{name}: built" in capsys.readouterr().out


def test_second_fetch_is_a_no_op_and_force_rebuilds(tmp_path, capsys, monkeypatch):
    files = _staged_files("office")
    with serve(files) as mirror:
        monkeypatch.setenv("SPECTRAN_MIRROR", mirror.url)  # the environment variable as the mirror
        args = ["data", "fetch", "office", "--data-dir", str(tmp_path), "--no-progress"]
        assert main(args) == 0
        first = len(mirror.requests)
        assert first == len(CATALOG["office"].files)
        (tmp_path / "office" / "marker").write_text("x")
        assert main(args) == 0
        assert len(mirror.requests) == first
        assert "already present" in capsys.readouterr().out
        assert main([*args, "--force"]) == 0
        assert len(mirror.requests) == 2 * first
    assert not (tmp_path / "office" / "marker").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["office"]


@pytest.fixture
def fake_office(monkeypatch) -> dict[str, bytes]:
    """Stand-in content for office's paths, with the catalog's checksums patched to match it:
    the failure tests need no real data, and the files before the failing one download fine."""
    ds = CATALOG["office"]
    files = {"/" + f.mirror_path: f"content of {f.name}\n".encode() * 2000 for f in ds.files}
    patched = tuple(dataclasses.replace(f, sha256=hashlib.sha256(files["/" + f.mirror_path]).hexdigest())
                    for f in ds.files)
    monkeypatch.setitem(CATALOG, "office", dataclasses.replace(ds, files=patched))
    return files


def _fails(capsys, root: Path, mirror_url: str, *extra: str) -> str:
    rc = main(["data", "fetch", "office", "--data-dir", str(root), "--mirror", mirror_url, "--no-progress", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error: office/"), err
    assert not (root / "office").exists()
    assert [p.name for p in root.iterdir()] == []  # no partial folder, no .part file
    return err[0]


@pytest.mark.parametrize("mode, message", [
    ("404", "HTTP 404"),
    ("truncate", "truncated download"),
    ("reset", "connection lost"),
])
def test_failures_name_file_and_url(tmp_path, capsys, fake_office, mode, message):
    files = fake_office
    second = CATALOG["office"].files[1]
    with serve(files) as mirror:
        mirror.mode["/" + second.mirror_path] = mode
        line = _fails(capsys, tmp_path, mirror.url)
    assert message in line and f"office/{second.name}" in line and f"{mirror.url}/{second.mirror_path}" in line


def test_wrong_checksum(tmp_path, capsys, fake_office):
    files = fake_office
    second = CATALOG["office"].files[1]
    files["/" + second.mirror_path] = b"not what was recorded"
    with serve(files) as mirror:
        line = _fails(capsys, tmp_path, mirror.url)
    got = hashlib.sha256(b"not what was recorded").hexdigest()
    assert "checksum mismatch" in line and second.sha256 in line and got in line
    assert f"{mirror.url}/{second.mirror_path}" in line


def test_stalled_server_times_out(tmp_path, capsys, fake_office):
    files = fake_office
    first = CATALOG["office"].files[0]
    with serve(files) as mirror:
        mirror.mode["/" + first.mirror_path] = "stall"
        line = _fails(capsys, tmp_path, mirror.url, "--timeout", "0.5")
    assert "timed out" in line and first.mirror_path in line


def test_unreachable_mirror(tmp_path, capsys):
    with serve({}) as mirror:
        url = mirror.url
    line = _fails(capsys, tmp_path, url)  # the server is gone before the first request
    assert "cannot reach" in line and url in line
    assert "offline? --mirror URL" in line and "--dataset synthetic needs no download" in line


def test_unverified_set_is_refused_without_the_flag(tmp_path, capsys):
    rc = main(["data", "fetch", "sports", "--data-dir", str(tmp_path), "--mirror", "http://127.0.0.1:9"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "--trust-first-download" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_list_shows_presence(tmp_path, capsys):
    (tmp_path / "office").mkdir()
    for n in ("sequences.txt", "items.jsonl", "stats.json"):
        (tmp_path / "office" / n).write_text("")
    assert main(["data", "list", "--data-dir", str(tmp_path)]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == set(CATALOG)
    assert "yes" in rows["office"] and "no" in rows["beauty"]
    assert "unknown" in rows["sports"] and "recorded" in rows["office"]


def test_trusted_first_download_with_a_wrong_layout_fails_cleanly(tmp_path, capsys):
    files = {"/" + f.mirror_path: b"1 2 3\n" for f in CATALOG["sports"].files}
    with serve(files) as mirror:
        rc = main(["data", "fetch", "sports", "--data-dir", str(tmp_path), "--mirror", mirror.url,
                   "--trust-first-download", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: sports/datamaps.json: invalid JSON"), err
    assert list(tmp_path.iterdir()) == []
