"""FAD heads (FCOS, RetinaNet, Mask R-CNN) in search and derived modes, from YAML."""
import pytest
import torch
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

import fad_d2  # noqa: F401
from fad_d2.modeling import FADModule
from fad_d2.space import GenotypeError, architecture_parameters, get_search_space, sample_random_genotype, save_genotype
from tests.conftest import config_path
from tests.modeling.utils import cpu_cfg, detection_batch

DETECTORS = {
    # name: (demo config, head key, FAD block, genotype groups, number of classes)
    "fcos": ("Demo/fcos_R_18_FPN_demo.yaml", "MODEL.FCOS.HEAD_NAME", "FADHead", "MODEL.FAD", ("box", "cls")),
    "retinanet": ("Demo/retinanet_R_18_FPN_demo.yaml", "MODEL.RETINANET.HEAD_NAME", "FADRetinaNetHead",
                  "MODEL.FAD", ("box", "cls")),
    "mask": ("Demo/mask_rcnn_R_18_FPN_demo.yaml", "MODEL.ROI_MASK_HEAD.NAME", "FADMaskHead", "MODEL.FAD_MASK",
             ("mask",)),
}


def _genotype_file(tmp_path, groups, space="full", seed=0):
    path = tmp_path / f"genotype_{'_'.join(groups)}_{space}.json"
    save_genotype(sample_random_genotype(get_search_space(space), groups, seed=seed), str(path))
    return str(path)


def _fad_cfg(detector, *opts):
    cfg_file, key, head, block, _ = DETECTORS[detector]
    inner = "32" if block == "MODEL.FAD_MASK" else "[32, 32]"
    cells = "2" if block == "MODEL.FAD_MASK" else "[2, 2]"
    return cpu_cfg(config_path(cfg_file), key, head, f"{block}.INNER_CHANNELS", inner,
                   f"{block}.NUM_CELLS", cells, *opts)


@pytest.mark.slow
@pytest.mark.parametrize("detector", sorted(DETECTORS))
@pytest.mark.parametrize("mode", ["search", "derived"])
def test_fad_detector_trains_and_infers(detector, mode, tmp_path):
    block, groups = DETECTORS[detector][3], DETECTORS[detector][4]
    opts = [f"{block}.GENOTYPE", _genotype_file(tmp_path, groups)] if mode == "derived" else []
    model = build_model(_fad_cfg(detector, *opts))
    alphas = architecture_parameters(model)
    assert len(alphas) == (len(groups) if mode == "search" else 0)
    batch = detection_batch(height=96, width=128, num_classes=8, masks=detector == "mask")
    model.train()
    with EventStorage():
        losses = model(batch)
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    for a in alphas:
        assert a.grad is not None and a.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        out = model(batch)
    assert len(out) == len(batch) and all("instances" in o for o in out)
    if detector == "mask" and len(out[0]["instances"]):
        assert out[0]["instances"].pred_masks.shape[-2:] == (96, 128)


def test_derived_head_has_M_cells_and_search_head_one(tmp_path):
    search = build_model(_fad_cfg("fcos"))
    derived = build_model(_fad_cfg("fcos", "MODEL.FAD.GENOTYPE", _genotype_file(tmp_path, ("box", "cls")),
                                   "MODEL.FAD.NUM_CELLS", "[2, 3]", "MODEL.FAD.INNER_CHANNELS", "[32, 64]"))
    assert [len(g.cells) for g in (search.head.fad.box, search.head.fad.cls)] == [1, 1]
    assert [len(g.cells) for g in (derived.head.fad.box, derived.head.fad.cls)] == [2, 3]


def test_prior_probability_bias():
    head = build_model(_fad_cfg("fcos", "MODEL.FCOS.PRIOR_PROB", "0.01")).head
    assert torch.allclose(torch.sigmoid(head.cls_score.bias), torch.full_like(head.cls_score.bias, 0.01))


@pytest.mark.slow
@pytest.mark.parametrize("head_name", ["FCOSHead", "FADHead"])
def test_box_regression_bias_init_decides_whether_giou_trains_the_box_conv(head_name):
    """Detectron2's FCOS passes the box deltas through a ReLU: started at or below 0 (the trap a
    seed fell into with Detectron2's zero init) the box conv gets no GIoU gradient at all; from
    MODEL.FCOS.BBOX_REG_BIAS_INIT 1 (one stride) every channel gets one."""
    def box_bias_grad(bias_init):
        torch.manual_seed(0)
        opts = ["MODEL.FCOS.HEAD_NAME", head_name, "MODEL.FCOS.BBOX_REG_BIAS_INIT", str(bias_init)]
        model = build_model(_fad_cfg("fcos", *opts) if head_name == "FADHead" else
                            cpu_cfg(config_path(DETECTORS["fcos"][0]), *opts))
        assert torch.equal(model.head.bbox_pred.bias.detach(), torch.full((4,), float(bias_init)))
        model.train()
        with EventStorage():
            losses = model(detection_batch(num_classes=8))
        losses["loss_fcos_loc"].backward()
        return model.head.bbox_pred.bias.grad

    assert torch.count_nonzero(box_bias_grad(-1.0)) == 0
    assert torch.count_nonzero(box_bias_grad(1.0)) == 4


