"""``SearchTrainer``: Detectron2's ``DefaultTrainer`` running the FAD bilevel search (paper §3.2).

Each iteration is one α step on a batch of the α-half (:class:`AlphaUpdateHook`, in
``before_step``) and then ``DefaultTrainer``'s own w step on a batch of the w-half: the
``SOLVER`` optimizer over every weight but α, with the global L2 norm of w's gradient clipped to
``SEARCH.GRAD_CLIP_NORM`` (20 in the paper) first.  With ``SOLVER.AMP.ENABLED`` both steps run
under autocast, each with its own ``GradScaler`` (``fad_d2.engine.amp``), and w is clipped
after unscaling.

It differs from ``DefaultTrainer`` only in what it builds (the supernet, a w optimizer without
α, a train loader of the w-half) and in its hooks (the α step; no evaluation; derivation,
:class:`DeriveArchitectureHook`; the cost report); its ``train`` ends early when the derive hook
asks (stable architecture) and does nothing once the search has ended.  Checkpoints
(:class:`FADCheckpointer`) carry w, α, both optimizers (and both GradScalers), the LR
scheduler, the iteration, the split, the derivation history with the search's end state, and
the genotype record (a supernet's: none).
"""
import logging
import os

import torch
from detectron2.data import build_detection_train_loader
from detectron2.data.samplers import TrainingSampler
from detectron2.engine import hooks
from detectron2.utils import comm

from ..engine.amp import amp_precision
from ..engine.checkpoint import CheckpointError, read_checkpoint
from ..engine.trainer import Trainer, training_dataset_dicts
from ..errors import ConfigError
from ..space import CellGroup
from .alpha_hook import AlphaUpdateHook, build_alpha_optimizer
from .cost_penalty import CostReportHook, cost_penalty_from_config
from .hooks import DeriveArchitectureHook
from .perturbation import select_by_perturbation, selection_batches, supernet_loss
from .split import load_or_make_split, select

logger = logging.getLogger(__name__)


def search_groups(model):
    """The searchable ``CellGroup``\\ s of ``model`` (those holding α), in module order."""
    return [m for m in model.modules() if isinstance(m, CellGroup) and m.alpha is not None]


def split_training_data(cfg):
    """``(split, w-half records, α-half records)`` of ``DATASETS.TRAIN``: the split
    (``SEARCH.SPLIT_*``) is made once and then read from ``OUTPUT_DIR/search_split.json`` (the
    same on every worker: it is seeded).  ``SEARCH.SPLIT_DATA False`` (the released detection
    code): split ``None``, both halves the whole set."""
    dicts = training_dataset_dicts(cfg)
    if not cfg.SEARCH.SPLIT_DATA:
        return None, dicts, dicts
    split = load_or_make_split(cfg.OUTPUT_DIR, dicts, cfg.SEARCH.SPLIT_RATIO, cfg.SEARCH.SPLIT_SEED,
                               min_images=cfg.SOLVER.IMS_PER_BATCH, write=comm.is_main_process())
    return split, select(dicts, split.w_keys), select(dicts, split.alpha_keys)


def with_global_grad_clip(optimizer, max_norm):
    """Make ``optimizer.step`` first clip the global L2 norm of its parameters' gradients to
    ``max_norm`` (one norm over all of them, as the paper clips w; Detectron2's
    ``SOLVER.CLIP_GRADIENTS`` clips each parameter on its own).  Under AMP, ``GradScaler.step``
    unscales the gradients before it calls ``step``, so the clip sees true gradients."""
    base = type(optimizer)

    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        return base.step(self, closure)

    optimizer.__class__ = type(base.__name__ + "WithGlobalGradClip", (base,), {"step": step})
    return optimizer


class SearchStopped(BaseException):
    """Ends ``TrainerBase.train``'s loop after the iteration in which the search was stopped.

    A ``BaseException`` (like ``GeneratorExit``): ``TrainerBase.train`` logs any ``Exception``
    as a failure; this one passes its ``except`` and, after ``iter`` was advanced as the loop
    does at its end, its ``finally`` calls ``after_train`` on a finished run."""


