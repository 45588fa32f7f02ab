"""Benchmark 2: one search step (α step + w step) of FCOS-FAD R-50 against one plain FCOS R-50
training iteration on the same batch: the search overhead factor.

The setting of ``configs/Search/search_fad_fcos_R_50_FPN_voc.yaml`` (M = 1, c′ = 96, c = 256,
20 classes, backbone frozen up to stage 2, gradient clipping at 20), batch 4 at 416×693, with
random weights (nothing downloaded) and random images carrying 3 random boxes each.  The steps
are the project's own: the search's α update (:meth:`~fad_d2.search.AlphaUpdateHook.step`) and
w step (Detectron2's ``SimpleTrainer.run_step`` with :class:`~fad_d2.search.SearchTrainer`'s w
optimizer), and ``SimpleTrainer.run_step`` for plain FCOS, fed the same batch over and over (no
data loading).  Variants: ``fcos`` (stock head), ``search_repshare`` (RepShare mixed ops,
``MODEL.FAD.REPSHARE True``), ``search_unshared`` (``False``).

Per variant: step time (the search step is the sum of the α and w steps' medians) and the
activations saved by the step's first forward (its first call, which is also the warm-up).
The α step records autograd's graph for α only and back-propagates to α only.
"""
import dataclasses
import functools
import itertools
from typing import Callable, Dict, List, NamedTuple, Sequence

import torch
from detectron2.engine import DefaultTrainer, SimpleTrainer
from detectron2.modeling import build_model
from detectron2.structures import Boxes, Instances
from detectron2.utils.events import EventStorage

from fad_d2.engine.setup import load_cfg
from fad_d2.search import AlphaUpdateHook, SearchTrainer, build_alpha_optimizer, search_groups

from .common import (
    Settings,
    markdown_table,
    mib,
    parameter_tensors,
    peak_memory_bytes,
    ratio,
    release_memory,
    repo_path,
    saved_activation_bytes,
    time_fns,
)

SEARCH_CONFIG = "configs/Search/search_fad_fcos_R_50_FPN_voc.yaml"
FCOS_CONFIG = "configs/FCOS/fcos_R_50_FPN_1x_coco.yaml"
LABELS = {"fcos": "plain FCOS iteration (stock head)",
          "search_repshare": "search step, RepShare (α step + w step)",
          "search_unshared": "search step, unshared (α step + w step)"}


def random_batch(num_images: int, height: int, width: int, num_classes: int,
                 boxes_per_image: int = 3, seed: int = 0) -> List[dict]:
    """Detectron2 training inputs: uint8 images with random boxes and classes."""
    g = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(num_images):
        size = torch.tensor([width, height], dtype=torch.float32)
        corner = torch.rand(boxes_per_image, 2, generator=g) * size * 0.6
        extent = (0.1 + 0.3 * torch.rand(boxes_per_image, 2, generator=g)) * size
        instances = Instances((height, width))
        instances.gt_boxes = Boxes(torch.cat([corner, corner + extent], dim=1))
        instances.gt_classes = torch.randint(0, num_classes, (boxes_per_image,), generator=g)
        image = torch.randint(0, 256, (3, height, width), generator=g, dtype=torch.uint8)
        batch.append({"image": image, "instances": instances, "height": height, "width": width})
    return batch


def _cfg(config_file: str, opts: Sequence[str], device: str):
    return load_cfg(repo_path(config_file), [*opts, "MODEL.DEVICE", device, "MODEL.WEIGHTS", ""])


class SearchStep(NamedTuple):
    """The two halves of a search step on one replayed batch: ``alpha()`` (the α update) and
    ``weight()`` (the w step)."""

    model: torch.nn.Module
    alpha: Callable[[], dict]
    weight: Callable[[], None]


def build_search_step(config_file: str, opts: Sequence[str], device: str, batch: List[dict]) -> SearchStep:
    """The search config's supernet with the search's α update and w step, both on ``batch``."""
    cfg = _cfg(config_file, opts, device)
    model = build_model(cfg)
    alpha_hook = AlphaUpdateHook(itertools.repeat(batch), build_alpha_optimizer(cfg, [g.alpha for g in search_groups(model)]))
    w_step = SimpleTrainer(model, itertools.repeat(batch), SearchTrainer.build_optimizer(cfg, model))
    return SearchStep(model, functools.partial(alpha_hook.step, model, batch), w_step.run_step)


def build_plain_trainer(config_file: str, opts: Sequence[str], device: str,
                        batch: List[dict]) -> SimpleTrainer:
    """The plain detector of ``config_file`` in Detectron2's ``SimpleTrainer`` repeating ``batch``."""
    cfg = _cfg(config_file, opts, device)
    model = build_model(cfg)
    return SimpleTrainer(model, itertools.repeat(batch), DefaultTrainer.build_optimizer(cfg, model))


