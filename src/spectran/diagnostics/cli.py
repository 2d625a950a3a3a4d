"""``spectran spectrum``: spectra, effective/stable ranks and SpecTran's attention mass.

Writes ``FILE.png`` (one panel per dataset, one curve per report row, E dashed), ``FILE.csv``
(every curve: dataset, row, index, σ/σ₁ mean and std over seeds), ``FILE.md`` (the rank table,
also printed) and, when SpecTran runs expose ``spectral_attention``, ``FILE_attention.png`` and
``FILE_attention.csv``. Curves of several seeds are averaged elementwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from spectran.diagnostics.spectrum import AttentionMass, Spectrum


def rank_table(spectra: list[Spectrum], masses: list[AttentionMass]) -> str:
    def mean_std(values: list[float]) -> str:
        if len(values) == 1:
            return f"{values[0]:.2f}"
        return f"{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}"

    lines = ["| dataset | matrix | N × w | seeds | effective rank (entropy) | stable rank |",
             "|---|---|---|---|---|---|"]
    for s in sorted(spectra, key=lambda s: (s.dataset, not s.semantic, s.row)):
        lines.append(f"| {s.dataset} | {s.row} | {s.shape[0]} × {s.shape[1]} | {len(s.effective_ranks)} "
                     f"| {mean_std(s.effective_ranks)} | {mean_std(s.stable_ranks)} |")
    if masses:
        lines += ["", "| dataset | row | d | components r | attention share on top-d (principal) | on the rest "
                  "| gate | λ (Softshrink) | attention term / E_s (RMS) |", "|---|---|---|---|---|---|---|---|---|"]
        for m in masses:
            share = float(np.nanmean(m.principal_shares))
            extra = [mean_std([s[k] for s in m.summaries]) if m.summaries and k in m.summaries[0] else "–"
                     for k in ("gate", "shrink", "rms_ratio")]
            lines.append(f"| {m.dataset} | {m.row} | {m.d} | {len(m.mass)} | {share:.1%} | {1 - share:.1%} "
                         f"| {' | '.join(extra)} |")
    return "\n".join(lines)


def spectrum(paths: list[str], out: str | Path, semantic: bool = True, attention: bool = True,
             center: bool = False) -> str:
    """Library function behind ``spectran spectrum``; returns the Markdown rank table."""
    from spectran.diagnostics.plots import plot_attention, plot_spectra
    from spectran.diagnostics.spectrum import attention_masses, run_spectra, semantic_spectra
    from spectran.experiments.collect import assign_variants, find_runs
    from spectran.experiments.report import write_csv
    from spectran.io import write_text

    out = Path(out)
    records = find_runs(paths)
    assign_variants(records)
    spectra = run_spectra(records, center)
    if semantic:
        spectra += semantic_spectra(records, center)
    plot_spectra(spectra, out)
    write_csv(out.with_suffix(".csv"), [
        {"dataset": s.dataset, "matrix": s.row, "index": i + 1, "sigma_over_sigma1": f"{v:.10g}",
         "std_over_seeds": f"{e:.6g}"}
        for s in spectra for i, (v, e) in enumerate(zip(s.sigma, s.sigma_std, strict=True))])
    masses = attention_masses(records) if attention else []
    if masses:
        plot_attention(masses, out.with_name(out.stem + "_attention.png"))
        write_csv(out.with_name(out.stem + "_attention.csv"), [
            {"dataset": m.dataset, "row": m.row, "component": i + 1, "mass_share": f"{v:.8g}"}
            for m in masses for i, v in enumerate(m.mass)])
    table = rank_table(spectra, masses)
    write_text(out.with_suffix(".md"), table + "\n")
    return table


def _cmd_spectrum(args: argparse.Namespace) -> int:
    out = args.out or str(Path(args.paths[0]) / "spectrum.png")
    print(spectrum(args.paths, out, semantic=not args.no_semantic, attention=not args.no_attention,
                   center=args.center))
    print(f"wrote {out} (and .csv, .md beside it)", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spectrum", help="singular-value spectra of learned item embeddings and of E")
    p.add_argument("paths", nargs="+", help="sweep folders or run folders")
    p.add_argument("--out", help="PNG file (default: <first path>/spectrum.png); .csv and .md beside it")
    p.add_argument("--no-semantic", action="store_true", help="leave out the spectrum of E")
    p.add_argument("--no-attention", action="store_true", help="skip SpecTran's attention-mass plot")
    p.add_argument("--center", action="store_true", help="centre each matrix's columns before the SVD")
    p.set_defaults(func=_cmd_spectrum)
