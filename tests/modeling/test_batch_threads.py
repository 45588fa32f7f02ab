"""The FAD heads' batch split over CPU threads (``MODEL.FAD.CPU_BATCH_THREADS``): the outputs and
input gradients of one call on the whole batch, and its w and α gradients (summed over the
chunks), to float64 rounding; autocast and inference carried into the workers, each worker on its
share of the intra-op threads."""
import threading

import pytest
import torch
from detectron2.modeling import build_model

import fad_d2  # noqa: F401
from fad_d2.modeling.batch_threads import batch_thread_chunks, run_batch_threads, uses_batch_statistics
from fad_d2.space import architecture_parameters, get_search_space, sample_random_genotype, save_genotype
from tests.conftest import config_path
from tests.modeling.utils import cpu_cfg

CONFIGS = {"fcos": ("Demo/fcos_R_18_FPN_demo.yaml", "MODEL.FCOS.HEAD_NAME", "FADHead"),
           "retinanet": ("Demo/retinanet_R_18_FPN_demo.yaml", "MODEL.RETINANET.HEAD_NAME", "FADRetinaNetHead")}
LEVELS = ((12, 16), (6, 8), (3, 4), (2, 3), (2, 2))


def _head(detector, genotype=None, dtype=torch.float64, norm="GN"):
    cfg_file, key, name = CONFIGS[detector]
    opts = [key, name, "MODEL.FAD.INNER_CHANNELS", "[32, 32]", "MODEL.FAD.NUM_CELLS", "[2, 1]", "MODEL.FAD.NORM", norm]
    if genotype:
        opts += ["MODEL.FAD.GENOTYPE", genotype]
    torch.manual_seed(0)
    return build_model(cpu_cfg(config_path(cfg_file), *opts)).head.to(dtype)


def _features(batch=7, dtype=torch.float64, requires_grad=True, channels=64):
    g = torch.Generator().manual_seed(1)
    return [torch.randn(batch, channels, h, w, generator=g, dtype=dtype).requires_grad_(requires_grad)
            for h, w in LEVELS]


def _pass(head, features, chunks):
    """Outputs, input gradients and parameter gradients of one forward + backward."""
    head.batch_threads = chunks
    head.zero_grad(set_to_none=True)
    for f in features:
        f.grad = None
    outputs = [o for kind in head(features) for o in kind]
    g = torch.Generator().manual_seed(2)
    torch.autograd.backward(outputs, [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outputs])
    return ([o.detach() for o in outputs], [f.grad for f in features],
            {n: p.grad for n, p in head.named_parameters()})


def _assert_close(expected, actual):
    """Equal to float64 rounding, relative to the largest value of ``expected`` (the parameter
    gradients are sums in another order; a worker's one thread computes the cells in NCHW, one
    call on more threads in channels-last: ``fad_d2.space.cell.cell_layout``)."""
    scale = max(float(e.abs().max()) for e in expected)
    assert scale > 0
    for e, a in zip(expected, actual, strict=True):
        assert e.shape == a.shape and torch.allclose(a, e, rtol=1e-9, atol=1e-10 * scale)


def _assert_passes_equal(one, split):
    """Outputs, input gradients and parameter gradients (every one present) of two passes."""
    (outputs, input_grads, param_grads), (split_outputs, split_input_grads, split_param_grads) = one, split
    _assert_close(outputs, split_outputs)
    _assert_close(input_grads, split_input_grads)
    assert param_grads.keys() == split_param_grads.keys()
    assert all(g is not None for g in param_grads.values())
    _assert_close(list(param_grads.values()), list(split_param_grads.values()))


