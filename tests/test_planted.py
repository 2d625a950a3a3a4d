"""Tests with a known answer: planted spectra, the collaborative signal of a component, and a
SpecTran whose position encoding lands on the informative components rather than on planted noise."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from spectran.data.prepare import prepare
from spectran.encoders.base import ItemContext
from spectran.encoders.spectral_coords import (
    informative_components,
    noise_floor,
    scaled_coords,
    select_components,
    signal_share,
    transition_signal,
)
from spectran.encoders.spectran import SpecTranSettings
from spectran.encoders.spectran import build as build_spectran
from spectran.errors import ConfigError
from spectran.settings import DataSettings
from spectran.spectral.basis import compute_basis
from spectran.spectral.planted import Plant, parse_plant, planted_matrix


def _clean(n: int = 120, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * np.geomspace(3, 0.3, d)


def test_noise_plant_puts_pure_noise_on_top_of_the_spectrum():
    E = _clean()
    X = planted_matrix(E, [Plant("noise", 8, strength=4.0)], seed=1)
    assert X.shape == (120, 32) and X.dtype == np.float32
    np.testing.assert_allclose(X[:, :24], E.astype(np.float32))  # E itself is untouched
    _, s, Vt = np.linalg.svd(X - X.mean(0), full_matrices=False)
    s_clean = np.linalg.svd(E - E.mean(0), compute_uv=False)
    assert s[7] > 1.4 * s_clean[0]  # the eight noise directions are the eight largest
    mass_on_noise = (Vt[:8, 24:] ** 2).sum(axis=1)  # each top direction lives in the noise columns
    assert mass_on_noise.min() > 0.9
    assert (Vt[8:, 24:] ** 2).sum(axis=1).max() < 0.1
    np.testing.assert_array_equal(X, planted_matrix(E, [Plant("noise", 8, strength=4.0)], seed=1))
    assert not np.array_equal(X, planted_matrix(E, [Plant("noise", 8, strength=4.0)], seed=2))


def test_tail_and_drop_plants_move_and_remove_the_top_components():
    E = _clean()
    s = np.linalg.svd(E - E.mean(0), compute_uv=False)
    tail = planted_matrix(E, [Plant("tail", 3, factor=0.05)])
    s_tail = np.linalg.svd(tail - tail.mean(0), compute_uv=False)
    np.testing.assert_allclose(np.sort(s_tail)[:3], np.sort(s[:3] * 0.05), rtol=1e-4)  # now the smallest
    np.testing.assert_allclose(s_tail[:len(s) - 3], s[3:], rtol=1e-4)
    drop = planted_matrix(E, [Plant("drop", 5)])
    s_drop = np.linalg.svd(drop - drop.mean(0), compute_uv=False)
    np.testing.assert_allclose(s_drop[:len(s) - 5], s[5:], rtol=1e-4)
    assert s_drop[-5:].max() < 1e-4 * s[0]


@pytest.mark.parametrize("text", ["noise", "noise:x", "noise:2.5", "tail:3:0.1:7", "drop:3:1", "spin:3", "rotate:2",
                                  "noise:0", "noise:4:-1", "tail:4:1.5"])
def test_bad_plants_are_refused(text):
    with pytest.raises(ConfigError, match="plant"):
        plants = [parse_plant(text)]
        planted_matrix(_clean(), plants)


def test_parse_plant_reads_every_form():
    assert parse_plant("noise:64") == Plant("noise", 64)
    assert parse_plant("noise:64:4:2") == Plant("noise", 64, 4.0, 2.0)
    assert parse_plant("tail:32:0.1") == Plant("tail", 32, factor=0.1)
    assert parse_plant("drop:16") == Plant("drop", 16)
    assert parse_plant("rotate") == Plant("rotate", 0)


def test_rotate_plant_keeps_the_spectrum_and_mixes_every_column():
    E = planted_matrix(_clean(), [Plant("noise", 8, strength=4.0, spread=3.0)], seed=1)
    X = planted_matrix(E, [parse_plant("rotate")], seed=2)
    s = np.linalg.svd(E - E.mean(0), compute_uv=False)
    np.testing.assert_allclose(np.linalg.svd(X - X.mean(0), compute_uv=False), s, rtol=1e-4)
    # the noise columns' energy no longer sits in 8 columns: every column now carries some of it
    share = (X - X.mean(0)).var(0) / (X - X.mean(0)).var(0).sum()
    assert share.max() < 0.2 and share.min() > 0.002
    assert not np.allclose(X[:, :24], E[:, :24], atol=0.1)


def test_spectran_reads_a_rotated_matrix_as_the_unrotated_one():
    """Any rule of SpecTran's that reads the SVD (skipping noise-like components, the signal
    ranking, the frozen table up to the basis' own freedom) must not see a rotation of E's hidden
    dimensions. The table is compared through its item-item inner products: the cluster spectrum
    has repeated singular values, so U is fixed only up to a rotation inside them."""
    ds, E = _cluster_data()
    X = planted_matrix(E, [Plant("noise", 8, strength=9.0, spread=3.0)], seed=0)
    rotated = planted_matrix(X, [Plant("rotate", 0)], seed=3)
    tables, chosen = [], []
    for M in (X, rotated):
        ctx = ItemContext(ds.num_items, 7, torch.from_numpy(M).float(), compute_basis(M),
                          torch.from_numpy(ds.train_item_counts()), 0, torch.from_numpy(ds.train_transitions()))
        model = build_spectran(SpecTranSettings(attention="none"), ctx)
        chosen.append(model.position_index.tolist())
        table = model.semantic().detach().double()
        tables.append((table @ table.T).numpy())
    assert chosen[0] == chosen[1] and model.position_rule == "informative"
    assert min(chosen[0]) >= 8  # the 8 planted noise directions, of spread strengths, are skipped
    np.testing.assert_allclose(tables[1], tables[0], atol=1e-3 * np.abs(tables[0]).max())


def _cluster_data():
    """The synthetic set (users walk inside item clusters) and an E whose first 8 columns say
    the item's cluster, plus weak per-item noise."""
    ds = prepare(DataSettings(dataset="synthetic"))
    rng = np.random.default_rng(0)
    cluster = np.arange(ds.num_items) % 8
    E = np.eye(8)[cluster] * 1.0 + rng.normal(size=(ds.num_items, 8)) * 0.05
    return ds, E


