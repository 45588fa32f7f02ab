"""``MODEL_EMA``: an exponential moving average of the trained weights, evaluated instead of the
last iterate (beyond the paper, off by default).

After every iteration the average θ̄ of each parameter θ moves as θ̄ ← d·θ̄ + (1 − d)·θ with
d = ``MODEL_EMA.DECAY`` (``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``;
the first update copies θ, so weights loaded after the trainer was built are the start).  Buffers
(frozen BatchNorm statistics) are not averaged but copied.  The average is a checkpointable
``"model_ema"`` of every checkpoint, so a resumed run continues it; the evaluation during and
after training and ``train_net.py --eval-only`` (:func:`load_ema_weights`) use it when
``MODEL_EMA.ENABLED``.  Averaging the iterates of the last part of a schedule damps the noise of
the last SGD steps, one source of seed-to-seed spread in short schedules.
"""
import torch
from detectron2.engine import HookBase
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from .checkpoint import CheckpointError

EMA_KEY = "model_ema"  # the checkpointable's key in a checkpoint


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside ``DistributedDataParallel`` (or ``model`` itself)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def build_model_ema(cfg, model: torch.nn.Module) -> AveragedModel:
    """An ``AveragedModel`` of ``model`` (unwrapped from DDP) with decay ``MODEL_EMA.DECAY``."""
    return AveragedModel(unwrap(model), multi_avg_fn=get_ema_multi_avg_fn(cfg.MODEL_EMA.DECAY))


@torch.no_grad()
def update_model_ema(ema: AveragedModel, model: torch.nn.Module) -> None:
    """One EMA step of ``ema``'s parameters toward ``model``'s; ``model``'s buffers are copied."""
    model = unwrap(model)
    ema.update_parameters(model)
    for averaged, current in zip(ema.module.buffers(), model.buffers()):
        averaged.copy_(current)


class ModelEMAHook(HookBase):
    """Updates the average after every iteration (registered before the checkpointer, so that a
    checkpoint of iteration i holds the average of iterations ≤ i)."""

    def __init__(self, ema: AveragedModel):
        self.ema = ema

    def after_step(self):
        update_model_ema(self.ema, self.trainer.model)


def load_ema_weights(model: torch.nn.Module, checkpoint: dict, filename: str) -> None:
    """Load the average saved in ``checkpoint`` (what the checkpointer's ``load`` returns, the
    keys it did not load) into ``model``; a clear error when ``filename`` holds none."""
    state = checkpoint.get(EMA_KEY)
    if state is None:
        raise CheckpointError(f"{filename} holds no '{EMA_KEY}' (trained without MODEL_EMA.ENABLED?); "
                              f"set MODEL_EMA.ENABLED False to evaluate its last weights")
    weights = {k[len("module."):]: v for k, v in state.items() if k.startswith("module.")}
    unwrap(model).load_state_dict(weights)
