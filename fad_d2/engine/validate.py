"""Check every ``MODEL.FAD.*``, ``MODEL.FAD_MASK.*``, ``MODEL_EMA.*``, ``SEARCH.*`` and ``SEARCH.COST.*``
value when a config is loaded.

Each rule names the key, the value and what is allowed, so that a wrong value ends the program
in one line before anything is built (and not 2,500 iterations later, or never: ``NUM_CELLS
[0, 0]`` would train a head that does nothing).  Head names are checked against the
meta-architecture that reads them, and the configured genotype files are loaded and checked
against the head (their groups, search space and node count).  Checking changes nothing in the
config.
"""
import numbers

from ..errors import ConfigError
from ..modeling.fad_module import LAYOUTS
from ..modeling.heads import check_head_names, configured_genotypes
from ..space import CELL_KINDS, SEARCH_SPACES
from ..space.transformations import NORMS, gn_groups


SELECTIONS = ("alpha", "perturbation")  # SEARCH.SELECTION: fad_d2.space.derive, fad_d2.search.perturbation


def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _require(ok, key, value, allowed):
    if not ok:
        raise ConfigError(f"{key}: {value!r} is not allowed: {allowed}")


def _ints(value, count, minimum):
    return (isinstance(value, (list, tuple)) and len(value) == count
            and all(_is_int(v) and v >= minimum for v in value))


def _check_cells_node(node, key, num_groups):
    """The keys shared by ``MODEL.FAD`` (two groups: lists) and ``MODEL.FAD_MASK`` (one: ints)."""
    _require(node.SEARCH_SPACE in SEARCH_SPACES, f"{key}.SEARCH_SPACE", node.SEARCH_SPACE,
             f"one of {list(SEARCH_SPACES)}")
    _require(node.CELL in CELL_KINDS, f"{key}.CELL", node.CELL, f"one of {list(CELL_KINDS)}")
    groups = gn_groups(node.NORM) if isinstance(node.NORM, str) else None
    _require(node.NORM in NORMS or groups is not None, f"{key}.NORM", node.NORM,
             f"one of {list(NORMS)} or 'GN<groups>' (e.g. 'GN16': GroupNorm of 16 groups)")
    _require(_is_int(node.NUM_NODES) and node.NUM_NODES >= 1, f"{key}.NUM_NODES", node.NUM_NODES,
             "an integer >= 1 (intermediate nodes per cell; the paper: 3)")
    if num_groups == 1:
        channels, cells = [node.INNER_CHANNELS], [node.NUM_CELLS]
        what = "an integer"
    else:
        channels, cells = node.INNER_CHANNELS, node.NUM_CELLS
        what = f"{num_groups} integers (box, cls), each"
    shown = (lambda v: v) if num_groups > 1 else (lambda v: v[0])
    _require(_ints(channels, num_groups, 1), f"{key}.INNER_CHANNELS", shown(channels),
             f"{what} >= 1 (c′ inside the transformation blocks)")
    if groups is not None:
        _require(all(c % groups == 0 for c in channels), f"{key}.INNER_CHANNELS", shown(channels),
                 f"with {key}.NORM {node.NORM!r} (GroupNorm of {groups} groups) a multiple of {groups}")
    _require(_ints(cells, num_groups, 1), f"{key}.NUM_CELLS", shown(cells),
             f"{what} >= 1 (M, cells per group)")
    _require(_is_int(node.CPU_BATCH_THREADS) and node.CPU_BATCH_THREADS >= 0, f"{key}.CPU_BATCH_THREADS",
             node.CPU_BATCH_THREADS, "an integer >= 0 (0: one chunk per CPU thread; 1: no split)")
    _require(node.NORM != "BN" or node.CPU_BATCH_THREADS <= 1, f"{key}.CPU_BATCH_THREADS", node.CPU_BATCH_THREADS,
             f"0 or 1 with {key}.NORM 'BN' (BatchNorm normalises over the whole batch, which a split would cut)")


