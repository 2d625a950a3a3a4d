"""Optional per-epoch logging sinks. log.csv / log.jsonl are always written by the trainer;
sinks add other destinations (TensorBoard behind the ``tensorboard`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from spectran.errors import ConfigError
from spectran.runfolder import RunFolder


class Sink(Protocol):
    def log(self, row: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


class TensorBoardSink:
    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("train.tensorboard needs the tensorboard package "
                              "(pip install 'spectran[tensorboard]')") from None
        self.writer = SummaryWriter(str(folder))

    def log(self, row: dict[str, Any]) -> None:
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(key.replace("_", "/", 1), value, row["epoch"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def make_sinks(settings: Any, run_dir: Path) -> list[Sink]:
    return [TensorBoardSink(RunFolder(run_dir).tensorboard)] if settings.train.tensorboard else []
