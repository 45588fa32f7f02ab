"""The derivation schedule of the search (paper appendix 6.1) as a Detectron2 hook.

Every ``SEARCH.DERIVE_PERIOD`` iterations after the α warm-up (``SEARCH.ALPHA_WARMUP_ITERS``:
while only w trains, α and so the derivation cannot change) the discrete genotype is derived
from α, logged, written to ``genotype_iter_XXXXXXX.json`` and compared with the previous
derivation; with ``SEARCH.STOP_WHEN_STABLE`` a genotype unchanged over ``SEARCH.STABLE_PERIODS``
consecutive periods (the paper: 1, one derivation equal to the one before) ends the search.
softmax(α) of every edge is
recorded at each derivation (``alpha_history.json``, TensorBoard scalars ``alpha/<group>/...``)
and plotted (``alpha_evolution.png``).

A search ends honestly: the last iteration (``SOLVER.MAX_ITER``, or the one where the
architecture was found stable) always derives, and only then is the end state set
(``{"reason": "completed" | "stable", "iteration": N}``, saved in the checkpoint with the
history) and ``genotype_final.json`` (+ its drawing ``genotype_final.png``) written.  A search
interrupted before (Ctrl-C, a crash) writes its last derivation to ``genotype_last.json``
instead and says so; configs that train ``genotype_final.json`` never read a half search.
"""
import json
import logging
import os

from detectron2.engine import HookBase
from detectron2.utils import comm

from ..draw import draw_genotype
from ..space import Genotype, genotype_from_dict, genotype_to_dict, save_genotype
from .plots import plot_alpha_evolution

logger = logging.getLogger(__name__)

FINAL_GENOTYPE = "genotype_final.json"
LAST_GENOTYPE = "genotype_last.json"  # an interrupted search's last derivation
SELECTION_SCORES = "selection_scores.json"  # the perturbation rule's loss increases
ALPHA_GENOTYPE = "genotype_alpha.json"  # beside a perturbation-selected final genotype: the α rule's


