"""Where evaluation, calibration and attack data come from: one :class:`DataProvider` per loaded model.

The demo organism provides its own synthetic sets and judge (:mod:`analysis.organism.data`); any other model
gets :class:`RealData`, which never falls back to organism sentences. Library functions take their data as
arguments; pages and the CLI ask the model's provider for defaults.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .evaluate import DEFAULT_MAX_NEW_TOKENS, ComplianceJudge, EvalSpec
from .judge import Judge
from .prompts import PromptSet

if TYPE_CHECKING:
    from .models import LoadedModel


class DataProvider(Protocol):
    name: str

    def sets(self, split: str = "test", n: int = 120) -> dict[str, PromptSet]: ...

    def calibration_sets(self, n: int = 128) -> tuple[PromptSet, PromptSet]: ...

    def attack_data(self, kind: str, n: int, seed: int = 7) -> PromptSet: ...

    def compliance_judge(self, harmful: PromptSet) -> ComplianceJudge | None: ...

    def example_prompts(self, n: int = 6) -> list[str]: ...


class RealData:
    """Defaults for a real chat model: no organism data. Until built-in real sets are chosen, every default
    asks for the user's files."""

    name = "real data"

    def sets(self, split: str = "test", n: int = 120) -> dict[str, PromptSet]:
        raise ValueError("no built-in prompt sets for this model: give harmful and benign prompt files "
                         "(--harmful / --benign, or upload them)")

    def calibration_sets(self, n: int = 128) -> tuple[PromptSet, PromptSet]:
        raise ValueError("critical regions of this model need calibration data: give harmful prompts and benign "
                         "(prompt, response) pairs (--harmful / --benign)")

    def attack_data(self, kind: str, n: int, seed: int = 7) -> PromptSet:
        raise ValueError("attacking this model needs attack data: a CSV/JSONL with prompt,response columns "
                         "(--attack-data, or upload it)")

    def compliance_judge(self, harmful: PromptSet) -> ComplianceJudge | None:
        return None

    def example_prompts(self, n: int = 6) -> list[str]:
        return []


def provider_for(lm: "LoadedModel") -> DataProvider:
    """The demo organism's data for the shipped demo models, real-model defaults for anything else."""
    from .organism import WEIGHTS_DIR
    from .organism.data import OrganismData
    from pathlib import Path

    try:
        is_demo = Path(lm.path).resolve().is_relative_to(WEIGHTS_DIR.resolve())
    except (OSError, ValueError, AttributeError):
        is_demo = False
    return OrganismData() if is_demo else RealData()


def make_spec(lm: "LoadedModel", harmful: PromptSet, benign: PromptSet, system_prompt: str | None = None,
              max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS, judge: Judge | None = None) -> EvalSpec:
    """The evaluation spec for ``lm`` on these sets, with the provider's compliance judge where it applies."""
    return EvalSpec(harmful, benign, system_prompt, max_new_tokens, judge or Judge(),
                    provider_for(lm).compliance_judge(harmful))


def default_spec(lm: "LoadedModel", split: str = "test", n: int = 120, system_prompt: str | None = None,
                 max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS) -> EvalSpec:
    sets = provider_for(lm).sets(split, n)
    return make_spec(lm, sets["harmful"], sets["benign"], system_prompt, max_new_tokens)
