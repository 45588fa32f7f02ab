"""First-order bilevel optimisation (paper §3.2, DARTS 1st order) as a Detectron2 trainer.

Each iteration: one α step on a batch of the α-half (Adam over α only), then one w step on a
batch of the w-half (the ``SOLVER`` optimizer over every weight but α, with the global gradient
norm of w clipped to ``SEARCH.GRAD_CLIP_NORM``, 20 in the paper).  The w step is
:class:`SimpleTrainer`'s own ``run_step``; the α step back-propagates to α only.
"""
import contextlib
import time

import torch
from detectron2.engine import SimpleTrainer
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage
from torch.nn.parallel import DistributedDataParallel


class BilevelTrainer(SimpleTrainer):
    """``SimpleTrainer`` whose step is ``alpha_step()`` then ``weight_step()``.

    Args:
        model, data_loader, optimizer: as :class:`SimpleTrainer` (w-half loader, w optimizer).
        alpha_data_loader: loader of the α-half.
        alpha_optimizer: optimizer holding only the architecture parameters α.
        grad_clip_norm: max global L2 norm of the w gradients (0: no clipping).
        cost_penalty: ``None`` (the paper), or a callable returning ``{"loss_cost": Tensor}`` that
            the α step adds to its losses (``cost_penalty.py``, ``SEARCH.COST``).
    """

    def __init__(self, model, data_loader, optimizer, alpha_data_loader, alpha_optimizer,
                 grad_clip_norm=0.0, cost_penalty=None):
        super().__init__(model, data_loader, optimizer)
        self.alpha_data_loader = alpha_data_loader
        self.alpha_optimizer = alpha_optimizer
        self.grad_clip_norm = grad_clip_norm
        self.cost_penalty = cost_penalty
        self._alpha_iter = None

    def run_step(self):
        self.alpha_step()
        self.weight_step()

    def weight_step(self):
        """One w update on a w-half batch (logged as Detectron2's usual ``total_loss``/``loss_*``)."""
        super().run_step()

    def after_backward(self):
        """Called by ``SimpleTrainer.run_step`` between the w backward and the w update."""
        super().after_backward()
        if self.grad_clip_norm > 0:
            params = [p for group in self.optimizer.param_groups for p in group["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip_norm)

    def alpha_step(self):
        """One α update on an α-half batch; logs ``alpha_total_loss``, ``alpha_loss_*``, ``alpha_lr``."""
        assert self.model.training, "[BilevelTrainer] model was changed to eval mode!"
        if self._alpha_iter is None:
            self._alpha_iter = iter(self.alpha_data_loader)
        start = time.perf_counter()
        data = next(self._alpha_iter)
        data_time = time.perf_counter() - start
        alphas = [p for group in self.alpha_optimizer.param_groups for p in group["params"]]
        distributed = isinstance(self.model, DistributedDataParallel)
        # Gradients of α only: no weight gradient is needed here, and the backbone's backward
        # is skipped.  Under DDP the pass runs without DDP's sync (it would wait for w's
        # gradients); α's gradients are averaged over the workers below instead.
        with self.model.no_sync() if distributed else contextlib.nullcontext():
            loss_dict = self.model(data)
            if self.cost_penalty is not None:  # the budget term (same on every worker)
                loss_dict.update(self.cost_penalty())
            losses = sum(loss_dict.values())
            self.alpha_optimizer.zero_grad()
            losses.backward(inputs=alphas)
        if distributed:
            for a in alphas:
                torch.distributed.all_reduce(a.grad)
                a.grad.div_(comm.get_world_size())
        self.alpha_optimizer.step()
        storage = get_event_storage()
        storage.put_scalars(
            alpha_total_loss=losses.detach().item(),
            alpha_lr=self.alpha_optimizer.param_groups[0]["lr"],
            alpha_data_time=data_time,
            **{f"alpha_{k}": v.detach().item() for k, v in loss_dict.items()},
        )

    def state_dict(self):
        ret = super().state_dict()
        ret["alpha_optimizer"] = self.alpha_optimizer.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self.alpha_optimizer.load_state_dict(state_dict["alpha_optimizer"])


def build_alpha_optimizer(cfg, alphas):
    """Adam over α (paper/DARTS: lr 3e-4, betas (0.5, 0.999), weight decay 1e-3)."""
    return torch.optim.Adam(alphas, lr=cfg.SEARCH.ALPHA_LR, betas=tuple(cfg.SEARCH.ALPHA_BETAS),
                            weight_decay=cfg.SEARCH.ALPHA_WEIGHT_DECAY)