class DeriveArchitectureHook(HookBase):
    """Derive, record and compare the architecture of ``groups`` every ``period`` iterations.

    Args:
        groups: the search ``CellGroup``\\ s of the model (each with ``name``, ``alpha`` [E, K]
            and ``derive()``), all in one search space (one per genotype file).
        period: derivation period in iterations.
        stop_when_stable: ask the trainer to stop when the derivation is stable.
        output_dir: where files go (written by the main process only).
        start: the iteration the periods count from (the α warm-up's end): derivations at
            ``start + k·period``, k ≥ 1 (and at the last iteration).
        stable_periods: how many consecutive periods without change make a derivation stable.
        select: ``None`` (the final genotype is the last derivation from α, the paper's rule), or
            a callable returning ``(genotype, scores)`` that chooses the final genotype when the
            search ends (``fad_d2.search.perturbation``); its scores go to ``selection_scores.json``
            and the α rule's genotype to ``genotype_alpha.json``.
    """

    def __init__(self, groups, period, stop_when_stable, output_dir, start=0, stable_periods=1, select=None):
        self.groups = list(groups)
        spaces = {g.space.name for g in self.groups}
        if len(spaces) != 1:
            raise ValueError(f"all search groups must share one search space, got {sorted(spaces)}")
        self.space = self.groups[0].space
        self.period = period
        self.stop_when_stable = stop_when_stable
        self.output_dir = output_dir
        self.start = start
        self.stable_periods = stable_periods
        self.select = select
        # [{"iteration", "genotype": dict, "softmax_alpha": {group: [[...]]}, "unchanged_periods", "stable"}]
        self.history = []
        self.end = None  # set at the last iteration: {"reason": "completed" | "stable", "iteration"}

    def current_genotype(self) -> Genotype:
        """The genotype derived from the current α of every group (``CellGroup.derive``)."""
        return Genotype(self.space.name, tuple((g.name, g.derive()) for g in self.groups))

    def after_step(self):
        next_iter = self.trainer.iter + 1
        scheduled = next_iter > self.start and (next_iter - self.start) % self.period == 0
        stable = self.derive(next_iter) if scheduled else False
        if next_iter >= self.trainer.max_iter:  # the last iteration (max_iter is cut by a stop)
            if not self.history or self.history[-1]["iteration"] != next_iter:
                self.derive(next_iter)
            self.end = {"reason": "stable" if stable and self.stop_when_stable else "completed",
                        "iteration": next_iter}

    def derive(self, iteration):
        """Derive at ``iteration``; returns True when the genotype is stable: unchanged over the
        last ``stable_periods`` derivations before it."""
        genotype = self.current_genotype()
        softmax = {g.name: g.alpha.detach().cpu().softmax(-1).tolist() for g in self.groups}
        previous = self.history[-1] if self.history else None
        unchanged = (previous is not None and genotype_from_dict(previous["genotype"]) == genotype)
        periods = previous.get("unchanged_periods", int(previous["stable"])) + 1 if unchanged else 0
        stable = periods >= self.stable_periods
        self.history.append({"iteration": iteration, "genotype": genotype_to_dict(genotype),
                             "softmax_alpha": softmax, "unchanged_periods": periods, "stable": stable})
        storage = self.trainer.storage
        for name, rows in softmax.items():
            for e, row in enumerate(rows):
                for choice, w in zip(self.space.choices, row):
                    storage.put_scalar(f"alpha/{name}/edge{e}/{choice}", w, smoothing_hint=False)
        logger.info("iteration %d: derived genotype %s%s", iteration, _describe(genotype),
                    f" (unchanged over {periods} period(s){', stable' if stable else ''})" if unchanged else "")
        if comm.is_main_process():
            save_genotype(genotype, os.path.join(self.output_dir, f"genotype_iter_{iteration:07d}.json"),
                          meta={"iteration": iteration})
            with open(os.path.join(self.output_dir, "alpha_history.json"), "w") as f:
                json.dump({"choices": list(self.space.choices), "history": self.history}, f)
            plot_alpha_evolution(self.history, self.space.choices,
                                 os.path.join(self.output_dir, "alpha_evolution.png"))
        if stable and self.stop_when_stable and iteration < self.trainer.max_iter:
            self.trainer.request_stop(f"the derived architecture did not change since iteration "
                                      f"{self.history[-1 - periods]['iteration']}")
        return stable

    def after_train(self):
        """Write ``genotype_final.json`` when the search ended, else ``genotype_last.json``."""
        if not comm.is_main_process() or not self.history:
            return
        last = self.history[-1]
        genotype = genotype_from_dict(last["genotype"])
        if self.end is None:
            path = os.path.join(self.output_dir, LAST_GENOTYPE)
            save_genotype(genotype, path, meta={"iteration": last["iteration"], "interrupted": True})
            logger.warning("the search was interrupted at iteration %d: its last derivation (iteration %d) "
                           "is in %s; %s is written only by a search that ends (--resume continues it)",
                           self.trainer.iter, last["iteration"], path, FINAL_GENOTYPE)
            return
        path = os.path.join(self.output_dir, FINAL_GENOTYPE)
        meta = {"iteration": last["iteration"], "end": self.end["reason"]}
        if self.select is not None:
            logger.info("choosing the final genotype by perturbation of the trained supernet")
            alpha_genotype, (genotype, scores) = genotype, self.select()
            meta.update(selection="perturbation", alpha_genotype=genotype_to_dict(alpha_genotype))
            with open(os.path.join(self.output_dir, SELECTION_SCORES), "w") as f:
                json.dump(scores, f)
            save_genotype(alpha_genotype, os.path.join(self.output_dir, ALPHA_GENOTYPE),
                          meta={"iteration": last["iteration"], "end": self.end["reason"], "selection": "alpha"})
            logger.info("perturbation: %s (by α: %s)", _describe(genotype), _describe(alpha_genotype))
        save_genotype(genotype, path, meta=meta)
        draw_genotype(genotype, os.path.splitext(path)[0] + ".png")
        logger.info("the search ended (%s) at iteration %d: final genotype written to %s",
                    self.end["reason"], self.end["iteration"], path)

    def state_dict(self):
        return {"history": self.history, "end": self.end}

    def load_state_dict(self, state_dict):
        self.history = list(state_dict["history"])
        self.end = state_dict.get("end")


def _describe(genotype):
    parts = []
    for name, cell in genotype.groups:
        nodes = ["+".join(f"{e.op}<-{e.input}" for e in node) for node in cell.nodes]
        parts.append(f"{name}: [{' | '.join(nodes)}]")
    return "; ".join(parts)
