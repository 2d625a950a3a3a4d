"""A method's tuned recipe: its defaults on one backbone for the settings a config leaves out."""

from __future__ import annotations

import json

import pytest
import yaml

from spectran.cli import main
from spectran.encoders.registry import method_spec
from spectran.errors import ConfigError
from spectran.recipes import for_catalog, recipe_label, recipe_values
from spectran.settings import TrainSettings, resolve

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
    with pytest.raises(ConfigError, match=r"model.recipe: expected one of \['method', 'dense', 'none'\]"):
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


SPARSE = method_spec("spectran").sparse_recipes["sasrec"]


def _sparse_shop(root, users: int = 40, items: int = 60):
    """A catalog with fewer than SPARSE_PER_ITEM interactions per item: users * 5 / items of them."""
    folder = root / "sparse"
    folder.mkdir()
    lines = [f"{u} " + " ".join(str((u * 3 + t) % items + 1) for t in range(5)) for u in range(1, users + 1)]
    (folder / "sequences.txt").write_text("\n".join(lines) + "\n")
    (folder / "items.jsonl").write_text("".join(json.dumps({"item": i, "text": f"item {i}"}) + "\n"
                                                for i in range(1, items + 1)))
    return folder


def test_the_sparse_variant_replaces_only_the_values_still_at_the_recipe():
    s = resolve({"model": {"method": "spectran"}, "train": {"weight_decay": 0.01}})
    sparse = for_catalog(s, interactions=300, items=100)  # 3 per item
    assert sparse.train.weight_decay == 0.01  # given by the config: kept
    assert sparse.backbone.dropout == SPARSE["backbone.dropout"]
    assert sparse.train.lr == s.train.lr and sparse.method == s.method
    assert for_catalog(sparse, 300, 100) == sparse  # idempotent: a stored config comes back unchanged
    assert for_catalog(s, interactions=600, items=100) == s  # 6 per item: not sparse


@pytest.mark.parametrize("raw", [
    {"model": {"method": "spectran", "recipe": "dense"}},  # the recipe whatever the catalog
    {"model": {"method": "spectran", "recipe": "none"}},
    {"model": {"method": "svd_frozen"}},  # a method without a sparse variant
    {"model": {"method": "spectran", "backbone": "bert4rec"}},  # no recipe on this backbone
])
def test_without_a_sparse_variant_the_catalog_changes_nothing(raw):
    s = resolve(raw)
    assert for_catalog(s, interactions=10, items=100) == s


def test_the_label_names_the_sparse_variant():
    s = resolve({"model": {"method": "spectran"}})
    assert recipe_label(for_catalog(s, 10, 100)) == "spectran's sasrec recipe, sparse-catalog variant"
    assert recipe_label(s) == "spectran's sasrec recipe"
    assert set(recipe_values(for_catalog(s, 10, 100))) == set(method_spec("spectran").recipes["sasrec"])


def test_training_on_a_sparse_catalog_uses_the_variant_and_resumes_it(tmp_path, capsys):
    shop = _sparse_shop(tmp_path)  # 200 interactions over 60 items
    args = ["train", "--dataset", str(shop), "--method", "spectran", "--encoder", "fake", "--dim", "8",
            "--no-progress", "--set", "backbone.layers=1", "--set", "text.fake_dim=16"]
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    out, err = capsys.readouterr()
    assert "a sparse catalog (3.3 interactions per item, fewer than 6)" in err
    assert "train.weight_decay=0.1" in err and "model.recipe=dense keeps the recipe" in err
    assert "settings: spectran on sasrec, spectran's sasrec recipe, sparse-catalog variant" in out
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["train"]["weight_decay"] == SPARSE["train.weight_decay"]
    assert config["backbone"]["dropout"] == SPARSE["backbone.dropout"]
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "run")]) == 0  # trains on: same settings
    assert "resuming" in capsys.readouterr().err

    assert main([*args, "--epochs", "1", "--set", "model.recipe=dense", "--out", str(tmp_path / "dense")]) == 0
    assert "sparse catalog" not in capsys.readouterr().err
    config = yaml.safe_load((tmp_path / "dense" / "config.yaml").read_text())
    assert config["train"]["weight_decay"] == method_spec("spectran").recipes["sasrec"]["train.weight_decay"]


def test_a_sweep_skips_its_finished_sparse_catalog_run(tmp_path, capsys):
    shop = _sparse_shop(tmp_path)
    grid = {"base": {"data": {"dataset": str(shop)}, "text": {"encoder": "fake", "fake_dim": 16},
                     "model": {"method": "spectran", "dim": 8}, "backbone": {"layers": 1},
                     "train": {"epochs": 1, "progress": False}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(grid))
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    (run,) = (tmp_path / "o").rglob("config.yaml")
    assert yaml.safe_load(run.read_text())["train"]["weight_decay"] == SPARSE["train.weight_decay"]
    capsys.readouterr()
    assert main(["sweep", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert "1 already finished" in capsys.readouterr().out  # compared as trained: not "different settings"
