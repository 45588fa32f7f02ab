"""Cost tables of a FAD head's parts on this device, for the cost-aware search (``SEARCH.COST``).

    python -m fad_d2.cost --config-file configs/Search/search_fad_fcos_R_50_FPN_voc.yaml
    python -m fad_d2.cost --config-file CFG --size 800 1333 --device cpu --json

For the config's detector (FCOS or RetinaNet, with ``MODEL.FAD.*``) at one input size (default:
the config's test size), a table holds FLOPs (fvcore, one per multiply-add) and latency
(milliseconds, medians of :func:`fad_d2.timing.time_fns`: process CPU time on one CPU thread,
synchronised wall time on CUDA) of

* ``edges[c′][op]``: one derived edge (1×1 c → c′, transformation ``op``, 1×1 c′ → c) for every op
  of ``MODEL.FAD.SEARCH_SPACE`` and ``none`` (no edge: 0), at each c′ of ``MODEL.FAD.INNER_CHANNELS``;
* ``cell``: a cell's output conv (1×1, 3c → c, paper §3.1); ``predictors``: the stock predictors
  (which the FAD head keeps); ``stock_head``: the whole stock head,

each run on every FPN level of one image (batch 1, eval mode, no gradients).  The cost model that
adds them up is ``fad_d2/search/cost_penalty.py``'s.  Tables are cached as JSON in
``SEARCH.COST.TABLE_DIR`` (default ``~/.cache/fad_d2/cost_tables``), one file per key: device,
torch version, threads, FPN level sizes, c, c′, search space, norm and stock head.
"""
import argparse
import hashlib
import json
import logging
import os
from typing import Dict, List, Tuple

import torch
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger
from torch import nn

from .analyze import count_flops
from .modeling.heads import replaceable_head
from .engine.setup import load_cfg, one_line_errors
from .errors import ConfigError
from .space import NONE, DerivedEdge, conv_norm_act, get_search_space
from .timing import Settings, device_name, time_fns

FORMAT = "fad-cost-table/1"
DEFAULT_TABLE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "fad_d2", "cost_tables")


def _stock_head_and_levels(cfg, height: int, width: int) -> Tuple[nn.Module, List[Tuple[int, int]]]:
    """The config's stock head (on the CPU) and its FPN level sizes for an H×W image."""
    spec = replaceable_head(cfg)
    if spec.needs_mask_on:
        raise ConfigError(f"cost tables cover the FAD heads over FPN levels (FCOS, RetinaNet), not {spec.head_key}")
    stock_cfg = cfg.clone()
    stock_cfg.merge_from_list([spec.head_key, spec.stock_head, "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", ""])
    model = build_model(stock_cfg).eval()
    with torch.no_grad():
        images = model.preprocess_image([{"image": torch.zeros(3, height, width)}])
        features = model.backbone(images.tensor)
    return model.head, [tuple(features[f].shape[-2:]) for f in model.head_in_features]


def _predictors(head: nn.Module) -> List[nn.Module]:
    """The stock head's predictor convs (kept by the FAD heads)."""
    return [getattr(head, n) for n in ("cls_score", "bbox_pred", "ctrness") if hasattr(head, n)]


def _table_key(cfg, head: nn.Module, levels, height: int, width: int, settings: Settings) -> dict:
    """What a table depends on: its cache key."""
    device, fad = settings.device, cfg.MODEL.FAD
    return {
        "device": f"{device}: {device_name(device)}", "torch": torch.__version__,
        "threads": settings.threads if device == "cpu" else None, "image": [height, width],
        "levels": [list(s) for s in levels], "channels": cfg.MODEL.FPN.OUT_CHANNELS,
        "inner_channels": sorted(set(fad.INNER_CHANNELS)), "search_space": fad.SEARCH_SPACE,
        "norm": fad.NORM,
        "stock_head": f"{type(head).__name__}, {sum(p.numel() for p in head.parameters())} params",
    }


def _measure(cfg, head: nn.Module, levels, key: dict, settings: Settings) -> dict:
    """Measure the table of the module docstring (FLOPs, and latency under ``settings``)."""
    fad, channels = cfg.MODEL.FAD, cfg.MODEL.FPN.OUT_CHANNELS
    space = get_search_space(fad.SEARCH_SPACE)
    device = settings.torch_device
    g = torch.Generator().manual_seed(0)
    features = [torch.randn(1, channels, h, w, generator=g).to(device) for h, w in levels]
    concat = [torch.randn(1, fad.NUM_NODES * channels, h, w, generator=g).to(device) for h, w in levels]

    # name -> (modules, inputs per level); each module runs on every level's input
    parts: Dict[str, Tuple[List[nn.Module], List[torch.Tensor]]] = {
        f"edges/{c}/{op}": ([DerivedEdge(channels, c, op, fad.NORM)], features)
        for c in key["inner_channels"] for op in space.ops
    }
    parts["cell"] = ([conv_norm_act(fad.NUM_NODES * channels, channels, 1, norm=fad.NORM)], concat)
    parts["predictors"] = (_predictors(head), features)
    for modules, _ in parts.values():
        for m in modules:
            m.to(device).eval()
    head.to(device).eval()

    flops = {name: sum(count_flops(m, (x,)) for m in modules for x in inputs)
             for name, (modules, inputs) in parts.items()}
    flops["stock_head"] = count_flops(head, (features,))

    def run(modules, inputs):
        with torch.no_grad():
            for m in modules:
                for x in inputs:
                    m(x)

    fns = {name: (lambda p=part: run(*p)) for name, part in parts.items()}
    fns["stock_head"] = lambda: run([head], [features])
    times = time_fns(fns, settings)
    latency = {name: 1e3 * t["median_s"] for name, t in times.items()}

    def nest(values):
        edges = {str(c): {**{op: values[f"edges/{c}/{op}"] for op in space.ops}, NONE: 0.0}
                 for c in key["inner_channels"]}
        return {"edges": edges, "cell": values["cell"], "predictors": values["predictors"],
                "stock_head": values["stock_head"]}

    return {"format": FORMAT, "key": key, "flops": nest(flops), "latency": nest(latency),
            "timing": {"clock": times["stock_head"]["clock"], "warmup": settings.warmup,
                       "repeats": settings.repeats}}