def _check_search(s):
    _require(_is_number(s.SPLIT_RATIO) and 0 < s.SPLIT_RATIO < 1, "SEARCH.SPLIT_RATIO", s.SPLIT_RATIO,
             "a number in (0, 1) (the w-half's fraction of the images)")
    _require(_is_int(s.SPLIT_SEED) and s.SPLIT_SEED >= 0, "SEARCH.SPLIT_SEED", s.SPLIT_SEED,
             "an integer >= 0")
    _require(_is_number(s.ALPHA_LR) and s.ALPHA_LR >= 0, "SEARCH.ALPHA_LR", s.ALPHA_LR, "a number >= 0")
    betas = s.ALPHA_BETAS
    _require(isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_is_number(b) and 0 <= b < 1 for b in betas),
             "SEARCH.ALPHA_BETAS", betas, "two numbers in [0, 1) (Adam's β1, β2; the paper: (0.5, 0.999))")
    _require(_is_number(s.ALPHA_WEIGHT_DECAY) and s.ALPHA_WEIGHT_DECAY >= 0, "SEARCH.ALPHA_WEIGHT_DECAY",
             s.ALPHA_WEIGHT_DECAY, "a number >= 0")
    _require(_is_number(s.GRAD_CLIP_NORM) and s.GRAD_CLIP_NORM >= 0, "SEARCH.GRAD_CLIP_NORM", s.GRAD_CLIP_NORM,
             "a number >= 0 (0 turns clipping off; the paper: 20)")
    _require(_is_int(s.DERIVE_PERIOD) and s.DERIVE_PERIOD >= 1, "SEARCH.DERIVE_PERIOD", s.DERIVE_PERIOD,
             "an integer >= 1 (iterations between derivations; the paper: 2500)")
    _require(_is_int(s.ALPHA_WARMUP_ITERS) and s.ALPHA_WARMUP_ITERS >= 0, "SEARCH.ALPHA_WARMUP_ITERS",
             s.ALPHA_WARMUP_ITERS, "an integer >= 0 (w-only iterations before the first α step)")
    _require(s.SELECTION in SELECTIONS, "SEARCH.SELECTION", s.SELECTION, f"one of {list(SELECTIONS)}")
    _require(_is_int(s.SELECTION_BATCHES) and s.SELECTION_BATCHES >= 1, "SEARCH.SELECTION_BATCHES",
             s.SELECTION_BATCHES, "an integer >= 1 (α-half batches the perturbation rule measures the loss on)")
    _require(_is_int(s.STABLE_PERIODS) and s.STABLE_PERIODS >= 1, "SEARCH.STABLE_PERIODS", s.STABLE_PERIODS,
             "an integer >= 1 (derivation periods without change that end the search; the paper: 1)")


COST_METRICS = ("flops", "latency")  # SEARCH.COST.METRIC (latency in milliseconds)
COST_DEVICES = ("", "cpu", "cuda")  # SEARCH.COST.DEVICE ("": MODEL.DEVICE)


def _check_search_cost(c):
    _require(_is_number(c.WEIGHT) and c.WEIGHT >= 0, "SEARCH.COST.WEIGHT", c.WEIGHT,
             "a number >= 0 (0 turns the cost penalty off: the paper's search)")
    _require(c.METRIC in COST_METRICS, "SEARCH.COST.METRIC", c.METRIC, f"one of {list(COST_METRICS)}")
    _require(_is_number(c.TARGET) and c.TARGET > 0, "SEARCH.COST.TARGET", c.TARGET,
             "a number > 0 (the budget as a fraction of the stock head's cost)")
    _require(c.DEVICE in COST_DEVICES, "SEARCH.COST.DEVICE", c.DEVICE,
             f"one of {list(COST_DEVICES)} ('': MODEL.DEVICE)")
    _require(_is_int(c.REPEATS) and c.REPEATS >= 1, "SEARCH.COST.REPEATS", c.REPEATS,
             "an integer >= 1 (measured calls per part of the cost table)")
    _require(isinstance(c.TABLE_DIR, str), "SEARCH.COST.TABLE_DIR", c.TABLE_DIR,
             "a folder path ('': ~/.cache/fad_d2/cost_tables)")


def check_fad_config(cfg):
    """Raise :class:`ConfigError` (or the genotype file's own error) for the first unusable value
    of ``MODEL.FAD.*``, ``MODEL.FAD_MASK.*``, ``MODEL_EMA.*``, ``SEARCH.*``, ``SEARCH.COST.*``, the
    head names or the configured genotype files; ``cfg`` is left as it was."""
    fad = cfg.MODEL.FAD
    _check_cells_node(fad, "MODEL.FAD", 2)
    _require(fad.LAYOUT in LAYOUTS, "MODEL.FAD.LAYOUT", fad.LAYOUT, f"one of {list(LAYOUTS)}")
    _check_cells_node(cfg.MODEL.FAD_MASK, "MODEL.FAD_MASK", 1)
    _check_search(cfg.SEARCH)
    _check_search_cost(cfg.SEARCH.COST)
    _require(cfg.SEARCH.COST.WEIGHT == 0 or fad.CELL == "paper", "SEARCH.COST.WEIGHT", cfg.SEARCH.COST.WEIGHT,
             "0 with MODEL.FAD.CELL 'released' (the cost model knows the paper cell only)")
    ema = cfg.MODEL_EMA
    _require(isinstance(ema.ENABLED, bool), "MODEL_EMA.ENABLED", ema.ENABLED, "True or False")
    _require(_is_number(ema.DECAY) and 0 < ema.DECAY < 1, "MODEL_EMA.DECAY", ema.DECAY,
             "a number in (0, 1) (the weight of the old average per iteration)")
    check_head_names(cfg)
    configured_genotypes(cfg)  # loads and checks every configured genotype file
