"""PNG figures (matplotlib, Agg backend): spectra, attention mass, dimension sensitivity.

Each figure has one panel per dataset; every function writes the file atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from spectran.diagnostics.spectrum import AttentionMass, Spectrum
from spectran.errors import SpectranError
from spectran.io import atomic_path


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SpectranError("plots need matplotlib (pip install 'spectran[plots]')") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panels(datasets: list[str], width: float = 5.5, height: float = 4.0) -> tuple[Any, Any, list[Any]]:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(datasets), figsize=(width * len(datasets), height), squeeze=False)
    return plt, fig, list(axes[0])


def _save(plt: Any, fig: Any, path: str | Path) -> None:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130)
    plt.close(fig)


SPECTRUM_FLOOR = 1e-6  # σ/σ₁ below this is numerically zero at float32 precision and not drawn


def _colors(n: int) -> list[Any]:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def plot_spectra(spectra: list[Spectrum], path: str | Path) -> None:
    """σ/σ₁ against component index, log-log; one curve per row, E black dashed."""
    datasets = sorted({s.dataset for s in spectra})
    plt, fig, axes = _panels(datasets, width=7.5, height=4.5)
    for ax, dataset in zip(axes, datasets, strict=True):
        here = [s for s in spectra if s.dataset == dataset]
        learned, semantic = [s for s in here if not s.semantic], [s for s in here if s.semantic]
        colors = _colors(len(learned)) + ["black"] * len(semantic)
        for s, color in zip(learned + semantic, colors, strict=True):
            keep = s.sigma > SPECTRUM_FLOOR
            x = np.arange(1, len(s.sigma) + 1)[keep]
            ax.plot(x, s.sigma[keep], linestyle="--" if s.semantic else "-", color=color, linewidth=1.4,
                    label=f"{s.row} (erank {np.mean(s.effective_ranks):.1f})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("singular value index")
        ax.set_ylabel("σ / σ₁")
        ax.set_title(f"{dataset}: item-embedding spectra")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(plt, fig, path)


def plot_attention(masses: list[AttentionMass], path: str | Path) -> None:
    """Share of |attention| per spectral component; a line marks the top-d boundary."""
    datasets = sorted({m.dataset for m in masses})
    plt, fig, axes = _panels(datasets)
    for ax, dataset in zip(axes, datasets, strict=True):
        for m in [m for m in masses if m.dataset == dataset]:
            share = float(np.nanmean(m.principal_shares))
            ax.plot(np.arange(1, len(m.mass) + 1), m.mass, linewidth=1.2,
                    label=f"{m.row}: {share:.0%} on top-{m.d}")
            ax.axvline(m.d + 0.5, color="grey", linestyle=":", linewidth=1)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_xlabel("spectral component (by σ, descending)")
        ax.set_ylabel("share of attention mass")
        ax.set_title(f"{dataset}: attention over the spectrum")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    _save(plt, fig, path)


def plot_dims(points: list[dict[str, Any]], path: str | Path, metric: str) -> None:
    """Mean ± std test ``metric`` against d, one line per row. ``points``: dataset, row, dim, mean, std."""
    datasets = sorted({p["dataset"] for p in points})
    plt, fig, axes = _panels(datasets)
    for ax, dataset in zip(axes, datasets, strict=True):
        rows = list(dict.fromkeys(p["row"] for p in points if p["dataset"] == dataset))
        for row in rows:
            pts = sorted((p for p in points if p["dataset"] == dataset and p["row"] == row), key=lambda p: p["dim"])
            ax.errorbar([p["dim"] for p in pts], [p["mean"] for p in pts],
                        yerr=[0.0 if np.isnan(p["std"]) else p["std"] for p in pts],
                        marker="o", capsize=3, linewidth=1.4, label=row)
        ax.set_xscale("log", base=2)
        dims = sorted({p["dim"] for p in points if p["dataset"] == dataset})
        ax.set_xticks(dims)
        ax.set_xticklabels([str(d) for d in dims])
        ax.set_xlabel("embedding dimension d")
        ax.set_ylabel(f"test {metric}")
        ax.set_title(f"{dataset}: dimension sensitivity")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    _save(plt, fig, path)
