"""Build judges from spec strings: ``keyword``, ``KIND:SOURCE`` or a bare SOURCE (kind detected)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

from analysis.core.cache import Cache
from analysis.judging.base import ReplyJudge
from analysis.judging.classifier import RefusalClassifier
from analysis.judging.generative import HarmBenchClassifier, LlamaGuard3, WildGuard
from analysis.judging.keyword import KeywordJudge

KINDS = {
    "llama-guard": LlamaGuard3,
    "harmbench": HarmBenchClassifier,
    "wildguard": WildGuard,
    "refusal-clf": RefusalClassifier,
}
ALIASES = {
    "llama-guard-3": "llama-guard",
    "llamaguard": "llama-guard",
    "harmbench-cls": "harmbench",
    "refusal": "refusal-clf",
}
_NAME_HINTS = (
    ("llama-guard", "llama-guard"),
    ("llamaguard", "llama-guard"),
    ("harmbench", "harmbench"),
    ("wildguard", "wildguard"),
)


def _kind(text: str) -> str | None:
    t = text.strip().lower()
    t = ALIASES.get(t, t)
    return t if t in KINDS else None


def detect_kind(source: str) -> str:
    """Which judge a model is: a sequence classifier is a refusal classifier; a tokenizer chat template
    with Llama Guard's category block, or a name containing llama-guard / harmbench / wildguard, says
    the rest. Otherwise a one-line ValueError asking for ``KIND:SOURCE``."""
    from transformers import AutoConfig

    from analysis.core.models import load_error, resolve_source

    path = resolve_source(source)
    try:
        config = AutoConfig.from_pretrained(path)
    except Exception as e:  # noqa: BLE001
        raise load_error(source, e) from None
    if any(a.endswith("ForSequenceClassification") for a in (config.architectures or [])):
        return "refusal-clf"
    tok_cfg = Path(path) / "tokenizer_config.json"
    template = ""
    if tok_cfg.is_file():
        try:
            template = str(json.loads(tok_cfg.read_text()).get("chat_template") or "")
        except (OSError, ValueError):
            template = ""
    if (Path(path) / "chat_template.jinja").is_file():
        template += (Path(path) / "chat_template.jinja").read_text()
    if "UNSAFE CONTENT CATEGORIES" in template:
        return "llama-guard"
    low = str(source).lower()
    for hint, kind in _NAME_HINTS:
        if hint in low:
            return kind
    raise ValueError(
        f"cannot tell which judge {source!r} is (a {config.model_type} model without a Llama Guard "
        f"template or a telling name); write KIND:{source} with KIND one of {', '.join(KINDS)}"
    )


def make_judge(
    spec: str,
    device: str = "auto",
    dtype: str = "fp32",
    kind: str | None = None,
    cache: Cache | None = None,
    refusal_label: str | int | None = None,
    quant: str | None = None,
) -> ReplyJudge:
    """One judge from ``keyword``, ``KIND:SOURCE`` (KIND: llama-guard, harmbench, wildguard, refusal-clf)
    or a bare SOURCE (folder or hub id; ``kind`` or detection picks the class); ``quant``: 8bit / 4bit weights."""
    text = str(spec).strip()
    if not text:
        raise ValueError("empty judge spec; use 'keyword', KIND:FOLDER or a folder")
    if text.lower() == "keyword":
        return KeywordJudge()
    head, sep, rest = text.partition(":")
    if sep and _kind(head):
        kind, source = _kind(head), rest.strip()
    else:
        source = text
        if kind is not None:
            if not _kind(kind):
                raise ValueError(f"unknown judge kind {kind!r}; use one of {', '.join(KINDS)}")
            kind = _kind(kind)
        else:
            kind = detect_kind(source)
    if not source:
        raise ValueError(f"judge {text!r} names no model; write {kind}:FOLDER")
    if kind == "refusal-clf":
        return RefusalClassifier(source, device, dtype, refusal_label=refusal_label, cache=cache, quant=quant)
    return KINDS[cast(str, kind)](source, device, dtype, cache=cache, quant=quant)


def make_judges(
    specs: str | list[str],
    device: str = "auto",
    dtype: str = "fp32",
    kind: str | None = None,
    cache: Cache | None = None,
    refusal_label: str | int | None = None,
    quant: str | None = None,
) -> list[ReplyJudge]:
    """Judges from a comma list (or a list) of specs, in order; ``kind`` applies to bare sources."""
    items = [s.strip() for s in specs.split(",")] if isinstance(specs, str) else [s.strip() for s in specs]
    items = [s for s in items if s]
    if not items:
        raise ValueError("no judge given; use e.g. 'keyword' or 'keyword,llama-guard:FOLDER'")
    return [make_judge(s, device, dtype, kind, cache, refusal_label, quant) for s in items]
