"""A method and a backbone defined here, outside the package, registered and trained (docs/extending.md).

Both use only the public seams: :class:`ItemEncoder` / :class:`MethodSpec` with
:func:`register_method`, :class:`Backbone` / :class:`BackboneSpec` with :func:`register_backbone`,
then :func:`spectran.api.train` on the synthetic dataset.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from conftest import tiny_settings
from spectran.api import evaluate, load_run, train
from spectran.backbones.base import Backbone, BackboneSettings, BackboneSpec
from spectran.backbones.registry import BACKBONES, register_backbone
from spectran.encoders.base import ItemContext, ItemEncoder, MethodSpec, init_table
from spectran.encoders.registry import METHODS, method_names, register_method
from spectran.errors import ConfigError
from spectran.objectives import TrainBatch


# -- a method: E through a learnable linear map, plus an ID table, with an L2 penalty on the map --
@dataclass
class ProjectedSettings:
    penalty: float = 1e-3  # weight of ||W||^2 added to the loss
    id_std: float = 0.02


class Projected(ItemEncoder):
    aux_calls = 0  # counts auxiliary_loss calls (the test checks the training loop makes them)

    def __init__(self, semantic: torch.Tensor, dim: int, s: ProjectedSettings):
        super().__init__()
        self.register_buffer("semantic", semantic, persistent=False)  # (N, D), frozen
        self.proj = nn.Linear(semantic.shape[1], dim, bias=False)
        self.ids = init_table(semantic.shape[0], dim, s.id_std)  # (N, d)
        self.penalty = s.penalty

    def forward(self) -> torch.Tensor:
        return self.proj(self.semantic) + self.ids  # (N, d)

    def auxiliary_loss(self, batch: TrainBatch, hidden: torch.Tensor) -> torch.Tensor | None:
        type(self).aux_calls += 1
        return self.penalty * self.proj.weight.pow(2).sum()

    def embed_new_items(self, semantic: torch.Tensor) -> torch.Tensor:
        return self.proj(semantic)  # a new item has no ID row


def build_projected(s: ProjectedSettings, ctx: ItemContext) -> Projected:
    if ctx.semantic is None:
        raise ConfigError("method 'projected' needs semantic embeddings (text.encoder)")
    return Projected(ctx.semantic, ctx.dim, s)


PROJECTED = MethodSpec("projected", ProjectedSettings, build_projected, needs_text=True)


# -- a backbone: the running mean of the item embeddings (causal: position t sees items <= t) --
@dataclass
class RunningMeanSettings(BackboneSettings):
    layers: int = 1  # Linear + GELU layers after the mean


class RunningMean(Backbone):
    def __init__(self, s: RunningMeanSettings, dim: int, max_len: int):
        super().__init__()
        self.mlp = nn.Sequential(*[m for _ in range(s.layers) for m in (nn.Linear(dim, dim), nn.GELU())])

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        keep = valid.unsqueeze(-1).to(x.dtype)  # (B, L, 1)
        mean = (x * keep).cumsum(dim=1) / keep.cumsum(dim=1).clamp_min(1)  # (B, L, d)
        return self.mlp(mean)


RUNNING_MEAN = BackboneSpec("running_mean", RunningMeanSettings, RunningMean)


@pytest.fixture()
def registered(monkeypatch):
    """Register both for this test only (the registries are process-wide)."""
    monkeypatch.setattr(METHODS, "_entries", dict(METHODS._entries))
    monkeypatch.setattr(BACKBONES, "_entries", dict(BACKBONES._entries))
    register_method(PROJECTED)
    register_backbone(RUNNING_MEAN)


def test_a_method_defined_outside_the_package_trains_one_epoch(registered, tmp_path):
    assert "projected" in method_names()
    s = tiny_settings(model={"method": "projected", "dim": 16}, method={"penalty": 0.01},
                      train={"epochs": 1})
    Projected.aux_calls = 0
    metrics = train(s, tmp_path / "run")
    assert metrics["epochs"] == 1 and Projected.aux_calls > 0  # the loop called the hook every step
    assert 0.0 <= metrics["test"]["ndcg@10"] <= 1.0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["protocol"]["method"] == "projected"
    exp = load_run(tmp_path / "run")  # rebuilt from config.yaml through the registry
    assert isinstance(exp.model.item_encoder, Projected) and exp.settings.method.penalty == 0.01
    assert evaluate(tmp_path / "run")["ndcg@10"] == pytest.approx(metrics["test"]["ndcg@10"])


def test_a_backbone_defined_outside_the_package_trains_one_epoch(registered, tmp_path):
    s = tiny_settings(model={"method": "id", "backbone": "running_mean"}, backbone={"layers": 2},
                      train={"epochs": 1})
    metrics = train(s, tmp_path / "run")
    assert metrics["epochs"] == 1 and 0.0 <= metrics["test"]["ndcg@10"] <= 1.0
    assert isinstance(load_run(tmp_path / "run").model.backbones[0], RunningMean)


def test_a_taken_name_is_refused(registered):
    with pytest.raises(ConfigError, match="already registered"):
        register_method(PROJECTED)
    with pytest.raises(ConfigError, match="already registered"):
        register_backbone(BackboneSpec("sasrec", RunningMeanSettings, RunningMean))


def test_an_item_encoder_without_the_hooks_gets_the_defaults():
    class Plain(ItemEncoder):
        def forward(self) -> torch.Tensor:
            return torch.zeros(3, 2)

    enc = Plain()
    assert enc.num_views == 1 and enc.spectral_attention() is None and enc.attention_summary() is None
    assert enc.auxiliary_loss(TrainBatch(torch.zeros(1), torch.zeros(1, 2), torch.zeros(1, 2)), torch.zeros(1, 2, 2)) \
        is None
    with pytest.raises(ConfigError, match="Plain has no path from text"):
        enc.embed_new_items(torch.zeros(1, 4))
    with pytest.raises(TypeError):  # forward is abstract
        type("NoForward", (ItemEncoder,), {})()
