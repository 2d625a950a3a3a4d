"""The README's Python example: train SpecTran on the built-in synthetic set, evaluate, recommend."""

from spectran.api import evaluate, train
from spectran.serve.recommend import Recommender
from spectran.settings import resolve

settings = resolve({"data": {"dataset": "synthetic"}, "text": {"encoder": "fake"},
                    "model": {"method": "spectran", "dim": 32}, "train": {"epochs": 2, "progress": False}})
metrics = train(settings, "runs/quickstart")            # resumes if interrupted; a no-op once finished
print("test NDCG@10", round(metrics["test"]["ndcg@10"], 4), "best epoch", metrics["best_epoch"])
print("valid Recall@20", round(evaluate("runs/quickstart", "valid")["recall@20"], 4))
print("top 3 after items 1, 5, 9:", Recommender.from_run("runs/quickstart").recommend([1, 5, 9], k=3))