@pytest.mark.slow
@pytest.mark.parametrize("detector", sorted(CONFIGS))
@pytest.mark.parametrize("mode", ["search", "derived"])
def test_split_batch_equals_one_call(detector, mode, tmp_path):
    genotype = None
    if mode == "derived":
        genotype = str(tmp_path / "genotype.json")
        save_genotype(sample_random_genotype(get_search_space("full"), ("box", "cls"), seed=3), genotype)
    head = _head(detector, genotype)
    features = _features()
    outputs, input_grads, param_grads = _pass(head, features, 1)
    assert head.fad.box.is_search == (mode == "search")
    assert len(outputs) == (15 if detector == "fcos" else 10)
    for chunks in (2, 3):  # 7 images: chunks of 3 + 4, and 2 + 2 + 3
        _assert_passes_equal((outputs, input_grads, param_grads), _pass(head, features, chunks))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["search", "derived"])
def test_mask_head_split_over_rois_equals_one_call(mode, tmp_path):
    opts = ["MODEL.ROI_MASK_HEAD.NAME", "FADMaskHead", "MODEL.FAD_MASK.INNER_CHANNELS", "32"]
    if mode == "derived":
        genotype = str(tmp_path / "genotype.json")
        save_genotype(sample_random_genotype(get_search_space("full"), ("mask",), seed=4), genotype)
        opts += ["MODEL.FAD_MASK.GENOTYPE", genotype]
    torch.manual_seed(0)
    head = build_model(cpu_cfg(config_path("Demo/mask_rcnn_R_18_FPN_demo.yaml"), *opts)).roi_heads.mask_head
    head = head.to(torch.float64)
    g = torch.Generator().manual_seed(1)
    rois = torch.randn(5, head.deconv.in_channels, 14, 14, generator=g, dtype=torch.float64, requires_grad=True)

    def mask_pass(chunks):
        head.batch_threads = chunks
        head.zero_grad(set_to_none=True)
        rois.grad = None
        logits = head.layers(rois)
        logits.backward(torch.randn(logits.shape, generator=torch.Generator().manual_seed(2), dtype=logits.dtype))
        return [logits.detach()], [rois.grad], {n: p.grad for n, p in head.named_parameters()}

    one = mask_pass(1)
    assert one[0][0].shape[0] == 5 and one[0][0].shape[-2:] == (28, 28)
    _assert_passes_equal(one, mask_pass(2))  # 5 RoIs: chunks of 2 + 3


@pytest.mark.slow
def test_alpha_only_pass_gives_the_alpha_gradient():
    """The α step's pass: only α requires gradients, the features none."""
    head = _head("fcos")
    alphas = architecture_parameters(head)
    flags = {p: p.requires_grad for p in head.parameters()}
    features = _features(requires_grad=False)
    grads = {}
    try:
        for p in head.parameters():
            p.requires_grad_(any(p is a for a in alphas))
        for chunks in (1, 2):
            head.batch_threads = chunks
            for a in alphas:
                a.grad = None
            outputs = [o for kind in head(features) for o in kind]
            sum(o.sum() for o in outputs).backward(inputs=alphas)
            grads[chunks] = [a.grad.clone() for a in alphas]
            assert all(p.grad is None for p in head.parameters() if not any(p is a for a in alphas))
    finally:
        for p, flag in flags.items():
            p.requires_grad_(flag)
    assert all(g.abs().sum() > 0 for g in grads[1])
    _assert_close(grads[1], grads[2])


@pytest.mark.slow
@pytest.mark.parametrize("context", ["no_grad", "inference_mode"])
def test_split_without_autograd(context):
    head = _head("fcos")
    features = _features(requires_grad=False)
    with getattr(torch, context)():
        head.batch_threads = 1
        one = [o for kind in head(features) for o in kind]
        head.batch_threads = 2
        split = [o for kind in head(features) for o in kind]
    assert not any(b.requires_grad for b in split)
    _assert_close(one, split)
    assert all(b.is_inference() == (context == "inference_mode") for b in split)


@pytest.mark.slow
def test_autocast_reaches_the_workers():
    head = _head("fcos", dtype=torch.float32)
    features = _features(dtype=torch.float32)
    outputs = {}
    for chunks in (1, 2):
        head.batch_threads = chunks
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs[chunks] = [o for kind in head(features) for o in kind]
    assert all(o.dtype == torch.bfloat16 for o in outputs[1] + outputs[2])
    for a, b in zip(outputs[1], outputs[2]):
        assert torch.allclose(a.float(), b.float(), rtol=1e-2, atol=1e-2)
    sum(o.float().sum() for o in outputs[2]).backward()
    assert all(f.grad is not None and torch.isfinite(f.grad).all() for f in features)