def load_or_build_cost_table(cfg, height: int, width: int, settings: Settings, table_dir: str = "",
                             rebuild: bool = False) -> Tuple[dict, str]:
    """The cached table of this key in ``table_dir`` (built and written when absent or when
    ``rebuild``); returns ``(table, path)``."""
    head, levels = _stock_head_and_levels(cfg, height, width)
    key = _table_key(cfg, head, levels, height, width, settings)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = os.path.join(table_dir or DEFAULT_TABLE_DIR, f"{digest}.json")
    if os.path.isfile(path) and not rebuild:
        with open(path) as f:
            table = json.load(f)
        if table.get("format") == FORMAT and table.get("key") == key:
            return table, path
    table = _measure(cfg, head, levels, key, settings)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(table, f, indent=2)
    os.replace(tmp, path)  # atomic: concurrent workers never read half a file
    return table, path


def cost_table_from_config(cfg) -> Tuple[dict, str]:
    """The table the search uses (``SEARCH.COST``): at the config's test size, latency on
    ``SEARCH.COST.DEVICE`` (default ``MODEL.DEVICE``), one CPU thread; returns ``(table, path)``."""
    cost = cfg.SEARCH.COST
    settings = Settings(device=cost.DEVICE or cfg.MODEL.DEVICE, threads=1, warmup=1, repeats=cost.REPEATS)
    return load_or_build_cost_table(cfg, cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST, settings, cost.TABLE_DIR)


def format_table(table: dict) -> str:
    """A plain-text table: MFLOPs and latency (ms) per part, one column pair per c′."""
    key, flops, latency = table["key"], table["flops"], table["latency"]
    inner = list(flops["edges"])
    h, w = key["image"]
    lines = [f"cost table: {key['device']}, torch {key['torch']}, threads {key['threads']}, {h}x{w} "
             f"(levels {' '.join(f'{a}x{b}' for a, b in key['levels'])}), c = {key['channels']}, "
             f"space {key['search_space']}, latency: {table['timing']['clock']}, median of "
             f"{table['timing']['repeats']}",
             f"{'part':<24}" + "".join(f"{'MFLOPs @' + c:>14}{'ms @' + c:>10}" for c in inner)]
    for op in flops["edges"][inner[0]]:
        lines.append(f"{'edge ' + op:<24}" + "".join(
            f"{flops['edges'][c][op] / 1e6:>14.2f}{latency['edges'][c][op]:>10.2f}" for c in inner))
    for part in ("cell", "predictors", "stock_head"):
        lines.append(f"{part:<24}{flops[part] / 1e6:>14.2f}{latency[part]:>10.2f}")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--size", nargs=2, type=int, metavar=("H", "W"), help="image size (default: test size)")
    parser.add_argument("--device", help="where latency is measured (default: SEARCH.COST.DEVICE or MODEL.DEVICE)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1, as the search uses)")
    parser.add_argument("--repeats", type=int, help="measured calls per part (default SEARCH.COST.REPEATS)")
    parser.add_argument("--table-dir", help="cache folder (default SEARCH.COST.TABLE_DIR or ~/.cache/fad_d2)")
    parser.add_argument("--rebuild", action="store_true", help="measure again even when cached")
    parser.add_argument("--json", action="store_true", help="print the table's JSON")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    setup_logger(name="fad_d2")
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with one_line_errors():
        # the table prices every op of the space: a derived config's genotype plays no part (and
        # a search's genotype_final.json need not exist yet)
        spec = replaceable_head(load_cfg(args.config_file, args.opts, check=False))
        cfg = load_cfg(args.config_file, list(args.opts) + ["MODEL.WEIGHTS", "", spec.genotype_key, ""])
        height, width = args.size or (cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST)
        settings = Settings(device=args.device or cfg.SEARCH.COST.DEVICE or cfg.MODEL.DEVICE, threads=args.threads,
                            warmup=1, repeats=args.repeats or cfg.SEARCH.COST.REPEATS)
        table, path = load_or_build_cost_table(cfg, height, width, settings,
                                               args.table_dir or cfg.SEARCH.COST.TABLE_DIR, args.rebuild)
    print(json.dumps(table, indent=2) if args.json else f"{format_table(table)}\n(cached in {path})")


if __name__ == "__main__":
    main()
