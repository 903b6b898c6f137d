"""The label vocabularies, defined once: the spotter's heads, the decoder, the metrics, the
event log (``me-events/v1``) and the recognizers all index and name classes in this order."""

from __future__ import annotations

KINDS = ("micro", "macro")
EMOTIONS = ("negative", "positive", "surprise")
