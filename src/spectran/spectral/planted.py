"""Embedding matrices with a known spectrum: planted variants of a real E, for tests with a known answer.

Each variant changes E (N, D) in a way whose right answer is known, so a method that claims to
select informative spectral components can be checked:

- ``noise``: ``count`` extra columns of Gaussian noise, column j ~ N(0, s_j * sigma_1^2 / N) with
  sigma_1 the top singular value of the centred E. A column of variance s * sigma_1^2 / N has a norm
  of about sqrt(s) * sigma_1, so for s > 1 the top ``count`` singular directions of the result are
  pure noise and E's own spectrum starts at component ``count + 1`` — the anisotropy of decoder-LLM
  embeddings (a few huge-variance directions with little meaning) made exact. The strengths s_j
  run geometrically from ``strength / spread`` to ``strength * spread`` (spread 1: all equal).
- ``tail``: the top ``count`` singular values of the centred E are multiplied by ``factor`` (< 1),
  so the most informative directions move to the tail of the spectrum, below components that
  carry less (a rescaled, not a rotated, spectrum: U and V are kept).
- ``drop``: the top ``count`` components are removed (E minus its rank-``count`` SVD part).
- ``rotate``: E times a random orthogonal D x D matrix, so no hidden dimension lines up with a
  planted (or any) direction any more. The singular values and U are unchanged, so every rule that
  reads the SVD must give the same answer on the rotated matrix; a rule that looks at E's columns
  (per-dimension scale, dominant dimensions) does not.

Variants compose in the order given. Everything is seeded (noise and rotate) and computed in float64;
the result is float32, ready to be given to ``--encoder npy:FILE``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from spectran.errors import ConfigError

Kind = Literal["noise", "tail", "drop", "rotate"]


@dataclass(frozen=True)
class Plant:
    kind: Kind
    count: int  # noise: columns added; tail / drop: top components changed; rotate: unused (0)
    strength: float = 4.0  # noise: variance factor s (column variance s * sigma_1^2 / N)
    spread: float = 1.0  # noise: strengths from strength/spread to strength*spread (geometric)
    factor: float = 0.05  # tail: multiplier of the top singular values

    def check(self, dim: int) -> None:
        if self.kind not in ("noise", "tail", "drop", "rotate"):
            raise ConfigError(f"plant kind '{self.kind}': expected noise, tail, drop or rotate")
        if self.kind == "rotate":
            return
        if self.count < 1:
            raise ConfigError(f"plant {self.kind}: count must be >= 1, got {self.count}")
        if self.kind != "noise" and self.count >= dim:
            raise ConfigError(f"plant {self.kind}: count {self.count} must be below E's rank ({dim})")
        if self.strength <= 0 or self.spread < 1:
            raise ConfigError(f"plant noise: strength must be > 0 and spread >= 1, got "
                              f"{self.strength}, {self.spread}")
        if not 0 < self.factor < 1:
            raise ConfigError(f"plant tail: factor must be in (0, 1), got {self.factor}")


def parse_plant(text: str) -> Plant:
    """``noise:64`` | ``noise:64:4`` | ``noise:64:4:2`` (count, strength, spread) | ``tail:32:0.05`` |
    ``drop:16`` | ``rotate``."""
    if text == "rotate":
        return Plant("rotate", 0)
    kind, *rest = text.split(":")
    try:
        numbers = [float(x) for x in rest]
    except ValueError:
        raise ConfigError(f"plant '{text}': expected KIND:COUNT[:...] with numbers") from None
    if not numbers or numbers[0] != int(numbers[0]):
        raise ConfigError(f"plant '{text}': expected an integer count after '{kind}:'")
    count = int(numbers[0])
    if kind == "noise" and len(numbers) <= 3:
        return Plant("noise", count, *numbers[1:])
    if kind == "tail" and len(numbers) <= 2:
        return Plant("tail", count, factor=numbers[1] if len(numbers) == 2 else 0.05)
    if kind == "drop" and len(numbers) == 1:
        return Plant("drop", count)
    raise ConfigError(f"plant '{text}': expected noise:COUNT[:STRENGTH[:SPREAD]], tail:COUNT[:FACTOR], "
                      "drop:COUNT or rotate")


def _svd(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    return U, s, Vt


def apply_plant(E: np.ndarray, plant: Plant, rng: np.random.Generator) -> np.ndarray:
    """One variant of E (float64 in, float64 out)."""
    if plant.kind == "rotate":
        Q, R = np.linalg.qr(rng.standard_normal((E.shape[1], E.shape[1])))
        return E @ (Q * np.sign(np.diag(R)))  # a Haar-distributed orthogonal matrix
    mean = E.mean(axis=0, keepdims=True)
    X = E - mean
    U, s, Vt = _svd(X)
    plant.check(int((s > 1e-10 * s[0]).sum()))
    n = E.shape[0]
    if plant.kind == "noise":
        strengths = plant.strength * np.geomspace(1 / plant.spread, plant.spread, plant.count)
        noise = rng.standard_normal((n, plant.count)) * np.sqrt(strengths * s[0] ** 2 / n)  # (N, count)
        return np.concatenate([E, noise], axis=1)
    k = plant.count
    if plant.kind == "tail":
        return E + (U[:, :k] * ((plant.factor - 1.0) * s[:k])) @ Vt[:k]
    return E - (U[:, :k] * s[:k]) @ Vt[:k]  # drop


def planted_matrix(E: np.ndarray, plants: list[Plant], seed: int = 0) -> np.ndarray:
    """E with every plant applied in order, float32."""
    rng = np.random.default_rng(seed)
    X = np.asarray(E, dtype=np.float64)
    for plant in plants:
        X = apply_plant(X, plant, rng)
    return X.astype(np.float32)


def describe(plants: list[Plant], seed: int) -> dict:
    return {"plants": [asdict(p) for p in plants], "seed": seed}
