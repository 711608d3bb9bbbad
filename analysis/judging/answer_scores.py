"""Answer-based utility for sets with reference responses (real models; the demo keeps exact match).

- token F1: overlap of the lower-cased word tokens of reply and reference (bag of words, SQuAD-style);
- ROUGE-L: F-measure of the longest common subsequence of those tokens;
- answer match: the item's short answer (``meta["answer"]``) appears, as a token sequence, in the reply.
Mean response loss (:func:`analysis.core.evaluation.response_loss`) stays the utility that needs no generation.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import cast

from analysis.data.prompts import PromptItem

_WORD = re.compile(r"\w+")


def word_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def token_f1(reply: str, reference: str) -> float:
    """Harmonic mean of token precision and recall (0 when either side is empty)."""
    r, g = word_tokens(reply), word_tokens(reference)
    common = sum((Counter(r) & Counter(g)).values())
    if not r or not g or not common:
        return 0.0
    p, q = common / len(r), common / len(g)
    return 2 * p * q / (p + q)


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(reply: str, reference: str) -> float:
    """ROUGE-L F1 over word tokens."""
    r, g = word_tokens(reply), word_tokens(reference)
    lcs = _lcs(r, g) if r and g else 0
    if not lcs:
        return 0.0
    p, q = lcs / len(r), lcs / len(g)
    return 2 * p * q / (p + q)


def contains_answer(reply: str, answer: str) -> bool:
    """The answer's word tokens occur contiguously in the reply's."""
    r, a = word_tokens(reply), word_tokens(answer)
    if not a:
        return False
    return any(r[i : i + len(a)] == a for i in range(len(r) - len(a) + 1))


@dataclass
class ReferenceScores:
    token_f1: float
    rouge_l: float
    answer_match: float | None  # None when the items carry no short answers
    n: int


def reference_scores(replies: list[str], items: list[PromptItem]) -> ReferenceScores:
    """Mean token F1 and ROUGE-L of replies against the items' reference responses, and the share of
    replies containing the item's short answer."""
    if len(replies) != len(items):
        raise ValueError(f"{len(replies)} replies for {len(items)} items")
    pairs = [(r, it) for r, it in zip(replies, items) if it.response]
    if not pairs:
        raise ValueError("these items have no reference responses; answer-based utility needs a set with references")
    n = len(pairs)
    f1 = sum(token_f1(r, cast(str, it.response)) for r, it in pairs) / n  # pairs hold items with a response
    rl = sum(rouge_l(r, cast(str, it.response)) for r, it in pairs) / n
    answers = [(r, it.meta.get("answer") or it.answer) for r, it in pairs]
    with_answer = [(r, a) for r, a in answers if a]
    match = sum(contains_answer(r, a) for r, a in with_answer) / len(with_answer) if with_answer else None
    return ReferenceScores(f1, rl, match, n)
