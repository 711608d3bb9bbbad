"""Where evaluation, calibration and attack data come from: a :class:`DataProvider` per loaded model
(``lm.data``).

The demo organism provides its own synthetic sets and judge (:mod:`analysis.organism.data`); any other model
gets :class:`RealData`, which never falls back to organism sentences. Library functions take their data as
arguments; pages and the CLI ask the model's provider for defaults.
"""
from __future__ import annotations

from typing import Protocol

from .judge import ComplianceJudge
from .prompts import PromptSet


class DataProvider(Protocol):
    name: str

    def sets(self, split: str = "test", n: int = 120) -> dict[str, PromptSet]: ...

    def calibration_sets(self, n: int = 128) -> tuple[PromptSet, PromptSet]: ...

    def attack_data(self, kind: str, n: int, seed: int = 7) -> PromptSet: ...

    def compliance_judge(self, harmful: PromptSet) -> ComplianceJudge | None: ...

    def example_prompts(self, n: int = 6) -> list[str]: ...


class RealData:
    """Defaults for a real chat model: no organism data; every default asks for the user's data."""

    name = "real data"

    def sets(self, split: str = "test", n: int = 120) -> dict[str, PromptSet]:
        raise ValueError("no built-in prompt sets for this model: give harmful and benign prompt files "
                         "(--harmful / --benign, or upload them)")

    def calibration_sets(self, n: int = 128) -> tuple[PromptSet, PromptSet]:
        raise ValueError("critical regions of this model need calibration data: give harmful prompts and benign "
                         "(prompt, response) pairs (--cal-harmful / --cal-benign)")

    def attack_data(self, kind: str, n: int, seed: int = 7) -> PromptSet:
        raise ValueError("attacking this model needs attack data: a CSV/JSONL with prompt,response columns "
                         "(--attack-data, or upload it)")

    def compliance_judge(self, harmful: PromptSet) -> ComplianceJudge | None:
        return None

    def example_prompts(self, n: int = 6) -> list[str]:
        return []
