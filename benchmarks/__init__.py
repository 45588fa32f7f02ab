"""Benchmarks of fad_d2: RepShare vs unshared mixed ops, the search step, the derived head.

``python -m benchmarks.run_all`` (``make bench``) runs them all and writes
``benchmarks/results/*.json`` and ``benchmarks/results/README_table.md``; see
``docs/benchmarks.md`` for what each one measures and how.
"""