class SearchTrainer(Trainer):
    """Bilevel FAD search over any model containing FAD search modules (FCOS, RetinaNet, Mask).

    Attributes (besides ``DefaultTrainer``'s): ``groups`` (the search ``CellGroup``\\ s),
    ``split`` (``None`` without ``SEARCH.SPLIT_DATA``), ``cost_penalty``, ``alpha_hook``,
    ``derive_hook``, ``stop_reason`` (set when a hook stopped the search).
    """

    stop_reason = None
    evaluates = False  # a search trains only: its DATASETS.TEST need not exist

    @classmethod
    def build_model(cls, cfg):
        model = super().build_model(cfg)
        if not search_groups(model):
            raise ConfigError(
                f"this config builds a {cfg.MODEL.META_ARCHITECTURE} without any FAD search module: select "
                "a FAD head (fad_d2.modeling.FAD_HEADS lists them and their keys) with an empty genotype"
            )
        for group in search_groups(model):
            # α is trained by the α step alone, which turns its gradient on for its own pass
            # (AlphaUpdateHook): the w step then computes no α gradient (eq. 2's dot products,
            # the saved mixed-op outputs), the w optimizer and DDP never see α
            group.alpha.requires_grad_(False)
        return model

    @classmethod
    def build_optimizer(cls, cfg, model):
        """Detectron2's ``SOLVER`` optimizer over the weights w only (α frozen while it is built,
        so neither its update nor its weight decay ever touches α), clipping the global norm of
        w's gradient to ``SEARCH.GRAD_CLIP_NORM`` (0: no clip)."""
        alphas = [g.alpha for g in search_groups(model)]
        flags = [a.requires_grad for a in alphas]
        for a in alphas:
            a.requires_grad_(False)
        try:
            optimizer = super().build_optimizer(cfg, model)
        finally:
            for a, flag in zip(alphas, flags):
                a.requires_grad_(flag)
        if cfg.SEARCH.GRAD_CLIP_NORM > 0:
            optimizer = with_global_grad_clip(optimizer, cfg.SEARCH.GRAD_CLIP_NORM)
        return optimizer

    @classmethod
    def build_train_loader(cls, cfg):
        """The loader of the w-half."""
        _, w_dicts, _ = split_training_data(cfg)
        return build_detection_train_loader(cfg, dataset=w_dicts)

    @classmethod
    def build_alpha_loader(cls, cfg):
        """``(split, loader of the α-half)``; without a split its sampler is seeded apart from the
        w loader's, so that the two steps see other batches."""
        split, _, alpha_dicts = split_training_data(cfg)
        sampler = None if split else TrainingSampler(len(alpha_dicts), seed=cfg.SEARCH.SPLIT_SEED + 1)
        if split:
            logger.info("search split: %d images for w, %d for α", len(split.w_keys), len(split.alpha_keys))
        return split, build_detection_train_loader(cfg, dataset=alpha_dicts, sampler=sampler)

    def build_hooks(self):
        """Detectron2's hooks without evaluation, the α step right after the iteration timer
        (its time counts in the iteration's), the derive hook (and the cost report) before the
        checkpointer."""
        cfg = self.cfg
        self.groups = search_groups(self.model)
        self.cost_penalty = cost_penalty_from_config(cfg, self.groups)  # None unless SEARCH.COST.WEIGHT > 0
        self.split, alpha_loader = self.build_alpha_loader(cfg)
        precision = amp_precision(cfg, self.groups[0].alpha.device.type) if cfg.SOLVER.AMP.ENABLED else None
        self.alpha_hook = AlphaUpdateHook(alpha_loader, build_alpha_optimizer(cfg, [g.alpha for g in self.groups]),
                                          cost_penalty=self.cost_penalty, precision=precision,
                                          first_iter=cfg.SEARCH.ALPHA_WARMUP_ITERS)
        self.derive_hook = DeriveArchitectureHook(self.groups, cfg.SEARCH.DERIVE_PERIOD, cfg.SEARCH.STOP_WHEN_STABLE,
                                                  cfg.OUTPUT_DIR, start=cfg.SEARCH.ALPHA_WARMUP_ITERS,
                                                  stable_periods=cfg.SEARCH.STABLE_PERIODS,
                                                  select=self.perturbation_rule() if cfg.SEARCH.SELECTION == "perturbation"
                                                  else None)
        ret = [h for h in super().build_hooks() if not isinstance(h, hooks.EvalHook)]
        timer = next((i for i, h in enumerate(ret) if isinstance(h, hooks.IterationTimer)), -1)
        ret.insert(timer + 1, self.alpha_hook)
        at = next((i for i, h in enumerate(ret) if isinstance(h, hooks.PeriodicCheckpointer)), len(ret))
        ret.insert(at, self.derive_hook)
        if self.cost_penalty is not None:
            ret.insert(at + 1, CostReportHook(self.cost_penalty, cfg.OUTPUT_DIR))
        return ret

    def perturbation_rule(self):
        """The final genotype chosen by perturbation of the trained supernet on fixed α-half
        batches (``SEARCH.SELECTION "perturbation"``), as a callable for the derive hook."""
        _, _, alpha_dicts = split_training_data(self.cfg)
        model, groups, cfg = self.model, self.groups, self.cfg
        return lambda: select_by_perturbation(groups, supernet_loss(model, selection_batches(cfg, alpha_dicts)))

    def request_stop(self, reason):
        """Called by a hook in ``after_step``: the current iteration becomes the last one, for the
        hooks after it (the checkpointer then saves ``model_final``) and for the loop."""
        self.stop_reason = reason
        self.max_iter = self.iter + 1
        for h in self._hooks:
            if isinstance(h, hooks.PeriodicCheckpointer):
                h.max_iter = self.max_iter

    def after_step(self):
        super().after_step()
        if self.stop_reason is not None:
            self.iter += 1  # what TrainerBase.train does after its last iteration
            raise SearchStopped

    def train(self):
        """``DefaultTrainer.train``, ended after the iteration in which a hook called
        :meth:`request_stop`; nothing at all when the loaded checkpoint's search had ended."""
        if self.derive_hook.end is not None:
            logger.info("this search already ended (%s) at iteration %d: nothing to do",
                        self.derive_hook.end["reason"], self.derive_hook.end["iteration"])
            return None
        try:
            return super().train()
        except SearchStopped:
            logger.info("stopped the search at iteration %d: %s", self.iter, self.stop_reason)
            return None

    def state_dict(self):
        ret = super().state_dict()
        if self.split is not None:
            ret["search_split"] = self.split.to_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        old_alpha_state = state_dict.get("_trainer", {}).get("alpha_optimizer")
        if old_alpha_state is not None and AlphaUpdateHook.__qualname__ not in state_dict.get("hooks", {}):
            # a checkpoint written before the α step was a hook: its optimizer state sat there
            self.alpha_hook.load_state_dict({"optimizer": old_alpha_state})
        saved = state_dict.get("search_split")
        if self.split is not None and saved is not None and saved != self.split.to_dict():
            raise CheckpointError("the checkpoint's search split differs from search_split.json in OUTPUT_DIR")


def search_end_state(output_dir):
    """``(end, checkpoint path)`` of the search whose last checkpoint is in ``output_dir``:
    ``end`` is the derive hook's end state (``None``: unfinished); ``None`` without checkpoint."""
    marker = os.path.join(output_dir, "last_checkpoint")
    if not os.path.isfile(marker):
        return None
    with open(marker) as f:
        path = os.path.join(output_dir, f.read().strip())
    state = read_checkpoint(path).get("trainer", {}).get("hooks", {})
    return state.get(DeriveArchitectureHook.__qualname__, {}).get("end"), path


__all__ = ["SearchTrainer", "search_end_state", "search_groups", "split_training_data", "with_global_grad_clip"]
