"""``spectran serve`` over real HTTP: a server subprocess on 127.0.0.1 (a free port, bounded
timeouts, always stopped) and a real client. Correctness against :class:`Recommender`, every
class of bad request, concurrency, adding items with a token, graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")
pytest.importorskip("starlette")

from spectran.cli import main  # noqa: E402
from spectran.serve.launch import ServerProcess  # noqa: E402
from spectran.serve.recommend import Recommender  # noqa: E402

TIMEOUT = httpx.Timeout(20.0)
TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    """A run on the synthetic dataset (fake encoder, 1 epoch, one thread) and its cache folder."""
    cache = tmp_path_factory.mktemp("serve-cache")
    out = tmp_path_factory.mktemp("serve-run") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECTRAN_CACHE", str(cache))
        assert main(["train", "--dataset", "synthetic", "--encoder", "fake", "--method", "spectran", "--epochs", "1",
                     "--set", "train.threads=1", "--no-progress", "--out", str(out)]) == 0
        rec = Recommender.from_run(out)
    return out, cache, rec


def server_env(cache, **extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SPECTRAN_SERVE_TOKEN"}
    return env | {"SPECTRAN_CACHE": str(cache)} | extra


@pytest.fixture(scope="module")
def server(synthetic_run):
    run, cache, _ = synthetic_run
    proc = ServerProcess(run, ["--max-wait-ms", "20", "--threads", "1", "--max-history", "200", "--max-k", "100",
                               "--max-body", "20000"], env=server_env(cache))
    proc.start()
    yield proc
    proc.stop(timeout=30)
    proc.kill()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=TIMEOUT, trust_env=False) as c:
        yield c


HISTORIES = [([1, 2, 3], 10, True), ([5], 5, True), ([7, 7, 8, 40, 2], 20, False), (list(range(1, 60)), 3, True)]


@pytest.mark.parametrize(("history", "k", "exclude"), HISTORIES)
def test_same_top_k_as_the_recommender(synthetic_run, client, history, k, exclude):
    rec = synthetic_run[2]
    r = client.post("/recommend", json={"history": history, "k": k, "exclude_history": exclude})
    assert r.status_code == 200, r.text
    got = r.json()["items"]
    want = rec.recommend(history, k=k, exclude_history=exclude)
    assert [i["id"] for i in got] == [i for i, _ in want]
    assert [i["score"] for i in got] == pytest.approx([s for _, s in want], rel=1e-5, abs=1e-5)
    assert [i["rank"] for i in got] == list(range(1, len(want) + 1))
    for item in got:  # every item carries id, original id, text and score
        row = rec.catalog.row_of[str(item["id"])]
        assert item["original_id"] == rec.catalog.originals[row] and item["text"] == rec.catalog.texts[row] != ""


def test_candidates_restrict_the_answer(synthetic_run, client):
    rec = synthetic_run[2]
    cands = [4, 9, 16, 25, 36, 1]
    r = client.post("/recommend", json={"history": [1, 2], "k": 3, "candidates": cands})
    assert r.status_code == 200, r.text
    got = [i["id"] for i in r.json()["items"]]
    everything = [i for i, _ in rec.recommend([1, 2], k=len(rec.catalog))]
    assert got == [i for i in everything if i in cands][:3]  # 1 is in the history: excluded


def test_lookup_search_health_and_meta(synthetic_run, client):
    rec = synthetic_run[2]
    r = client.get("/items/7")
    assert r.status_code == 200 and r.json() == {"id": 7, "original_id": "7", "text": rec.catalog.texts[6]}
    word = rec.catalog.texts[6].split()[0]
    found = client.get("/items", params={"q": word, "limit": 5}).json()["items"]
    assert 1 <= len(found) <= 5 and all(word.lower() in i["text"].lower() for i in found)
    assert client.get("/health").json()["status"] == "ok"
    meta = client.get("/meta").json()
    assert meta["catalog"] == {"items": len(rec.catalog), "trained": len(rec.catalog), "added": 0}
    assert meta["settings"]["model"]["method"] == "spectran" and "ndcg@10" in meta["metrics"]["test"]
    assert meta["writes"] is False and meta["limits"]["max_k"] == 100


BAD = [  # (body or raw bytes, status, field)
    (b'{"history": [1, 2', 400, "body"),
    (b"\xff\xfe", 400, "body"),
    (b"[1, 2]", 400, "body"),
    ({"history": [1, 99999]}, 422, "history"),
    ({"history": [1, "nope"]}, 422, "history"),
    ({"history": [1, [2]]}, 422, "history"),
    ({"history": [1], "candidates": [3, 99999]}, 422, "candidates"),
    ({"history": [1], "k": 0}, 422, "k"),
    ({"history": [1], "k": 101}, 422, "k"),
    ({"history": [1], "k": "5"}, 422, "k"),
    ({"history": [1], "k": 2.5}, 422, "k"),
    ({"history": [1], "k": True}, 422, "k"),
    ({"history": "1 2 3"}, 422, "history"),
    ({"history": []}, 422, "history"),
    ({}, 422, "history"),
    ({"history": list(range(1, 100)) * 3}, 422, "history"),
    ({"history": [1], "exclude_history": "yes"}, 422, "exclude_history"),
    ({"history": [1], "candidates": "all"}, 422, "candidates"),
    ({"history": [1], "id_kind": "asin"}, 422, "id_kind"),
    ({"history": [1], "user": 3}, 422, "user"),
    (b'{"history": [' + b"1, " * 8000 + b"1]}", 413, "body"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD)
def test_every_bad_request_gets_a_4xx_naming_the_field(server, client, body, status, field):
    r = client.post("/recommend", content=body) if isinstance(body, bytes) else client.post("/recommend", json=body)
    assert r.status_code == status, r.text
    err = r.json()
    assert err["field"] == field and field in err["error"]
    assert server.alive() and client.get("/health").status_code == 200


def test_other_bad_requests(server, client):
    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(40):
            yield b" " * 1000

    r = client.post("/recommend", content=chunks())
    assert r.status_code == 413 and r.json()["field"] == "body"
    for r, status, field in [(client.get("/items/99999"), 404, "id"), (client.get("/nothing"), 404, "path"),
                             (client.get("/items", params={"q": "a", "limit": "0"}), 422, "limit"),
                             (client.put("/recommend", json={}), 405, "method"),
                             (client.post("/items", json={"items": []}), 403, "authorization")]:
        assert r.status_code == status and r.json()["field"] == field, r.text
    assert server.alive()


def test_many_clients_at_once_get_the_serial_answers(server, client):
    queries = [{"history": [1 + i % 50, 2 + (i * 7) % 50, 3 + (i * 13) % 50], "k": 5 + i % 10} for i in range(64)]
    serial = [client.post("/recommend", json=q).json()["items"] for q in queries]
    before = client.get("/meta").json()["batching"]

    async def together():
        async with httpx.AsyncClient(base_url=server.url, timeout=TIMEOUT, trust_env=False,
                                     limits=httpx.Limits(max_connections=64)) as c:
            return await asyncio.gather(*(c.post("/recommend", json=q) for q in queries))

    answers = asyncio.run(together())
    assert [r.status_code for r in answers] == [200] * len(queries)
    for got, want in zip([r.json()["items"] for r in answers], serial, strict=True):
        assert [i["id"] for i in got] == [i["id"] for i in want]
        assert [i["score"] for i in got] == pytest.approx([i["score"] for i in want], rel=1e-5, abs=1e-5)
    after = client.get("/meta").json()["batching"]
    assert after["items"] - before["items"] == len(queries)
    assert after["batches"] - before["batches"] < len(queries)  # some requests shared a forward pass


def test_adding_items_needs_the_token(synthetic_run, tmp_path):
    run, cache, _ = synthetic_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    new = {"items": [{"item": "NEW-1", "text": "red lamp collection 1"}, {"item": "NEW-2", "text": "blue mug"}]}
    with ServerProcess(copy, ["--threads", "1"], env=server_env(cache, SPECTRAN_SERVE_TOKEN=TOKEN)) as server, \
            httpx.Client(base_url=server.url, timeout=TIMEOUT, trust_env=False) as c:
        assert c.get("/meta").json()["writes"] is True
        assert c.post("/items", json=new).status_code == 401
        assert c.post("/items", json=new, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        r = c.post("/items", json=new, headers=auth)
        assert r.status_code == 201, r.text
        assert [i["id"] for i in r.json()["added"]] == ["NEW-1", "NEW-2"]
        again = c.post("/items", json=new, headers=auth)
        assert again.status_code == 422 and "already in the catalog" in again.json()["error"]
        bad = c.post("/items", json={"items": [{"item": "X"}]}, headers=auth)
        assert bad.status_code == 422 and bad.json()["field"] == "items" and "'text'" in bad.json()["error"]
        top = c.post("/recommend", json={"history": ["NEW-1", 3], "k": 200}).json()["items"]
        assert "NEW-2" in [i["id"] for i in top]
        assert c.get("/items/NEW-2").json() == {"id": "NEW-2", "original_id": "NEW-2", "text": "blue mug"}
    # the items were saved with the run: a fresh Recommender sees them, as the server did
    assert Recommender.from_run(copy).catalog.row_of["NEW-2"] == len(synthetic_run[2].catalog) + 1


def test_sigterm_drains_the_requests_in_flight(synthetic_run):
    run, cache, rec = synthetic_run
    # requests wait up to 1 s for a batch: SIGTERM arrives while they are in flight
    proc = ServerProcess(run, ["--threads", "1", "--max-wait-ms", "1000", "--max-batch", "100"], env=server_env(cache))
    proc.start()
    results: list[httpx.Response | Exception] = []

    def ask(h):
        try:
            with httpx.Client(base_url=proc.url, timeout=TIMEOUT, trust_env=False) as c:
                results.append(c.post("/recommend", json={"history": h, "k": 4}))
        except httpx.HTTPError as exc:
            results.append(exc)

    try:
        threads = [threading.Thread(target=ask, args=([i + 1, i + 2],)) for i in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        start = time.perf_counter()
        code = proc.stop(timeout=30)
        for t in threads:
            t.join(30)
    finally:
        proc.kill()
    assert code == 0, "".join(proc.stderr_lines)
    assert time.perf_counter() - start < 20
    assert all(isinstance(r, httpx.Response) and r.status_code == 200 for r in results), results
    got = sorted([i["id"] for i in r.json()["items"]] for r in results)
    assert got == sorted([i for i, _ in rec.recommend([i + 1, i + 2], k=4)] for i in range(4))
    assert "stopped serving" in "".join(proc.stderr_lines)
    with pytest.raises(httpx.ConnectError):
        httpx.get(proc.url + "/health", timeout=5, trust_env=False)
