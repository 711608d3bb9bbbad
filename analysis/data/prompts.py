"""Prompt sets and the public formats a user may bring (the demo organism's own sets live in
:mod:`analysis.data.organism.provider`).

Formats accepted by :func:`load_prompt_file`:
- AdvBench ``harmful_behaviors.csv`` (columns ``goal,target``),
- a plain text file with one instruction per line (``.txt``),
- CSV or JSONL with ``prompt`` and optional ``response`` columns (the Wei et al. safety CSV with
  ``prompt,response,text`` whose prompts carry ``[INST] … [/INST]`` is accepted; the tags are stripped).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

LABELS = ("harmful", "benign")


class DataFormatError(ValueError):
    """A prompt file that cannot be read; the message says what the file lacks."""


@dataclass(frozen=True)
class PromptItem:
    """One instruction, its label and what a good answer is (when known)."""

    prompt: str
    label: str = "harmful"  # "harmful" or "benign"
    response: str | None = None  # a reference response (refusal for harmful, answer for benign)
    answer: str | None = None  # the exact expected answer, for exact-match utility
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass
class PromptSet:
    name: str
    items: list[PromptItem]

    def __len__(self) -> int:
        return len(self.items)

    def prompts(self) -> list[str]:
        return [it.prompt for it in self.items]

    def head(self, n: int | None) -> "PromptSet":
        return self if n is None else PromptSet(self.name, self.items[:n])


_INST = re.compile(r"^\s*(<s>)?\s*\[INST\]\s*(.*?)\s*\[/INST\]\s*$", re.S)


def _strip_inst(text: str) -> str:
    m = _INST.match(text)
    return m.group(2) if m else text.strip()


def _from_rows(rows: list[dict], path: Path, label: str) -> list[PromptItem]:
    if not rows:
        raise DataFormatError(f"{path.name}: no rows found (expected a header line and at least one row)")
    cols = {c.strip().lower() for c in rows[0].keys() if c is not None}
    if "goal" in cols:  # AdvBench
        key_p, key_r = "goal", "target"
    elif "prompt" in cols:
        key_p, key_r = "prompt", "response"
    else:
        raise DataFormatError(
            f"{path.name}: found columns {sorted(cols)}; expected 'goal,target' (AdvBench) "
            "or 'prompt' with optional 'response'"
        )
    items = []
    for i, row in enumerate(rows, start=2):
        row = {(k or "").strip().lower(): (v or "") for k, v in row.items()}
        prompt = _strip_inst(str(row.get(key_p, "")))
        if not prompt:
            raise DataFormatError(f"{path.name}: row {i} has an empty '{key_p}'")
        resp = str(row.get(key_r, "")).strip() or None
        items.append(PromptItem(prompt=prompt, label=str(row.get("label", label)) or label, response=resp))
    return items


def _whole_json(text: str):
    """The file parsed as one JSON document, or None when it is not (then it is read as JSON lines)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _json_rows(obj, path: Path) -> list[dict]:
    """Rows from a .json document: an array of objects (or one object)."""
    rows = obj if isinstance(obj, list) else [obj]
    for i, row in enumerate(rows, start=1):
        if not isinstance(row, dict):
            raise DataFormatError(
                f"{path.name}: item {i} of the JSON array is a {type(row).__name__}, not an object "
                'with a \'prompt\' key (expected [{"prompt": …, "response": …}, …])'
            )
    return rows


def load_prompt_file(path: str | Path, label: str = "harmful") -> PromptSet:
    """Read a user's prompt file (format chosen by extension) into a :class:`PromptSet`."""
    path = Path(path)
    if label not in LABELS:
        raise DataFormatError(f"label must be one of {LABELS}, got {label!r}")
    if not path.is_file():
        raise DataFormatError(f"prompt file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a spreadsheet's "CSV UTF-8" starts with a BOM
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path.name}: not UTF-8 text ({e.reason})") from None
    suffix = path.suffix.lower()
    if suffix == ".txt":
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if not lines:
            raise DataFormatError(f"{path.name}: empty; expected one instruction per line")
        items = [PromptItem(prompt=_strip_inst(ln), label=label) for ln in lines]
    elif suffix == ".csv":
        try:
            rows = list(csv.DictReader(io.StringIO(text)))
        except csv.Error as e:
            raise DataFormatError(f"{path.name}: not valid CSV ({e})") from None
        items = _from_rows(rows, path, label)
    elif suffix == ".json" and text.lstrip().startswith(("[", "{")) and _whole_json(text) is not None:
        items = _from_rows(_json_rows(_whole_json(text), path), path, label)
    elif suffix in (".jsonl", ".json"):
        rows = []
        for i, ln in enumerate(text.splitlines(), start=1):
            if not ln.strip():
                continue
            try:
                obj = json.loads(ln)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{path.name}: line {i} is not JSON ({e.msg})") from None
            if not isinstance(obj, dict):
                raise DataFormatError(f"{path.name}: line {i} is not a JSON object with a 'prompt' key")
            rows.append(obj)
        items = _from_rows(rows, path, label)
    else:
        raise DataFormatError(
            f"{path.name}: unknown extension {suffix!r}; use .csv (goal,target or prompt,response), "
            ".jsonl (prompt,response) or .txt (one instruction per line)"
        )
    return PromptSet(name=path.stem, items=items)