def _groups_feed(module, x):
    """(box, cls) outputs and their gradients w.r.t. each group's parameters."""
    box, cls = module(x)
    depends = {}
    for out_name, out in (("box", box), ("cls", cls)):
        for g_name, group in (("box", module.box), ("cls", module.cls)):
            grads = torch.autograd.grad(out.sum(), list(group.parameters()), retain_graph=True, allow_unused=True)
            depends[(out_name, g_name)] = any(g is not None and g.abs().sum() > 0 for g in grads)
    return depends


@pytest.mark.parametrize("layout,box_first,expected", [
    ("sequential", True, {("box", "cls"): False, ("cls", "box"): True}),   # cls after box (paper)
    ("sequential", False, {("box", "cls"): True, ("cls", "box"): False}),  # reversed (appendix)
    ("parallel", True, {("box", "cls"): False, ("cls", "box"): False}),    # two towers
])
def test_module_layouts(layout, box_first, expected):
    torch.manual_seed(0)
    module = FADModule(channels=32, inner_channels=[32, 32], num_cells=[1, 1], space=get_search_space("subset1"),
                       layout=layout, box_first=box_first)
    depends = _groups_feed(module, torch.randn(2, 32, 9, 9))
    assert depends[("box", "box")] and depends[("cls", "cls")]
    for pair, value in expected.items():
        assert depends[pair] == value, pair


def test_shortcut_adds_module_input_to_group2_input():
    torch.manual_seed(0)
    module = FADModule(channels=32, inner_channels=[32, 32], num_cells=[1, 1], space=get_search_space("subset1"))
    x = torch.randn(1, 32, 9, 9)
    seen = {}
    module.cls.cells[0].register_forward_pre_hook(lambda m, inp: seen.update(cls_in=inp[0]))
    box, _ = module(x)
    assert torch.allclose(seen["cls_in"], box + x)  # the paper cell sums the shortcut into its input


def test_mask_genotype_given_to_fcos_is_an_error(tmp_path):
    path = _genotype_file(tmp_path, ("mask",))
    with pytest.raises(ValueError, match=r"MODEL.FAD.GENOTYPE .*groups \['mask'\].*\['box', 'cls'\]"):
        build_model(_fad_cfg("fcos", "MODEL.FAD.GENOTYPE", path))


def test_detection_genotype_given_to_mask_head_is_an_error(tmp_path):
    path = _genotype_file(tmp_path, ("box", "cls"))
    with pytest.raises(ValueError, match=r"MODEL.FAD_MASK.GENOTYPE .*\['mask'\]"):
        build_model(_fad_cfg("mask", "MODEL.FAD_MASK.GENOTYPE", path))


def test_channels_not_divisible_by_gn_groups():
    with pytest.raises(ValueError, match=r"48.*32|32.*48"):
        build_model(_fad_cfg("fcos", "MODEL.FAD.INNER_CHANNELS", "[48, 48]"))


def test_genotype_op_outside_configured_space(tmp_path):
    path = _genotype_file(tmp_path, ("box", "cls"), space="sep_only")
    with pytest.raises(ValueError, match=r"sep_.*std_only"):
        build_model(_fad_cfg("fcos", "MODEL.FAD.GENOTYPE", path, "MODEL.FAD.SEARCH_SPACE", "std_only"))


def test_missing_genotype_file():
    with pytest.raises(FileNotFoundError, match="nope.json"):
        build_model(_fad_cfg("fcos", "MODEL.FAD.GENOTYPE", "nope.json"))


def test_malformed_genotype_file_names_json_path(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "fad-genotype/1", "search_space": "full", "groups": [{"name": "box", '
                    '"nodes": [[{"op": "std_11x11", "input": 0}]]}]}')
    with pytest.raises(GenotypeError, match=r"bad.json.*\$\.groups\[0\]"):
        build_model(_fad_cfg("fcos", "MODEL.FAD.GENOTYPE", str(path)))
