"""The demo model organism: synthetic world, tokenizer, training, build, shipped weights."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"


def is_organism_build(model_dir: str | Path) -> bool:
    """Whether a model folder is one of the demo organism's: under the shipped weights, or a ``base``/``aligned``
    folder beside the ``build_report.json`` that ``build-demo --out`` writes."""
    try:
        d = Path(model_dir).resolve()
        if d.is_relative_to(WEIGHTS_DIR.resolve()):
            return True
        report = d.parent / "build_report.json"
        return d.name in ("base", "aligned") and report.is_file() and "base_recipe" in report.read_text()
    except OSError:
        return False
