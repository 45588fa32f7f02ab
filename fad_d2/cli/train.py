"""Train and evaluate a detector with fad_d2's modules (FCOS, RetinaNet, Mask R-CNN, FAD heads).

    fad-train --config-file configs/Demo/fcos_R_18_FPN_demo.yaml MODEL.DEVICE cpu
    fad-train --config-file CFG --eval-only MODEL.WEIGHTS output/model_final.pth
    fad-train --config-file CFG --num-gpus 8
    fad-train --config-file CFG DATASETS.COCO "[['my_train', 'train.json', 'images/']]" \
        DATASETS.TRAIN "('my_train',)"        # your own COCO-format data (docs/own_dataset.md)

(``fad-train`` = ``python -m fad_d2.cli.train`` = ``python train_net.py`` in a checkout.)

Errors in the input (config, genotype, dataset, checkpoint) end in one ``error: ...`` line;
``--debug`` shows the traceback.
"""
import fad_d2  # noqa: F401  (registers fad_d2's modules and datasets)
from fad_d2.engine.checkpoint import CheckpointError, FADCheckpointer, genotype_record
from fad_d2.engine.ema import load_ema_weights
from fad_d2.engine.setup import argument_parser, launch_main, setup_cfg
from fad_d2.engine.trainer import Trainer, check_test_datasets


def evaluate(cfg, resume):
    """``--eval-only``: load ``MODEL.WEIGHTS`` (or, with ``--resume``, the last checkpoint of
    ``OUTPUT_DIR``), which must hold every weight of the model and its genotype, and evaluate
    (with ``MODEL_EMA.ENABLED``: the weight average saved beside the weights)."""
    check_test_datasets(cfg)  # a missing dataset or image stops it before the model is built
    model = Trainer.build_model(cfg)
    checkpointer = FADCheckpointer(model, save_dir=cfg.OUTPUT_DIR, genotypes=genotype_record(cfg),
                                   require_all_weights=True)
    if not cfg.MODEL.WEIGHTS and not (resume and checkpointer.has_checkpoint()):
        raise CheckpointError("--eval-only needs trained weights: set MODEL.WEIGHTS to a checkpoint "
                              "(or --resume with a checkpoint in OUTPUT_DIR)")
    unloaded = checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=resume)
    if cfg.MODEL_EMA.ENABLED:
        source = checkpointer.get_checkpoint_file() if resume and checkpointer.has_checkpoint() else cfg.MODEL.WEIGHTS
        load_ema_weights(model, unloaded, source)
    return Trainer.test(cfg, model)


def main(args):
    cfg = setup_cfg(args)
    if args.eval_only:
        return evaluate(cfg, args.resume)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def cli(argv=None):
    """The command line: parse ``argv`` (default ``sys.argv``) and run :func:`main`."""
    launch_main(main, argument_parser(__doc__).parse_args(argv))


if __name__ == "__main__":
    cli()
