"""``DefaultTrainer`` with the COCO evaluator, early dataset checks, checkpoints that carry
the genotype, and DDP and mixed precision for CPU models too."""
import logging
import os
import weakref

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog, build_detection_train_loader, get_detection_dataset_dicts
from detectron2.engine import DefaultTrainer, SimpleTrainer, create_ddp_model, hooks
from detectron2.engine.train_loop import TrainerBase
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..data import check_dataset_available, check_images_exist
from ..evaluation import MaskScoringCOCOEvaluator
from .amp import AMPTrainer, amp_precision
from .box_watch import BoxRegressionWatch
from .checkpoint import FADCheckpointer, genotype_record
from .ema import EMA_KEY, ModelEMAHook, build_model_ema


def training_dataset_dicts(cfg):
    """The records of ``DATASETS.TRAIN`` (as Detectron2's train loader reads them), after
    checking that every dataset and every image file exists."""
    for name in cfg.DATASETS.TRAIN:
        check_dataset_available(name)
    dicts = get_detection_dataset_dicts(cfg.DATASETS.TRAIN, filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS)
    check_images_exist(dicts, cfg.DATASETS.TRAIN)
    return dicts


def check_test_datasets(cfg):
    """Check that every dataset of ``DATASETS.TEST`` and each of its image files exists, so that a
    missing test image stops the run before training instead of at the evaluation after it."""
    for name in cfg.DATASETS.TEST:
        check_dataset_available(name)
        check_images_exist(DatasetCatalog.get(name), [name])


class Trainer(DefaultTrainer):
    """Detectron2's trainer, evaluating with ``COCOEvaluator(use_fast_impl=False)`` (pycocotools,
    so no compiled Detectron2 op is needed; its subclass ranks ``segm`` by ``mask_scores`` when a
    model gives them), checking that every dataset and every training and test image exists
    first, and saving/loading checkpoints with :class:`FADCheckpointer`.  A CPU model trains with
    several processes (gloo) and with ``SOLVER.AMP.ENABLED`` (bfloat16 autocast) too."""

    evaluates = True  # False: DATASETS.TEST is never read (then it is not checked)

    def __init__(self, cfg):
        """``DefaultTrainer.__init__``'s steps in its order (model, optimizer, loader, DDP, the inner
        trainer, scheduler, checkpointer, hooks), with the DDP wrapper and the inner trainer of
        :meth:`build_ddp_model` and :meth:`build_inner_trainer`, which also serve CPU models."""
        if self.evaluates:
            for name in cfg.DATASETS.TRAIN:  # a missing training set is named first
                check_dataset_available(name)
            check_test_datasets(cfg)
        TrainerBase.__init__(self)
        if not logging.getLogger("detectron2").isEnabledFor(logging.INFO):
            setup_logger()
        cfg = DefaultTrainer.auto_scale_workers(cfg, comm.get_world_size())
        model = self.build_model(cfg)
        optimizer = self.build_optimizer(cfg, model)
        data_loader = self.build_train_loader(cfg)
        model = self.build_ddp_model(model)
        self._trainer = self.build_inner_trainer(cfg, model, data_loader, optimizer)
        self.scheduler = self.build_lr_scheduler(cfg, optimizer)
        self.checkpointer = DetectionCheckpointer(model, cfg.OUTPUT_DIR, trainer=weakref.proxy(self))
        self.start_iter = 0
        self.max_iter = cfg.SOLVER.MAX_ITER
        self.cfg = cfg
        self.register_hooks(self.build_hooks())

    @staticmethod
    def build_ddp_model(model):
        """Detectron2's ``create_ddp_model`` (DDP when there are several processes), with
        ``device_ids=None`` for a CPU model (Detectron2 passes the local rank, a GPU index, which
        ``DistributedDataParallel`` refuses for a CPU module)."""
        on_cuda = next(model.parameters()).is_cuda
        return create_ddp_model(model, broadcast_buffers=False, **({} if on_cuda else {"device_ids": None}))

    @staticmethod
    def build_inner_trainer(cfg, model, data_loader, optimizer):
        """The step: ``SimpleTrainer``, or with ``SOLVER.AMP.ENABLED`` :class:`fad_d2.engine.amp.AMPTrainer`
        on the model's device (Detectron2's own asserts CUDA) at ``amp_precision(cfg, device)``."""
        if not cfg.SOLVER.AMP.ENABLED:
            return SimpleTrainer(model, data_loader, optimizer)
        device_type = next(model.parameters()).device.type
        return AMPTrainer(model, data_loader, optimizer, device_type=device_type,
                          precision=amp_precision(cfg, device_type))

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return MaskScoringCOCOEvaluator(dataset_name, output_dir=output_folder, use_fast_impl=False)

    @classmethod
    def build_train_loader(cls, cfg):
        return build_detection_train_loader(cfg, dataset=training_dataset_dicts(cfg))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        check_dataset_available(dataset_name)
        return super().build_test_loader(cfg, dataset_name)

    def build_hooks(self):
        """Detectron2's hooks, whose checkpointer (made by ``DefaultTrainer.__init__`` right
        before this call) becomes a :class:`FADCheckpointer` with the same checkpointables.  With
        ``MODEL_EMA.ENABLED`` (a trainer that evaluates) the weight average
        (:mod:`fad_d2.engine.ema`) is updated before the checkpointer, saved as a checkpointable
        and evaluated instead of the last weights.  :class:`BoxRegressionWatch` warns when FCOS's
        box regression has not started to train after the warm-up."""
        checkpointables = dict(self.checkpointer.checkpointables)
        self.ema = build_model_ema(self.cfg, self.model) if self.evaluates and self.cfg.MODEL_EMA.ENABLED else None
        if self.ema is not None:
            checkpointables[EMA_KEY] = self.ema
        self.checkpointer = FADCheckpointer(self.checkpointer.model, self.cfg.OUTPUT_DIR,
                                            genotypes=genotype_record(self.cfg), **checkpointables)
        ret = super().build_hooks() + [BoxRegressionWatch(self.cfg.SOLVER.WARMUP_ITERS)]
        if self.ema is None:
            return ret
        at = next(i for i, h in enumerate(ret) if isinstance(h, (hooks.PeriodicCheckpointer, hooks.EvalHook,
                                                                  hooks.PeriodicWriter)))
        ret.insert(at, ModelEMAHook(self.ema))
        return [hooks.EvalHook(self.cfg.TEST.EVAL_PERIOD, self._test_ema) if isinstance(h, hooks.EvalHook) else h
                for h in ret]

    def _test_ema(self):
        """``DefaultTrainer``'s evaluation function, on the weight average."""
        self._last_eval_results = self.test(self.cfg, self.ema.module)
        return self._last_eval_results
