"""Cost-aware search: cost tables (CLI, cache, exactness for FLOPs) and the expected-cost term of
the α step (gradient to α only; weight 0 or an unbinding budget = the paper's α step)."""
import copy
import json

import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

import fad_d2.cost as cost_module
import fad_d2.search.cost_penalty as cost_penalty_module
from fad_d2.analyze import count_flops
from fad_d2.engine.setup import load_cfg
from fad_d2.errors import ConfigError
from fad_d2.search import SearchTrainer, search_groups
from fad_d2.search.cost_penalty import COST_REPORT, CostPenalty, cost_penalty_from_config
from fad_d2.space import architecture_parameters, load_genotype, weight_parameters
from fad_d2.space.genotype import CellGenotype, EdgeChoice
from tests.conftest import REPO
from tests.search.utils import SEARCH_CONFIG, tiny_search_cfg

GENOTYPE = f"{REPO}/genotypes/fad_fcos_demo.json"


@pytest.fixture(scope="module")
def table_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cost_tables")


def cost_opts(table_dir, *opts):
    """SEARCH.COST on, one measured call per part, at a 128×192 test size (P7 is 1×2: GroupNorm
    needs more than one value per group at batch 1)."""
    return ("SEARCH.COST.WEIGHT", "1.0", "SEARCH.COST.TABLE_DIR", str(table_dir), "SEARCH.COST.REPEATS", "1",
            "INPUT.MIN_SIZE_TEST", "128", "INPUT.MAX_SIZE_TEST", "192", "MODEL.FAD.SEARCH_SPACE", "full", *opts)


def search_model_and_penalty(tmp_path, table_dir, *opts):
    cfg = tiny_search_cfg(tmp_path, *cost_opts(table_dir, *opts))
    torch.manual_seed(0)
    model = build_model(cfg)
    groups = search_groups(model)
    return cfg, model, groups, cost_penalty_from_config(cfg, groups)


@pytest.mark.slow
def test_cli_prints_and_caches_the_table(tmp_path, table_dir, capsys, monkeypatch):
    args = ["--config-file", SEARCH_CONFIG, "--table-dir", str(tmp_path), "--repeats", "1", "--size", "128", "192",
            "MODEL.DEVICE", "cpu", "MODEL.FAD.SEARCH_SPACE", "subset1", "MODEL.FAD.INNER_CHANNELS", "[32, 32]"]
    cost_module.main(args)
    out = capsys.readouterr().out
    for part in ("edge std_3x3", "edge sep_5x5", "edge none", "cell", "predictors", "stock_head", "ms @32"):
        assert part in out
    (path,) = tmp_path.glob("*.json")
    table = json.loads(path.read_text())
    key = table["key"]
    assert key["image"] == [128, 192] and key["levels"] == [[16, 24], [8, 12], [4, 6], [2, 3], [1, 2]]
    assert key["inner_channels"] == [32] and key["channels"] == 64 and key["torch"] == torch.__version__
    assert key["device"].startswith("cpu: ") and key["threads"] == 1
    edges = table["flops"]["edges"]["32"]
    assert set(edges) == {"std_3x3", "std_5x5", "sep_3x3", "sep_5x5", "none"} and edges["none"] == 0
    assert edges["std_3x3"] < edges["std_5x5"] and edges["sep_3x3"] < edges["std_3x3"]
    assert all(v > 0 for k, v in table["latency"]["edges"]["32"].items() if k != "none")

    def no_measuring(*args):
        raise AssertionError("the cached table should have been used")

    monkeypatch.setattr(cost_module, "_measure", no_measuring)
    cost_module.main(args)
    assert "edge std_3x3" in capsys.readouterr().out
    # a derived config prices the same space: its genotype (here one not searched yet) plays no part
    cost_module.main(args + ["MODEL.FAD.GENOTYPE", str(tmp_path / "genotype_final.json")])
    assert "edge std_3x3" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="cached"):  # another c′ is another key
        cost_module.main(args + ["MODEL.FAD.INNER_CHANNELS", "[64, 64]"])


