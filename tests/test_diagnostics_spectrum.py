"""Spectra, effective/stable rank, attention mass and the figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from spectran.diagnostics.dims import dimension_points
from spectran.diagnostics.spectrum import attention_mass, effective_rank, run_spectra, singular_values, stable_rank
from spectran.encoders.base import ItemEncoder
from spectran.errors import SpectranError
from spectran.experiments.collect import assign_variants, find_runs


def random_orthogonal(n: int, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    return q


def test_effective_rank_of_identity_is_d_and_of_rank_one_is_one():
    for d in (1, 4, 64):
        assert effective_rank(singular_values(np.eye(d))) == pytest.approx(d)
        assert stable_rank(singular_values(np.eye(d))) == pytest.approx(d)
    u, v = np.random.default_rng(0).normal(size=(30, 1)), np.random.default_rng(1).normal(size=(1, 8))
    sigma = singular_values(u @ v)
    assert effective_rank(sigma) == pytest.approx(1.0, abs=1e-6)  # float64 SVD noise ~1e-16
    assert stable_rank(sigma) == pytest.approx(1.0)


def test_hand_computed_spectrum():
    m = np.diag([4.0, 2.0, 2.0])  # sigma / sigma1 = 1, .5, .5; p = .5, .25, .25
    sigma = singular_values(m)
    assert sigma.dtype == np.float64 and sigma.tolist() == [1.0, 0.5, 0.5]
    assert effective_rank(sigma) == pytest.approx(np.exp(-(0.5 * np.log(0.5) + 0.5 * np.log(0.25))))
    assert stable_rank(sigma) == pytest.approx(1.5)


def test_invariance_to_rotation_and_scale():
    m = np.random.default_rng(3).normal(size=(40, 6)) * np.array([5, 3, 2, 1, 0.5, 0.1])
    base = singular_values(m)
    moved = singular_values(37.5 * random_orthogonal(40, 4) @ m @ random_orthogonal(6, 5))
    np.testing.assert_allclose(moved, base, rtol=1e-10)
    assert effective_rank(moved) == pytest.approx(effective_rank(base))
    assert stable_rank(moved) == pytest.approx(stable_rank(base))


def test_float32_input_is_analysed_in_float64_and_bad_input_refused():
    assert singular_values(np.eye(3, dtype=np.float32)).dtype == np.float64
    with pytest.raises(SpectranError, match="NaN"):
        singular_values(np.array([[1.0, np.nan]]))
    with pytest.raises(SpectranError, match="all zeros"):
        singular_values(np.zeros((3, 2)))


class FakeSpectralEncoder(ItemEncoder):
    """Stands in for SpecTran's encoder: |phi(S)| of shape (d, r)."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.weights = weights

    def forward(self) -> torch.Tensor:
        return self.weights.T

    def spectral_attention(self) -> torch.Tensor:
        return self.weights


class PlainEncoder(ItemEncoder):
    def forward(self) -> torch.Tensor:
        return torch.zeros(3, 2)


def test_attention_mass_principal_share():
    w = torch.zeros(2, 5)  # d = 2, r = 5
    w[0, 0], w[1, 1], w[0, 3], w[1, 4] = 3.0, -1.0, 2.0, 2.0  # |.| mass 3, 1, 0, 2, 2 of 8
    mass, share = attention_mass(FakeSpectralEncoder(w))
    np.testing.assert_allclose(mass, [3 / 8, 1 / 8, 0, 2 / 8, 2 / 8])
    assert share == pytest.approx(0.5)
    assert attention_mass(PlainEncoder()) is None  # an encoder without spectral attention (the base's None)


