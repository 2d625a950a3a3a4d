"""``spectran advise``: the pre-training check, a short verdict and what it measured.

    spectran advise --dataset office --encoder minilm [--dim 64] [--set text.normalize=true] [--json]

The text output is the verdict (the method and preprocessing to use, the runner-up, one sentence
each, and a command to train it), then the measurements; ``--json`` prints both as one object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from spectran.advise.measure import Measurements, Spectrum
from spectran.advise.rule import Verdict


def _spectrum_lines(s: Spectrum, title: str) -> list[str]:
    lines = [f"  {title:<13} rank {s.rank}, effective rank {s.effective_rank:.0f}, top {s.k} hold {s.top_share:.1%} "
             f"of the energy, the first {s.first_share:.1%}; mean cosine of random item pairs {s.mean_cosine:.2f}"]
    if s.noise_floor is not None:
        lines.append(f"  {'':<13} signal: noise floor {s.noise_floor:.4f}; noise-like among the top {s.k}: "
                     f"{s.noise_like}; above the floor: {s.above_floor} of {s.rank}; {s.overlap} of the top {s.k} by "
                     f"sigma are among the top {s.k} by signal; share {s.share:.2f} (position_by=auto builds "
                     f"{s.auto}), of the top {s.k} by sigma {s.sigma_share:.2f}")
    return lines


def format_advice(m: Measurements, v: Verdict, seconds: float, command: str) -> str:
    sc, data = m.scale, m.data
    prep = ", ".join(v.preprocessing) if v.preprocessing else "none"
    lines = [f"spectran advise: {m.dataset} / {m.encoder}, d = {m.d}",
             f"verdict: {v.headline}",
             f"  use            {v.use.label()}: {v.use.reason}",
             f"  runner-up      {v.runner_up.label()}: {v.runner_up.reason}",
             f"  preprocessing  {prep}",
             f"  command        {command}"]
    lines += [f"  note           {n}" for n in v.notes]
    dims = f"dominant hidden dims {sc.dominant_dims} ({sc.dominant_share:.0%} of the energy)" if sc.dominant_dims \
        else "no dominant hidden dimension"
    lines += [f"measured ({seconds:.1f} s, no training; case: {v.case}):",
              f"  {'catalog':<13} {data.items:,} items, {data.users:,} users, {data.interactions:,} interactions "
              f"(density {data.density:.3%}), {data.pairs:,} training pairs",
              f"  {'scale':<13} D = {sc.dim}, row norm {sc.row_norm_mean:.3f} (cv {sc.row_norm_cv:.3f}), "
              f"{sc.zero_rows} zero rows, per-dim std max/median {sc.std_ratio:.1f}, {sc.constant_columns} constant "
              f"columns, {dims}"]
    lines += _spectrum_lines(m.raw, "spectrum")
    if m.normalised is not None:
        lines += _spectrum_lines(m.normalised, "L2-normalised")
    return "\n".join(lines)


def train_command(m: Measurements, v: Verdict, config: str | None, overrides: list[str]) -> str:
    """A ``spectran train`` command for the verdict's choice on this dataset and E (with the
    ``--set`` values advise was given, e.g. the text encoder's settings)."""
    parts = ["spectran train"] + ([f"--config {config}"] if config else [])
    parts += [f"--dataset {m.dataset}", f"--encoder {m.encoder}", f"--method {v.use.method}", f"--dim {m.d}"]
    given = [o for o in overrides if o.split("=", 1)[0].strip() not in ("model.method", "model.dim")]
    parts += [f"--set {s}" for s in given + v.preprocessing + v.use.settings] + ["--out RUN"]
    return " ".join(parts)


def _cmd_advise(args: argparse.Namespace) -> int:
    from spectran.advise import advise
    from spectran.cli import settings_from_args

    s = settings_from_args(args)
    if s.train.threads > 0:
        import torch

        torch.set_num_threads(s.train.threads)
    result = advise(s.data, s.text, s.model.dim, progress=False)
    m, v = result.measurements, result.verdict
    command = train_command(m, v, args.config, args.overrides)
    if args.json:
        out: dict[str, Any] = {"verdict": dataclasses.asdict(v) | {"headline": v.headline, "command": command},
                               "measured": dataclasses.asdict(m), "seconds": round(result.seconds, 3)}
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    print(format_advice(m, v, result.seconds, command))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("advise", help="before training: which method and preprocessing for this data and E")
    p.add_argument("--config", help="YAML file of settings (its data and text sections are read)")
    p.add_argument("--dataset", help="staged dataset name, a dataset folder path, or 'synthetic'")
    p.add_argument("--data-dir", help="root folder of staged datasets (else $SPECTRAN_DATA, else the per-user one)")
    p.add_argument("--encoder", help="text encoder: minilm | mpnet | fake | st:PATH | hf:PATH | npy:FILE")
    p.add_argument("--dim", help="SR embedding dimension d the methods would train with (default 64)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="any setting, e.g. text.normalize=true or train.threads=1 (repeatable)")
    p.add_argument("--json", action="store_true", help="print the verdict and the measurements as JSON")
    p.set_defaults(func=_cmd_advise)
