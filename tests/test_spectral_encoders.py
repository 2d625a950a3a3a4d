"""SpecTran and the SVD family: shapes, gradients, exact reductions, sparsity, cold start."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectran.encoders import alphafuse, pca_init, spectran, svd_frozen
from spectran.encoders.base import ItemContext
from spectran.errors import ConfigError
from spectran.settings import resolve
from spectran.spectral.basis import compute_basis

N, D, DIM = 40, 24, 8


@pytest.fixture(scope="module")
def E() -> torch.Tensor:
    rng = np.random.default_rng(1)
    return torch.from_numpy((rng.normal(size=(N, D)) * np.geomspace(4, 0.1, D)).astype(np.float32))


@pytest.fixture(scope="module")
def ctx(E) -> ItemContext:
    return ItemContext(N, DIM, E, compute_basis(E.numpy()), torch.ones(N, dtype=torch.long), seed=3)


def build(module, ctx, seed=0, **kw):
    torch.manual_seed(seed)
    if module.SPEC.name == "spectran":  # the paper's A on the top-d: these tests check its formula
        kw.setdefault("position_by", "sigma")
    return module.build(module.SPEC.settings(**kw), ctx)


def grads(model) -> dict[str, torch.Tensor | None]:
    model.zero_grad()
    (model() ** 2).sum().backward()
    return {n: p.grad for n, p in model.named_parameters()}


def test_svd_frozen_shapes_and_gradients(ctx):
    m = build(svd_frozen, ctx)
    assert m().shape == (N, DIM)
    g = grads(m)
    assert set(g) == {"fusion.id_table"} and g["fusion.id_table"].abs().sum() > 0  # the SVD part is frozen
    U_hat = ctx.basis.U[:, :DIM] * N ** 0.5
    sigma_bar = ctx.basis.sigma[:DIM] / ctx.basis.sigma[0]
    torch.testing.assert_close(m.frozen, U_hat * sigma_bar * 0.3)  # default scale 0.3
    torch.testing.assert_close(build(svd_frozen, ctx, weighting="one", scale=1.0).frozen, U_hat)
    unit = build(svd_frozen, ctx, scale=1.0).frozen
    assert unit[:, 0].pow(2).mean().item() == pytest.approx(1.0, rel=1e-4)  # unit-variance coordinates


def test_spectran_shapes_and_gradients_reach_every_learnable_part(ctx):
    m = build(spectran, ctx, shrink=0.1, learn_gate=True, learn_position=True)
    assert m().shape == (N, DIM)
    g = grads(m)
    for name in ("query", "key", "shrink", "gate", "beta", "fusion.id_table"):
        assert g[name] is not None and g[name].abs().sum() > 0, name
    fixed = build(spectran, ctx, learn_shrink=False, learn_gate=False)
    assert not fixed.shrink.requires_grad and not fixed.gate.requires_grad and not fixed.beta.requires_grad


@pytest.mark.parametrize("weighting,init", [("sigma", "pca"), ("one", "whiten")])
@pytest.mark.parametrize("fusion", ["sum", "gate"])
def test_spectran_without_attention_reproduces_svd_frozen_exactly(ctx, weighting, init, fusion):
    a = build(svd_frozen, ctx, seed=5, weighting=weighting, fusion=fusion)
    b = build(spectran, ctx, seed=5, attention="none", position_init=init, fusion=fusion)
    assert torch.equal(b.semantic(), a.frozen)
    assert torch.equal(b(), a())


def test_spectran_at_zero_gate_is_svd_frozen_through_the_attention_path(ctx):
    a = build(svd_frozen, ctx, seed=2)
    b = build(spectran, ctx, seed=2, gate_init=0.0)
    torch.testing.assert_close(b.semantic(), a.frozen, rtol=0, atol=1e-5)


def test_softshrink_gives_exact_zeros_below_lambda(ctx):
    m = build(spectran, ctx, shrink=0.8)
    S = (m.query @ m.key.transpose(1, 2))[0] / m.head_dim ** 0.5  # (d, r)
    phi = m.attention_scores().detach()
    small = S.abs() <= 0.8
    assert small.any() and (~small).any()
    assert torch.all(phi[small] == 0)  # exactly zero, not just small
    torch.testing.assert_close(phi[~small], (S.sign() * (S.abs() - 0.8))[~small].detach())


def test_softmax_rows_sum_to_one_per_head(ctx):
    m = build(spectran, ctx, attention="softmax", heads=3, head_dim=4)
    torch.testing.assert_close(m.attention_scores().sum(dim=1), torch.full((DIM,), 3.0))


def test_position_encoding_is_diagonal_on_the_top_components(ctx):
    m = build(spectran, ctx, gate_init=0.0)
    W = m.mixing().detach()
    sigma_bar = ctx.basis.sigma / ctx.basis.sigma[0]
    torch.testing.assert_close(torch.diagonal(W), sigma_bar[:DIM])
    assert torch.count_nonzero(W.clone().fill_diagonal_(0)) == 0  # zero off the diagonal
    assert W.shape == (DIM, ctx.basis.rank)
    whiten = build(spectran, ctx, position_init="whiten")
    torch.testing.assert_close(whiten.position_weights(), torch.ones(DIM))
    off = build(spectran, ctx, position=False, attention="none")
    assert torch.count_nonzero(off.semantic()) == 0


def test_polynomial_order_must_represent_the_init(ctx):
    with pytest.raises(ConfigError, match="polynomial order 0"):
        build(spectran, ctx, order=0)
    assert build(spectran, ctx, order=0, position_init="whiten").beta.tolist() == [1.0]
    assert build(spectran, ctx, order=3).beta.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_rank_cap_limits_the_attended_components(ctx):
    m = build(spectran, ctx, rank=10)
    assert m.coords.shape == (N, 10) and m.key.shape == (1, 10, DIM)
    assert m.spectral_attention().shape == (DIM, 10)
    assert build(spectran, ctx, attention="none").spectral_attention() is None


def test_derived_buffers_stay_out_of_checkpoints(ctx):
    for module in (spectran, svd_frozen, alphafuse):
        keys = set(build(module, ctx).state_dict())
        assert not {"coords", "frozen", "projector.proj", "projector.mean"} & keys, module.__name__


@pytest.mark.parametrize("module,kw", [(spectran, {}), (spectran, {"fusion": "concat"}), (svd_frozen, {}),
                                       (svd_frozen, {"fusion": "gate"}), (alphafuse, {"mode": "cover"})])
def test_cold_start_projection_reproduces_the_semantic_part(ctx, E, module, kw):
    """A new item whose text equals a training item's gets that item's table row minus its ID part."""
    m = build(module, ctx, **kw)
    new = m.embed_new_items(E[:5])
    assert new.shape == (5, DIM)
    with torch.no_grad():
        if module is alphafuse:
            m.id_table.zero_()
        else:
            m.fusion.id_table.zero_()
        torch.testing.assert_close(new, m()[:5], atol=1e-4, rtol=1e-4)


def test_alphafuse_learns_only_the_null_coordinates(ctx):
    m = build(alphafuse, ctx, null_dim=3)
    g = grads(m)["id_table"]
    assert g.shape == (N, 3) and g.abs().sum() > 0
    out = m()
    torch.testing.assert_close(out[:, :DIM - 3], m.frozen[:, :DIM - 3])  # semantic part untouched
    assert torch.equal(build(alphafuse, ctx, null_dim=3, mode="cover")()[:, :DIM - 3], m.frozen[:, :DIM - 3])
    with pytest.raises(ConfigError, match="null_dim"):
        build(alphafuse, ctx, null_dim=DIM + 1)


def test_pca_init_variants(ctx):
    by_var = build(pca_init, ctx)
    assert torch.equal(by_var().detach(), build(svd_frozen, ctx).frozen)  # starts as the PCA table
    assert grads(by_var)["weight"].abs().sum() > 0  # and is trained
    U_hat = ctx.basis.U * N ** 0.5
    sigma_bar = ctx.basis.sigma / ctx.basis.sigma[0]
    r = ctx.basis.rank
    uniform = build(pca_init, ctx, select="uniform")().detach()
    cols = np.unique(np.linspace(0, r - 1, DIM).round().astype(int))
    torch.testing.assert_close(uniform, U_hat[:, cols] * sigma_bar[cols] * 0.3)
    rand_a = build(pca_init, ctx, select="random")().detach()
    assert torch.equal(rand_a, build(pca_init, ctx, select="random")().detach())  # seeded by ctx.seed
    assert not torch.equal(rand_a, by_var().detach())
    raw = build(pca_init, ctx, source="raw")().detach()
    top = torch.argsort(ctx.semantic.double().var(dim=0), descending=True)[:DIM]
    torch.testing.assert_close(raw, (ctx.semantic - ctx.semantic.mean(dim=0))[:, top] * 0.3, atol=1e-5, rtol=1e-5)


def test_missing_basis_is_a_config_error(ctx):
    no_basis = ItemContext(N, DIM, ctx.semantic, None, ctx.train_counts)
    for module in (spectran, svd_frozen, alphafuse, pca_init):
        with pytest.raises(ConfigError, match="needs the SVD"):
            build(module, no_basis)


def test_settings_are_typed():
    s = resolve({"model": {"method": "spectran", "recipe": "none"}, "method": {"attention": "softmax", "order": 3}})
    assert s.method.attention == "softmax" and s.method.order == 3 and s.method.shrink == 0.5
    with pytest.raises(ConfigError, match="unknown setting 'lamda'"):
        resolve({"model": {"method": "spectran"}, "method": {"lamda": 1}})
    with pytest.raises(ConfigError, match="expected one of"):
        resolve({"model": {"method": "spectran"}, "method": {"attention": "relu"}})


def test_attention_summary_reports_gate_and_the_attention_share_of_e_s(ctx):
    m = build(spectran, ctx, shrink=0.1)
    summary = m.attention_summary()
    with torch.no_grad():
        part = m.coords @ (m.gate * m.alpha * m.attention_scores()).T
        whole = m.coords @ m.mixing().T
    assert summary["gate"] == pytest.approx(0.1) and summary["shrink"] == pytest.approx(0.1)
    assert summary["rms_ratio"] == pytest.approx((part.pow(2).mean() / whole.pow(2).mean()).sqrt().item())
    with torch.no_grad():
        m.gate.zero_()
    assert m.attention_summary()["rms_ratio"] == 0.0  # gate 0: E_s is the SVD truncation alone
    assert build(spectran, ctx, attention="none").attention_summary() is None
    assert "shrink" not in build(spectran, ctx, attention="softmax").attention_summary()  # lambda unused
