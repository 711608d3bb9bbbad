"""Where evaluation, calibration and attack data come from: a :class:`DataProvider` per loaded model
(``lm.data``): the organism's own for the demo, the shipped real sets for any other model.

The demo organism provides its own synthetic sets and judge (:mod:`analysis.data.organism.provider`); any other model
gets :class:`RealData`, which never falls back to organism sentences. Library functions take their data as
arguments; pages and the CLI ask the model's provider for defaults.
"""

from __future__ import annotations

from typing import Protocol

from analysis.data.prompts import PromptSet
from analysis.judging.refusal import ComplianceJudge


class DataProvider(Protocol):
    name: str

    def sets(self, split: str = "test", n: int = 120) -> dict[str, PromptSet]: ...

    def calibration_sets(self, n: int = 128) -> tuple[PromptSet, PromptSet]: ...

    def attack_data(self, kind: str, n: int, seed: int = 7) -> PromptSet: ...

    def calibration_cap(self) -> int: ...

    def compliance_judge(self, harmful: PromptSet) -> ComplianceJudge | None: ...

    def example_prompts(self, n: int = 6) -> list[str]: ...


class RealData:
    """Defaults for a real chat model, from the shipped real sets (:mod:`analysis.data.sets`) and never from the
    organism: evaluation on AdvBench + instruct ``test``, calibration from their ``val`` split, attack data from
    their ``train`` split (AdvBench goals with their compliant targets, or instructions with reference answers),
    so no prompt serves two purposes."""

    name = "real data (AdvBench, instruct)"
    harmful_set = "advbench"
    benign_set = "instruct"

    def sets(self, split: str = "test", n: int = 120) -> dict[str, PromptSet]:
        from analysis.data.sets import load_set

        return {
            "harmful": load_set(self.harmful_set, split).head(n),
            "benign": load_set(self.benign_set, split).head(n),
        }

    def calibration_sets(self, n: int = 128) -> tuple[PromptSet, PromptSet]:
        from analysis.data.sets import SPLIT_USE, load_set

        split = SPLIT_USE["calibration"]
        return load_set(self.harmful_set, split).head(n), load_set(self.benign_set, split).head(n)

    def calibration_cap(self) -> int:
        from analysis.data.sets import SPLIT_USE, load_set

        split = SPLIT_USE["calibration"]
        return min(len(load_set(self.harmful_set, split)), len(load_set(self.benign_set, split)))

    def attack_data(self, kind: str, n: int, seed: int = 7) -> PromptSet:
        from analysis.data.sets import SPLIT_USE, attack_pairs

        if kind not in ("harmful", "benign"):
            raise ValueError(f"attack data must be 'harmful' or 'benign', got {kind!r}")
        return attack_pairs(self.harmful_set if kind == "harmful" else self.benign_set, SPLIT_USE["attack"], n)

    def compliance_judge(self, harmful: PromptSet) -> ComplianceJudge | None:
        return None

    def example_prompts(self, n: int = 6) -> list[str]:
        return []
