"""``python -m fad_d2.demo``: the demo (:mod:`fad_d2.demo.run`)."""
from .run import main

main()
