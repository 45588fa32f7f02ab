"""Build the frozen config of a run from the command line, with one-line errors."""
import argparse
import contextlib
import os
import sys

from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from ..config import add_fad_config
from ..errors import ConfigError, FADError
from ..modeling.heads import genotype_record_json
from ..resources import resource_path
from .datasets import prepare_datasets
from .validate import check_fad_config

DEBUG_ENV = "FAD_D2_DEBUG"


def load_cfg(config_file, opts=(), check=True):
    """Return the (unfrozen) config: Detectron2 defaults + :func:`add_fad_config` + file + opts,
    the config file, ``MODEL.WEIGHTS`` and the genotype files found by
    :func:`fad_d2.resources.resource_path` (in the current directory, else installed with fad_d2),
    its datasets prepared by :func:`fad_d2.engine.datasets.prepare_datasets` (``DATASETS.COCO``
    registered, ``NUM_CLASSES`` from the data), checked by :func:`check_fad_config` and with its
    genotypes recorded by :func:`record_genotypes` (neither unless ``check=False``).

    Raises :class:`ConfigError` for a missing file, a key that does not exist (a typo), a value
    of the wrong type or not allowed, a dataset that is not registered or whose classes do not
    match ``NUM_CLASSES``, naming the file, override or key (a genotype or annotation file's own
    errors name the file).
    """
    cfg = get_cfg()
    add_fad_config(cfg)
    config_file = resource_path(config_file)
    if not os.path.isfile(config_file):
        raise ConfigError(f"config file not found: {config_file}")
    try:
        cfg.merge_from_file(config_file)
    except (KeyError, ValueError, AssertionError, TypeError) as e:
        raise ConfigError(f"{config_file}: {_reason(e)}") from None
    try:
        cfg.merge_from_list(list(opts))
    except (KeyError, ValueError, AssertionError, TypeError) as e:
        raise ConfigError(f"command-line override {list(opts)}: {_reason(e)}") from None
    for node, key in ((cfg.MODEL, "WEIGHTS"), (cfg.MODEL.FAD, "GENOTYPE"), (cfg.MODEL.FAD_MASK, "GENOTYPE")):
        node[key] = resource_path(node[key]) if node[key] else ""
    prepare_datasets(cfg)
    if check:
        check_fad_config(cfg)
        record_genotypes(cfg)
    return cfg


def record_genotypes(cfg):
    """Write the genotypes of the FAD heads ``cfg`` builds into ``MODEL.FAD_GENOTYPE_RECORD``, so
    that the saved ``config.yaml`` and every checkpoint state the architecture, not only the
    name of a file that may change or disappear."""
    cfg.MODEL.FAD_GENOTYPE_RECORD = genotype_record_json(cfg)


def _reason(exc):
    return str(exc.args[0]) if exc.args else type(exc).__name__


def setup_cfg(args, cfg=None):
    """``get_cfg`` → ``add_fad_config`` → file → overrides → freeze → ``default_setup``, and the
    ``fad_d2`` logger set up like Detectron2's (console + ``OUTPUT_DIR/log.txt``).  ``cfg``: the
    config :func:`load_cfg` already returned for ``args`` (loaded here when ``None``).  Detectron2's
    ``default_setup`` copies the config file it finds by :func:`fad_d2.resources.resource_path`."""
    cfg = load_cfg(args.config_file, args.opts) if cfg is None else cfg
    cfg.freeze()
    default_setup(cfg, argparse.Namespace(**{**vars(args), "config_file": resource_path(args.config_file)}))
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="fad_d2", abbrev_name="fad")
    return cfg


def argument_parser(description=None):
    """Detectron2's ``default_argument_parser`` + ``--debug`` (tracebacks instead of one-line
    errors; the environment variable ``FAD_D2_DEBUG=1`` does the same)."""
    parser = default_argument_parser()
    if description:
        parser.description = description
    parser.add_argument("--debug", action="store_true",
                        help=f"show the traceback of an error (or set {DEBUG_ENV}=1)")
    return parser


@contextlib.contextmanager
def one_line_errors(debug=False):
    """Turn a user error (a :class:`fad_d2.errors.FADError`, or a missing file) into
    ``error: <message>`` on stderr and exit status 1; Ctrl-C exits with 130.  Any other
    exception is a bug and keeps its traceback.  With ``debug`` or ``FAD_D2_DEBUG=1`` a user
    error propagates with its traceback too."""
    try:
        yield
    except (FADError, FileNotFoundError) as e:
        if debug or os.environ.get(DEBUG_ENV, "") not in ("", "0"):
            raise
        sys.exit("error: " + " ".join(str(e).split("\n")))
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)


def launch_main(main, args):
    """Run ``main(args)`` through Detectron2's ``launch`` (one process per GPU, ``--num-machines``
    etc.) inside :func:`one_line_errors`; the config is checked first, in this process."""
    with one_line_errors(getattr(args, "debug", False)):
        load_cfg(args.config_file, args.opts)
        launch(main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
               dist_url=args.dist_url, args=(args,))
