"""The demo protocol on the embedded dataset, shared by the demo (``python -m fad_d2.demo``,
``make demo``) and the search-quality study (``python -m benchmarks.search_quality``, ``make study``).

* :mod:`.run` — the demo: search, stock and searched heads trained and evaluated, the table;
* :mod:`.pretrain` — the backbone pre-training step, the stand-in for ImageNet weights;
* :mod:`.steps` — resumable ``train_net.py`` / ``search_net.py`` runs with progress and ETA;
* :mod:`.report` — the comparison table and ``comparison.png`` (AP against head GFLOPs).
"""