def test_transition_signal_ranks_the_collaborative_components_above_planted_noise():
    ds, E = _cluster_data()
    X = planted_matrix(E, [Plant("noise", 8, strength=9.0)], seed=0)
    basis = compute_basis(X)
    coords = scaled_coords(basis, 0, "sqrt_n")
    pairs = torch.from_numpy(ds.train_transitions())
    signal = transition_signal(coords, pairs)
    informative = (basis.V[8:, :] ** 2).sum(0) < 0.5  # components living in the cluster columns
    assert informative[:8].sum() == 0  # the top 8 by sigma are all noise
    assert signal[informative].min() > 0.3 > signal[~informative].abs().max()
    chosen = select_components(signal, int(informative.sum()))
    assert set(chosen.tolist()) == set(torch.nonzero(informative).flatten().tolist())


def test_transition_pairs_stay_inside_training_parts():
    ds, _ = _cluster_data()
    pairs = ds.train_transitions()
    expected = sum(max(len(ds.train_part(u)) - 1, 0) for u in range(ds.num_users))
    assert pairs.shape == (expected, 2)
    first = ds.train_part(0)
    np.testing.assert_array_equal(pairs[:len(first) - 1], np.stack([first[:-1], first[1:]], 1) - 1)


@pytest.mark.parametrize("position_by, lands_on_signal", [("sigma", False), ("signal", True)])
def test_spectran_position_encoding_follows_position_by(position_by, lands_on_signal):
    ds, E = _cluster_data()
    X = planted_matrix(E, [Plant("noise", 8, strength=9.0)], seed=0)
    basis = compute_basis(X)
    informative = int(((basis.V[8:, :] ** 2).sum(0) < 0.5).sum())  # 7: centred one-hots of 8 clusters
    ctx = ItemContext(ds.num_items, informative, torch.from_numpy(X), basis,
                      torch.from_numpy(ds.train_item_counts()), 0, torch.from_numpy(ds.train_transitions()))
    model = build_spectran(SpecTranSettings(position_by=position_by, attention="none"), ctx)
    on_noise = ((basis.V[8:, model.position_index] ** 2).sum(0) > 0.5).float().mean()
    assert on_noise == (0.0 if lands_on_signal else 1.0)
    weights = model.position_weights()
    assert weights.max() == 1.0 and (weights >= 0).all()  # g(x) = x, x = sigma or signal over its largest
    if lands_on_signal:  # weighted by the signal, not by the (planted) singular values
        rho = transition_signal(model.coords, ctx.train_pairs)[model.position_index]
        np.testing.assert_allclose(weights.numpy(), (rho / rho.max()).numpy(), rtol=1e-6)
    else:
        np.testing.assert_allclose(weights.numpy(), model.sigma_bar[:informative].numpy())
    table = model.semantic()
    np.testing.assert_allclose(table.numpy(), (model.coords[:, model.position_index] * weights * 0.3).numpy(),
                               rtol=1e-6)


