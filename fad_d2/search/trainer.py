"""``SearchTrainer``: Detectron2's ``DefaultTrainer`` running the FAD bilevel search.

It differs from ``DefaultTrainer`` in what it builds (a w optimizer without α, an α optimizer,
a loader per half of the split training data, a :class:`BilevelTrainer`), in its hooks (no
evaluation; :class:`DeriveArchitectureHook`) and in its loop, which ends early when the derive
hook asks (stable architecture) and does not run at all once the search has ended.
Checkpoints (:class:`FADCheckpointer`) carry w, α, both optimizers, the LR scheduler, the
iteration, the split, the derivation history with the search's end state, and the genotype
record (a supernet's: none).
"""
import logging
import os
import weakref

from detectron2.data import DatasetMapper, build_detection_train_loader
from detectron2.data.samplers import TrainingSampler
from detectron2.engine import DefaultTrainer, TrainerBase, create_ddp_model, hooks
from detectron2.utils import comm
from detectron2.utils.events import EventStorage
from detectron2.utils.logger import setup_logger

from ..engine.checkpoint import FADCheckpointer, genotype_record, read_checkpoint
from ..engine.trainer import training_dataset_dicts
from ..space import CellGroup
from .bilevel import BilevelTrainer, build_alpha_optimizer
from .cost_penalty import CostReportHook, cost_penalty_from_config
from .hooks import DeriveArchitectureHook
from .split import load_or_make_split, select

logger = logging.getLogger(__name__)


def search_groups(model):
    """The searchable ``CellGroup``\\ s of ``model`` (those holding α), in module order."""
    return [m for m in model.modules() if isinstance(m, CellGroup) and m.alpha is not None]


class SearchTrainer(DefaultTrainer):
    """Bilevel FAD search over any model containing FAD search modules (FCOS, RetinaNet, Mask)."""

    def __init__(self, cfg):
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        self.cfg = cfg
        self.stop_reason = None

        model = self.build_model(cfg)
        self.groups = search_groups(model)
        optimizer = self.build_optimizer(cfg, model)
        alpha_optimizer = build_alpha_optimizer(cfg, [g.alpha for g in self.groups])
        self.split, w_loader, alpha_loader = self.build_search_loaders(cfg)
        self.cost_penalty = cost_penalty_from_config(cfg, self.groups)  # None unless SEARCH.COST.WEIGHT > 0

        on_gpu = next(model.parameters()).is_cuda
        model = create_ddp_model(model, broadcast_buffers=False, **({} if on_gpu else {"device_ids": None}))
        self._trainer = BilevelTrainer(model, w_loader, optimizer, alpha_loader, alpha_optimizer,
                                       grad_clip_norm=cfg.SEARCH.GRAD_CLIP_NORM, cost_penalty=self.cost_penalty)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = FADCheckpointer(model, cfg.OUTPUT_DIR, genotypes=genotype_record(cfg),
                                            trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.register_hooks(self.build_hooks())

    @classmethod
    def build_model(cls, cfg):
        model = super().build_model(cfg)
        if not search_groups(model):
            raise ValueError(
                f"this config builds a {cfg.MODEL.META_ARCHITECTURE} without any FAD search module: select "
                "a FAD head (fad_d2.modeling.FAD_HEADS lists them and their keys) with an empty genotype"
            )
        return model

    @classmethod
    def build_optimizer(cls, cfg, model):
        """Detectron2's ``SOLVER`` optimizer over the weights w only (α frozen while it is built,
        so neither its update nor its weight decay ever touches α)."""
        alphas = [g.alpha for g in search_groups(model)]
        for a in alphas:
            a.requires_grad_(False)
        try:
            return super().build_optimizer(cfg, model)
        finally:
            for a in alphas:
                a.requires_grad_(True)

    def build_search_loaders(self, cfg):
        """Split the training sets (``SEARCH.SPLIT_*``) and build a train loader per half."""
        dicts = training_dataset_dicts(cfg)
        mapper = DatasetMapper(cfg, is_train=True)
        if not cfg.SEARCH.SPLIT_DATA:  # the released detection code: both steps on the whole set
            # a sampler seeded apart from the w loader's, so that the two steps see other batches
            alpha_sampler = TrainingSampler(len(dicts), seed=cfg.SEARCH.SPLIT_SEED + 1)
            return (None, build_detection_train_loader(cfg, mapper=mapper, dataset=dicts),
                    build_detection_train_loader(cfg, mapper=mapper, dataset=dicts, sampler=alpha_sampler))
        split = load_or_make_split(cfg.OUTPUT_DIR, dicts, cfg.SEARCH.SPLIT_RATIO, cfg.SEARCH.SPLIT_SEED,
                                   min_images=cfg.SOLVER.IMS_PER_BATCH, write=comm.is_main_process())
        w_loader = build_detection_train_loader(cfg, mapper=mapper, dataset=select(dicts, split.w_keys))
        alpha_loader = build_detection_train_loader(cfg, mapper=mapper, dataset=select(dicts, split.alpha_keys))
        logger.info("search split: %d images for w, %d for α", len(split.w_keys), len(split.alpha_keys))
        return split, w_loader, alpha_loader

    def build_hooks(self):
        """Detectron2's hooks without evaluation, plus the derive hook before the checkpointer."""
        ret = [h for h in super().build_hooks() if not isinstance(h, hooks.EvalHook)]
        self.derive_hook = DeriveArchitectureHook(self.groups, self.cfg.SEARCH.DERIVE_PERIOD,
                                                  self.cfg.SEARCH.STOP_WHEN_STABLE, self.cfg.OUTPUT_DIR)
        at = next((i for i, h in enumerate(ret) if isinstance(h, hooks.PeriodicCheckpointer)), len(ret))
        ret.insert(at, self.derive_hook)
        if self.cost_penalty is not None:
            ret.insert(at + 1, CostReportHook(self.cost_penalty, self.cfg.OUTPUT_DIR))
        return ret

    def request_stop(self, reason):
        """Called by a hook in ``after_step``: the current iteration becomes the last one, for the
        loop and for the checkpointer (which then saves ``model_final`` in its ``after_step``)."""
        self.stop_reason = reason
        self.max_iter = self.iter + 1
        for h in self._hooks:
            if isinstance(h, hooks.PeriodicCheckpointer):
                h.max_iter = self.max_iter

    def train(self):
        """``TrainerBase.train``'s loop, ended after the iteration in which a hook called
        :meth:`request_stop`; nothing at all when the loaded checkpoint's search had ended."""
        if self.derive_hook.end is not None:
            logger.info("this search already ended (%s) at iteration %d: nothing to do",
                        self.derive_hook.end["reason"], self.derive_hook.end["iteration"])
            return
        logger.info("Starting search from iteration %d", self.start_iter)
        self.iter = self.start_iter
        with EventStorage(self.start_iter) as self.storage:
            try:
                self.before_train()
                for self.iter in range(self.start_iter, self.max_iter):
                    self.before_step()
                    self.run_step()
                    self.after_step()
                    if self.stop_reason:
                        logger.info("stopping the search at iteration %d: %s", self.iter + 1, self.stop_reason)
                        break
                self.iter += 1
            finally:
                self.after_train()

    def state_dict(self):
        ret = super().state_dict()
        if self.split is not None:
            ret["search_split"] = self.split.to_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        saved = state_dict.get("search_split")
        if self.split is not None and saved is not None and saved != self.split.to_dict():
            raise ValueError("the checkpoint's search split differs from search_split.json in OUTPUT_DIR")


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


__all__ = ["SearchTrainer", "search_end_state", "search_groups"]
