"""Export a detector (FAD-FCOS, FAD-RetinaNet, or the stock FCOS / RetinaNet) to TorchScript and
ONNX, check the exported outputs against PyTorch's on images of the config's first test dataset
(``DATASETS.TEST[0]``, or ``--dataset``; ``DATASETS.COCO`` names your own), and print the latency of
each.

    python -m fad_d2.export --config-file configs/Demo/fad_fcos_R_18_FPN_demo.yaml \\
        --output output/export/fad_fcos MODEL.FAD.GENOTYPE genotypes/fad_fcos_demo.json \\
        MODEL.WEIGHTS output/demo/fad_fcos/model_final.pth

The whole detector in eval mode (preprocessing, backbone, head, decoding and NMS) is traced by
Detectron2's ``TracingAdapter`` (one image ``Tensor[3, H, W]``, in the config's ``INPUT.FORMAT``,
resized as at test time → its ``Instances`` flattened: boxes Tensor[R, 4], scores Tensor[R],
classes Tensor[R], image size), then saved as ``model.ts`` (``torch.jit.trace``) and ``model.onnx``
(the TorchScript-based ONNX exporter, opset 17, H and W dynamic).  Each export runs on
``--num-images`` images of ``DATASETS.TEST[0]`` (other sizes than the traced one) and must give
PyTorch's outputs within tolerance; ONNX runs in ONNX Runtime on the CPU.  Latency: medians of
:func:`fad_d2.timing.time_fns` on the first image, interleaved, CPU (``export_report.json``).
"""
import argparse
import contextlib
import json
import logging
import os
import sys
from typing import Callable, Dict, List, Sequence

import numpy as np
import onnxruntime
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.data import DatasetCatalog
from detectron2.data import transforms as T
from detectron2.data.detection_utils import read_image
from detectron2.export import TracingAdapter
from detectron2.modeling import build_model
from detectron2.utils.logger import setup_logger

from .data import check_dataset_available, check_images_exist
from .engine.setup import load_cfg, one_line_errors
from .errors import ConfigError
from .space.cell import input_layout
from .timing import Settings, time_fns

FORMATS = ("torchscript", "onnx")
OPSET = 17
RTOL, ATOL = 1e-3, 1e-3  # boxes are in pixels, scores in [0, 1]


def build_export_model(cfg) -> torch.nn.Module:
    """The config's detector on the CPU in eval mode, with ``MODEL.WEIGHTS`` loaded (if any)."""
    cfg = cfg.clone()
    cfg.merge_from_list(["MODEL.DEVICE", "cpu"])
    model = build_model(cfg).eval()
    if cfg.MODEL.WEIGHTS:
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return model


def sample_images(cfg, num_images: int, dataset: str = "") -> List[torch.Tensor]:
    """The first ``num_images`` images of ``dataset`` (default ``DATASETS.TEST[0]``) as the
    model's inputs: Tensor[3, H, W] float32 in ``INPUT.FORMAT``, resized as at test time."""
    if not (dataset or cfg.DATASETS.TEST):
        raise ConfigError("DATASETS.TEST is empty: name the dataset whose images check the export with --dataset")
    dataset = dataset or cfg.DATASETS.TEST[0]
    check_dataset_available(dataset)
    dicts = DatasetCatalog.get(dataset)[:num_images]
    check_images_exist(dicts, [dataset])
    resize = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)
    images = []
    for d in dicts:
        image = read_image(d["file_name"], format=cfg.INPUT.FORMAT)
        image = resize.get_transform(image).apply_image(image)
        images.append(torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)), dtype=torch.float32))
    return images


def export(model: torch.nn.Module, example: torch.Tensor, output_dir: str,
           formats: Sequence[str] = FORMATS) -> Dict[str, Callable[[torch.Tensor], List[np.ndarray]]]:
    """Trace ``model`` on ``example`` and write each of ``formats`` in ``output_dir``.

    Returns runners ``{name: f(image Tensor[3, H, W]) → list of flattened outputs (NumPy)}``:
    ``"pytorch"`` (the adapter itself, its FAD cells in the NCHW layout that tracing records
    rather than channels-last: ``fad_d2.space.cell.cell_layout``) and one per format.  The two
    layouts round differently, enough to move a detection whose box clipping or score sits on an
    edge; the reference runs the computation the exported graph holds."""
    os.makedirs(output_dir, exist_ok=True)
    adapter = TracingAdapter(model, [{"image": example}]).eval()
    runners = {"pytorch": _torch_runner(adapter, layout=input_layout)}
    if "torchscript" in formats:
        traced = torch.jit.trace(adapter, adapter.flattened_inputs, check_trace=False)
        traced.save(os.path.join(output_dir, "model.ts"))
        runners["torchscript"] = _torch_runner(torch.jit.load(os.path.join(output_dir, "model.ts")))
    if "onnx" in formats:
        path = os.path.join(output_dir, "model.onnx")
        torch.onnx.export(adapter, adapter.flattened_inputs, path, dynamo=False, opset_version=OPSET,
                          input_names=["image"], dynamic_axes={"image": {1: "height", 2: "width"}})
        adapter.eval()  # the exporter restores the adapter's mode onto the model
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        runners["onnx"] = lambda image: session.run(None, {"image": image.numpy()})
    return runners


