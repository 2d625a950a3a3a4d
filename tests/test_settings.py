"""Typed settings: unknown keys and wrong types are errors; --set overrides reach every section."""

from __future__ import annotations

import pytest

from spectran.errors import ConfigError
from spectran.settings import apply_override, resolve


def test_defaults_resolve_with_component_settings():
    s = resolve({})
    assert s.model.backbone == "sasrec" and s.model.method == "id" and s.model.dim == 64
    assert s.backbone.layers == 2 and s.backbone.dropout == 0.5
    assert s.train.batch_size == 256 and s.train.patience == 10 and s.eval.exclude_history is False


@pytest.mark.parametrize("raw, message", [
    ({"train": {"lrr": 0.1}}, r"train: unknown setting 'lrr'"),
    ({"backbone": {"layerz": 3}}, r"backbone: unknown setting 'layerz'"),
    ({"train": {"epochs": "ten"}}, r"train.epochs: expected an integer"),
    ({"train": {"loss": "mse"}}, r"train.loss: expected one of"),
    ({"model": {"method": "magic"}}, r"unknown method 'magic'"),
    ({"model": {"backbone": "lstm"}}, r"unknown backbone 'lstm'"),
    ({"trian": {}}, r"unknown section 'trian'"),
])
def test_bad_settings_are_refused(raw, message):
    with pytest.raises(ConfigError, match=message):
        resolve(raw)


def test_set_overrides_parse_yaml_values():
    raw: dict = {}
    apply_override(raw, "train.lr=0.005")
    apply_override(raw, "eval.ks=[1, 10]")  # holds the K of select_metric ndcg@10
    apply_override(raw, "backbone.layers=3")
    s = resolve(raw)
    assert s.train.lr == 0.005 and s.eval.ks == [1, 10] and s.backbone.layers == 3
    with pytest.raises(ConfigError, match=r"expected section\.key=value"):
        apply_override(raw, "lr0.1")
