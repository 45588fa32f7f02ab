"""Every benchmark runs at tiny sizes and returns what the report reads (the full sizes run in
``make bench``)."""
import json

import pytest
import torch

from benchmarks import derived_head, mixed_op, report, run_all, search_profile, search_step, search_wallclock
from benchmarks.common import Settings, image_size, level_sizes, peak_memory_bytes, saved_activation_bytes

TINY = Settings(device="cpu", threads=1, warmup=0, repeats=1)
DEMO_SEARCH = "configs/Demo/search_fad_fcos_R_18_FPN_demo.yaml"
DEMO_FCOS = "configs/Demo/fcos_R_18_FPN_demo.yaml"
DEMO_FAD = "configs/Demo/fad_fcos_R_18_FPN_demo.yaml"
TIME_KEYS = {"median_s", "times_s", "warmup", "repeats", "clock"}


@pytest.fixture(scope="module")
def block_result():
    return mixed_op.compare_blocks(TINY, batch=2, short_side=64, channels=32)


def test_sizes():
    assert image_size(416) == (416, 693) and image_size(800) == (800, 1333)
    assert level_sizes(416, 693) == [(52, 87), (26, 44), (13, 22), (7, 11), (4, 6)]


def test_memory_measures():
    conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    x = torch.randn(1, 4, 8, 8, requires_grad=True)

    def forward():
        return torch.relu(conv(x))

    # conv saves x; ReLU saves its output (one 4×8×8 float32 tensor each); weights excluded
    assert saved_activation_bytes(forward, list(conv.parameters())) == 2 * 4 * 64 * 4
    assert peak_memory_bytes(lambda: forward().sum().backward(), torch.device("cpu")) >= 4 * 64 * 4


def test_mixed_op(block_result):
    assert set(block_result["variants"]) == set(mixed_op.VARIANTS)
    for r in block_result["variants"].values():
        assert set(r) == {"time", "saved_bytes", "peak_bytes", "representations"}
        assert set(r["time"]) == TIME_KEYS and r["saved_bytes"] > 0 and r["peak_bytes"] > 0
    v = block_result["variants"]
    assert (v["repshare"]["representations"], v["unshared"]["representations"]) == (12, 26)
    assert v["repshare"]["saved_bytes"] < v["repshare_naive"]["saved_bytes"] < v["unshared"]["saved_bytes"]
    assert set(mixed_op.summary(block_result)) >= {"time_repshare_vs_unshared", "saved_repshare_vs_unshared",
                                                   "peak_repshare_vs_unshared", "time_optimised_vs_naive"}
    assert "| RepShare, optimised (12) |" in mixed_op.format_comparison(block_result)


def test_scaling_reuses_the_base_point(block_result):
    points = mixed_op.scaling(TINY, batches=(2, 3), short_sides=(64, 72), batch_short_side=64,
                              size_batch=2, channels=32, base=block_result)
    assert points[0] is block_result
    assert [(p["setting"]["batch"], p["setting"]["image"][0]) for p in points] == [(2, 64), (3, 64), (2, 72)]
    assert all(p["variants"]["repshare"]["peak_bytes"] is None for p in points[1:])
    assert mixed_op.format_scaling(points).count("\n") == 4  # header, rule, 3 rows


@pytest.fixture(scope="module")
def step_result():
    return search_step.compare_steps(TINY, DEMO_SEARCH, DEMO_FCOS, batch_size=2, height=64, width=96,
                                     num_classes=8, extra_opts=["MODEL.FAD.SEARCH_SPACE", "subset1"])


@pytest.mark.slow
def test_search_step(step_result):
    v = step_result["variants"]
    assert set(v) == {"fcos", "search_repshare", "search_unshared"}
    assert set(v["fcos"]["parts"]) == {"step"}
    assert set(v["search_unshared"]["parts"]) == {"alpha", "weight"}
    for r in v.values():
        assert r["saved_bytes"] > 0 and r["median_s"] > 0 and r["peak_bytes"] is None
    assert step_result["setting"]["depth"] == 18
    assert set(search_step.summary(step_result)) == {
        "overhead_repshare", "overhead_unshared",
        "time_repshare_vs_unshared", "saved_repshare_vs_unshared"}


@pytest.fixture(scope="module")
def head_result():
    # 160×192: P7 is 2×2 (GroupNorm needs more than one value per group)
    return derived_head.compare_heads(TINY, DEMO_FAD, "genotypes/random_full_seed0.json", height=160,
                                      width=192, extra_opts=["MODEL.FAD.NUM_CELLS", "[1, 1]"])


@pytest.mark.slow
def test_derived_head(head_result):
    v = head_result["variants"]
    assert set(v) == {"stock", "fad"}
    for r in v.values():
        assert r["head"]["params"] > 0 and r["head"]["gflops"] > 0
        assert r["model"]["params"] > r["head"]["params"]
        assert set(r["time"]) == TIME_KEYS
    assert set(derived_head.summary(head_result)) == {"params_fad_vs_stock", "gflops_fad_vs_stock",
                                                      "latency_fad_vs_stock"}
    assert derived_head.find_genotype(("no/such.json", "genotypes/random_full_seed0.json")) \
        == "genotypes/random_full_seed0.json"


