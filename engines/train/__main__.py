"""``python -m engines.train``: train the spotter (``engines/train/spotter.py``; the recognizer
is ``python -m engines.train.recognizer``)."""

from __future__ import annotations

import sys

from engines.train.spotter import main

if __name__ == "__main__":
    sys.exit(main())
