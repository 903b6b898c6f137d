"""The names of the exported spotter step graph's inputs and outputs (no torch needed to
check a cached graph against them)."""

from __future__ import annotations

INPUT_NAMES = ("x", "conv_state", "ssm_state", "valid")
OUTPUT_NAMES = ("apex", "kind_logits", "emotion_logits", "conv_state_out", "ssm_state_out")