@pytest.mark.slow
def test_report(block_result, step_result, head_result):
    machine = {"cpu": "CPU", "cores": 2, "load_average_1min": 0.0, "device": "cpu", "gpu": None,
               "torch": torch.__version__, "detectron2": "0", "python": "3", "date": "today", "threads": 1}
    sections = {
        "mixed_op": {"result": block_result, "summary": mixed_op.summary(block_result)},
        "scaling": {"result": [block_result]},
        "search_step": {"result": step_result, "summary": search_step.summary(step_result)},
        "derived_head": {"result": head_result, "summary": derived_head.summary(head_result)},
    }
    text = report.build(machine, sections, "plan")
    for heading in ("## Targets", "## Transformation block", "## Scaling", "## Search step", "## Derived"):
        assert heading in text
    assert "CPU, 2 cores" in text and "today" in text


@pytest.fixture(scope="module")
def wallclock_result():
    return search_wallclock.compare_trainers(**search_wallclock.SMOKE, unsplit=True)


@pytest.mark.slow
def test_search_wallclock(wallclock_result):
    s, v = wallclock_result["setting"], wallclock_result["variants"]
    assert set(v) == {*search_wallclock.VARIANTS, search_wallclock.UNSPLIT}
    for r in v.values():  # SMOKE: 1 warm-up + 2 timed iterations
        assert len(r["warmup_s"]) == 1 and len(r["times_s"]) == 2 and r["median_s"] > 0
    assert s["threads"] == 1 and s["workers"] == {"plain": 0, "search": 0, search_wallclock.UNSPLIT: 0}
    assert set(search_wallclock.summary(wallclock_result)) == {"wallclock_search_vs_plain",
                                                               "wallclock_unsplit_vs_plain"}
    assert "| search iteration, head batch split off (`MODEL.FAD.CPU_BATCH_THREADS 1`) |" in \
        search_wallclock.format_comparison(wallclock_result)
    assert "| search iteration (`SearchTrainer`: α step + w step) |" in \
        search_wallclock.format_comparison(wallclock_result)
    (ratio,) = wallclock_result["round_ratios"]  # one round: its ratio is the medians' ratio
    assert ratio == pytest.approx(v["search"]["median_s"] / v["plain"]["median_s"])
    assert "per round" not in search_wallclock.format_comparison(wallclock_result)
    two_rounds = {**wallclock_result, "round_ratios": [2.5, 3.25]}
    assert "per round (the medians of one plain and the search run after it): 2.50×, 3.25×." in \
        search_wallclock.format_comparison(two_rounds)


@pytest.mark.slow
def test_search_profile():
    smoke = {k: v for k, v in search_wallclock.SMOKE.items() if k != "iterations"}
    result = search_profile.profile_iterations(**smoke)
    v = result["variants"]
    assert v["plain"]["steps"] == ["w"] and v["search"]["steps"] == ["alpha", "w"]
    for name, r in v.items():
        parts = {key.split("/")[2] for key in r["seconds"]}
        assert parts >= {"backbone", "fpn", "head_box", "head_cls", "head_rest", "losses"}, name
        assert 0 < sum(r["seconds"].values()) < r["wall_s"]
        assert set(r["outside_s"]) == set(search_profile.OUTSIDE_LABELS)
        assert r["outside_s"]["data"] > 0 and r["outside_s"]["optimizer"] > 0
    assert v["search"]["seconds"]["alpha/backward/head_box"] > 0
    assert "alpha/backward/backbone" not in v["search"]["seconds"]  # the α step's backward stops at the head
    table = search_profile.format_profile(result)
    rows = len(search_profile.PARTS) + len(search_profile.OUTSIDE_LABELS) + 1
    assert table.count("\n") == 3 + rows  # title, blank line, header, rule, then the rows (no final newline)


def test_run_all_rejects_unknown_sections():
    with pytest.raises(SystemExit):
        run_all.main(["--only", "nonsense"])


@pytest.mark.slow
def test_gpu_check_smoke(tmp_path):
    """``python -m benchmarks.gpu_check --smoke``: both sections at tiny sizes on the CPU, the JSON
    and the Markdown with one row per precision and the four targets."""
    from benchmarks import gpu_check
    import json

    report = gpu_check.main(["--smoke", "--device", "cpu", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "gpu_check.json").read_text())
    assert saved["summary"] == pytest.approx(report["summary"])
    rows = report["block"]["rows"]
    assert set(rows) == {f"{v}_{p}" for v in gpu_check.BLOCK_VARIANTS for p in gpu_check.PRECISIONS}
    assert all(r["time_s"] > 0 and r["peak_bytes"] > 0 for r in rows.values())
    # fp32 on the CPU: the 12 shared representations hold less than the 26 unshared ones
    assert rows["repshare_fp32"]["peak_bytes"] < rows["unshared_fp32"]["peak_bytes"]
    for precision in gpu_check.PRECISIONS:
        step = report["step"][precision]
        assert ("SOLVER.AMP.ENABLED", str(precision == "amp")) == tuple(step["setting"]["extra_opts"][-2:])
        assert all(v["median_s"] > 0 and v["peak_bytes"] is None for v in step["variants"].values())
        days = report["summary"][f"voc_search_gpu_days_{precision}"]
        assert days == pytest.approx(12_500 * step["variants"]["search"]["median_s"] / 86_400)
    table = (tmp_path / "gpu_check.md").read_text()
    assert table.count("| fp32 |") == 2 and table.count("| amp |") == 2
    assert all(f"| {name} | ≤ {bound} |" in table for name, bound in gpu_check.TARGETS.items())
