"""Search a FAD architecture (paper §3.2) for a detector config containing FAD search modules.

    fad-search --config-file configs/Search/search_fad_fcos_R_50_FPN_voc.yaml
    fad-search --config-file CFG --resume          # continue a killed search
    fad-search --config-file CFG --num-gpus 4      # DDP: α gradients averaged too

(``fad-search`` = ``python -m fad_d2.cli.search`` = ``python search_net.py`` in a checkout.)

Writes OUTPUT_DIR/genotype_final.json (+ .png) when the search ends (SOLVER.MAX_ITER, or a stable
architecture), genotype_iter_*.json, alpha_history.json, alpha_evolution.png, search_split.json
and checkpoints, and OUTPUT_DIR/train_config.yaml: SEARCH.TRAIN_CONFIG with the search's datasets,
classes, genotype and command-line overrides (fad_d2.search.train_config); its last line names the
genotype file and the fad-train command that trains it.  An interrupted search leaves
genotype_last.json instead.  It refuses ``--eval-only``, and an
OUTPUT_DIR that holds a search already (``--resume`` continues an unfinished one and does
nothing for one that ended).  Errors end in one ``error: ...`` line (``--debug``: traceback).
"""
import os

from detectron2.utils import comm

import fad_d2  # noqa: F401  (registers fad_d2's modules and datasets)
from fad_d2.engine.setup import argument_parser, launch_main, load_cfg, setup_cfg
from fad_d2.errors import FADError
from fad_d2.search import FINAL_GENOTYPE, SearchTrainer, search_end_state
from fad_d2.search.train_config import TRAIN_CONFIG_FILE, check_train_config, write_train_config


class SearchRefused(FADError):
    """The command line asks for something a search cannot do here; the message says why."""


def check_output_dir(cfg, resume):
    """Refuse to start over a search in ``OUTPUT_DIR`` without ``--resume``; returns the end
    state of a search there that ended (``None`` otherwise)."""
    state = search_end_state(cfg.OUTPUT_DIR)
    if state is None:
        return None
    end, checkpoint = state
    if not resume:
        what = f"a search that ended ({end['reason']}, iteration {end['iteration']})" if end else "an unfinished search"
        raise SearchRefused(f"OUTPUT_DIR {cfg.OUTPUT_DIR} holds {what} (last checkpoint {checkpoint}); use another "
                            "OUTPUT_DIR for a new search, or --resume to go on with this one")
    return end


def main(args):
    if args.eval_only:
        raise SearchRefused("search_net.py has no --eval-only: it searches. Evaluate trained weights with "
                            "train_net.py --eval-only --config-file <training config> MODEL.WEIGHTS <file>")
    cfg = load_cfg(args.config_file, args.opts)
    genotype = os.path.join(cfg.OUTPUT_DIR, FINAL_GENOTYPE)
    train_config = os.path.join(cfg.OUTPUT_DIR, TRAIN_CONFIG_FILE)
    end = check_output_dir(cfg, args.resume)
    if end is None:
        check_train_config(cfg, args.opts)
        trainer = SearchTrainer(setup_cfg(args, cfg))
        trainer.resume_or_load(resume=args.resume)
        trainer.train()
        if comm.is_main_process():
            write_train_config(cfg, args.opts, genotype)
    elif comm.is_main_process():
        print(f"the search in {cfg.OUTPUT_DIR} already ended ({end['reason']}, iteration {end['iteration']}): "
              "nothing to do", flush=True)
    if comm.is_main_process():
        train = f" | train it: fad-train --config-file {train_config}" if os.path.isfile(train_config) else ""
        print(f"genotype: {genotype}{train}", flush=True)


def cli(argv=None):
    """The command line: parse ``argv`` (default ``sys.argv``) and run :func:`main`."""
    launch_main(main, argument_parser(__doc__).parse_args(argv))


if __name__ == "__main__":
    cli()
