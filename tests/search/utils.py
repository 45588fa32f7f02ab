"""A tiny search config: demo search on the small embedded dataset, 64-96 px inputs, subset1, c′ = 32,
with the paper's search rules (α steps from the first iteration, a derivation equal to the previous
one is stable, the final genotype from α); tests of the demo's own rules set them."""
from fad_d2.engine.setup import load_cfg
from tests.conftest import config_path
from tests.modeling.utils import tiny_opts

SEARCH_CONFIG = config_path("Demo/search_fad_fcos_R_18_FPN_demo.yaml")


def tiny_search_opts(output_dir, *opts):
    """Overrides for a few-iteration CPU search writing to ``output_dir``."""
    return ["MODEL.DEVICE", "cpu", *tiny_opts(), "OUTPUT_DIR", str(output_dir), "MODEL.FAD.SEARCH_SPACE", "subset1",
            "MODEL.FAD.INNER_CHANNELS", "[32, 32]", "SOLVER.MAX_ITER", "4", "SOLVER.CHECKPOINT_PERIOD", "1000", "SEARCH.DERIVE_PERIOD", "2",
            "SEARCH.ALPHA_WARMUP_ITERS", "0", "SEARCH.STABLE_PERIODS", "1", "SEARCH.SELECTION", "alpha", *opts]


def tiny_search_cfg(output_dir, *opts, config=SEARCH_CONFIG):
    return load_cfg(config, tiny_search_opts(output_dir, *opts))
