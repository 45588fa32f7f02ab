"""The α step of the bilevel search (paper §3.2, first-order DARTS) as a Detectron2 hook.

Before each w step (``before_step``) the hook draws a batch of the α-half and takes one Adam
step on the architecture parameters α only (from iteration ``SEARCH.ALPHA_WARMUP_ITERS`` on: a
warm-up of w alone before α moves)::

    α ← α − Adam(∇_α L_val(w, α))        (w held fixed: the first-order approximation)

where L_val is the detector's training loss on the α-half batch (plus the optional cost term,
``cost_penalty.py``).  The w step that follows is the trainer's own ``run_step``.  With mixed
precision the α step's forward runs under autocast and its loss is scaled by its own
``GradScaler`` (not the w step's: the two steps' gradients overflow independently).
"""
import contextlib
import time

import torch
from detectron2.engine import HookBase
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage
from torch.nn.parallel import DistributedDataParallel

from ..engine.amp import build_grad_scaler


class AlphaUpdateHook(HookBase):
    """One α update per iteration, before the w step.

    Args:
        data_loader: the α-half loader (an iterable of ``list[dict]`` batches).
        optimizer: the optimizer of α only (:func:`build_alpha_optimizer`); its parameters are
            the α of every search group (each Tensor[E, K]: E edges, K choices).
        cost_penalty: ``None`` (the paper), or a callable returning ``{"loss_cost": Tensor[]}``
            that the α step adds to its losses (``cost_penalty.py``, ``SEARCH.COST``).
        precision: ``None`` (float32), or the autocast dtype of mixed precision
            (``fad_d2.engine.amp.amp_precision``); float16 losses are scaled by ``grad_scaler``.
        first_iter: the first iteration with an α step (earlier ones train w alone and draw no
            α-half batch).

    Logs ``alpha_total_loss``, ``alpha_loss_*``, ``alpha_lr`` and ``alpha_data_time``; its
    ``state_dict`` (the α optimizer's and the α GradScaler's states) goes into the trainer's
    checkpoints.
    """

    def __init__(self, data_loader, optimizer, cost_penalty=None, precision=None, first_iter=0):
        self.data_loader = data_loader
        self.first_iter = first_iter
        self.optimizer = optimizer
        self.cost_penalty = cost_penalty
        self.precision = precision
        self.alphas = [p for group in optimizer.param_groups for p in group["params"]]
        self.device_type = self.alphas[0].device.type
        self.grad_scaler = build_grad_scaler(self.device_type, precision or torch.float32)  # float16 only
        self._data_iter = None

    def before_step(self):
        if self.trainer.iter < self.first_iter:
            return
        if self._data_iter is None:
            self._data_iter = iter(self.data_loader)
        start = time.perf_counter()
        data = next(self._data_iter)
        data_time = time.perf_counter() - start
        loss_dict = self.step(self.trainer.model, data)
        get_event_storage().put_scalars(
            alpha_total_loss=sum(loss_dict.values()).item(),
            alpha_lr=self.optimizer.param_groups[0]["lr"],
            alpha_data_time=data_time,
            **{f"alpha_{k}": v.item() for k, v in loss_dict.items()},
        )

    def step(self, model, data):
        """Update α on the batch ``data`` (``list[dict]``) with ``model`` (in training mode,
        possibly DDP-wrapped); returns the detached losses ``{name: Tensor[]}``.

        Autograd records only what ∇_α needs: α requires gradients during the pass (and only
        then), every other parameter does not (the backbone's forward then saves nothing), and
        the backward goes to α only.  Under DDP the pass runs without DDP's gradient sync (it would wait for w's
        gradients) and α's gradients are averaged over the workers here instead.
        """
        assert model.training, "[AlphaUpdateHook] model was changed to eval mode!"
        distributed = isinstance(model, DistributedDataParallel)
        with model.no_sync() if distributed else contextlib.nullcontext(), \
                requires_grad_only(model, self.alphas):
            with torch.autocast(self.device_type, dtype=self.precision, enabled=self.precision is not None):
                loss_dict = model(data)
            if self.cost_penalty is not None:  # the budget term (the same on every worker)
                loss_dict.update(self.cost_penalty())
            losses = sum(loss_dict.values())
            self.optimizer.zero_grad()
            self.grad_scaler.scale(losses).backward(inputs=self.alphas)
        if distributed:  # (scaled) gradients: an overflow on one worker reaches all of them
            for a in self.alphas:
                torch.distributed.all_reduce(a.grad)
                a.grad.div_(comm.get_world_size())
        self.grad_scaler.step(self.optimizer)  # unscales; skips a step whose gradients overflowed
        self.grad_scaler.update()
        return {k: v.detach() for k, v in loss_dict.items()}

    def state_dict(self):
        return {"optimizer": self.optimizer.state_dict(), "grad_scaler": self.grad_scaler.state_dict()}

    def load_state_dict(self, state_dict):
        self.optimizer.load_state_dict(state_dict["optimizer"])
        if state_dict.get("grad_scaler"):  # {}: saved without float16 scaling (an enabled scaler refuses it)
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])


@contextlib.contextmanager
def requires_grad_only(model, params):
    """Within the context, ``params`` (parameters of ``model``) and no other parameter of
    ``model`` require gradients; afterwards every parameter's ``requires_grad`` is what it was
    before, also after an exception.  (The search keeps α frozen outside the α step: see
    ``SearchTrainer.build_model``.)"""
    keep = {id(p) for p in params}
    before = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in before:
        p.requires_grad_(id(p) in keep)
    try:
        yield
    finally:
        for p, flag in before:
            p.requires_grad_(flag)


def build_alpha_optimizer(cfg, alphas):
    """Adam over α (paper/DARTS: lr 3e-4, betas (0.5, 0.999), weight decay 1e-3)."""
    return torch.optim.Adam(alphas, lr=cfg.SEARCH.ALPHA_LR, betas=tuple(cfg.SEARCH.ALPHA_BETAS),
                            weight_decay=cfg.SEARCH.ALPHA_WEIGHT_DECAY)
