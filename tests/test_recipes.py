"""A method's tuned recipe: its defaults on one backbone for the settings a config leaves out."""

from __future__ import annotations

import pytest
import yaml

from spectran.cli import main
from spectran.encoders.registry import method_spec
from spectran.errors import ConfigError
from spectran.settings import TrainSettings, recipe_values, resolve

RECIPE = method_spec("svd_frozen").recipes["sasrec"]


def test_the_recipe_fills_only_the_settings_a_config_leaves_out():
    s = resolve({"model": {"method": "svd_frozen"}, "train": {"lr": 0.01}, "method": None})
    assert s.train.lr == 0.01  # given
    assert s.train.weight_decay == RECIPE["train.weight_decay"] and s.method.scale == RECIPE["method.scale"]
    assert s.backbone.dropout == RECIPE["backbone.dropout"]
    assert set(recipe_values(s)) == set(RECIPE) - {"train.lr"}


@pytest.mark.parametrize("raw", [
    {"model": {"method": "svd_frozen", "recipe": "none"}},  # asked for the shared defaults
    {"model": {"method": "svd_frozen", "backbone": "gru4rec"}},  # no recipe on this backbone
    {"model": {"method": "mlp"}},  # a method without a recipe
])
def test_without_a_recipe_every_setting_is_the_shared_default(raw):
    s = resolve(raw)
    assert s.train == TrainSettings() and s.method == method_spec(s.model.method).settings()
    assert recipe_values(s) == {}


def test_a_stored_config_resolves_to_itself_whatever_the_recipe():
    shared = resolve({"model": {"method": "spectran", "recipe": "none"}}).to_dict()
    stored = {**shared, "model": {k: v for k, v in shared["model"].items() if k != "recipe"}}  # an older run
    again = resolve(stored)
    assert again.model.recipe == "method" and again.train.lr == TrainSettings().lr
    assert again.method == method_spec("spectran").settings()


def test_a_bad_recipe_name_is_refused():
    with pytest.raises(ConfigError, match=r"model.recipe: expected one of \['method', 'none'\]"):
        resolve({"model": {"method": "svd_frozen", "recipe": "tuned"}})


def test_train_says_which_recipe_values_it_used(tmp_path, capsys):
    args = ["train", "--dataset", "synthetic", "--method", "svd_frozen", "--encoder", "fake", "--epochs", "1",
            "--dim", "16", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "tuned")]) == 0
    err = capsys.readouterr().err
    assert "svd_frozen's tuned sasrec recipe: train.lr=0.003832" in err and "model.recipe=none" in err
    config = yaml.safe_load((tmp_path / "tuned" / "config.yaml").read_text())
    assert config["train"]["lr"] == RECIPE["train.lr"] and config["model"]["recipe"] == "method"

    assert main([*args, "--set", "model.recipe=none", "--out", str(tmp_path / "shared")]) == 0
    assert "recipe:" not in capsys.readouterr().err
    config = yaml.safe_load((tmp_path / "shared" / "config.yaml").read_text())
    assert config["train"]["lr"] == TrainSettings().lr and config["method"]["scale"] != RECIPE["method.scale"]


def test_the_recipe_name_does_not_distinguish_runs_its_values_do():
    from spectran.runfolder import differing_setting

    explicit = {"model": {"method": "svd_frozen", "recipe": "none"}}
    for dotted, value in RECIPE.items():
        explicit.setdefault(dotted.split(".")[0], {})[dotted.split(".")[1]] = value
    stored = resolve(explicit).to_dict()  # a run made with the recipe's values written out
    assert differing_setting(stored, resolve({"model": {"method": "svd_frozen"}})) is None
    assert differing_setting(stored, resolve({"model": {"method": "svd_frozen", "recipe": "none"}}))[0] in {
        f"{section}.{key}" for section, key in (d.split(".") for d in RECIPE)}