def test_signal_selection_needs_the_training_pairs():
    ds, E = _cluster_data()
    ctx = ItemContext(ds.num_items, 8, torch.from_numpy(E).float(), compute_basis(E),
                      torch.from_numpy(ds.train_item_counts()))
    with pytest.raises(ConfigError, match="position_by=signal"):
        build_spectran(SpecTranSettings(position_by="signal"), ctx)


def test_planted_noise_sinks_the_top_d_truncation_but_not_signal_selection(tmp_path):
    """The known answer end to end: on the synthetic set, 16 planted noise directions above the
    fake encoder's spectrum sink svd_frozen and the paper's SpecTran (A on the top-d by sigma) to
    a fraction of their clean validation NDCG@10; SpecTran with position_by=signal keeps most of it
    (every method with the same shared training settings: what differs is the selection alone)."""
    from spectran.api import train
    from spectran.settings import resolve
    from spectran.text.api import load_or_encode
    from spectran.text.settings import TextSettings

    ds = prepare(DataSettings(dataset="synthetic"))
    E = load_or_encode(ds, TextSettings(encoder="fake"), progress=False)
    planted = tmp_path / "planted.npy"
    np.save(planted, planted_matrix(E, [Plant("noise", 16, strength=9.0)], seed=0))

    def valid_ndcg(encoder: str, method: str, **method_settings) -> float:
        raw = {"data": {"dataset": "synthetic", "max_len": 20}, "text": {"encoder": encoder},
               "model": {"dim": 16, "method": method, "recipe": "none"}, "backbone": {"layers": 1},
               "method": method_settings,
               "train": {"epochs": 5, "progress": False, "batch_size": 64, "threads": 1}}
        out = tmp_path / "-".join([method, encoder[:3], *map(str, method_settings.values())])
        return train(resolve(raw), out)["valid"]["ndcg@10"]

    clean = valid_ndcg("fake", "svd_frozen")
    assert valid_ndcg(f"npy:{planted}", "svd_frozen") < 0.5 * clean
    assert valid_ndcg(f"npy:{planted}", "spectran", position_by="sigma") < 0.5 * clean  # the paper's A: on the noise
    assert valid_ndcg(f"npy:{planted}", "spectran", position_by="signal") > 0.85 * clean
    assert valid_ndcg(f"npy:{planted}", "spectran") > 0.85 * clean  # the default, position_by=informative


def test_informative_skips_noise_like_components_and_keeps_sigma_order():
    signal = torch.tensor([0.001, 0.3, -0.002, 0.2, 0.1, 0.004, 0.05])
    np.testing.assert_array_equal(informative_components(signal, 3, 0.01).numpy(), [1, 3, 4])
    np.testing.assert_array_equal(informative_components(signal, 5, 0.06).numpy(), [1, 3, 4])  # only these
    assert informative_components(signal, 5, 0.5).numel() == 0
    np.testing.assert_array_equal(informative_components(torch.ones(5), 3, 0.5).numpy(), [0, 1, 2])
    ds, _ = _cluster_data()
    pairs = torch.from_numpy(ds.train_transitions())
    floor = noise_floor(pairs, ds.num_items)
    assert floor > 3 / np.sqrt(len(pairs))  # repeated pairs widen a noise direction's spread
    assert floor == noise_floor(pairs, ds.num_items)  # seeded
    rng = np.random.default_rng(5)  # fresh noise directions stay below the floor
    fresh = transition_signal(torch.from_numpy(rng.normal(size=(ds.num_items, 64))), pairs)
    assert fresh.max() < floor


