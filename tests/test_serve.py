"""Serving: chunked top-K, chunked ranks, recommend, add-items (cold start), safetensors export."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import tiny_settings
from spectran.api import train
from spectran.cli import main
from spectran.data.batches import SequenceArrays
from spectran.errors import ConfigError, DataError
from spectran.eval.evaluate import rank_targets
from spectran.serve.recommend import Recommender, recommend, topk_chunked


def test_topk_chunked_equals_full_topk():
    g = torch.Generator().manual_seed(0)
    user, table = torch.randn(5, 8, generator=g), torch.randn(103, 8, generator=g)
    full = (user @ table.T).topk(7, dim=1)
    for chunk in (1, 10, 50, 103, 1000):
        s, i = topk_chunked(user, table, 7, chunk=chunk)
        assert torch.equal(i, full.indices) and torch.allclose(s, full.values)
    excl = [torch.tensor([int(full.indices[b, 0])]) for b in range(5)]
    s, i = topk_chunked(user, table, 7, chunk=10, exclude=excl)
    assert all(int(i[b, 0]) != int(full.indices[b, 0]) for b in range(5))
    assert int(i[0, 0]) == int(full.indices[0, 1])
    assert topk_chunked(user, table, 500, chunk=10)[1].shape == (5, 103)  # k > N: every item once


class _Fixed(torch.nn.Module):
    """A 'model' whose user vector is the last item's row: ranks are easy to reason about."""

    num_items = 0

    def hidden(self, seqs, table):
        lookup = torch.cat([table.new_zeros(1, table.shape[1]), table])
        return lookup[seqs]

    scores = staticmethod(lambda user, table: user @ table.T)


class _Causal:
    def query(self, seqs, lengths):
        return seqs, lengths - 1


@pytest.mark.parametrize("ties", [False, True])
def test_chunked_ranks_equal_full_ranks(ties):
    g = torch.Generator().manual_seed(1)
    N, U = 57, 40
    table = torch.randn(N, 4, generator=g)
    if ties:
        table = table.round()  # many equal scores: pessimistic ties must agree across chunks
    seqs = torch.randint(1, N + 1, (U, 3), generator=g).numpy()
    arrays = SequenceArrays(seqs, np.full(U, 3), np.arange(U))
    targets = torch.randint(1, N + 1, (U,), generator=g).numpy()
    history = list(seqs)
    for hist in (None, history):
        full = rank_targets(_Fixed(), _Causal(), arrays, targets, 16, torch.device("cpu"), hist, table=table)
        for chunk in (5, 13, 56):
            chunked = rank_targets(_Fixed(), _Causal(), arrays, targets, 16, torch.device("cpu"), hist,
                                   table=table, item_chunk=chunk)
            assert np.array_equal(full, chunked), (chunk, hist is None)