def measure_step(model: torch.nn.Module, first_pass, parts: Dict[str, object],
                 settings: Settings) -> dict:
    """Saved activations of ``first_pass()`` (a forward + backward; also the warm-up), then the
    times of ``parts`` (``{name: fn}``, a step's pieces), their sum, and on CUDA the peak
    memory of one call of every part."""
    saved = saved_activation_bytes(first_pass, parameter_tensors(model))
    times = time_fns(parts, dataclasses.replace(settings, warmup=0))  # warmed up just above
    peak = None
    if settings.device == "cuda":
        peak = peak_memory_bytes(lambda: [fn() for fn in parts.values()], settings.torch_device)
    return {"saved_bytes": saved, "parts": times, "peak_bytes": peak,
            "median_s": sum(t["median_s"] for t in times.values())}


def _measure_variant(name: str, settings: Settings, search_config: str, fcos_config: str,
                     opts: Sequence[str], batch: List[dict]) -> dict:
    """Build the model of variant ``name`` (a key of :data:`LABELS`) and :func:`measure_step`
    it."""
    torch.manual_seed(0)
    if name == "fcos":
        plain = build_plain_trainer(fcos_config, opts, settings.device, batch)
        return measure_step(plain.model, plain.run_step, {"step": plain.run_step}, settings)
    repshare = name == "search_repshare"
    search = build_search_step(search_config, [*opts, "MODEL.FAD.REPSHARE", str(repshare)], settings.device, batch)
    return measure_step(search.model, search.alpha, {"alpha": search.alpha, "weight": search.weight}, settings)


def compare_steps(settings: Settings, search_config: str = SEARCH_CONFIG,
                  fcos_config: str = FCOS_CONFIG, batch_size: int = 4, height: int = 416,
                  width: int = 693, num_classes: int = 20, extra_opts: Sequence[str] = ()) -> dict:
    """Times and memory of the plain FCOS iteration and of the search steps (see the module
    docstring), one model at a time.  ``extra_opts`` go to every config (the smoke test
    shrinks the models)."""
    batch = random_batch(batch_size, height, width, num_classes)
    # random batches: no dataset is read, so none decides the number of classes
    opts = [*extra_opts, "MODEL.FCOS.NUM_CLASSES", str(num_classes), "DATASETS.TRAIN", "()", "DATASETS.TEST", "()"]
    results = {}
    with EventStorage(0):
        for name in LABELS:
            results[name] = _measure_variant(name, settings, search_config, fcos_config, opts, batch)
            release_memory()
    setting = {"batch": batch_size, "image": [height, width], "classes": num_classes,
               "depth": _cfg(fcos_config, opts, settings.device).MODEL.RESNETS.DEPTH,
               "search_config": search_config, "fcos_config": fcos_config,
               "repeats": settings.repeats}
    return {"setting": setting, "variants": results}


def summary(result: dict) -> Dict[str, float]:
    """The search overhead factors (search step / plain iteration) and the RepShare / unshared
    ratios."""
    v = result["variants"]
    plain, rep, uns = (v[n]["median_s"] for n in ("fcos", "search_repshare", "search_unshared"))
    return {
        "overhead_repshare": rep / plain,
        "overhead_unshared": uns / plain,
        "time_repshare_vs_unshared": rep / uns,
        "saved_repshare_vs_unshared": (v["search_repshare"]["saved_bytes"]
                                       / v["search_unshared"]["saved_bytes"]),
    }


def format_comparison(result: dict) -> str:
    """The Markdown table of :func:`compare_steps`: each step and its α / w parts, with the
    ratio to the plain FCOS iteration."""
    s, v = result["setting"], result["variants"]
    plain_s = v["fcos"]["median_s"]

    def row(label, seconds, saved=None, peak=None):
        return [label, f"{seconds:.2f}", ratio(seconds, plain_s),
                "" if saved is None else mib(saved), "" if peak is None else mib(peak)]

    rows = []
    for name, r in v.items():
        rows.append(row(LABELS[name], r["median_s"], r["saved_bytes"], r["peak_bytes"]))
        if name != "fcos":
            rows.append(row("· α step", r["parts"]["alpha"]["median_s"]))
            rows.append(row("· w step", r["parts"]["weight"]["median_s"]))
    title = (f"Whole step, FCOS R-{s['depth']}-FPN, batch {s['batch']} at "
             f"{s['image'][0]}×{s['image'][1]}, {s['classes']} classes (each model warmed up by "
             f"one step, median of {s['repeats']} measured):")
    table = markdown_table(["step", "time (s)", "vs plain FCOS", "saved activations, one forward (MiB)",
                            "peak (MiB)"], rows)
    return f"{title}\n\n{table}"
