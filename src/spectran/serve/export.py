"""Export a trained run for use outside spectran: safetensors files plus a JSON description.

``<out>/item_embeddings.safetensors``: ``embeddings`` (N [+ M], w), the final item table of the
best checkpoint (row i = the i-th id of ``ids`` in ``model.json``), added items included.
``<out>/model.safetensors``: the model's state dict (tensors only; loads without pickle).
``<out>/model.json``: the resolved run settings, N, w, the ids and the exported file names.
Every file is written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spectran.errors import DataError
from spectran.io import atomic_path, write_json
from spectran.runfolder import RunFolder


def export(run_dir: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Write the safetensors export of ``run_dir`` into ``out`` (default ``<run>/export``)."""
    from safetensors.torch import save_file

    from spectran.serve.recommend import Recommender

    out = Path(out) if out is not None else RunFolder(run_dir).export
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: is a file (expected a folder for the export files; choose another --out)")
    rec = Recommender.from_run(run_dir)
    state = {k: v.detach().float().cpu().contiguous() if v.is_floating_point() else v.detach().cpu().contiguous()
             for k, v in rec.model.state_dict().items()}
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    with atomic_path(out / "item_embeddings.safetensors") as tmp:
        save_file({"embeddings": rec.table.detach().float().cpu().contiguous()}, str(tmp))
    info = {"settings": rec.settings.to_dict() if rec.settings else None,
            "num_items": len(rec.table), "trained_items": rec.num_trained, "width": int(rec.table.shape[1]),
            "ids": rec.labels, "files": ["model.safetensors", "item_embeddings.safetensors"]}
    write_json(out / "model.json", info)  # written last: marks the export complete
    return {"out": str(out), "num_items": info["num_items"], "width": info["width"],
            "tensors": len(state)}