@pytest.mark.slow
def test_table_gives_the_derived_heads_fvcore_flops_exactly(tmp_path, table_dir):
    cfg, _, _, penalty = search_model_and_penalty(tmp_path, table_dir)
    genotype = load_genotype(GENOTYPE)
    derived_cfg = cfg.clone()
    derived_cfg.merge_from_list(["MODEL.FAD.GENOTYPE", GENOTYPE])
    head = build_model(derived_cfg).eval().head
    levels = json.loads(next(table_dir.glob("*.json")).read_text())["key"]["levels"]
    features = [torch.zeros(1, 64, h, w) for h, w in levels]
    measured = count_flops(head, (features,))
    predicted = penalty.derived_cost([genotype.group("box"), genotype.group("cls")])
    assert predicted == pytest.approx(measured, rel=1e-9)
    assert penalty.metric == "flops" and penalty.stock_cost > penalty.fixed_cost > 0


def test_expected_cost_gradient_reaches_alpha_only(tmp_path, table_dir):
    _, model, groups, penalty = search_model_and_penalty(tmp_path, table_dir, "SEARCH.COST.TARGET", "0.01")
    with EventStorage(0) as storage:
        loss = penalty()["loss_cost"]
    assert loss.item() > 0  # the budget binds
    assert {"cost/expected_vs_stock", "cost/budget_vs_stock"} <= set(storage.latest())
    loss.backward()
    for g in groups:
        assert g.alpha.grad is not None and g.alpha.grad[:, :-1].abs().sum() > 0
        assert torch.all(g.alpha.grad[:, -1] == 0), "`none` (never derived) gets no cost gradient"
    assert all(p.grad is None for p in weight_parameters(model))
    # uniform α: E[cost] is the mean over ops of the cost of a cell keeping 1 + 2 + 2 edges
    for g in groups:
        torch.nn.init.zeros_(g.alpha)
    mean_cell = [c.cell_cost + 5 * sum(c.op_costs) / len(c.op_costs) for c in penalty.costs]
    expected = penalty.fixed_cost + sum(c.num_cells * m for c, m in zip(penalty.costs, mean_cell))
    assert penalty.expected_cost().item() == pytest.approx(expected, rel=1e-6)


def test_floor_is_the_cheapest_derivable_head_and_an_unreachable_budget_is_named(tmp_path, table_dir, caplog):
    _, _, groups, penalty = search_model_and_penalty(tmp_path, table_dir, "SEARCH.COST.TARGET", "0.5")
    floor, ops = penalty.floor()
    for g, cost, op in zip(groups, penalty.costs, ops):
        assert cost.op_costs[penalty.ops.index(op)] == min(cost.op_costs)
    cheapest = [CellGenotype([[EdgeChoice(op, i) for i in range(min(2, j))] for j in range(1, g.num_nodes + 1)])
                for g, op in zip(groups, ops)]
    assert floor == pytest.approx(penalty.derived_cost(cheapest))
    for randomised in groups:  # any derivable head costs at least the floor
        torch.nn.init.normal_(randomised.alpha)
        assert penalty.derived_cost([g.derive() for g in groups]) >= floor
    report = penalty.report()
    assert report["floor_vs_stock"] == pytest.approx(floor / penalty.stock_cost)

    def with_target(fraction):
        return CostPenalty(groups, penalty.costs, penalty.ops, fixed_cost=penalty.fixed_cost,
                           stock_cost=penalty.stock_cost, target=fraction, weight=1.0, metric="flops")

    with caplog.at_level("WARNING", logger=cost_penalty_module.__name__):
        assert with_target(0.99 * floor / penalty.stock_cost).warn_if_unreachable()
    assert "out of reach" in caplog.text and f"every kept edge {ops[0]}" in caplog.text
    assert not with_target(floor / penalty.stock_cost).warn_if_unreachable()


def test_a_trained_head_other_than_the_priced_one_is_named(tmp_path, caplog):
    """The cost model prices this config's M and c′; SEARCH.TRAIN_CONFIG may train others."""
    shipped = load_cfg(SEARCH_CONFIG, ["MODEL.DEVICE", "cpu"])
    assert shipped.SEARCH.TRAIN_CONFIG
    with caplog.at_level("WARNING", logger=cost_penalty_module.__name__):
        assert not cost_penalty_module.warn_if_not_the_trained_head(shipped), "the demo search prices the demo's head"
        # c′ 48 priced, the training config's 32 trained
        assert cost_penalty_module.warn_if_not_the_trained_head(tiny_search_cfg(tmp_path, "MODEL.FAD.INNER_CHANNELS",
                                                                                "[48, 48]"))
    assert "MODEL.FAD.INNER_CHANNELS [48, 48]" in caplog.text and "[32, 32]" in caplog.text
    assert "NUM_CELLS" not in caplog.text
    assert not cost_penalty_module.warn_if_not_the_trained_head(tiny_search_cfg(tmp_path, "SEARCH.TRAIN_CONFIG", ""))

    caplog.clear()
    missing = str(tmp_path / "no_such_train.yaml")
    with caplog.at_level("WARNING", logger=cost_penalty_module.__name__):
        assert cost_penalty_module.warn_if_not_the_trained_head(tiny_search_cfg(tmp_path, "SEARCH.TRAIN_CONFIG", missing))
    assert f"SEARCH.TRAIN_CONFIG {missing}: no such file" in caplog.text


