"""A warning when FCOS's box regression has not started to train after the warm-up.

Detectron2's FCOS passes the predicted box deltas through a ReLU (``Box2BoxTransformLinear``).
When, from the start, a box channel's deltas are ≤ 0 at every location (both horizontal or both
vertical distances), the predicted boxes have no area, the GIoU loss is 1 and gives the box conv
no gradient: the head never learns to regress and its AP stays near 0, while the classification
loss falls as usual.  Which channels start negative is a matter of the seed (the box conv's
weights times the non-negative tower features), so nothing fails loudly; this hook says so in the
log, with the config key that avoids it (``MODEL.FCOS.BBOX_REG_BIAS_INIT``).
"""
import logging
import statistics

from detectron2.engine import HookBase

LOSS_KEY = "loss_fcos_loc"
DEAD_LOSS = 0.95  # GIoU loss of boxes with no area is 1; a head that learns is far below after warm-up
WINDOW = 20  # iterations after the warm-up whose median loss is checked


class BoxRegressionWatch(HookBase):
    """Checks once, ``WINDOW`` iterations after ``warmup_iters``, the median of
    ``loss_fcos_loc`` over those iterations (kept as ``median``); ≥ ``DEAD_LOSS`` logs a warning
    (the run goes on).  Models without that loss (RetinaNet, Mask R-CNN) are never checked."""

    def __init__(self, warmup_iters: int):
        self.check_iter = warmup_iters + WINDOW
        self.median = None
        self.warned = False

    def after_step(self):
        if self.trainer.iter + 1 != self.check_iter:
            return
        storage = self.trainer.storage
        if LOSS_KEY not in storage.histories():
            return
        recent = [v for v, it in storage.history(LOSS_KEY).values() if it > self.check_iter - 1 - WINDOW]
        self.median = median = statistics.median(recent)
        if median >= DEAD_LOSS:
            self.warned = True
            logging.getLogger(__name__).warning(
                f"{LOSS_KEY} has a median of {median:.3f} over the {len(recent)} iterations after the warm-up: "
                f"the predicted boxes have no area, so the box regression gets no gradient and will not train "
                f"(a box channel's deltas are <= 0 under Detectron2's ReLU). Start the deltas above 0 with "
                f"MODEL.FCOS.BBOX_REG_BIAS_INIT (e.g. 1.0).")
