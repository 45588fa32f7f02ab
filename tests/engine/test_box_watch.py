"""BoxRegressionWatch: a warning when FCOS's box loss is still at the no-area value after warm-up."""
import logging
from types import SimpleNamespace

import pytest
from detectron2.utils.events import EventStorage

from fad_d2.engine.box_watch import WINDOW, BoxRegressionWatch


def _run(loc_losses, warmup_iters=10, key="loss_fcos_loc"):
    """Feed one loss value per iteration to the hook as the trainer would; returns the hook."""
    hook = BoxRegressionWatch(warmup_iters)
    with EventStorage() as storage:
        hook.trainer = SimpleNamespace(storage=storage, iter=0)
        for it, loss in enumerate(loc_losses):
            storage.iter = hook.trainer.iter = it
            storage.put_scalars(**{key: loss})
            hook.after_step()
    return hook


def test_dead_box_regression_is_warned_about_once_naming_the_key(caplog):
    with caplog.at_level(logging.WARNING):
        hook = _run([1.0] * 100)
    assert hook.warned
    assert [r.getMessage().count("MODEL.FCOS.BBOX_REG_BIAS_INIT") for r in caplog.records] == [1]


@pytest.mark.parametrize("losses", [
    [1.1 - 0.01 * i for i in range(100)],  # a head that learns: below 0.95 by the check
    [1.0] * 10 + [0.6] * 90,               # dead during the warm-up only
])
def test_box_regression_that_trains_is_not_warned_about(losses):
    assert not _run(losses).warned


def test_check_looks_only_at_the_window_after_the_warmup():
    losses = [0.5] * 10 + [1.0] * WINDOW + [0.5] * 70  # the window itself is dead
    assert _run(losses).warned


def test_models_without_the_fcos_box_loss_are_not_checked():
    hook = _run([1.0] * 100, key="loss_box_reg")
    assert hook.median is None and not hook.warned