def _alpha_after_one_step(trainer, batch, alpha0, opt_state, penalty):
    """α after one α step on ``batch`` from α = ``alpha0``, the α optimizer at ``opt_state`` and
    FCOS's running loss normaliser (an EMA that Detectron2's dense detectors keep) reset."""
    trainer.model.__dict__.pop("loss_normalizer", None)
    with torch.no_grad():
        for a, a0 in zip(architecture_parameters(trainer.model), alpha0):
            a.copy_(a0)
    hook = trainer.alpha_hook
    hook.optimizer.load_state_dict(copy.deepcopy(opt_state))
    hook.cost_penalty = penalty
    hook._data_iter = iter([batch])
    hook.before_step()
    return [a.detach().clone() for a in architecture_parameters(trainer.model)]


@pytest.mark.slow
def test_weight_zero_or_unbinding_budget_is_the_papers_alpha_step(tmp_path, table_dir, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(cost_penalty_module, "cost_table_from_config", lambda cfg: pytest.fail("no table when off"))
        off = SearchTrainer(tiny_search_cfg(tmp_path / "off"))
    assert off.cost_penalty is None and off.alpha_hook.cost_penalty is None

    trainer = SearchTrainer(tiny_search_cfg(tmp_path / "on", *cost_opts(table_dir, "SEARCH.COST.TARGET", "100.0")))
    assert isinstance(trainer.alpha_hook.cost_penalty, CostPenalty)
    batch = next(iter(trainer.alpha_hook.data_loader))
    alpha0 = [a.detach().clone() for a in architecture_parameters(trainer.model)]
    opt_state = copy.deepcopy(trainer.alpha_hook.optimizer.state_dict())
    unbinding = trainer.cost_penalty
    binding = CostPenalty(unbinding.groups, unbinding.costs, unbinding.ops, fixed_cost=unbinding.fixed_cost,
                          stock_cost=unbinding.stock_cost, target=0.01, weight=1.0, metric="flops")
    with EventStorage(0) as storage:
        paper = _alpha_after_one_step(trainer, batch, alpha0, opt_state, None)
        same = _alpha_after_one_step(trainer, batch, alpha0, opt_state, unbinding)
        assert storage.latest()["alpha_loss_cost"][0] == 0
        budgeted = _alpha_after_one_step(trainer, batch, alpha0, opt_state, binding)
        assert storage.latest()["alpha_loss_cost"][0] > 0
    # equal up to the CPU kernels' run-to-run rounding (up to ~2e-7 seen: two paper steps differ
    # as much); an α step moves α by ~ALPHA_LR = 3e-3
    assert max((a - b).abs().max().item() for a, b in zip(paper, same)) < 1e-5, "an unbinding budget changes nothing"
    assert max((a - b).abs().max().item() for a, b in zip(paper, budgeted)) > 1e-4


@pytest.mark.slow
def test_search_reports_the_derived_heads_cost(tmp_path, table_dir):
    cfg = tiny_search_cfg(tmp_path, *cost_opts(table_dir, "SOLVER.MAX_ITER", "2", "SEARCH.COST.TARGET", "0.5"))
    trainer = SearchTrainer(cfg)
    trainer.train()
    report = json.loads((tmp_path / COST_REPORT).read_text())
    assert report["metric"] == "flops" and report["budget_vs_stock"] == pytest.approx(0.5)
    assert report["derived"] == pytest.approx(report["derived_vs_stock"] * report["stock"])
    records = [json.loads(line) for line in (tmp_path / "metrics.json").read_text().splitlines()]
    assert any("alpha_loss_cost" in r and "cost/expected_vs_stock" in r for r in records)
    assert "cost/derived_vs_stock" in records[-1]


def test_unknown_metric_is_named(tmp_path, table_dir):
    with pytest.raises(ConfigError, match=r"SEARCH.COST.METRIC: 'energy' is not allowed: one of \['flops', 'latency'\]"):
        tiny_search_cfg(tmp_path, *cost_opts(table_dir, "SEARCH.COST.METRIC", "energy"))

