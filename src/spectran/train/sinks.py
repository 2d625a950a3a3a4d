"""Optional per-epoch logging sinks. log.csv / log.jsonl are always written by the trainer;
sinks add other destinations (TensorBoard behind the ``tensorboard`` extra)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Protocol, TextIO

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


def epoch_line(row: dict[str, Any], metric: str) -> str:
    """One epoch of the log as one line: loss, the validation metric, seconds, ``*`` when best so far."""
    return (f"epoch {row['epoch']:3d}  loss {row['loss']:.4f}  valid {metric} {row[f'valid_{metric}']:.4f}"
            f"  ({row['train_seconds']:.1f}s + {row['valid_seconds']:.1f}s){'  *' if row['best'] else ''}")


class EpochLines:
    """Prints :func:`epoch_line` for every epoch (``spectran train --no-progress``: no bar, one line
    per epoch)."""

    def __init__(self, metric: str, stream: TextIO | None = None):
        self.metric = metric
        self.stream = stream

    def log(self, row: dict[str, Any]) -> None:
        print(epoch_line(row, self.metric), file=self.stream or sys.stderr, flush=True)

    def close(self) -> None:
        """Nothing to release."""


def make_sinks(settings: Any, run_dir: Path) -> list[Sink]:
    return [TensorBoardSink(RunFolder(run_dir).tensorboard)] if settings.train.tensorboard else []
