"""Reply judges behind one interface: the keyword judge (default) and classifier judges (Llama Guard 3,
the HarmBench classifier, WildGuard, a refusal classifier), loaded from a folder or hub id, batched on
their device and cached per reply. ``make_judge("keyword" | "KIND:FOLDER" | "FOLDER")`` builds one."""

from analysis.judging.base import ReplyJudge, cached_decisions, load_judge_model
from analysis.judging.classifier import RefusalClassifier
from analysis.judging.compare import asr, disagreement, disagreement_rows, judge_replies
from analysis.judging.generative import CausalJudge, HarmBenchClassifier, LlamaGuard3, WildGuard
from analysis.judging.keyword import KeywordJudge
from analysis.judging.registry import KINDS, detect_kind, make_judge, make_judges

__all__ = [
    "ReplyJudge",
    "KeywordJudge",
    "LlamaGuard3",
    "HarmBenchClassifier",
    "WildGuard",
    "RefusalClassifier",
    "CausalJudge",
    "make_judge",
    "make_judges",
    "detect_kind",
    "judge_replies",
    "disagreement",
    "disagreement_rows",
    "asr",
    "cached_decisions",
    "load_judge_model",
    "KINDS",
]
