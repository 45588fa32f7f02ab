"""Run a per-image head on chunks of its batch in parallel CPU threads (forward and backward).

On the CPU the FAD heads' many small ops (c′-channel convs, GroupNorm and ReLU on five FPN
levels, hundreds of calls per pass) split poorly over intra-op threads: on two cores the search
head's forward + backward runs only about 1.5× faster on two threads than on one.  The head's
computation is independent per image (convolutions, GroupNorm over each image's own channels,
ReLU, α shared by all images), so its batch can be cut into chunks that run at the same time in
worker threads, each with its share of the intra-op threads.  A head whose BatchNorm layers
normalise by the batch's statistics (``NORM "BN"`` in training) is not independent per image and
is never split (:func:`uses_batch_statistics`).

* forward: each worker runs the head on its chunk (``x[a:b]`` of every input), recording its
  own autograd graph; the outputs are the chunks' outputs concatenated along the batch;
* backward: each worker back-propagates its chunk's share of the output gradients through its
  graph; input gradients are concatenated, parameter gradients (w, α) summed over the chunks.

Per image, the outputs are those of one call on the whole batch; the parameter gradients are
the same sums taken in another order (``tests/modeling/test_batch_threads.py``).  To the caller's
autograd the whole split computation is one node whose inputs are the head's inputs and the
parameters that required gradients at the call, so ``backward(inputs=...)``, gradient hooks and
DDP see ordinary parameter gradients.  Autocast (the calling thread's CPU setting) is carried
into the workers.
"""
from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.batchnorm import _BatchNorm

__all__ = ["batch_thread_chunks", "run_batch_threads", "uses_batch_statistics"]

HeadFn = Callable[[List[Tensor]], List[Tensor]]
"""A head as :func:`run_batch_threads` calls it: per-level inputs Tensor[n, …] (batch first) →
outputs Tensor[n, …] (batch first), each image computed on its own."""

