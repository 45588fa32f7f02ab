"""The released code's two-input cell in a search and in a trained head; the genotype's cell kind
is checked against the config."""
import json

import pytest
from detectron2.modeling import build_model

import fad_d2  # noqa: F401
from fad_d2.search import SearchTrainer
from fad_d2.space import GenotypeError, architecture_parameters, load_genotype, sample_random_genotype, save_genotype
from tests.conftest import REPO, config_path
from tests.modeling.utils import cpu_cfg, tiny_opts
from tests.search.utils import tiny_search_cfg

PAPER_GENOTYPE = f"{REPO}/genotypes/fad_fcos_paper.json"
RELEASED_OPTS = ("MODEL.FAD.CELL", "released", "MODEL.FAD.SEARCH_SPACE", "no_dil3", "MODEL.FAD.DILATED_BIAS", "True")


@pytest.mark.slow
def test_search_with_the_released_cell_derives_released_genotypes(tmp_path):
    # subset1 (4 ops + none) keeps the supernet tiny; the released space is no_dil3 (11 choices)
    trainer = SearchTrainer(tiny_search_cfg(tmp_path, *RELEASED_OPTS, "MODEL.FAD.SEARCH_SPACE", "subset1",
                                            "SOLVER.MAX_ITER", "2"))
    assert [tuple(a.shape) for a in architecture_parameters(trainer.model)] == [(9, 5), (9, 5)]
    trainer.train()
    final = load_genotype(str(tmp_path / "genotype_final.json"))
    assert final.cell == "released" and final.search_space == "subset1"
    assert json.loads((tmp_path / "genotype_final.json").read_text())["cell"] == "released"
    assert [len(node) for _, cell in final.groups for node in cell.nodes] == [2] * 6
    assert (tmp_path / "genotype_final.png").stat().st_size > 10_000
    # the derived genotype trains: the demo FAD-FCOS config builds it with the released cell
    cfg = cpu_cfg(config_path("Demo/fad_fcos_R_18_FPN_demo.yaml"), *tiny_opts(), *RELEASED_OPTS,
                  "MODEL.FAD.SEARCH_SPACE", "subset1", "MODEL.FAD.INNER_CHANNELS", "[32, 32]", "MODEL.FAD.GENOTYPE", str(tmp_path / "genotype_final.json"))
    assert not architecture_parameters(build_model(cfg))


def test_the_demo_config_of_the_paper_architecture_builds():
    cfg = cpu_cfg(config_path("Demo/fad_fcos_R_18_FPN_demo_paper.yaml"))
    head = build_model(cfg).head
    assert (head.fad.box.kind.name, len(head.fad.box.cells)) == ("released", 1)
    assert head.fad.cls.genotype == load_genotype(PAPER_GENOTYPE).group("cls")


def test_cell_kind_mismatch_is_one_line_naming_file_and_kinds(tmp_path):
    demo = config_path("Demo/fad_fcos_R_18_FPN_demo.yaml")
    with pytest.raises(GenotypeError) as info:
        cpu_cfg(demo, "MODEL.FAD.GENOTYPE", PAPER_GENOTYPE, "MODEL.FAD.SEARCH_SPACE", "no_dil3")
    message = str(info.value)
    assert "\n" not in message and PAPER_GENOTYPE in message
    assert "the genotype is for the 'released' cell but MODEL.FAD.CELL is 'paper'; set it to 'released'" in message
    paper = tmp_path / "paper.json"
    save_genotype(sample_random_genotype("full", ("box", "cls")), str(paper))
    with pytest.raises(GenotypeError, match=rf"paper.json\): \$\.cell: the genotype is for the 'paper' cell but "
                                            rf"MODEL.FAD.CELL is 'released'; set it to 'paper'"):
        cpu_cfg(demo, "MODEL.FAD.GENOTYPE", str(paper), "MODEL.FAD.CELL", "released")
