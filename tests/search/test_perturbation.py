"""The perturbation rule (SEARCH.SELECTION "perturbation"): ops and edges chosen by the loss
increase of removing them, not by softmax(α)."""
import json
from types import SimpleNamespace

import pytest
import torch

from fad_d2.search import SearchTrainer
from fad_d2.search.trainer import split_training_data
from fad_d2.search.perturbation import select_by_perturbation, selection_batches, supernet_loss
from fad_d2.space import CELL_KINDS, EdgeChoice, get_search_space
from tests.search.utils import tiny_search_cfg

SPACE = get_search_space("subset1")  # std_3x3, std_5x5, sep_3x3, sep_5x5, none


def _group(name="box"):
    alpha = torch.zeros(6, SPACE.num_choices)
    alpha[:, 0] = 2.0  # softmax(α) prefers std_3x3 on every edge, all edges equally strong
    return SimpleNamespace(name=name, alpha=alpha, space=SPACE, num_nodes=3, kind=CELL_KINDS["paper"])


def test_perturbation_keeps_what_the_loss_needs_where_alpha_says_otherwise():
    groups = [_group("box"), _group("cls")]
    before = [g.alpha.clone() for g in groups]
    # a supernet whose loss needs std_5x5 on every edge, edge (2, 3) more than (1, 3) and (0, 3)
    need = torch.tensor([1.0, 1.0, 1.0, 0.5, 0.1, 2.0])

    def loss():
        return sum(float((need * (1 - g.alpha.softmax(-1)[:, 1])).sum()) for g in groups)

    genotype, scores = select_by_perturbation(groups, loss)
    assert all(torch.equal(g.alpha, b) for g, b in zip(groups, before)), "α is restored"
    by_alpha = groups[0].alpha  # the α rule: std_3x3 everywhere, node 3 keeps inputs 0 and 1 (a tie)
    assert [SPACE.ops[int(k)] for k in by_alpha[:, :-1].argmax(-1)] == ["std_3x3"] * 6
    for _, cell in genotype.groups:
        assert cell.nodes == ((EdgeChoice("std_5x5", 0),),
                              (EdgeChoice("std_5x5", 0), EdgeChoice("std_5x5", 1)),
                              (EdgeChoice("std_5x5", 0), EdgeChoice("std_5x5", 2)))
    box = scores["groups"]["box"]
    assert len(box["op_increase"]) == 6 and all(len(row) == len(SPACE.ops) for row in box["op_increase"])
    # removing std_5x5 from edge 0 raises the loss by need · its weight; removing another op lowers it
    w = before[0].softmax(-1)[0, 1].item()
    assert abs(box["op_increase"][0][1] - 1.0 * w) < 1e-6 and box["op_increase"][0][0] < 0
    assert max(range(6), key=box["edge_increase"].__getitem__) == 5


def test_supernet_loss_is_the_same_on_every_call(tmp_path):
    """The loss normalizer's running average is restored: the same α gives the same loss."""
    cfg = tiny_search_cfg(tmp_path, "SEARCH.SELECTION_BATCHES", "2")
    trainer = SearchTrainer(cfg)
    _, _, alpha_dicts = split_training_data(cfg)
    batches = selection_batches(cfg, alpha_dicts)
    assert len(batches) == 2 and all(len(b) == cfg.SOLVER.IMS_PER_BATCH for b in batches)
    loss = supernet_loss(trainer.model, batches)
    first = loss()
    assert loss() == first and first > 0


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_search_ends_with_the_perturbation_genotype(tmp_path):
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, "SEARCH.SELECTION", "perturbation",
                                            "SEARCH.SELECTION_BATCHES", "1", "SEARCH.STOP_WHEN_STABLE", "False"))
    trainer.train()
    final = json.loads((tmp_path / "genotype_final.json").read_text())
    assert final["meta"]["selection"] == "perturbation" and final["meta"]["end"] == "completed"
    assert final["meta"]["alpha_genotype"]["groups"]  # the α rule's genotype, for comparison
    scores = json.loads((tmp_path / "selection_scores.json").read_text())
    assert set(scores["groups"]) == {"box", "cls"} and scores["base_loss"] > 0
    assert all(len(g["edge_increase"]) == 6 for g in scores["groups"].values())
