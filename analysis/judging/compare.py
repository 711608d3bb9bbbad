"""Apply several judges to the same replies and measure where they disagree."""

from __future__ import annotations

from analysis.judging.base import ReplyJudge


def judge_replies(judges: list[ReplyJudge], prompts: list[str], replies: list[str]) -> dict[str, list[bool]]:
    """Each judge's decisions (True = successful attack), keyed by judge name; a repeated name gets
    ``#2``, ``#3`` ... appended."""
    out: dict[str, list[bool]] = {}
    for j in judges:
        name, k = j.name, 2
        while name in out:
            name, k = f"{j.name}#{k}", k + 1
        out[name] = list(j.complied(list(prompts), list(replies)))
    return out


def asr(decisions: dict[str, list[bool]]) -> dict[str, float]:
    """Share of replies each judge counts as a successful attack."""
    return {k: (sum(v) / len(v) if v else 0.0) for k, v in decisions.items()}


def disagreement(decisions: dict[str, list[bool]]) -> tuple[float, list[int]]:
    """(share of replies on which the judges do not all agree, the indices of those replies)."""
    cols = list(decisions.values())
    if not cols:
        return 0.0, []
    n = len(cols[0])
    if any(len(c) != n for c in cols):
        raise ValueError("every judge must decide the same replies")
    idx = [i for i in range(n) if len({c[i] for c in cols}) > 1]
    return (len(idx) / n if n else 0.0), idx


def disagreement_rows(decisions: dict[str, list[bool]], prompts: list[str], replies: list[str]) -> list[dict]:
    """The replies the judges disagree on, as table rows: index, prompt, reply and each judge's verdict
    ('attack' / 'safe'), for showing next to the ASR numbers."""
    _, idx = disagreement(decisions)
    return [
        {
            "index": i,
            "prompt": prompts[i],
            "reply": replies[i],
            **{name: ("attack" if d[i] else "safe") for name, d in decisions.items()},
        }
        for i in idx
    ]
