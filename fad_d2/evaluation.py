"""COCO evaluation that ranks instance masks by their own score (Mask Scoring R-CNN).

Detectron2's ``COCOEvaluator`` gives every detection one score for ``bbox`` and ``segm``.  Models
whose instances carry ``mask_scores`` (``MaskScoringROIHeads``: classification score × predicted
MaskIoU) are evaluated here with ``scores`` for ``bbox`` and ``mask_scores`` for ``segm``; for
every other model this evaluator is ``COCOEvaluator``.
"""
import copy
import itertools

from detectron2.evaluation import COCOEvaluator


class MaskScoringCOCOEvaluator(COCOEvaluator):
    """``COCOEvaluator`` scoring ``segm`` results by ``instances.mask_scores`` when present."""

    def process(self, inputs, outputs):
        for one_input, output in zip(inputs, outputs):
            super().process([one_input], [output])
            instances = output.get("instances")
            if instances is not None and instances.has("mask_scores"):
                results = self._predictions[-1]["instances"]  # in the order of ``instances``
                for result, score in zip(results, instances.mask_scores.tolist()):
                    result["mask_score"] = score

    def _eval_predictions(self, predictions, img_ids=None):
        results = list(itertools.chain(*[p.get("instances", []) for p in predictions]))
        tasks = set(self._tasks or self._tasks_from_predictions(results))
        if "segm" not in tasks or not any("mask_score" in r for r in results):
            return super()._eval_predictions(predictions, img_ids)
        # the parent maps category ids in place: copy the segm results before the bbox pass
        segm = copy.deepcopy(predictions)
        for result in itertools.chain(*[p.get("instances", []) for p in segm]):
            result["score"] = result.pop("mask_score", result["score"])
        own_tasks = self._tasks
        try:
            self._tasks = tuple(sorted(tasks - {"segm"}))
            if self._tasks:
                super()._eval_predictions(predictions, img_ids)
            self._tasks = ("segm",)
            super()._eval_predictions(segm, img_ids)  # its results file has the mask scores
        finally:
            self._tasks = own_tasks
