"""Every YAML in configs/ loads and builds its model on the CPU; bad configs fail clearly."""
import glob
import os

import pytest
from detectron2.modeling import build_model

import fad_d2  # noqa: F401
from fad_d2.engine.setup import ConfigError, load_cfg
from fad_d2.modeling.heads import FAD_HEADS, cfg_value
from fad_d2.space import architecture_parameters, get_search_space, sample_random_genotype, save_genotype
from tests.conftest import CONFIGS
from tests.modeling.utils import cpu_cfg

ALL_CONFIGS = sorted(
    os.path.relpath(p, CONFIGS) for p in glob.glob(os.path.join(CONFIGS, "**", "*.yaml"), recursive=True)
)


def _cfg_with_search_output_genotypes(relpath, tmp_path):
    """Configs that train a searched genotype name the file their search config writes under
    ``output/``; it does not exist before that search ran.  Check that loading the config fails
    clearly without it, then load it with a random genotype of the same groups."""
    path = os.path.join(CONFIGS, relpath)
    raw = cpu_cfg(path, check=False)
    opts = []
    for spec in FAD_HEADS:
        node = cfg_value(raw, spec.node)
        if node.GENOTYPE.startswith("output/") and not os.path.exists(node.GENOTYPE):
            with pytest.raises(FileNotFoundError, match=node.GENOTYPE):
                cpu_cfg(path)
            substitute = tmp_path / f"{spec.name}.json"
            save_genotype(sample_random_genotype(get_search_space(node.SEARCH_SPACE), spec.groups), str(substitute))
            opts += [spec.genotype_key, str(substitute)]
    return cpu_cfg(path, *opts)


@pytest.mark.parametrize("relpath", ALL_CONFIGS)
def test_config_builds(relpath, tmp_path):
    cfg = _cfg_with_search_output_genotypes(relpath, tmp_path)
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) > 0
    if relpath.startswith(("Search", "Demo/search")):  # search configs build a supernet with α
        assert architecture_parameters(model)


def test_config_key_typo_names_the_key(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text('_BASE_: "%s"\nMODEL:\n  FCOS:\n    NUM_CLASSE: 3\n' % os.path.join(CONFIGS, "Base-FCOS.yaml"))
    with pytest.raises(ConfigError) as e:
        load_cfg(str(bad))
    msg = str(e.value)
    assert "\n" not in msg and str(bad) in msg and "MODEL.FCOS.NUM_CLASSE" in msg


def test_override_typo_names_the_key():
    with pytest.raises(ConfigError, match="SOLVER.BASE_LRR"):
        load_cfg(os.path.join(CONFIGS, "Base-FCOS.yaml"), ["SOLVER.BASE_LRR", "0.1"])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        load_cfg("nope.yaml")


def test_unknown_head_name_lists_registry():
    with pytest.raises(ConfigError, match=r"MODEL.FCOS.HEAD_NAME: 'NoSuchHead' is not registered .*'FADHead'"):
        cpu_cfg(os.path.join(CONFIGS, "Base-FCOS.yaml"), "MODEL.FCOS.HEAD_NAME", "NoSuchHead")
