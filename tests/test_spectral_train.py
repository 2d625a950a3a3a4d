"""Every SVD-family method and SpecTran ablation trains one tiny epoch with SASRec (synthetic data)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import spectran.assemble as experiment
import spectran.text.api as text_api
from spectran.api import train
from spectran.assemble import assemble_run
from spectran.settings import resolve
from spectran.train.checkpoint import load_checkpoint

CASES = {
    "pca_init": {},
    "pca_init raw": {"source": "raw"},
    "svd_frozen": {},
    "svd_frozen whitened concat": {"weighting": "one", "fusion": "concat"},
    "alphafuse": {"null_dim": 4},
    "spectran": {},
    "spectran softmax gate-fusion": {"attention": "softmax", "fusion": "gate", "heads": 2, "head_dim": 4},
    "spectran w/o attention": {"attention": "none", "learn_position": True},
    "spectran w/o position": {"position": False, "learn_shrink": False},
    "spectran learned gate": {"gate_init": 0.1, "learn_gate": True, "rank": 8},
    "spectran signal": {"position_by": "signal"},
    "spectran signal w/o attention": {"position_by": "signal", "attention": "none"},
}


@pytest.fixture()
def semantic_stub(tmp_path, monkeypatch):
    """Serve a fixed random E for the synthetic items and cache its basis under tmp_path."""
    def semantic_matrix(s, ds):
        rng = np.random.default_rng(0)
        return (rng.normal(size=(ds.num_items, 24)) * np.geomspace(3, 0.1, 24)).astype(np.float32)

    monkeypatch.setattr(experiment, "semantic_matrix", semantic_matrix)
    monkeypatch.setattr(text_api, "embedding_path", lambda ds, text_settings: tmp_path / "E.npy")


def settings(tmp_path, method: str, overrides: dict):
    return resolve({
        "data": {"dataset": "synthetic", "cache_dir": str(tmp_path / "cache")},
        "model": {"method": method, "dim": 16},
        "backbone": {"layers": 1, "heads": 1, "inner": 32},
        "method": overrides,
        "train": {"epochs": 1, "batch_size": 128, "progress": False, "threads": 1},
    })


@pytest.mark.parametrize("label", list(CASES))
def test_method_trains_one_epoch_with_sasrec(tmp_path, semantic_stub, label):
    method = label.split()[0]
    s = settings(tmp_path, method, CASES[label])
    exp = assemble_run(s)
    before = {n: p.detach().clone() for n, p in exp.model.item_encoder.named_parameters() if p.requires_grad}
    metrics = train(s, tmp_path / "run", exp)
    assert metrics["epochs"] == 1
    assert all(0 <= v <= 1 for k, v in metrics["test"].items() if k != "mean_rank")
    assert math.isfinite(metrics["test"]["mean_rank"]) and metrics["test"]["ndcg@10"] > 0
    after = dict(exp.model.item_encoder.named_parameters())
    assert any(not torch.equal(before[n], after[n].detach()) for n in before)  # the encoder learned
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")["model"]
    assert not any(k.endswith(("coords", "frozen", "projector.proj")) for k in state)  # derived data not stored


def test_spectran_run_reloads_to_the_same_table(tmp_path, semantic_stub):
    """A reloaded SpecTran run rebuilds its spectral buffers and reproduces the saved item table."""
    from spectran.api import load_run

    s = settings(tmp_path, "spectran", {})
    train(s, tmp_path / "run")
    exp = load_run(tmp_path / "run")
    with torch.no_grad():
        table = exp.model.item_table().numpy()
    np.testing.assert_allclose(table, np.load(tmp_path / "run" / "item_embeddings.npy"), atol=1e-6)


def test_unseen_ids_zero_scores_never_trained_items_by_their_semantic_part(tmp_path, semantic_stub, monkeypatch):
    """model.unseen_ids=zero: the ID rows of items without training interactions stay exactly zero
    through training, so their rows are the semantic part alone; test_cold is reported for them."""
    from spectran.data.prepare import PreparedDataset

    real_counts = PreparedDataset.train_item_counts
    cold_items: list[int] = []

    def counts(self):
        c = real_counts(self).copy()
        cold_items[:] = sorted(set(self.targets("test")[:10].tolist()))  # 1-based ids
        c[np.array(cold_items) - 1] = 0
        return c

    monkeypatch.setattr(PreparedDataset, "train_item_counts", counts)
    s = settings(tmp_path, "spectran", {})
    s.model.unseen_ids = "zero"
    exp = assemble_run(s)
    metrics = train(s, tmp_path / "run", exp)
    unseen = exp.context.train_counts == 0
    assert unseen.sum().item() == len(cold_items) > 0
    enc = exp.model.item_encoder.eval()
    with torch.no_grad():
        table, semantic = enc(), enc.semantic()
    torch.testing.assert_close(table[unseen], semantic[unseen])  # ID part held at zero
    assert (table[~unseen] - semantic[~unseen]).abs().sum(dim=1).min() > 0  # trained ID rows elsewhere
    assert metrics["test_cold"]["users"] >= 10


def test_unseen_ids_zero_needs_a_fused_id_table(tmp_path):
    from spectran.errors import ConfigError

    s = settings(tmp_path, "id", {})
    s.model.unseen_ids = "zero"
    with pytest.raises(ConfigError, match="unseen_ids=zero: method 'id'"):
        assemble_run(s)


@pytest.mark.parametrize("decay_scalars", [False, True])
def test_weight_decay_leaves_lambda_gate_and_beta_alone_unless_asked(tmp_path, semantic_stub, decay_scalars):
    """One AdamW step on zero gradients is pure decay: p <- p (1 - lr wd) for the decayed
    parameters; lambda, the gate and beta keep their value unless ``decay_scalars``."""
    from spectran.train.loop import make_optimizer

    s = settings(tmp_path, "spectran", {"decay_scalars": decay_scalars, "learn_position": True})
    model = assemble_run(s).model
    enc = model.item_encoder
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(model, lr=0.1, weight_decay=0.5)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    scalars = {n for n, p in model.named_parameters() if any(p is q for q in (enc.shrink, enc.gate, enc.beta))}
    assert len(scalars) == 3
    for n, p in model.named_parameters():
        factor = 1 - 0.1 * 0.5 if decay_scalars or n not in scalars else 1.0
        torch.testing.assert_close(p.detach(), before[n] * factor, rtol=0, atol=1e-7, msg=n)