@pytest.fixture(scope="module")
def spectran_run(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECTRAN_CACHE", str(tmp_path_factory.mktemp("servecache")))
        out = tmp_path_factory.mktemp("run") / "spectran"
        train(tiny_settings(model={"method": "spectran"}), out)
    return out


def test_recommend_matches_a_full_scoring(spectran_run):
    rec = Recommender.from_run(spectran_run)
    history = [3, 11, 19]
    items = rec.recommend(history, k=5)
    assert len(items) == 5 and not {i for i, _ in items} & set(history)
    scores = [s for _, s in items]
    assert scores == sorted(scores, reverse=True)
    # brute force: every item's score for this history, history removed
    from spectran.eval.evaluate import user_representations

    seqs = torch.tensor([history])
    user = user_representations(rec.model, rec.objective, seqs, torch.tensor([3]), rec.table)
    all_scores = (user @ rec.table.T)[0]
    all_scores[torch.tensor(history) - 1] = float("-inf")
    assert [i for i, _ in items] == (all_scores.topk(5).indices + 1).tolist()
    assert recommend(spectran_run, history, k=5) == items  # the one-shot library call
    kept = rec.recommend(history, k=120, exclude_history=False)
    assert len(kept) == 120 and set(history) <= {i for i, _ in kept}
    with pytest.raises(DataError, match="item 999"):
        rec.recommend([999])


def test_added_items_are_recommendable(spectran_run, tmp_path):
    from spectran.data.prepare import prepare
    from spectran.serve.add_items import add_items
    from spectran.text.encoders import load_encoder

    before = Recommender.from_run(spectran_run)
    ds = prepare(before.settings.data)
    texts = [ds.item_records[i]["text"] for i in range(3)]  # new items that read like items 1-3
    new = tmp_path / "new.jsonl"
    new.write_text("".join(json.dumps({"item": 1000 + i, "text": t}) + "\n" for i, t in enumerate(texts)))
    assert main(["add-items", str(spectran_run), "--items", str(new)]) == 0
    rec = Recommender.from_run(spectran_run)
    assert len(rec.table) == len(before.table) + 3
    assert torch.equal(rec.table[:len(before.table)], before.table)  # trained items untouched
    # each added row is the run's text encoder + the item encoder's cold-start hook
    E = torch.from_numpy(load_encoder(rec.settings.text).encode(texts))
    with torch.no_grad():
        expected = rec.model.item_encoder.embed_new_items(E)
    assert torch.allclose(rec.table[rec.rows([1000, 1001, 1002])], expected, atol=1e-5)
    # they are candidates (finite scores) and may appear in histories
    everything = rec.recommend([1, 2], k=len(rec.table))
    assert {1000, 1001, 1002} <= {i for i, _ in everything}
    assert len(rec.recommend([1000, 2], k=3)) == 3
    with pytest.raises(DataError, match="already in the catalog"):
        add_items(spectran_run, new)


def test_add_items_to_an_id_run_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "id"
    train(tiny_settings(), out)
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"item": 500, "text": "red lamp"}) + "\n")
    assert main(["add-items", str(out), "--items", str(new)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "method 'id'" in err[0] and "cannot embed new items" in err[0]
    assert not (out / "new_items.safetensors").exists()
    with pytest.raises(ConfigError):
        from spectran.serve.add_items import add_items

        add_items(out, new)


def test_add_items_under_standardised_input_is_a_clear_error(tmp_path, capsys):
    """Per-dimension standardisation needs the catalog's statistics, which a run does not keep."""
    out = tmp_path / "std"
    train(tiny_settings(model={"method": "spectran"}, text={"normalize": "standard"}), out)
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"item": 500, "text": "red lamp"}) + "\n")
    assert main(["add-items", str(out), "--items", str(new)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "text.normalize=standard" in err[0]
    assert not (out / "new_items.safetensors").exists()


def test_export_safetensors_round_trip(spectran_run, tmp_path, capsys):
    from safetensors.torch import load_file

    assert main(["export", str(spectran_run), "--out", str(tmp_path / "exp")]) == 0
    info = json.loads((tmp_path / "exp" / "model.json").read_text())
    emb = load_file(str(tmp_path / "exp" / "item_embeddings.safetensors"))["embeddings"]
    trained = np.load(spectran_run / "item_embeddings.npy")
    assert info["trained_items"] == len(trained) and emb.shape[0] == info["num_items"]
    assert np.allclose(emb[:len(trained)].numpy(), trained, atol=1e-6)
    state = load_file(str(tmp_path / "exp" / "model.safetensors"))
    rec = Recommender.from_run(spectran_run)
    rec.model.load_state_dict(state)  # the exported weights are the model's, key for key


def test_recommend_cli_prints_k_rows(spectran_run, capsys):
    assert main(["recommend", str(spectran_run), "--history", "3 11 19", "--k", "4"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert len(rows) == 2 + 4 and rows[1].split()[:2] == ["rank", "id"] and rows[2].split()[0] == "1"
    assert main(["recommend", str(spectran_run), "--history", "3 abc"]) == 2
    assert "'abc'" in capsys.readouterr().err


def test_masked_backbone_keeps_its_mask_token_after_items_are_added(tmp_path):
    """BERT4Rec queries end with [MASK], whose row moves when items are appended to the table."""
    from spectran.serve.add_items import add_items

    out = tmp_path / "bert"
    train(tiny_settings(model={"method": "spectran", "backbone": "bert4rec"}), out)
    before = dict(Recommender.from_run(out).recommend([3, 11, 19], k=20))
    new = tmp_path / "new.jsonl"
    new.write_text(json.dumps({"item": 777, "text": "red lamp collection 0"}) + "\n")
    add_items(out, new)
    after = Recommender.from_run(out).recommend([3, 11, 19], k=21)
    same = {i: s for i, s in after if i != 777}
    assert set(before) <= set(same)
    for item, score in before.items():  # same user vector: [MASK] did not turn into item 777
        assert same[item] == pytest.approx(score, abs=1e-5)
