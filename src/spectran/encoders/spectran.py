"""``spectran``: the Spectral-Aware Transformer-based Adapter.

Follows Cui et al., "SpecTran: Spectral-Aware Transformer-based Adapter for LLM-Enhanced
Sequential Recommendation" (SIGIR 2026, arXiv 2601.21986). From the SVD E - mu = U diag(sigma) V^T
(computed once in the preparation layer), with U_hat = U * sqrt(N) and sigma_bar = sigma / sigma_1:

    S_h  = Q_h K_h^T / sqrt(h)                         (d, r) per head, Q_h (d, h), K_h (r, h)
    phi  = Softshrink_lambda (exact zeros below lambda) | row-wise Softmax over r | none
    A    = g(x_j) at (j, c_j) for the k components c_j chosen by position_by (below), zero elsewhere  (d, r)
    E_s  = U_hat [gate * alpha * sum_h phi(S_h) + A]^T                               (N, d)

then E_s is fused with an ID table (sum by default). With the attention term off, beta fixed and
``position_by=sigma``, E_s is exactly ``svd_frozen``'s table (same scaling, same code path).

Where A sits (``position_by``), k = min(d, r), each from the collaborative signal rho of every
component (the correlation of its coordinate between consecutive training items,
:func:`spectran.encoders.spectral_coords.transition_signal`; training pairs only):

- ``auto`` (default): ``informative`` while the components it picks carry at least
  ``min_signal_share`` (0.8) of the mean rho of the k components with the most signal
  (:func:`~spectran.encoders.spectral_coords.signal_share`), else ``signal``. Sigma's order is
  kept unless it misses most of what the spectrum carries, as when the informative directions
  sit in the tail; the rule it resolved to is the model's ``position_rule``;
- ``informative``: the top-k by singular value after skipping the noise-like components
  (rho below :func:`~spectran.encoders.spectral_coords.noise_floor`), x = sigma over the largest
  kept sigma; fewer than k informative components leave the rest of A's diagonal at zero. When
  no top-k component is noise-like this is exactly ``sigma``;
- ``sigma``: the top-k by singular value, x = sigma_bar (the paper's formula);
- ``signal``: the k components with the largest rho, x = rho / max rho.

The attention term reads all r components (``attend=all``, the default) or only those whose rho
reaches the noise floor (``attend=informative``: phi is zero on the others and alpha counts only
the attended ones, so with every component above the floor it is the same model).

Choices the paper leaves open are settings: ``alpha`` scales the attention term (1/sqrt(r) by
default, so that phi(S) with N(0, 1) queries/keys contributes O(1) per coordinate), a learnable
scalar ``gate`` (0.1 at the start, so training starts close to the SVD truncation), beta fixed by
default, and ``scale`` multiplying E_s as in ``svd_frozen``. Why each default, with the
measurements: docs/methods/spectran.md.

E_s is one (N x r)(r x d) product per call: once per training step, and once per evaluation or
recommendation (the callers compute the item table once and score every user against it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from spectran.encoders.base import ItemContext, ItemEncoder, MethodSpec
from spectran.encoders.fusion import Fusion, FusionKind
from spectran.encoders.spectral_coords import (
    ColdStartProjector,
    Scaling,
    auto_rule,
    coord_scale,
    informative_components,
    noise_floor,
    normalised_sigma,
    require_basis,
    scaled_coords,
    select_components,
    transition_signal,
    truncated_table,
)
from spectran.errors import ConfigError


@dataclass
class SpecTranSettings:
    rank: int = 0  # r: number of spectral components attended to; 0 = all (min(N, D) or numerical rank)
    heads: int = 1  # attention heads (summed)
    head_dim: int = 0  # h, width of each head's queries/keys; 0 = d
    qk_std: float = 1.0  # Q, K ~ N(0, qk_std^2) at init
    attention: Literal["softshrink", "softmax", "none"] = "softshrink"  # phi; none = ablation "w/o attention"
    shrink: float = 0.5  # Softshrink threshold lambda (initial value)
    learn_shrink: bool = True  # lambda learnable (ablation: fixed)
    attn_scale: Literal["inv_sqrt_r", "one"] = "inv_sqrt_r"  # alpha, fixed factor on phi(S)
    gate_init: float = 0.1  # scalar gate on the attention term (initial value): starts near svd_frozen
    learn_gate: bool = True  # gate learnable
    # weight decay (train.weight_decay) also shrinks lambda, the gate and beta; off by default, since
    # decaying lambda towards 0 makes Softshrink denser, the opposite of what decay is for
    decay_scalars: bool = False
    position: bool = True  # spectral-position encoding A (ablation: off)
    order: int = 2  # M, polynomial order of g
    position_init: Literal["pca", "whiten"] = "pca"  # beta so that g(x) = x ("pca") or g = 1 ("whiten")
    learn_position: bool = False  # beta learnable
    # which d components A sits on and what x its g(x) reads: "sigma" = the top-d by singular value,
    # x = sigma / sigma_1 (the paper); "signal" = the d with the most collaborative signal rho
    # (transition_signal: correlation of a component between consecutive training items),
    # x = rho / max rho, so a component is weighted by what it carries, not by its variance
    # "informative" = the top-d by sigma after skipping the noise-like components (rho below the
    # noise_floor of random directions), x = sigma over the largest kept sigma: the paper's A
    # wherever no top component is noise-like
    # "auto" = "informative" while its components carry at least min_signal_share of the mean signal of
    # the d with the most signal, else "signal": sigma's order is kept unless it misses most of what
    # the spectrum carries (informative directions moved into the tail)
    position_by: Literal["sigma", "signal", "informative", "auto"] = "auto"
    # the components the attention term reads: all r, or only those whose rho reaches the noise
    # floor ("informative"; alpha is then 1/sqrt of their number): with every component above the
    # floor, the same model as "all"
    attend: Literal["all", "informative"] = "all"
    min_signal_share: float = 0.8
    scaling: Scaling = "sqrt_n"  # U_hat = U * sqrt(N) or U ("none")
    scale: float = 0.3  # multiplies the unit-variance coordinates (docs/methods/svd_frozen.md)
    fusion: FusionKind = "sum"  # E_s with the ID table: sum | concat | gate | none
    id_std: float = 0.02  # N(0, id_std) initialisation of the ID table
    center: bool = True  # centre E before the SVD


def _beta_init(order: int, init: str) -> torch.Tensor:
    if order < 0 or (init == "pca" and order < 1):
        raise ConfigError(f"method.order: polynomial order {order} cannot represent g(x) = "
                          f"{'x' if init == 'pca' else '1'} (use order >= {1 if init == 'pca' else 0})")
    beta = torch.zeros(order + 1)
    beta[1 if init == "pca" else 0] = 1.0
    return beta  # (M + 1,)


class SpecTran(ItemEncoder):
    def __init__(self, coords: torch.Tensor, sigma_bar: torch.Tensor, projector: ColdStartProjector,
                 s: SpecTranSettings, dim: int, num_items: int,
                 position: tuple[torch.Tensor, torch.Tensor] | None = None, position_rule: str = "sigma",
                 attended: torch.Tensor | None = None):
        super().__init__()
        r = coords.shape[1]
        self.s, self.dim, self.rank = s, dim, r
        self.position_rule = position_rule  # the rule A was placed by: sigma | signal | informative (auto resolved)
        k = min(dim, r)
        index, x = (torch.arange(k), sigma_bar[:k]) if position is None else position
        if index.ndim != 1 or index.shape[0] > k or x.shape != index.shape:
            raise ConfigError(f"spectran: expected at most {k} position components, got {tuple(index.shape)}")
        self.register_buffer("coords", coords, persistent=False)  # (N, r) U_hat, derived from E
        self.register_buffer("sigma_bar", sigma_bar, persistent=False)  # (r,)
        self.register_buffer("position_index", index.long(), persistent=False)  # (k,) components under A
        self.register_buffer("position_x", x.float(), persistent=False)  # (k,) what g reads, max 1
        self.projector = projector
        self.fusion = Fusion(s.fusion, num_items, dim, s.id_std)
        if s.attention != "none":
            h = s.head_dim or dim
            self.head_dim = h
            self.query = nn.Parameter(torch.randn(s.heads, dim, h) * s.qk_std)  # (H, d, h)
            self.key = nn.Parameter(torch.randn(s.heads, r, h) * s.qk_std)  # (H, r, h)
            # lambda is read by softshrink only: under softmax it is kept (checkpoints) but not trained
            self.shrink = nn.Parameter(torch.tensor(float(s.shrink)),
                                       requires_grad=s.learn_shrink and s.attention == "softshrink")
            self.gate = nn.Parameter(torch.tensor(float(s.gate_init)), requires_grad=s.learn_gate)
            mask = torch.ones(r, dtype=torch.bool) if attended is None else attended.bool()
            if mask.shape != (r,):
                raise ConfigError(f"spectran: expected an attention mask of {r} components, got {tuple(mask.shape)}")
            self.register_buffer("attended", mask, persistent=False)  # (r,) components the attention reads
            count = max(int(mask.sum()), 1)
            self.alpha = 1.0 / math.sqrt(count) if s.attn_scale == "inv_sqrt_r" else 1.0
        if s.position:
            self.beta = nn.Parameter(_beta_init(s.order, s.position_init), requires_grad=s.learn_position)

    # -- the spectral mixing matrix ------------------------------------------------------------
    def attention_scores(self) -> torch.Tensor:
        """phi(S) summed over heads, (d, r), before gate and alpha; zero on components not attended."""
        S = self.query @ self.key.transpose(1, 2) / math.sqrt(self.head_dim)  # (H, d, r)
        if self.s.attention == "softshrink":
            lam = self.shrink.clamp_min(0)
            phi = torch.sign(S) * F.relu(S.abs() - lam) * self.attended  # exact zeros where |S| <= lambda
        else:
            phi = torch.softmax(S.masked_fill(~self.attended, float("-inf")), dim=-1)
        return phi.sum(dim=0)  # (d, r)

    def position_weights(self) -> torch.Tensor:
        """g(x_j) for the k = min(d, r) components under A, (k,) (x: see ``position_by``)."""
        x = self.position_x
        powers = torch.stack([x ** m for m in range(len(self.beta))], dim=0)  # (M + 1, k)
        return (self.beta[:, None] * powers).sum(dim=0)

    def mixing(self) -> torch.Tensor:
        """W = gate * alpha * phi(S) + A, (d, r); E_s = U_hat W^T."""
        W = self.coords.new_zeros(self.dim, self.rank)
        if self.s.attention != "none":
            W = W + self.gate * self.alpha * self.attention_scores()
        if self.s.position:
            rows = torch.arange(self.position_index.shape[0], device=W.device)
            W = W.index_put((rows, self.position_index), self.position_weights(), accumulate=True)  # A
        return W

    def semantic(self, coords: torch.Tensor | None = None) -> torch.Tensor:
        """E_s (N, d) for the training items, or for ``coords`` (M, r) of new items."""
        U_hat = self.coords if coords is None else coords
        if self.s.attention == "none":
            weights = self.position_weights() if self.s.position else U_hat.new_zeros(0)
            return truncated_table(U_hat[:, self.position_index], weights, self.dim) * self.s.scale  # svd_frozen's
        return (U_hat @ self.mixing().T) * self.s.scale  # (N, r) (r, d) -> (N, d)

    # -- the item-encoder interface ------------------------------------------------------------
    def forward(self) -> torch.Tensor:
        return self.fusion(self.semantic())

    def embed_new_items(self, semantic: torch.Tensor) -> torch.Tensor:
        """(M, D) embeddings of items with text but no interactions -> (M, d), ID part zero."""
        return self.fusion.without_ids(self.semantic(self.projector(semantic)))

    def undecayed_parameters(self) -> list[nn.Parameter]:
        """lambda, the gate and beta unless ``decay_scalars`` (Q and K are always decayed)."""
        if self.s.decay_scalars:
            return []
        attention = [self.shrink, self.gate] if self.s.attention != "none" else []
        return attention + ([self.beta] if self.s.position else [])

    def spectral_attention(self) -> torch.Tensor | None:
        """phi(S) (d, r) for the diagnostics (attention mass on principal components), or None."""
        return None if self.s.attention == "none" else self.attention_scores()

    def attention_summary(self) -> dict[str, float] | None:
        """Diagnostics: the gate, the Softshrink threshold lambda (Softshrink only) and the RMS of the attention term's
        part of E_s over the RMS of E_s."""
        if self.s.attention == "none":
            return None
        with torch.no_grad():
            part = self.coords @ (self.gate * self.alpha * self.attention_scores()).T  # (N, d)
            whole = self.coords @ self.mixing().T
        ratio = part.pow(2).mean().sqrt() / whole.pow(2).mean().sqrt()
        out = {"gate": float(self.gate.detach()), "rms_ratio": float(ratio)}
        if self.s.attention == "softshrink":  # lambda is unused by Softmax
            out["shrink"] = float(self.shrink.detach())
        return out


def build(s: SpecTranSettings, ctx: ItemContext) -> SpecTran:
    basis = require_basis(ctx, "spectran")
    if s.heads < 1 or s.head_dim < 0 or s.rank < 0:
        raise ConfigError("method.heads must be >= 1, method.head_dim and method.rank >= 0")
    coords = scaled_coords(basis, s.rank, s.scaling)  # (N, r)
    projector = ColdStartProjector(basis, coords.shape[1], coord_scale(basis.num_items, s.scaling))
    position, by, attended = None, s.position_by, None
    if by != "sigma" or s.attend == "informative":
        if ctx.train_pairs is None:
            setting = f"position_by={by}" if by != "sigma" else "attend=informative"
            raise ConfigError(f"method.{setting} needs the training transitions (none were prepared)")
        signal = transition_signal(coords, ctx.train_pairs)
        k = min(ctx.dim, coords.shape[1])
        floor = noise_floor(ctx.train_pairs, ctx.num_items) if by != "signal" or s.attend == "informative" else None
        attended = signal >= floor if s.attend == "informative" else None
        if by == "auto":
            by, _ = auto_rule(signal, k, floor, s.min_signal_share)
        if by == "signal":
            index = select_components(signal, k)
            position = (index, (signal[index] / signal[index].max()).clamp_min(0.0))
        elif by == "informative":
            index = informative_components(signal, k, floor)
            chosen = normalised_sigma(basis, s.rank)[index]
            position = (index, chosen / chosen[0] if len(index) else chosen)
    return SpecTran(coords, normalised_sigma(basis, s.rank), projector, s, ctx.dim, ctx.num_items, position, by,
                    attended)


# the best of 16 Optuna trials on office (SASRec, d = 64, MiniLM), 4 significant digits; it beat the
# shared defaults on office (3 seeds) and on beauty (docs/results/what_tuning_changes.md)
RECIPES = {"sasrec": {"train.lr": 0.001811, "train.batch_size": 64, "train.weight_decay": 0.0,
                      "backbone.dropout": 0.1962, "method.scale": 1.249, "method.gate_init": 0.07642,
                      "method.shrink": 0.6394}}

# svd_frozen's regularisation on a sparse catalog: on clothing's 8,900-user sample (3.2 interactions
# per item, MiniLM, 3 seeds) the recipe overfit (test NDCG@10 0.0151 against svd_frozen's 0.0164; best
# epochs 7-9) and this variant reached 0.0167 (docs/results/recipes_vs_svd_frozen.md, section 5)
SPARSE_RECIPES = {"sasrec": {"train.weight_decay": 0.1, "backbone.dropout": 0.4113}}

SPEC = MethodSpec("spectran", SpecTranSettings, build, needs_text=True, needs_basis=True,
                  center_basis=lambda s: s.center, recipes=RECIPES, sparse_recipes=SPARSE_RECIPES)
