"""The end of a study: ``best.yaml``, the retests, ``tune.json``; and reading tune folders back.

``tune.json`` holds everything ``spectran report`` shows about a study (its budget, trial states,
epochs trained, the best trial and its settings, the retest folders), so reports need no Optuna.
The tuned table itself is made from the retest run folders like any other report.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spectran.errors import SpectranError
from spectran.io import write_json, write_text
from spectran.settings import resolve, to_yaml
from spectran.tune.space import TuneSpace

if TYPE_CHECKING:
    import optuna

    from spectran.tune.study import TuneOptions

SUMMARY = "tune.json"
RETEST = "retest"


def best_config_text(space: TuneSpace, study: optuna.Study) -> str:
    """best.yaml: the best trial's settings, every setting written out, with a header naming it."""
    best = study.best_trial
    lines = [f"# best trial {best.number} of study '{study.study_name}' (space {space.path.name}): "
             f"valid {resolve(space.base).eval.select_metric} {best.value:.4f}",
             *(f"#   {k} = {v!r}" for k, v in best.params.items())]
    return "\n".join(lines) + "\n" + to_yaml(space.settings_for(best.params))


def finish(study: optuna.Study, space: TuneSpace, opts: TuneOptions, threads: int,
           log: Callable[[str], None]) -> dict[str, Any]:
    """Write best.yaml, run the retests (finished ones are kept), write and return tune.json."""
    from spectran.api import train
    from spectran.tune.study import BASE_ATTR, count_states, fail_stale, shown_url

    fail_stale(study)
    trials = study.get_trials(deepcopy=False)
    if not any(t.state.name == "COMPLETE" for t in trials):
        raise SpectranError(f"{opts.out}: no trial of study '{study.study_name}' completed (all pruned or "
                            "failed); see the trial folders' logs")
    best = study.best_trial
    write_text(opts.out / "best.yaml", best_config_text(space, study))
    metric = resolve(space.base).eval.select_metric
    retests, tests = [], []
    for seed in range(opts.retest):
        folder = opts.out / RETEST / f"seed{seed}"
        log(f"retest seed {seed}: {folder}")
        metrics = train(space.run_settings(best.params, threads, seed), folder)
        retests.append(folder.relative_to(opts.out).as_posix())
        tests.append(metrics["test"])
    summary = {
        "space": str(space.path), "study": study.study_name, "storage": shown_url(opts.place().storage),
        "method": space.method, "label": resolve(space.base).model.label or space.method,
        "dataset": resolve(space.base).data.dataset, "select_metric": metric,
        "budget": opts.trials, "states": count_states(study),
        "epochs_trained": sum(len(t.intermediate_values) for t in trials),
        "trial_seconds": round(sum(t.duration.total_seconds() for t in trials if t.duration is not None), 1),
        "space_keys": [r.key for r in space.ranges],
        "best": {"trial": best.number, "valid": best.value, "params": best.params,
                 "run_dir": best.user_attrs.get("run_dir"), "base": bool(best.user_attrs.get(BASE_ATTR, False))},
        "retest": {"folders": retests, "test": _mean_std(tests)},
    }
    write_json(opts.out / SUMMARY, summary)
    return summary


def _mean_std(blocks: list[dict[str, float]]) -> dict[str, list[float]]:
    """metric -> [mean, sample std (NaN for one seed)] over the retests."""
    if not blocks:
        return {}
    return {k: [statistics.fmean(b[k] for b in blocks),
                statistics.stdev(b[k] for b in blocks) if len(blocks) > 1 else float("nan")]
            for k in blocks[0]}


def is_tune_folder(path: str | Path) -> bool:
    return (Path(path) / SUMMARY).is_file()


def load_summary(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / SUMMARY
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SpectranError(f"{path}: unreadable tune summary ({exc})") from None


def retest_folder(folder: str | Path) -> Path:
    """The retest runs of a tune folder (the rows of the tuned table)."""
    summary = load_summary(folder)
    if not summary["retest"]["folders"]:
        raise SpectranError(f"{folder}: the study has no retests; run spectran tune again with --retest S")
    return Path(folder) / RETEST


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def tuning_section(folders: Iterable[str | Path]) -> list[str]:
    """Markdown lines: per tune folder the budget used and the best settings."""
    lines = ["## Tuning", "",
             "Each row: one study (TPE, pruning on the per-epoch validation metric); trials selected on "
             "validation alone; the table above holds the retests of each best config.", "",
             "| method | budget | complete / pruned / failed | epochs trained | trial hours | best trial "
             "| best valid | best settings |", "|---|---|---|---|---|---|---|---|"]
    for folder in folders:
        s = load_summary(folder)
        st, best = s["states"], s["best"]
        params = ", ".join(f"{k}={_short(v)}" for k, v in best["params"].items())
        trial = f"{best['trial']} (the base)" if best.get("base") else str(best["trial"])
        lines.append(f"| {s['label']} | {s['budget']} trials | {st.get('COMPLETE', 0)} / {st.get('PRUNED', 0)} / "
                     f"{st.get('FAIL', 0)} | {s['epochs_trained']} | {s['trial_seconds'] / 3600:.2f} "
                     f"| {trial} | {best['valid']:.4f} ({s['select_metric']}) | {params} |")
    return lines + [""]
