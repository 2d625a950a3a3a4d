"""The adapter family (mlp, moe, whiten_mlp, rlmrec, llmesr): shapes, gradients, hooks, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import tiny_settings
from spectran.api import train
from spectran.assemble import assemble_run
from spectran.encoders.base import ItemContext
from spectran.encoders.registry import method_spec
from spectran.errors import ConfigError
from spectran.objectives import TrainBatch
from spectran.settings import resolve
from spectran.spectral.basis import compute_basis

ADAPTERS = ["mlp", "moe", "whiten_mlp", "rlmrec", "llmesr"]
N, D, DIM = 40, 24, 8


def context(semantic=True, seed=0, offset=2.0) -> ItemContext:
    g = torch.Generator().manual_seed(seed)
    if not semantic:
        return ItemContext(N, DIM, None, None, torch.ones(N, dtype=torch.long), seed)
    E = torch.randn(N, D, generator=g) * torch.logspace(0, -1, D) + offset  # anisotropic, off-centre
    return ItemContext(N, DIM, E, compute_basis(E.numpy()), torch.ones(N, dtype=torch.long), seed)


def build(name, ctx=None, **overrides):
    spec = method_spec(name)
    torch.manual_seed(0)
    return spec.build(spec.settings(**overrides), ctx or context())


def batch(B=6, L=5, seed=1) -> TrainBatch:
    g = torch.Generator().manual_seed(seed)
    seqs = torch.randint(1, N + 1, (B, L + 1), generator=g)
    seqs[0, 3:] = 0  # a shorter, right-padded sequence
    return TrainBatch(torch.arange(B), seqs[:, :-1], seqs[:, 1:])


@pytest.mark.parametrize("name", ADAPTERS)
def test_registry_entry_is_an_adapter_that_needs_text(name):
    spec = method_spec(name)
    assert spec.name == name and spec.needs_text
    assert spec.needs_basis == (name in ("whiten_mlp", "llmesr"))  # whitening / PCA come from the SVD
    with pytest.raises(ConfigError):
        resolve({"model": {"method": name}, "method": {"no_such_setting": 1}})


@pytest.mark.parametrize("name", ADAPTERS)
def test_output_shape_and_gradients(name):
    enc = build(name).train()
    table = enc()
    views = enc.num_views
    assert table.shape == (N, views * DIM) and torch.isfinite(table).all()
    loss = table.pow(2).sum()
    hidden = torch.randn(6, 5, views * DIM, requires_grad=True)
    extra = enc.auxiliary_loss(batch(), hidden)
    assert (extra is not None) == (name in ("rlmrec", "llmesr"))  # the others keep the base's None
    if extra is not None:
        assert extra.ndim == 0 and torch.isfinite(extra) and extra.item() > 0
        loss = loss + extra
    loss.backward()
    for pname, p in enc.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        if name != "moe" or "gate" not in pname:  # zero-initialised gates get zero-ish grads early
            assert p.grad.abs().sum() > 0, pname
    # E is frozen data, not a parameter, and is not saved in checkpoints
    assert all(p.shape != (N, D) for p in enc.parameters())
    assert "semantic" not in enc.state_dict()


@pytest.mark.parametrize("name", ADAPTERS)
def test_needs_semantic_embeddings(name):
    with pytest.raises(ConfigError, match="semantic"):
        build(name, context(semantic=False))


@pytest.mark.parametrize("name", ["mlp", "moe", "whiten_mlp", "llmesr"])
def test_new_items_embed_like_trained_items_minus_their_id_part(name):
    enc = build(name).eval()
    ctx = context()
    with torch.no_grad():
        table, new = enc(), enc.embed_new_items(ctx.semantic)
    if name == "llmesr":
        # semantic view identical; collaborative view = the PCA coordinates it was initialised with
        assert torch.allclose(new, table, atol=1e-4)
    else:
        id_part = enc.fusion.id_table if enc.fusion.id_table is not None else 0.0
        assert torch.allclose(new, table - id_part, atol=1e-5)


@pytest.mark.parametrize("kind", ["zca", "pca"])
def test_whiten_mlp_whitens_all_dimensions(kind):
    enc = build("whiten_mlp", whitening=kind)
    Z = enc.whiten(context().semantic).double()
    assert torch.allclose(enc.semantic, Z.float(), atol=1e-5)  # the table is built on whitened E
    assert Z.shape == (N, D) and Z.mean(0).abs().max() < 1e-4
    cov = Z.T @ Z / N  # unit mean square per direction (c = sqrt(N))
    assert torch.allclose(cov, torch.eye(D, dtype=torch.float64), atol=1e-3)
    if kind == "zca":
        assert torch.allclose(enc.whiten.W, enc.whiten.W.T, atol=1e-3 * enc.whiten.W.abs().max())
    with torch.no_grad():
        assert (enc.eval()() >= -0.2).all()  # ends in GELU, no ID table by default


def test_whiten_mlp_scale_multiplies_the_whitened_coordinates():
    plain, scaled = build("whiten_mlp"), build("whiten_mlp", scale=0.3)
    assert torch.allclose(scaled.semantic, 0.3 * plain.semantic, atol=1e-5)
    cov = scaled.semantic.double().T @ scaled.semantic.double() / N  # still isotropic, variance 0.09
    assert torch.allclose(cov, 0.09 * torch.eye(D, dtype=torch.float64), atol=1e-3)
    new_item = context().semantic[:3]  # cold-start rows go through the same scaled whitening
    assert torch.allclose(scaled.whiten(new_item), scaled.semantic[:3], atol=1e-5)


def test_whiten_mlp_projects_through_two_layers_by_default_and_one_on_request():
    linears = lambda enc: [m for m in enc.adapter if isinstance(m, torch.nn.Linear)]  # noqa: E731
    deep, thin = build("whiten_mlp"), build("whiten_mlp", layers=1)
    assert [(m.in_features, m.out_features) for m in linears(deep)] == [(D, 256), (256, DIM)]
    assert [(m.in_features, m.out_features) for m in linears(thin)] == [(D, DIM)]
    assert isinstance(thin.adapter[-1], torch.nn.GELU) and isinstance(deep.adapter[-1], torch.nn.GELU)


def test_moe_gates_are_a_distribution_and_noise_only_in_training():
    enc = build("moe", experts=4)
    x = context().semantic
    torch.nn.init.normal_(enc.adapter.gate)
    torch.nn.init.normal_(enc.adapter.gate_noise)
    g = enc.adapter.eval().gates(x)
    assert g.shape == (N, 4) and torch.allclose(g.sum(-1), torch.ones(N), atol=1e-6) and (g >= 0).all()
    assert torch.equal(g, enc.adapter.gates(x))  # deterministic in eval
    assert not torch.allclose(enc.adapter.train().gates(x), g)


def test_rlmrec_represents_items_by_the_id_table_and_learns_the_alignment():
    for variant in ("contrastive", "generative"):
        for negatives in ("all", "batch"):
            # centred E: with a large common offset every cosine is close to 1 and the task is hard
            enc = build("rlmrec", context(offset=0.0), variant=variant, negatives=negatives)
            assert enc() is enc.weight
            rows = enc.batch_items(batch())
            assert rows.min() >= 0 and rows.max() < N and len(rows) == len(rows.unique())
            opt = torch.optim.Adam(enc.parameters(), lr=1e-2)
            first = enc.alignment_loss(rows).item()
            for _ in range(60):
                opt.zero_grad()
                enc.alignment_loss(rows).backward()
                opt.step()
            assert enc.alignment_loss(rows).item() < 0.5 * first, (variant, negatives)
    assert build("rlmrec", beta=0.0).auxiliary_loss(batch(), torch.zeros(6, 5, DIM)) is None
    with pytest.raises(ConfigError):
        build("rlmrec", variant="generative").embed_new_items(context().semantic)


def test_rlmrec_batch_items_ignore_padding_and_mask():
    enc = build("rlmrec")
    b = TrainBatch(torch.arange(2), torch.tensor([[3, N + 1, 0], [3, 5, 0]]), torch.tensor([[0, 7, 0], [5, 0, 0]]))
    assert enc.batch_items(b).tolist() == [2, 4, 6]


def test_llmesr_dual_view_layout_and_pca_initialisation():
    enc = build("llmesr")
    assert enc.num_views == 2
    table = enc()
    E = context().semantic.double()
    Xc = E - E.mean(0)
    _, evecs = torch.linalg.eigh(Xc.T @ Xc)
    pca = (Xc @ evecs[:, -DIM:].flip(1)).float()  # top-d principal coordinates, up to sign
    assert torch.allclose(table[:, DIM:].abs(), pca.abs(), atol=1e-4)  # collaborative view
    var = table[:, DIM:].var(0)
    assert (var[:-1] >= var[1:]).all()
    assert torch.allclose(table[:, :DIM], enc.adapter(context().semantic), atol=1e-6)  # semantic view
    linears = [m for m in enc.adapter if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(D, D // 2), (D // 2, DIM)]
    assert len(enc.adapter) == 2  # linear adapter: no activation between the layers


def test_llmesr_distillation_retrieves_semantically_similar_users():
    enc = build("llmesr", similar_users=1)
    # users 0 and 1 share their items, users 2 and 3 share theirs
    inputs = torch.tensor([[1, 2, 3, 0], [3, 2, 1, 1], [10, 11, 0, 0], [11, 10, 10, 0]])
    assert enc.similar_users(inputs)[:, 0].tolist() == [1, 0, 3, 2]
    b = TrainBatch(torch.arange(4), inputs, inputs)
    same = torch.ones(4, 4, 2 * DIM)
    assert enc.auxiliary_loss(b, same).item() == pytest.approx(0.0, abs=1e-7)  # teacher == student
    hidden = torch.randn(4, 4, 2 * DIM, requires_grad=True)
    loss = enc.auxiliary_loss(b, hidden)
    last = torch.tensor([2, 3, 1, 2])
    user = hidden[torch.arange(4), last]
    expected = 0.1 * ((user - user[[1, 0, 3, 2]]) ** 2).mean()  # alpha * MSE to the partner
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    loss.backward()
    assert hidden.grad.abs().sum() > 0
    assert build("llmesr", distill=False).auxiliary_loss(b, hidden) is None


@pytest.mark.slow
@pytest.mark.parametrize("name", ADAPTERS)
def test_each_adapter_trains_one_epoch_with_sasrec(name, tmp_path):
    s = tiny_settings(model={"method": name}, train={"epochs": 1})
    exp = assemble_run(s)
    before = {k: v.clone() for k, v in exp.model.item_encoder.state_dict().items()}
    m = train(s, tmp_path / name, exp=exp)
    after = exp.model.item_encoder.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # the encoder learned
    views = int(getattr(exp.model.item_encoder, "num_views", 1))
    emb = np.load(tmp_path / name / "item_embeddings.npy")
    assert emb.shape == (exp.data.num_items, views * 16) and np.isfinite(emb).all()
    assert 0.0 <= m["test"]["ndcg@10"] <= 1.0 and m["epochs"] == 1
    # the best checkpoint reloads into a freshly built model (E and fits are rebuilt, not stored)
    from spectran.api import evaluate

    assert evaluate(tmp_path / name, "test") == m["test"]


@pytest.mark.slow
def test_the_training_loop_adds_the_auxiliary_loss(tmp_path):
    def alignment_after_training(beta, out):
        s = tiny_settings(model={"method": "rlmrec"}, method={"beta": beta}, train={"epochs": 2})
        exp = assemble_run(s)
        train(s, out, exp=exp)
        enc = exp.model.item_encoder.eval()
        with torch.no_grad():
            return enc.alignment_loss(torch.arange(exp.data.num_items)).item()

    plain, aligned = alignment_after_training(0.0, tmp_path / "a"), alignment_after_training(1.0, tmp_path / "b")
    # same seed, same data order: only the auxiliary term differs, and it did its job
    assert aligned < plain - 0.1
