"""Mixed precision (``SOLVER.AMP.ENABLED``) on CUDA and on the CPU.

Detectron2's ``AMPTrainer`` runs on CUDA only (it asserts CUDA and uses ``torch.cuda.amp``).
:class:`AMPTrainer` here, which ``fad_d2.engine.trainer.Trainer.build_inner_trainer`` builds, is the
same step on the model's device: the forward under ``torch.autocast(device, precision)``, the
backward of the loss scaled by a ``GradScaler``, the update through ``GradScaler.step`` (which
unscales the gradients first, so that a clip inside ``optimizer.step`` sees true gradients,
and skips a step whose gradients overflowed).

Precision: ``SOLVER.AMP.PRECISION`` where the installed Detectron2 has that key, else float16 on
CUDA and bfloat16 on the CPU (CPU autocast's fast type).  Only float16 is loss-scaled:
bfloat16 has float32's exponent range, and its ``GradScaler`` is disabled (it passes the loss,
the backward and the step through, and its state is ``{}``).
"""
import time

import torch
from detectron2.engine import AMPTrainer as D2AMPTrainer
from detectron2.utils.events import get_event_storage

from ..errors import ConfigError

__all__ = ["AMPTrainer", "amp_precision", "build_grad_scaler", "default_precision"]

PRECISIONS = {"float16": torch.float16, "bfloat16": torch.bfloat16}


def amp_precision(cfg, device_type: str) -> torch.dtype:
    """The autocast dtype of ``cfg`` on ``device_type`` (``"cuda"`` or ``"cpu"``)."""
    name = cfg.SOLVER.AMP.get("PRECISION", "")
    if name:
        if name not in PRECISIONS:
            raise ConfigError(f"SOLVER.AMP.PRECISION: {name!r} is not allowed: one of {list(PRECISIONS)}")
        return PRECISIONS[name]
    return default_precision(device_type)


def default_precision(device_type: str) -> torch.dtype:
    """Mixed precision's type without ``SOLVER.AMP.PRECISION``: float16 on CUDA (loss-scaled),
    bfloat16 on the CPU."""
    return torch.float16 if device_type == "cuda" else torch.bfloat16


def build_grad_scaler(device_type: str, precision: torch.dtype) -> torch.amp.GradScaler:
    """A ``GradScaler`` for ``device_type``, enabled for float16 only."""
    return torch.amp.GradScaler(device_type, enabled=precision == torch.float16)


class AMPTrainer(D2AMPTrainer):
    """Detectron2's ``AMPTrainer`` (its ``grad_scaler``, ``precision``, checkpoint state) with a
    step that runs on CUDA and on the CPU.

    Args:
        model, data_loader, optimizer: as ``SimpleTrainer``.
        device_type: ``"cuda"`` or ``"cpu"``, where ``model`` is.
        precision: the autocast dtype (:func:`amp_precision`).
    """

    def __init__(self, model, data_loader, optimizer, *, device_type: str, precision: torch.dtype):
        super().__init__(model, data_loader, optimizer, grad_scaler=build_grad_scaler(device_type, precision),
                         precision=precision)
        self.device_type = device_type

    def run_step(self):
        """Detectron2's ``AMPTrainer.run_step`` with ``torch.autocast`` for ``device_type``."""
        assert self.model.training, "[AMPTrainer] model was changed to eval mode!"
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start

        if self.zero_grad_before_forward:
            self.optimizer.zero_grad()
        with torch.autocast(self.device_type, dtype=self.precision):
            loss_dict = self.model(data)
            if isinstance(loss_dict, torch.Tensor):
                losses = loss_dict
                loss_dict = {"total_loss": loss_dict}
            else:
                losses = sum(loss_dict.values())
        if not self.zero_grad_before_forward:
            self.optimizer.zero_grad()

        self.grad_scaler.scale(losses).backward()
        if self.log_grad_scaler:
            get_event_storage().put_scalar("[metric]grad_scaler", self.grad_scaler.get_scale())
        self.after_backward()
        if self.async_write_metrics:
            self.concurrent_executor.submit(self._write_metrics, loss_dict, data_time, iter=self.iter)
        else:
            self._write_metrics(loss_dict, data_time)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
