"""Checkpoints: written atomically, loaded only with ``torch.load(weights_only=True)``.

A checkpoint is a plain dict of tensors, numbers, strings and lists (no pickled objects), so a
truncated or tampered file is refused instead of executed or half-loaded. Its ``settings`` entry
holds the resolved settings it was trained with, as a plain nested dict (checkpoints written
before it existed have none and load unchecked).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from spectran.errors import CacheError, ConfigError
from spectran.io import atomic_path
from spectran.runfolder import differing_setting
from spectran.settings import RunSettings


def save_checkpoint(path: str | os.PathLike[str], state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise CacheError(f"{p}: checkpoint not found")
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for truncated/corrupt zip archives
        raise CacheError(f"{p}: checkpoint is truncated or corrupt ({type(exc).__name__}); "
                         "delete it to start over") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CacheError(f"{p}: not a spectran checkpoint (no model state)")
    return state


def load_weights(model: torch.nn.Module, weights: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """``model.load_state_dict(weights)``; weights of another model (other settings or data) are a
    CacheError naming the first tensor that differs."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    extra = sorted(set(weights) - set(own))
    shapes = [(k, tuple(weights[k].shape), tuple(own[k].shape)) for k in own
              if k in weights and tuple(weights[k].shape) != tuple(own[k].shape)]
    if missing or extra or shapes:
        what = (f"{shapes[0][0]} is {shapes[0][1]} in the checkpoint, {shapes[0][2]} in the model" if shapes
                else f"the checkpoint lacks {missing[0]}" if missing else f"the model has no {extra[0]}")
        raise CacheError(f"{path}: checkpoint does not fit the model of these settings ({what}); it was "
                         "trained with other settings (model.dim, backbone, method) or other data")
    model.load_state_dict(weights)


def check_settings(state: dict[str, Any], settings: RunSettings, path: str | os.PathLike[str]) -> None:
    """A ConfigError naming the setting when the checkpoint ``state`` was trained with other
    settings than ``settings`` (the run's config.yaml) on one that distinguishes runs."""
    stored = state.get("settings")
    if stored is None:  # written before checkpoints carried their settings
        return
    if not isinstance(stored, dict):
        raise CacheError(f"{path}: not a spectran checkpoint (its settings are not a mapping)")
    diff = differing_setting(stored, settings)
    if diff is not None:
        key, old, new = diff
        raise ConfigError(f"{path}: checkpoint was trained with {key}={old!r}, the run's config.yaml has "
                          f"{key}={new!r}; it belongs to another run (delete it to start over)", setting=key)


def load_trained(model: torch.nn.Module, path: str | os.PathLike[str], settings: RunSettings,
                 map_location: Any = None) -> dict[str, Any]:
    """Load checkpoint ``path`` into ``model`` and return the whole checkpoint: its weights must fit
    the model, and its settings must be the run's (:func:`check_settings`)."""
    state = load_checkpoint(path, map_location=map_location)
    load_weights(model, state["model"], path)
    check_settings(state, settings, path)
    return state