_pools: Dict[Tuple[int, int], ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def uses_batch_statistics(module: nn.Module) -> bool:
    """Whether a BatchNorm layer of ``module`` normalises by the statistics of the batch it is
    given (training mode, or no running statistics): an image's outputs then depend on the
    other images of the batch (and two workers would update the same running statistics)."""
    return any(isinstance(m, _BatchNorm) and (m.training or m.running_mean is None) for m in module.modules())


def batch_thread_chunks(requested: int, x: Tensor, module: nn.Module) -> int:
    """How many chunks (parallel workers) the batch of ``x`` (Tensor[N, …]) is cut into when
    ``module`` computes on it.

    ``requested``: ``MODEL.FAD.CPU_BATCH_THREADS`` — 0: as many as torch's intra-op threads;
    k ≥ 1: k (1: no split); in both cases at most N // 2, so that every chunk holds two images
    or more (PyTorch's GroupNorm refuses one image whose channel groups hold a single value,
    e.g. c′ = 32 in 32 groups on a 1×1 level, which the whole batch passes).  Always 1 off the
    CPU (a GPU parallelises the ops themselves), under tracing (fvcore's FLOP count and
    TorchScript see the plain ops) and when ``module`` :func:`uses_batch_statistics` (with
    ``requested`` > 1 that is an error: the split would change what the head computes)."""
    if requested < 0:
        raise ValueError(f"CPU batch threads: {requested} is not allowed: an integer >= 0 (0: automatic)")
    if x.device.type != "cpu" or torch.jit.is_tracing() or torch.jit.is_scripting():
        return 1
    chunks = max(1, min(requested or torch.get_num_threads(), x.shape[0] // 2))
    # the module walk only where its answer matters (not on one thread, nor at batch 1 in inference)
    if (requested > 1 or chunks > 1) and uses_batch_statistics(module):
        if requested > 1:
            raise ValueError(f"CPU batch threads: {requested} chunks of the batch, but {type(module).__name__} "
                             "normalises by batch statistics (BatchNorm in training mode): use 0 or 1, or GN")
        return 1
    return chunks


def _pool(workers: int, threads_each: int) -> ThreadPoolExecutor:
    """A pool of ``workers`` threads, each set to ``threads_each`` intra-op threads.

    ``torch.set_num_threads`` sets the calling thread's OpenMP team size and a process-wide
    default that threads starting later inherit: every worker sets its own (a barrier makes the
    initialisers run on distinct threads), and the calling thread then sets its own count back
    as the default."""
    key = (workers, threads_each)
    with _pools_lock:
        pool = _pools.get(key)
        if pool is None:
            main_threads = torch.get_num_threads()
            barrier = threading.Barrier(workers)

            def configure(_):
                torch.get_num_threads()  # this thread's lazy initialisation, before the override
                torch.set_num_threads(threads_each)
                barrier.wait()

            pool = ThreadPoolExecutor(workers, thread_name_prefix="fad-batch")
            list(pool.map(configure, range(workers)))
            torch.set_num_threads(main_threads)
            _pools[key] = pool
    return pool


def _chunks(batch: int, parts: int) -> List[slice]:
    """``parts`` contiguous slices of ``range(batch)``, sizes differing by at most one."""
    bounds = [batch * k // parts for k in range(parts + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:])]


class _ThreadContext:
    """The calling thread's CPU autocast setting and inference mode, re-entered in a worker
    (both are per thread)."""

    def __init__(self):
        self.autocast = torch.is_autocast_enabled("cpu")
        self.dtype = torch.get_autocast_dtype("cpu")
        self.inference = torch.is_inference_mode_enabled()

    @contextlib.contextmanager
    def __call__(self):
        with torch.inference_mode(self.inference), torch.autocast("cpu", dtype=self.dtype, enabled=self.autocast):
            yield


def _run_chunk(fn: HeadFn, inputs: Sequence[Tensor], chunk: slice, context: _ThreadContext, record: bool):
    """In a worker: ``(chunk inputs, fn(chunk inputs))`` for ``x[chunk]`` of every input, under
    the caller's ``context``; ``record``: with its own autograd graph (the chunk inputs are new
    leaves requiring gradients where the inputs do), else without autograd."""
    with torch.enable_grad() if record else torch.no_grad(), context():
        xs = [x.detach()[chunk].requires_grad_(x.requires_grad) if record else x[chunk] for x in inputs]
        return xs, fn(xs)


class _BatchThreadsFunction(torch.autograd.Function):
    """``apply(fn, pool, slices, context, num_inputs, *inputs, *params)`` → fn's outputs for the
    whole batch (see the module docstring).  Keeps each worker's chunk inputs and graph for
    backward, which releases them (one backward only)."""

    @staticmethod
    def forward(ctx, fn, pool, slices, context, num_inputs, *tensors):
        inputs = tensors[:num_inputs]
        ctx.runs = list(pool.map(lambda chunk: _run_chunk(fn, inputs, chunk, context, record=True), slices))
        ctx.pool, ctx.slices, ctx.num_inputs = pool, slices, num_inputs
        ctx.params = tensors[num_inputs:]
        return tuple(torch.cat(parts) for parts in zip(*(outs for _, outs in ctx.runs)))

    @staticmethod
    @once_differentiable
    def backward(ctx, *grads):
        runs, ctx.runs = ctx.runs, None
        if runs is None:
            raise RuntimeError("batch threads: a second backward through the head; the first one freed its "
                               "graphs (retain_graph is not supported with MODEL.FAD.CPU_BATCH_THREADS != 1)")
        num_inputs = ctx.num_inputs
        need_x = [i for i, need in enumerate(ctx.needs_input_grad[5:5 + num_inputs]) if need]
        need_p = [k for k, need in enumerate(ctx.needs_input_grad[5 + num_inputs:]) if need]

        def back(run, chunk: slice) -> List[Optional[Tensor]]:
            xs, outs = run
            pairs = [(o, g[chunk]) for o, g in zip(outs, grads) if o.requires_grad]
            targets = [xs[i] for i in need_x] + [ctx.params[k] for k in need_p]
            if not pairs:
                return [None] * len(targets)
            return list(torch.autograd.grad([o for o, _ in pairs], targets, [g for _, g in pairs],
                                            allow_unused=True))

        per_chunk = list(ctx.pool.map(back, runs, ctx.slices))
        result = [None] * (5 + num_inputs + len(ctx.params))
        for j, i in enumerate(need_x):
            result[5 + i] = _concat([c[j] for c in per_chunk], [xs[i] for xs, _ in runs])
        for j, k in enumerate(need_p, start=len(need_x)):
            result[5 + num_inputs + k] = _sum([c[j] for c in per_chunk])
        return tuple(result)


def _concat(parts: List[Optional[Tensor]], chunk_inputs: List[Tensor]) -> Optional[Tensor]:
    """An input's gradient for the whole batch from its chunks' (a chunk that did not use it:
    zeros; None: no chunk did)."""
    if all(p is None for p in parts):
        return None
    return torch.cat([torch.zeros_like(x) if p is None else p for p, x in zip(parts, chunk_inputs)])


def _sum(parts: List[Optional[Tensor]]) -> Optional[Tensor]:
    """A parameter's gradient: the sum over the chunks that used it (None: no chunk did)."""
    used = [p for p in parts if p is not None]
    if not used:
        return None
    total = used[0].clone()
    for p in used[1:]:
        total += p
    return total


def run_batch_threads(fn: HeadFn, inputs: Sequence[Tensor], module: torch.nn.Module, chunks: int) -> List[Tensor]:
    """``fn(inputs)`` computed as ``chunks`` slices of the batch in parallel worker threads.

    Args:
        fn: the head (:data:`HeadFn`); every input and output has the batch first, and each
            image's outputs depend on that image's inputs only.
        inputs: Tensor[N, …] each (e.g. the FPN levels), N ≥ ``chunks``.
        module: the module whose parameters ``fn`` uses: those requiring gradients now receive
            theirs (summed over the chunks) in the caller's backward.
        chunks: the number of workers (:func:`batch_thread_chunks`); the calling thread's
            intra-op threads are shared among them (at least one each).

    Returns fn's outputs for the whole batch (Tensor[N, …] each).
    """
    batch = inputs[0].shape[0]
    if any(x.shape[0] != batch for x in inputs) or not 1 < chunks <= batch:
        raise ValueError(f"batch threads: {chunks} chunks of inputs with batch sizes "
                         f"{[x.shape[0] for x in inputs]} (need one batch size N >= chunks > 1)")
    pool = _pool(chunks, max(1, torch.get_num_threads() // chunks))
    slices = _chunks(batch, chunks)
    context = _ThreadContext()
    params = [p for p in module.parameters() if p.requires_grad]
    if not torch.is_grad_enabled() or not any(t.requires_grad for t in (*inputs, *params)):
        runs = pool.map(lambda chunk: _run_chunk(fn, inputs, chunk, context, record=False), slices)
        return [torch.cat(parts) for parts in zip(*(outs for _, outs in runs))]
    return list(_BatchThreadsFunction.apply(fn, pool, slices, context, len(inputs), *inputs, *params))
