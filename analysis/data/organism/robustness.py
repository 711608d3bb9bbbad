"""How often each headline phenomenon of the demo organism held on other builds: the measured record of
``benchmarks/across_builds.py`` (``across_builds.json`` beside this file), read back so that the app can say
whether what a page shows on the shipped pair is the organism's or this build's.

The record holds each build's verdicts (phenomenon -> pass and the measured numbers) and groups of builds:
``base_seeds`` (fresh builds: every seed a new BASE and a new alignment run) and ``alignment_runs`` (the shipped
BASE aligned again with other data orders). ``across_builds.py --record GROUP`` adds or replaces builds."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from analysis.core.stats import wilson
from analysis.data.organism import WEIGHTS_DIR

RECORD = Path(__file__).with_name("across_builds.json")
GROUPS = {
    "base_seeds": "fresh builds (a new BASE and alignment each)",
    "alignment_runs": "re-alignments of the shipped BASE (other data orders)",
}


@dataclass(frozen=True)
class Held:
    """How many builds of one group a phenomenon held on."""

    group: str  # a key of GROUPS
    passed: int
    total: int
    note: str = ""  # what the verdicts have in common, written with the record

    def interval(self) -> tuple[float, float]:
        """95 % Wilson interval of the share of builds."""
        return wilson(self.passed, self.total)

    def describe(self) -> str:
        lo, hi = self.interval()
        text = f"{self.passed} of {self.total} {GROUPS[self.group]}, 95 % interval [{100 * lo:.0f}, {100 * hi:.0f}] %"
        return text + (f" — {self.note}" if self.note else "")  # notes carry their own parentheses


def load_record(path: Path = RECORD) -> dict:
    """The record as stored; a missing or malformed file raises ValueError with the file named."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read the across-builds record ({e})") from e
    if not isinstance(record, dict) or not isinstance(record.get("builds"), dict):
        raise ValueError(f"{path}: not an across-builds record (no 'builds')")
    for name, group in record.get("groups", {}).items():
        missing = [b for b in group.get("builds", []) if b not in record["builds"]]
        if name not in GROUPS or missing:
            raise ValueError(f"{path}: group {name!r} is unknown or names builds without verdicts: {missing}")
    return record


def held(phenomenon: str, path: Path = RECORD) -> list[Held]:
    """Per group of the record: on how many of its builds ``phenomenon`` passed (groups that lack it are left out)."""
    record = load_record(path)
    out = []
    for name, group in record.get("groups", {}).items():
        verdicts = [record["builds"][b]["verdicts"].get(phenomenon) for b in group["builds"]]
        verdicts = [v for v in verdicts if v is not None]
        if verdicts:
            note = group.get("notes", {}).get(phenomenon, "")
            out.append(Held(name, sum(bool(v["pass"]) for v in verdicts), len(verdicts), note))
    return out


def every_phenomenon(path: Path = RECORD) -> list[Held]:
    """Per group: on how many builds every recorded phenomenon passed at once."""
    record = load_record(path)
    out = []
    for name, group in record.get("groups", {}).items():
        builds = [record["builds"][b]["verdicts"] for b in group["builds"]]
        out.append(Held(name, sum(all(v["pass"] for v in vs.values()) for vs in builds), len(builds)))
    return out


def is_shipped(model_path: str | Path | None) -> bool:
    """Whether a model folder is the shipped demo pair's (the builds the record's groups are measured around)."""
    if not model_path:  # "" is a hub id or an in-memory model
        return False
    try:
        return Path(model_path).resolve().is_relative_to(WEIGHTS_DIR.resolve())
    except OSError:
        return False


def caveat(phenomenon: str, path: Path = RECORD) -> str:
    """Markdown for a page that shows ``phenomenon`` on the shipped pair: how often it held on other builds."""
    groups = held(phenomenon, path)
    if not groups:
        return ""
    lines = [f"**On other builds of the demo organism**, '{phenomenon}' (the README's pass criteria) held on:"]
    lines += [f"- {h.describe()}" for h in groups]
    lines.append(
        "\nWhere that share is low, what this page shows on the shipped pair is that build's, not the organism's "
        "(README, 'Seeds')."
    )
    return "\n".join(lines)