@pytest.mark.parametrize("plant", [True, False])
def test_informative_is_the_paper_a_on_clean_data_and_skips_planted_noise(plant):
    ds, E = _cluster_data()
    X = planted_matrix(E, [Plant("noise", 8, strength=9.0)], seed=0) if plant else E
    basis = compute_basis(X)
    informative = int(((basis.V[8:, :] ** 2).sum(0) < 0.5).sum()) if plant else 7
    ctx = ItemContext(ds.num_items, informative, torch.from_numpy(X).float(), basis,
                      torch.from_numpy(ds.train_item_counts()), 0, torch.from_numpy(ds.train_transitions()))
    model = build_spectran(SpecTranSettings(position_by="informative", attention="none"), ctx)
    paper = build_spectran(SpecTranSettings(position_by="sigma", attention="none"), ctx)
    if plant:
        assert ((basis.V[8:, model.position_index] ** 2).sum(0) < 0.5).all()  # every noise direction skipped
        assert model.position_weights().max() == 1.0
    else:  # nothing noise-like: exactly the paper's A on the top-k
        np.testing.assert_array_equal(model.position_index.numpy(), np.arange(informative))
        torch.testing.assert_close(model.semantic(), paper.semantic(), rtol=0, atol=0)


def _paired_context(strong_on_top: bool, n_pairs: int = 3000, dim: int = 8, seed: int = 0) -> ItemContext:
    """Items in fixed pairs (2t, 2t + 1) that follow each other in training; E's 2 * dim columns
    each have a known correlation rho between partners (sqrt(rho) of a value shared by the pair, the
    rest per item): dim strong (rho 0.9) and dim weak but informative (rho 0.3, far above the
    noise floor) columns, the strong ones at the top of the spectrum or in its tail."""
    rng = np.random.default_rng(seed)
    rho = np.r_[np.full(dim, 0.9), np.full(dim, 0.3)] if strong_on_top else np.r_[np.full(dim, 0.3), np.full(dim, 0.9)]
    shared = np.repeat(rng.normal(size=(n_pairs, 2 * dim)), 2, axis=0)  # (N, 2 dim), equal within a pair
    E = (np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.normal(size=shared.shape)) * np.geomspace(8, 1, 2 * dim)
    items = np.arange(2 * n_pairs)
    pairs = np.concatenate([np.stack([items[0::2], items[1::2]], 1), np.stack([items[1::2], items[0::2]], 1)])
    return ItemContext(2 * n_pairs, dim, torch.from_numpy(E).float(), compute_basis(E),
                       torch.ones(2 * n_pairs), 0, torch.from_numpy(pairs))


def test_signal_share_compares_a_choice_with_the_components_of_most_signal():
    signal = torch.tensor([0.3, 0.3, 0.9, 0.9, 0.01])
    assert signal_share(signal, torch.tensor([2, 3]), 2) == 1.0
    assert signal_share(signal, torch.tensor([0, 1]), 2) == pytest.approx(1 / 3)
    assert signal_share(signal, torch.tensor([], dtype=torch.long), 2) == 0.0
    assert signal_share(-signal, torch.tensor([0, 1]), 2) == 1.0  # nothing carries signal: no better choice


