"""Full-softmax cross-entropy over the item table without the (T, N) logits matrix.

The plain computation (``F.cross_entropy(hidden @ table.T, targets)``) holds the (T, N) logits,
their log-softmax and, in the backward pass, a (T, N) gradient, all in fp32: several full passes
over a matrix that fits in no cache, besides the three GEMMs. :func:`chunked_cross_entropy`
takes ``chunk`` targets at a time: it scores them against every item (a ``chunk x N`` block),
reads the log-sum-exp and the target's logit, turns the block in place into
``softmax - onehot`` and accumulates both gradient GEMMs from it while it is still in cache.
Memory is O(chunk x N) instead of O(T x N) and there are still three GEMMs, no recomputation:
the gradient of the summed loss is computed in the forward pass and the backward pass only
scales it by the incoming (scalar) gradient. Rows of a block cover the whole catalog, so each
row's log-sum-exp is exact within its block (no online rescaling).

Precision: under ``torch.autocast`` the GEMMs run in the autocast dtype (as ``hidden @ table.T``
would); logits, the log-sum-exp, the softmax and the reduction are fp32, and the gradients are
returned in the dtypes of the inputs.
"""

from __future__ import annotations

import torch

IGNORE = -1  # a target (column index) of -1 contributes neither loss nor gradient


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    dev = x.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype


class _ChunkedCEFunction(torch.autograd.Function):
    """Sum over targets of the softmax cross-entropy; gradients computed in the forward pass."""

    @staticmethod
    def forward(ctx, hidden, table, targets, chunk, dtype, need_grad):  # type: ignore[override]
        dev = hidden.device
        with torch.autocast(dev.type, enabled=False):
            w = table.to(dtype)
            total = torch.zeros((), dtype=torch.float32, device=dev)
            grad_h = torch.empty(hidden.shape, dtype=torch.float32, device=dev) if need_grad else None
            grad_t = torch.zeros(table.shape, dtype=torch.float32, device=dev) if need_grad else None
            for lo in range(0, len(hidden), chunk):
                tgt = targets[lo:lo + chunk]
                kept = tgt != IGNORE
                rows = torch.arange(len(tgt), device=dev)
                col = tgt.clamp(min=0)
                h = hidden[lo:lo + chunk].to(dtype)
                block = (h @ w.T).float()  # (chunk, N) logits
                target_logit = block[rows, col]
                top = block.amax(dim=1, keepdim=True)
                block.sub_(top).exp_()
                norm = block.sum(dim=1, keepdim=True)
                losses = top.squeeze(1) + norm.squeeze(1).log() - target_logit
                total += torch.where(kept, losses, torch.zeros_like(losses)).sum()
                if not need_grad:
                    continue
                block.div_(norm)  # softmax
                block[rows, col] -= 1.0  # softmax - onehot
                if not bool(kept.all()):
                    block.mul_(kept[:, None])
                p = block.to(dtype)
                grad_h[lo:lo + chunk] = (p @ w).float()
                grad_t += (p.T @ h).float()
        if need_grad:
            ctx.save_for_backward(grad_h.to(hidden.dtype), grad_t.to(table.dtype))
        return total

    @staticmethod
    def backward(ctx, grad_total):  # type: ignore[override]
        grad_h, grad_t = ctx.saved_tensors
        g = grad_total.float()
        return (grad_h * g).to(grad_h.dtype), (grad_t * g).to(grad_t.dtype), None, None, None, None


def chunked_cross_entropy(hidden: torch.Tensor, table: torch.Tensor, targets: torch.Tensor,
                          chunk: int) -> torch.Tensor:
    """Mean softmax cross-entropy of ``hidden (T, w)`` against every row of ``table (N, w)``.

    ``targets (T,)`` are column indices 0..N-1, or -1 (ignored, as ``ignore_index`` of
    ``F.cross_entropy``); ``chunk`` targets are scored at once. Equals
    ``F.cross_entropy(hidden @ table.T, targets, ignore_index=-1)`` (0 when every target is ignored).
    Differentiable once (first-order gradients only).
    """
    if chunk <= 0:
        raise ValueError(f"chunk must be > 0, got {chunk}")
    need_grad = torch.is_grad_enabled() and (hidden.requires_grad or table.requires_grad)
    total = _ChunkedCEFunction.apply(hidden, table, targets, int(chunk), _compute_dtype(hidden), need_grad)
    count = (targets != IGNORE).sum()
    return total / count.clamp(min=1).float()
