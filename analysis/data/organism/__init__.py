"""The demo model organism: synthetic world, tokenizer, training, build, shipped weights."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"