@pytest.mark.parametrize("strong_on_top", [True, False])
def test_auto_keeps_sigma_order_unless_it_misses_the_signal_in_the_tail(strong_on_top):
    ctx = _paired_context(strong_on_top)
    build = {by: build_spectran(SpecTranSettings(position_by=by, attention="none"), ctx)
             for by in ("auto", "informative", "signal", "sigma")}
    rho = transition_signal(build["auto"].coords, ctx.train_pairs)
    assert (rho > noise_floor(ctx.train_pairs, ctx.num_items)).all()  # nothing is noise-like: informative = sigma
    np.testing.assert_array_equal(build["informative"].position_index.numpy(), np.arange(8))
    auto, same_as = build["auto"], build["informative" if strong_on_top else "signal"]
    assert auto.position_rule == ("informative" if strong_on_top else "signal")
    np.testing.assert_array_equal(auto.position_index.numpy(), same_as.position_index.numpy())
    torch.testing.assert_close(auto.semantic(), same_as.semantic(), rtol=0, atol=0)
    assert rho[auto.position_index].min() > 0.8  # the strong components, wherever they sit
    if strong_on_top:  # clean data: exactly the paper's A
        torch.testing.assert_close(auto.semantic(), build["sigma"].semantic(), rtol=0, atol=0)
    else:  # a share of 1 / 3 (weak over strong) is below the default 0.8; a share of 0 never switches
        never = build_spectran(SpecTranSettings(position_by="auto", min_signal_share=0.0, attention="none"), ctx)
        assert never.position_rule == "informative"
        np.testing.assert_array_equal(never.position_index.numpy(), np.arange(8))


def test_auto_finds_the_tail_signal_under_planted_noise_on_top():
    """Both plants at once (the informative directions in the tail, noise directions above them):
    informative skips the noise but keeps the weak components, auto switches to signal and lands on
    the strong ones, and no noise direction is chosen by either."""
    clean = _paired_context(strong_on_top=False)
    # another seed than the one that drew E: the same random numbers would make the noise correlate with E
    X = planted_matrix(clean.semantic.double().numpy(), [Plant("noise", 8, strength=9.0)], seed=1)
    basis = compute_basis(X)
    ctx = ItemContext(clean.num_items, clean.dim, torch.from_numpy(X).float(), basis, clean.train_counts,
                      0, clean.train_pairs)
    auto = build_spectran(SpecTranSettings(position_by="auto", attention="none"), ctx)
    informative = build_spectran(SpecTranSettings(position_by="informative", attention="none"), ctx)
    rho = transition_signal(auto.coords, ctx.train_pairs)
    noise = (basis.V[-8:, :] ** 2).sum(0) > 0.5  # components living in the planted columns
    assert noise[:8].all() and auto.position_rule == "signal"
    assert not noise[auto.position_index].any() and not noise[informative.position_index].any()
    assert rho[auto.position_index].min() > 0.8 > rho[informative.position_index].max()


@pytest.mark.parametrize("attention", ["softshrink", "softmax"])
def test_attend_informative_reads_only_components_above_the_noise_floor(attention):
    ds, E = _cluster_data()
    X = planted_matrix(E, [Plant("noise", 8, strength=9.0)], seed=0)
    basis = compute_basis(X)
    ctx = ItemContext(ds.num_items, 8, torch.from_numpy(X).float(), basis,
                      torch.from_numpy(ds.train_item_counts()), 0, torch.from_numpy(ds.train_transitions()))
    torch.manual_seed(0)
    model = build_spectran(SpecTranSettings(attend="informative", attention=attention, shrink=0.0), ctx)
    rho = transition_signal(model.coords, ctx.train_pairs)
    floor = noise_floor(ctx.train_pairs, ctx.num_items)
    assert torch.equal(model.attended, rho >= floor) and 0 < int(model.attended.sum()) < model.rank
    phi = model.attention_scores()
    assert (phi[:, ~model.attended] == 0).all() and (phi[:, model.attended] != 0).any()
    assert model.alpha == pytest.approx(1 / np.sqrt(int(model.attended.sum())))
    # the keys of components not attended get no gradient (a weighted sum: softmax rows sum to 1,
    # so the plain sum has a zero gradient everywhere up to rounding)
    weights = torch.linspace(0.5, 1.5, phi.numel()).reshape(phi.shape)
    (phi * weights).sum().backward()
    assert (model.key.grad[:, ~model.attended] == 0).all() and (model.key.grad[:, model.attended] != 0).any()


def test_attend_informative_is_attend_all_where_every_component_carries_signal():
    ctx = _paired_context(strong_on_top=True)
    models = []
    for attend in ("all", "informative"):
        torch.manual_seed(0)
        models.append(build_spectran(SpecTranSettings(attend=attend), ctx))
    assert models[1].attended.all() and models[0].alpha == models[1].alpha
    torch.testing.assert_close(models[0].semantic(), models[1].semantic(), rtol=0, atol=0)
