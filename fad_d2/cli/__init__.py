"""The command lines ``fad-train`` (``python -m fad_d2.cli.train``, ``train_net.py``) and
``fad-search`` (``python -m fad_d2.cli.search``, ``search_net.py``)."""
