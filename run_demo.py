#!/usr/bin/env python
"""``python -m fad_d2.demo`` in a checkout (``make demo``): see ``fad_d2/demo/run.py``."""
from fad_d2.demo.run import main

if __name__ == "__main__":
    main()