def test_attention_plot_from_fake_masses(tmp_path: Path):
    from spectran.diagnostics.plots import plot_attention
    from spectran.diagnostics.spectrum import AttentionMass

    mass, share = attention_mass(FakeSpectralEncoder(torch.rand(4, 12)))
    out = tmp_path / "att.png"
    plot_attention([AttentionMass("office", "spectran", mass, [share], 4)], out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def fake_run(root: Path, label: str, seed: int, table: np.ndarray, dim: int = 4, ndcg: float = 0.1) -> None:
    folder = root / label / f"d{dim}" / f"seed{seed}"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(
        f"model: {{method: id, label: {label}, dim: {dim}}}\ntrain: {{seed: {seed}}}\ndata: {{dataset: toy}}\n")
    (folder / "metrics.json").write_text(json.dumps(
        {"test": {"ndcg@10": ndcg}, "protocol": {"dataset": "toy", "encoder": None}}))
    np.save(folder / "item_embeddings.npy", table.astype(np.float32))


def test_run_spectra_average_seeds(tmp_path: Path):
    fake_run(tmp_path, "a", 0, np.diag([4.0, 2.0, 1.0, 1.0]))
    fake_run(tmp_path, "a", 1, np.diag([4.0, 4.0, 1.0, 2.0]))
    fake_run(tmp_path, "b", 0, np.eye(4))
    records = find_runs([tmp_path])
    assign_variants(records)
    spectra = {s.row: s for s in run_spectra(records)}
    np.testing.assert_allclose(spectra["a"].sigma, [1.0, 0.75, 0.375, 0.25])  # ((1,.5,.25,.25)+(1,1,.5,.25))/2
    assert len(spectra["a"].effective_ranks) == 2 and spectra["b"].effective_ranks == [pytest.approx(4.0)]


def test_spectrum_cli_writes_png_csv_and_table(tmp_path: Path, capsys):
    from spectran.cli import main

    fake_run(tmp_path / "runs", "a", 0, np.random.default_rng(0).normal(size=(20, 4)))
    out = tmp_path / "fig" / "spec.png"
    assert main(["spectrum", str(tmp_path / "runs"), "--out", str(out), "--no-semantic"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
    rows = out.with_suffix(".csv").read_text().splitlines()
    assert rows[0] == "dataset,matrix,index,sigma_over_sigma1,std_over_seeds" and len(rows) == 1 + 4
    assert "| toy | a | 20 × 4 | 1 |" in capsys.readouterr().out
    assert not out.with_name("spec_attention.png").exists()  # no SpecTran runs


def test_dimension_points_and_plot(tmp_path: Path):
    from spectran.diagnostics.plots import plot_dims

    for dim, values in ((16, [0.1, 0.2]), (32, [0.3, 0.3])):
        for seed, v in enumerate(values):
            fake_run(tmp_path, "a", seed, np.eye(dim), dim=dim, ndcg=v)
    points = dimension_points(find_runs([tmp_path]))
    assert [(p["row"], p["dim"], p["n"]) for p in points] == [("a", 16, 2), ("a", 32, 2)]
    assert points[0]["mean"] == pytest.approx(0.15) and points[0]["std"] == pytest.approx(np.std([0.1, 0.2], ddof=1))
    plot_dims(points, tmp_path / "dims.png", "ndcg@10")
    assert (tmp_path / "dims.png").stat().st_size > 1000


def test_rank_table_attention_row_gives_gate_lambda_and_share_over_seeds():
    from spectran.diagnostics.cli import rank_table
    from spectran.diagnostics.spectrum import AttentionMass

    mass = np.array([0.5, 0.25, 0.25])
    seeds = [{"gate": 0.1, "shrink": 0.6, "rms_ratio": 0.1}, {"gate": 0.2, "shrink": 0.8, "rms_ratio": 0.3}]
    table = rank_table([], [AttentionMass("toy", "spectran", mass, [0.5, 0.7], 1, seeds)])
    assert "| gate | λ (Softshrink) | attention term / E_s (RMS) |" in table
    assert "| toy | spectran | 1 | 3 | 60.0% | 40.0% | 0.15 ± 0.07 | 0.70 ± 0.14 | 0.20 ± 0.14 |" in table
    softmax = [{k: v for k, v in s.items() if k != "shrink"} for s in seeds]
    table = rank_table([], [AttentionMass("toy", "softmax", mass, [0.5], 1, softmax)])
    assert "| 0.15 ± 0.07 | – | 0.20 ± 0.14 |" in table
