"""train.precision=bf16 on CPU: autocast in training, fp32 scores in evaluation, and why."""

from __future__ import annotations

import json

import pytest
import torch

from conftest import tiny_settings
from spectran.api import make_trainer, train, validator
from spectran.assemble import assemble_run
from spectran.errors import ConfigError
from spectran.eval.metrics import pessimistic_ranks
from spectran.model import SeqRecModel
from spectran.train.losses import FullSoftmaxCE


def test_bf16_training_autocasts_and_evaluation_scores_are_fp32(tmp_path, monkeypatch):
    seen = {"loss_autocast": [], "score_dtypes": [], "score_autocast": []}
    loss_call, scores = FullSoftmaxCE.__call__, SeqRecModel.scores

    def recording_loss(self, hidden, targets, table, generator=None):
        seen["loss_autocast"].append(torch.is_autocast_enabled("cpu"))
        return loss_call(self, hidden, targets, table, generator)

    def recording_scores(user, table):
        out = scores(user, table)
        seen["score_dtypes"].append(out.dtype)
        seen["score_autocast"].append(torch.is_autocast_enabled("cpu"))
        return out

    monkeypatch.setattr(FullSoftmaxCE, "__call__", recording_loss)
    monkeypatch.setattr(SeqRecModel, "scores", staticmethod(recording_scores))
    bf16 = train(tiny_settings(train={"precision": "bf16"}), tmp_path / "bf16")
    assert seen["loss_autocast"] and all(seen["loss_autocast"])  # every training step ran under autocast
    # every score of validation and test (the only callers of SeqRecModel.scores) is fp32, autocast off
    assert seen["score_dtypes"] and set(seen["score_dtypes"]) == {torch.float32}
    assert not any(seen["score_autocast"])
    fp32 = train(tiny_settings(), tmp_path / "fp32")
    loss = [json.loads(line)["loss"] for line in (tmp_path / "bf16" / "log.jsonl").read_text().splitlines()]
    ref = [json.loads(line)["loss"] for line in (tmp_path / "fp32" / "log.jsonl").read_text().splitlines()]
    assert loss != ref  # bf16 arithmetic really happened
    assert max(abs(a - b) for a, b in zip(loss, ref, strict=True)) < 0.05 * ref[0]
    assert abs(bf16["test"]["ndcg@10"] - fp32["test"]["ndcg@10"]) < 0.05
    # master weights stay fp32
    state = torch.load(tmp_path / "bf16" / "checkpoints" / "last.pt", weights_only=True)
    assert {v.dtype for v in state["model"].values() if v.is_floating_point()} == {torch.float32}


def test_ranking_ignores_an_enclosing_autocast():
    exp = assemble_run(tiny_settings())
    rank = validator(exp, "test")
    plain = rank(exp.model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = rank(exp.model)
    assert (plain == inside).all()


def test_bf16_rounding_creates_ties_that_change_pessimistic_ranks():
    # two items whose fp32 scores differ by 0.1 %: distinct in fp32, one value in bf16
    user = torch.tensor([[1.0, 0.0]])
    table = torch.tensor([[1.001, 0.0], [1.0, 0.0], [-1.0, 0.0]])  # the target is item column 0
    target = torch.tensor([0])
    fp32 = pessimistic_ranks(SeqRecModel.scores(user, table), target)
    bf16 = pessimistic_ranks(SeqRecModel.scores(user.bfloat16(), table.bfloat16()).float(), target)
    assert int(fp32) == 1  # the target is strictly best
    assert int(bf16) == 2  # rounded to a tie, and a tie counts against the target


def test_fp16_on_cpu_is_refused():
    exp = assemble_run(tiny_settings(train={"precision": "fp16"}))
    with pytest.raises(ConfigError, match="fp16 needs a CUDA device"):
        make_trainer(exp)


@pytest.mark.parametrize(("backbone", "method"), [
    ("sasrec", "svd_frozen"), ("sasrec", "spectran"), ("sasrec", "llmesr"),
    ("bert4rec", "id"), ("hstu", "id"), ("gru4rec", "id")])
def test_bf16_trains_every_backbone_and_method_family(tmp_path, backbone, method):
    s = tiny_settings(model={"backbone": backbone, "method": method},
                      train={"precision": "bf16", "epochs": 1, "ce_chunk": 64})
    m = train(s, tmp_path / "run")
    assert 0.0 <= m["test"]["ndcg@10"] <= 1.0
    loss = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[0])["loss"]
    assert loss == loss and loss > 0  # finite, not NaN


def test_one_pass_pessimistic_ranks_equal_the_two_pass_definition():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(-3, 4, (50, 40), generator=g).float()  # many ties
    scores[scores == -3] = float("-inf")  # masked candidates
    targets = torch.randint(0, 40, (50,), generator=g)
    scores[torch.arange(50), targets] = torch.randint(-2, 4, (50,), generator=g).float()
    t = scores.gather(1, targets[:, None])
    reference = 1 + (scores > t).sum(1) + (scores == t).sum(1) - 1
    assert (pessimistic_ranks(scores, targets) == reference).all()
