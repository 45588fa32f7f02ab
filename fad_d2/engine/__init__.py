"""Training-loop glue shared by ``train_net.py`` and ``search_net.py`` (import the submodules:
``fad_d2.engine.setup`` for configs, ``fad_d2.engine.trainer`` for the trainer)."""