def _torch_runner(module, layout=contextlib.nullcontext) -> Callable[[torch.Tensor], List[np.ndarray]]:
    def run(image):
        with torch.no_grad(), layout():
            return [t.numpy() for t in module(image)]
    return run


def canonical_order(outputs: List[np.ndarray]) -> List[np.ndarray]:
    """The detections of ``outputs`` (the arrays sharing the first array's length N: boxes
    [N, 4], scores [N], classes [N]) reordered by class, then score, then box, all rounded to
    2 decimals: the order of detections with equal scores is not defined, and two runtimes sort
    near-equal scores differently."""
    n = len(outputs[0]) if outputs and outputs[0].ndim else 0
    rows = [o for o in outputs if o.ndim and len(o) == n]
    if n < 2:
        return outputs
    keys = [np.round(o.reshape(n, -1).astype(np.float64), 2) for o in rows]
    order = np.lexsort(np.concatenate(keys, axis=1).T[::-1])
    return [o[order] if o.ndim and len(o) == n else o for o in outputs]


def compare(expected: List[np.ndarray], actual: List[np.ndarray]) -> dict:
    """``{"ok", "max_abs_diff"}``: same number and shapes of outputs, floats within
    (``RTOL``, ``ATOL``), integers equal, detections compared in :func:`canonical_order`."""
    if len(expected) != len(actual) or any(e.shape != a.shape for e, a in zip(expected, actual)):
        return {"ok": False, "max_abs_diff": None,
                "shapes": [[list(e.shape) for e in expected], [list(a.shape) for a in actual]]}
    expected, actual = canonical_order(expected), canonical_order(actual)
    diffs = [float(np.abs(e.astype(np.float64) - a.astype(np.float64)).max()) if e.size else 0.0
             for e, a in zip(expected, actual)]
    ok = all(np.allclose(e, a, rtol=RTOL, atol=ATOL) if np.issubdtype(e.dtype, np.floating)
             else np.array_equal(e, a) for e, a in zip(expected, actual))
    return {"ok": bool(ok), "max_abs_diff": max(diffs, default=0.0)}


def export_and_check(model: torch.nn.Module, images: Sequence[torch.Tensor], output_dir: str,
                     formats: Sequence[str] = FORMATS, settings: Settings = Settings(repeats=5)) -> dict:
    """Export (traced on ``images[0]``), compare every export with PyTorch on every image, time
    all of them on ``images[0]``; returns the report (also written to ``export_report.json``)."""
    runners = export(model, images[0], output_dir, formats)
    report = {"images": [list(i.shape[1:]) for i in images], "formats": {}}
    expected = [runners["pytorch"](image) for image in images]
    for name in formats:
        checks = [compare(e, runners[name](image)) for e, image in zip(expected, images)]
        report["formats"][name] = {"ok": all(c["ok"] for c in checks), "checks": checks,
                                   "detections": [int(e[0].shape[0]) for e in expected]}
    times = time_fns({name: (lambda r=run: r(images[0])) for name, run in runners.items()}, settings)
    for name, t in times.items():
        report["formats"].setdefault(name, {})["latency_ms"] = 1e3 * t["median_s"]
    report["timing"] = {"clock": times["pytorch"]["clock"], "repeats": settings.repeats,
                        "threads": settings.threads, "device": "cpu"}
    with open(os.path.join(output_dir, "export_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    return report


def format_report(report: dict) -> str:
    """Plain text: per format, the check against PyTorch and the latency."""
    base = report["formats"]["pytorch"]["latency_ms"]
    lines = [f"{'format':<12}{'matches PyTorch':>18}{'max |diff|':>12}{'latency (ms)':>14}{'vs PyTorch':>12}"]
    for name, r in report["formats"].items():
        check = "-" if name == "pytorch" else ("yes" if r["ok"] else "NO")
        diffs = [c["max_abs_diff"] for c in r.get("checks", []) if c["max_abs_diff"] is not None]
        diff = f"{max(diffs):.2g}" if diffs else "-"
        lines.append(f"{name:<12}{check:>18}{diff:>12}{r['latency_ms']:>14.1f}{r['latency_ms'] / base:>11.2f}×")
    t = report["timing"]
    lines.append(f"(images {report['images']}; latency on the first image: {t['clock']}, {t['threads']} "
                 f"thread(s), median of {t['repeats']})")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("--output", required=True, help="folder for model.ts, model.onnx, export_report.json")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--num-images", type=int, default=3, help="images checked (default 3)")
    parser.add_argument("--dataset", default="", help="registered dataset whose first --num-images images check "
                        "the export (default: the config's DATASETS.TEST[0])")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per format (median)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for the latency (default 1)")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    setup_logger(name="fad_d2")
    logging.getLogger("detectron2").setLevel(logging.WARNING)
    with one_line_errors():
        cfg = load_cfg(args.config_file, args.opts)
        images = sample_images(cfg, args.num_images, args.dataset)  # a data error before the model is built
        model = build_export_model(cfg)
    report = export_and_check(model, images, args.output, args.formats,
                              Settings(threads=args.threads, warmup=1, repeats=args.repeats))
    print(format_report(report))
    if not all(report["formats"][f]["ok"] for f in args.formats):
        sys.exit("error: an export does not match PyTorch (see export_report.json)")


if __name__ == "__main__":
    main()
