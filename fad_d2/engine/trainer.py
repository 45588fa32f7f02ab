"""``DefaultTrainer`` with the COCO evaluator and early dataset checks."""
import os

from detectron2.engine import DefaultTrainer

from ..data import check_dataset_available
from ..evaluation import MaskScoringCOCOEvaluator


class Trainer(DefaultTrainer):
    """Detectron2's trainer, evaluating with ``COCOEvaluator(use_fast_impl=False)`` (pycocotools,
    so no compiled Detectron2 op is needed; its subclass ranks ``segm`` by ``mask_scores`` when a
    model gives them) and checking that every dataset exists first."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        output_folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return MaskScoringCOCOEvaluator(dataset_name, output_dir=output_folder, use_fast_impl=False)

    @classmethod
    def build_train_loader(cls, cfg):
        for name in cfg.DATASETS.TRAIN:
            check_dataset_available(name)
        return super().build_train_loader(cfg)

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        check_dataset_available(dataset_name)
        return super().build_test_loader(cfg, dataset_name)