def test_workers_share_the_intra_op_threads():
    before = torch.get_num_threads()
    seen = []
    together = threading.Barrier(2, timeout=30)  # both chunks at once: on two threads

    def fn(xs):
        seen.append((threading.get_ident(), torch.get_num_threads(), xs[0].shape[0]))
        together.wait()
        return [x * 2 for x in xs]

    try:
        torch.set_num_threads(4)
        x = torch.arange(5.0).reshape(5, 1).requires_grad_()
        (y,) = run_batch_threads(fn, [x], torch.nn.Module(), 2)
        assert torch.get_num_threads() == 4, "the calling thread keeps its thread count"
        y.sum().backward()
    finally:
        torch.set_num_threads(before)
    assert torch.equal(y, 2 * x.detach()) and torch.equal(x.grad, torch.full((5, 1), 2.0))
    assert sorted(n for _, _, n in seen) == [2, 3]  # 5 images: chunks of 2 and 3
    assert {t for _, t, _ in seen} == {2} and len({i for i, _, _ in seen}) == 2
    assert threading.get_ident() not in {i for i, _, _ in seen}


def test_chunk_count_and_errors():
    x, module = torch.zeros(7, 1), torch.nn.Module()
    threads = torch.get_num_threads()
    assert batch_thread_chunks(0, x, module) == min(threads, 3)
    assert [batch_thread_chunks(k, x, module) for k in (1, 2, 3, 8)] == [1, 2, 3, 3], "two images or more per chunk"
    assert [batch_thread_chunks(8, torch.zeros(n, 1), module) for n in (1, 2, 3, 4)] == [1, 1, 1, 2]
    assert batch_thread_chunks(2, torch.zeros(4, 1, device="meta"), module) == 1, "only on the CPU"
    with pytest.raises(ValueError, match="an integer >= 0"):
        batch_thread_chunks(-1, x, module)
    with pytest.raises(ValueError, match=r"batch sizes \[7, 2\]"):
        run_batch_threads(lambda xs: xs, [x, torch.zeros(2, 1)], torch.nn.Module(), 2)
    x.requires_grad_()
    (y,) = run_batch_threads(lambda xs: [xs[0] * 3], [x], torch.nn.Module(), 2)
    y.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="a second backward"):
        y.sum().backward()


@pytest.mark.slow
def test_batchnorm_head_is_split_only_without_batch_statistics():
    """With ``MODEL.FAD.NORM "BN"`` an image's outputs depend on the whole batch in training
    (BatchNorm's batch statistics; two workers would also race on its running statistics):
    automatic means no split there, and an explicit split is refused.  In eval mode BatchNorm
    uses its running statistics, the images are independent again and the split applies."""
    head = _head("fcos", norm="BN")
    features = _features(requires_grad=False)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert uses_batch_statistics(head) and batch_thread_chunks(0, features[0], head) == 1
        head.batch_threads = 0
        with torch.no_grad():
            whole = [o for kind in head(features) for o in kind]
            first = [o for kind in head([f[:3] for f in features]) for o in kind]
        assert not torch.allclose(whole[0][:3], first[0]), "BatchNorm couples the images: a split would differ"
        head.batch_threads = 2
        with pytest.raises(ValueError, match="FADHead normalises by batch statistics"):
            head(features)
        head.eval()
        assert not uses_batch_statistics(head) and batch_thread_chunks(0, features[0], head) == 2
        with torch.no_grad():
            head.batch_threads = 1
            one = [o for kind in head(features) for o in kind]
            head.batch_threads = 2
            split = [o for kind in head(features) for o in kind]
        _assert_close(one, split)
    finally:
        torch.set_num_threads(before)
