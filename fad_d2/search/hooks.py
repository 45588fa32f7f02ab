"""The derivation schedule of the search (paper appendix 6.1) as a Detectron2 hook.

Every ``SEARCH.DERIVE_PERIOD`` iterations the discrete genotype is derived from α, logged,
written to ``genotype_iter_XXXXXXX.json`` and compared with the previous derivation; with
``SEARCH.STOP_WHEN_STABLE`` an unchanged genotype ends the search.  softmax(α) of every edge is
recorded at each derivation (``alpha_history.json``, TensorBoard scalars ``alpha/<group>/...``)
and plotted (``alpha_evolution.png``).  At the end, ``genotype_final.json`` and its drawing
``genotype_final.png`` are written.  The history is part of the trainer's checkpoint.
"""
import json
import logging
import os

from detectron2.engine import HookBase
from detectron2.utils import comm

from ..draw import draw_genotype
from ..space import derive_genotype, genotype_from_dict, genotype_to_dict, save_genotype
from .plots import plot_alpha_evolution

logger = logging.getLogger(__name__)

FINAL_GENOTYPE = "genotype_final.json"


class DeriveArchitectureHook(HookBase):
    """Derive, record and compare the architecture of ``groups`` every ``period`` iterations.

    Args:
        groups: the search ``CellGroup``\\ s of the model (each with ``name``, ``alpha`` [E, K]).
        space: their search space (one per genotype file).
        period: derivation period in iterations.
        stop_when_stable: ask the trainer to stop when two successive derivations are equal.
        output_dir: where files go (written by the main process only).
    """

    def __init__(self, groups, space, period, stop_when_stable, output_dir):
        if period <= 0:
            raise ValueError(f"SEARCH.DERIVE_PERIOD must be > 0, got {period}")
        self.groups = list(groups)
        self.space = space
        self.period = period
        self.stop_when_stable = stop_when_stable
        self.output_dir = output_dir
        self.history = []  # [{"iteration", "genotype": dict, "softmax_alpha": {group: [[...]]}}]

    def current_genotype(self):
        return derive_genotype([(g.name, g.alpha.detach().cpu()) for g in self.groups], self.space)

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if next_iter % self.period == 0:
            self.derive(next_iter)

    def derive(self, iteration):
        """Derive at ``iteration``; returns True when it equals the previous derivation."""
        genotype = self.current_genotype()
        softmax = {g.name: g.alpha.detach().cpu().softmax(-1).tolist() for g in self.groups}
        previous = self.history[-1]["genotype"] if self.history else None
        stable = previous is not None and genotype_from_dict(previous) == genotype
        self.history.append({"iteration": iteration, "genotype": genotype_to_dict(genotype),
                             "softmax_alpha": softmax, "stable": stable})
        storage = self.trainer.storage
        for name, rows in softmax.items():
            for e, row in enumerate(rows):
                for choice, w in zip(self.space.choices, row):
                    storage.put_scalar(f"alpha/{name}/edge{e}/{choice}", w, smoothing_hint=False)
        logger.info("iteration %d: derived genotype %s%s", iteration, _describe(genotype),
                    " (unchanged)" if stable else "")
        if comm.is_main_process():
            save_genotype(genotype, os.path.join(self.output_dir, f"genotype_iter_{iteration:07d}.json"),
                          meta={"iteration": iteration})
            with open(os.path.join(self.output_dir, "alpha_history.json"), "w") as f:
                json.dump({"choices": list(self.space.choices), "history": self.history}, f)
            plot_alpha_evolution(self.history, self.space.choices,
                                 os.path.join(self.output_dir, "alpha_evolution.png"))
        if stable and self.stop_when_stable:
            self.trainer.request_stop(f"the derived architecture did not change since iteration "
                                      f"{self.history[-2]['iteration']}")
        return stable

    def after_train(self):
        if not self.history or self.history[-1]["iteration"] != self.trainer.iter:
            self.derive(self.trainer.iter)
        if comm.is_main_process():
            last = self.history[-1]
            genotype = genotype_from_dict(last["genotype"])
            path = os.path.join(self.output_dir, FINAL_GENOTYPE)
            save_genotype(genotype, path, meta={"iteration": last["iteration"], "stable": last["stable"]})
            draw_genotype(genotype, os.path.splitext(path)[0] + ".png")
            logger.info("final genotype written to %s", path)

    def state_dict(self):
        return {"history": self.history}

    def load_state_dict(self, state_dict):
        self.history = list(state_dict["history"])


def _describe(genotype):
    parts = []
    for name, cell in genotype.groups:
        nodes = ["+".join(f"{e.op}<-{e.input}" for e in node) for node in cell.nodes]
        parts.append(f"{name}: [{' | '.join(nodes)}]")
    return "; ".join(parts)
