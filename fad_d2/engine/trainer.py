"""``DefaultTrainer`` with the COCO evaluator, early dataset checks, checkpoints that carry
the genotype, and DDP and mixed precision for CPU models too."""
import contextlib
import os

import detectron2.engine.defaults as d2_defaults
from detectron2.data import DatasetCatalog, build_detection_train_loader, get_detection_dataset_dicts
from detectron2.engine import DefaultTrainer, hooks

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
        if self.evaluates:
            for name in cfg.DATASETS.TRAIN:  # a missing training set is named first
                check_dataset_available(name)
            check_test_datasets(cfg)
        with _any_device(cfg):
            super().__init__(cfg)

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


@contextlib.contextmanager
def _any_device(cfg):
    """Within the context, ``DefaultTrainer.__init__`` builds for a CPU model too.  It calls two
    names of ``detectron2.engine.defaults`` that assume CUDA, replaced here: ``create_ddp_model``,
    which passes ``device_ids=[local rank]`` (a GPU index, which ``DistributedDataParallel``
    refuses for a CPU module; a CPU model gets ``None``), and ``AMPTrainer``, which asserts
    CUDA (:class:`fad_d2.engine.amp.AMPTrainer` runs on the model's device, at
    ``amp_precision(cfg, device)``)."""
    create_ddp_model, d2_amp_trainer = d2_defaults.create_ddp_model, d2_defaults.AMPTrainer

    def create(model, **kwargs):
        if not next(model.parameters()).is_cuda:
            kwargs.setdefault("device_ids", None)
        return create_ddp_model(model, **kwargs)

    def amp_trainer(model, data_loader, optimizer):
        device_type = next(model.parameters()).device.type
        return AMPTrainer(model, data_loader, optimizer, device_type=device_type,
                          precision=amp_precision(cfg, device_type))

    d2_defaults.create_ddp_model, d2_defaults.AMPTrainer = create, amp_trainer
    try:
        yield
    finally:
        d2_defaults.create_ddp_model, d2_defaults.AMPTrainer = create_ddp_model, d2_amp_trainer
