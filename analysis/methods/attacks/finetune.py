"""Fine-tuning attacks on a copy of the model, with optional frozen regions.

An attack fine-tunes a deep copy of the loaded model (with a variant's edit — LoX, say — applied to the
copy only) on a few harmful-compliance examples or on benign instruction data, by full fine-tuning or
LoRA (peft). The loaded model is never touched. ASR, utility and the safety-subspace retention
R_ft = ‖P_k (W − W_base)‖ / ‖W − W_base‖ (per weight, P_k from the top-k of ΔW_align; by default the
reference's mean of the per-weight ratios over every nn.Linear, lm_head included; pooled over the decoder
weights as the project variant, ``AttackSettings.r_metric``) are
recorded at step 0 and every ``eval_every`` steps, so variants compare as whole ASR-vs-step curves.

Freezing (Wei et al.; Li & Kim): a boolean mask per decoder weight (True = frozen) zeroes those entries'
gradients; with AdamW at zero weight decay the frozen entries then stay bit-exactly unchanged. LoRA can
freeze whole input columns (units: their LoRA-A columns start at zero and get no gradient) or whole output
rows (LoRA-B rows, zero at the start, get no gradient).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, cast

import torch

from analysis.core.arch import adapter_of, linear_modules, non_decoder_matrices
from analysis.core.cache import Cache
from analysis.core.chat import encode_pairs
from analysis.core.edits import Edit, applied, locked, resolve
from analysis.core.evaluation import EvalSpec, evaluate_model
from analysis.core.options import check, option
from analysis.core.stats import LossDifference, PairedDifference
from analysis.data.prompts import PromptSet

if TYPE_CHECKING:
    from analysis.core.models import LoadedModel

DATA_KINDS = ("harmful", "benign")
METHODS = ("full", "lora")
R_METRICS = ("mean", "pooled")  # the first is the reference's
EXAMPLES = ("first", "drawn")  # the first is the reference's fixed set
POOL_PER_EXAMPLE = 5  # "drawn": the pool a caller fetches is this many times n_examples


@dataclass(frozen=True)
class AttackSettings:
    data: str = option(
        "harmful", choices=DATA_KINDS, help="harmful (prompt + compliant answer) | benign (instruction + answer)"
    )
    n_examples: int = option(20, range=(1, 10_000), widget_range=(10, 100), step=10, help="attack examples")
    method: str = option("full", choices=METHODS, help="full fine-tuning or LoRA")
    lr: float = option(1e-4, range=(0, 1), open_lo=True, help="learning rate")
    steps: int = option(24, range=(1, 10_000), help="optimiser steps")
    batch_size: int = option(20, range=(1, 10_000), help="examples per step")
    eval_every: int = option(3, range=(1, 10_000), widget_range=(1, 10), help="evaluate every this many steps")
    lora_rank: int = option(8, range=(1, 4096), widget_range=(1, 32), help="LoRA rank")
    lora_alpha: float = option(16.0, range=(0, None), open_lo=True, help="LoRA scaling α")
    seed: int = option(0, range=(0, 2**32 - 1), help="data order and LoRA initialisation seed")
    seeds: int = option(
        3,
        range=(1, 20),
        widget_range=(1, 5),
        help="runs per variant, data-order seeds seed, seed + 1, …: curves with a band",
    )
    examples: str = option(
        "first",
        choices=EXAMPLES,
        help="first: every run trains on the data's first n_examples (the reference's fixed set) | drawn: each "
        "seed draws its n_examples from a larger pool, so the band spans draws of the examples too",
    )
    subspace_k: int = option(
        6, range=(0, None), help="rank of the safety subspace P_k for R_ft (LoX's default k; 0 = no R_ft)"
    )
    r_metric: str = option(
        "mean",
        choices=R_METRICS,
        help="R_ft: mean of per-weight ratios, lm_head included (reference) | pooled over decoder weights",
    )

    def validate(self) -> None:
        check(self)

    @property
    def pool(self) -> int:
        """How many examples a caller fetches for these settings: n_examples, or a pool to draw them from."""
        return self.n_examples * (POOL_PER_EXAMPLE if self.examples == "drawn" else 1)

    def seeds_are_one_run(self, n_data: int | None = None) -> bool:
        """Whether these settings' data-order seeds repeat one run: a full fine-tune on the fixed first examples with
        all of them (``n_data`` when the data holds fewer) in every batch. The seed then changes neither a batch nor
        the starting weights (it would start LoRA's adapters), so the band over seeds has no width."""
        n = self.n_examples if n_data is None else min(n_data, self.n_examples)
        return self.seeds > 1 and self.method == "full" and self.examples == "first" and self.batch_size >= n

    @property
    def epochs(self) -> float:
        return self.steps * min(self.batch_size, self.n_examples) / self.n_examples


@dataclass
class Variant:
    """A starting point for the attack: the aligned model, optionally edited and/or with frozen weights."""

    name: str
    edit: Edit | None = None
    freeze: dict[str, torch.Tensor] | None = None  # decoder weight name -> (d_out × d_in) bool, True = frozen
    spec: dict = field(default_factory=dict)  # what defines the variant (for the cache key)

    def frozen_fraction(self, adapter) -> float:
        if not self.freeze:
            return 0.0
        return sum(int(m.sum()) for m in self.freeze.values()) / adapter.n_weights()


@dataclass
class AttackCurve:
    variant: str
    steps: list[int]
    asr: list[float]
    asr_positive: list[float | None]
    utility: list[float | None]
    over_refusal: list[float]
    r_ft: list[float | None]
    samples: list[list[str]] = field(default_factory=list)  # a few harmful replies per evaluated step
    utility_kind: str = "none"  # "exact" (accuracy) or "loss" (nats)
    attacks: list[list[bool]] = field(default_factory=list)  # per evaluated step: each harmful reply an attack?
    # per evaluated step: the other rates' per-prompt outcomes ("asr_positive", "utility" when exact,
    # "over_refusal"), and a loss utility's per-item sums and token counts ("utility", "utility_tokens")
    outcomes: list[dict[str, list]] = field(default_factory=list)

    def at(self, step: int) -> dict:
        """Numbers at the last evaluated step ≤ ``step``."""
        i = max(j for j, s in enumerate(self.steps) if s <= step)
        return {"step": self.steps[i], "asr": self.asr[i], "utility": self.utility[i], "r_ft": self.r_ft[i]}

    def paired_asr(self, other: "AttackCurve", step: int) -> PairedDifference:
        """``other``'s keyword ASR minus this curve's at the last evaluated step ≤ ``step``, on the same harmful
        prompts (Newcombe interval, exact McNemar)."""
        i = max(j for j, s in enumerate(self.steps) if s <= step)
        if other.steps != self.steps or not self.attacks or not other.attacks:
            raise ValueError("paired ASR needs two runs evaluated at the same steps with per-prompt outcomes")
        return PairedDifference.of(self.attacks[i], other.attacks[i], self.variant, other.variant)

    def paired(self, other: "AttackCurve", step: int, metric: str) -> PairedDifference | LossDifference:
        """``other`` − this curve of one metric ("asr", "asr_positive", "utility", "over_refusal") at the last
        evaluated step ≤ ``step``, on the same prompts: a rate by Newcombe interval and exact McNemar, a loss
        utility by :meth:`paired_loss`. ValueError when the runs were evaluated at other steps or without that
        metric's per-prompt outcomes."""
        if metric == "asr":
            return self.paired_asr(other, step)
        if metric == "utility" and self.utility_kind == "loss":
            return self.paired_loss(other, step)
        i = max(j for j, s in enumerate(self.steps) if s <= step)
        if other.steps != self.steps or len(self.outcomes) <= i or len(other.outcomes) <= i:
            raise ValueError("a paired rate needs two runs evaluated at the same steps with per-prompt outcomes")
        if metric == "utility" and (self.utility_kind != "exact" or other.utility_kind != "exact"):
            raise ValueError("utility pairs as a rate only when it is an exact-answer accuracy")
        a, b = self.outcomes[i].get(metric), other.outcomes[i].get(metric)
        if not a or not b:
            raise ValueError(f"{metric}: no per-prompt outcomes at step {self.steps[i]}")
        return PairedDifference.of([bool(x) for x in a], [bool(x) for x in b], self.variant, other.variant)

    def paired_loss(self, other: "AttackCurve", step: int) -> LossDifference:
        """``other`` − this curve of a loss utility at the last evaluated step ≤ ``step``, on the same benign items
        (paired bootstrap). ValueError without a loss utility or its per-item losses at that step."""
        i = max(j for j, s in enumerate(self.steps) if s <= step)
        if self.utility_kind != "loss" or other.utility_kind != "loss" or other.steps != self.steps:
            raise ValueError("a paired loss needs two loss-utility runs evaluated at the same steps")
        if len(self.outcomes) <= i or len(other.outcomes) <= i:
            raise ValueError("no per-item losses kept (a run cached before they were)")
        sa, ta = self.outcomes[i].get("utility"), self.outcomes[i].get("utility_tokens")
        sb, tb = other.outcomes[i].get("utility"), other.outcomes[i].get("utility_tokens")
        if not (sa and ta and sb and tb):
            raise ValueError(f"utility: no per-item losses at step {self.steps[i]}")
        return LossDifference.of(sa, ta, sb, tb, self.variant, other.variant)

    def change(self, step: int) -> PairedDifference:
        """This run's keyword ASR at the last evaluated step ≤ ``step`` minus its ASR at the first evaluated step
        (before the attack), on the same harmful prompts (Newcombe interval, exact McNemar)."""
        i = max(j for j, s in enumerate(self.steps) if s <= step)
        if not self.attacks:
            raise ValueError("the change needs per-prompt outcomes (a run cached before they were kept)")
        return PairedDifference.of(self.attacks[0], self.attacks[i], f"step {self.steps[0]}", f"step {self.steps[i]}")


def whole_units(freeze: dict[str, torch.Tensor], adapter) -> dict[str, torch.Tensor]:
    """Extend unit masks (input columns of down_proj / o_proj) to the whole neuron: also freeze the rows
    that write that channel (gate/up rows for an MLP unit, v rows for an attention unit when the shapes
    match one to one, i.e. no grouped-query sharing)."""
    out = dict(freeze)
    for n, m in freeze.items():
        ref = adapter[n]
        cols = m.all(0)
        feeders = {"down_proj": ("mlp", ("gate_proj", "up_proj", "gate_up_proj")), "o_proj": ("attn", ("v_proj",))}.get(
            ref.module
        )
        if feeders is None:
            continue
        block, mods = feeders
        for mod in mods:
            name = f"layers.{ref.layer}.{block}.{mod}"
            if name in adapter.linears and adapter[name].shape[0] == cols.numel():
                out[name] = out.get(name, torch.zeros(adapter[name].shape, dtype=torch.bool)) | cols[:, None]
    return out


def _freeze_full(model, freeze: dict[str, torch.Tensor]) -> list:
    adapter = adapter_of(model)
    handles = []
    for n, m in freeze.items():
        ref = adapter[n]
        pm = (m.T if ref.transposed else m).to(ref.param.device)
        handles.append(ref.param.register_hook(lambda g, pm=pm: g.masked_fill(pm, 0)))
    return handles


class _Lora:
    """peft LoRA on every decoder Linear of ``model``; column freezing via zeroed LoRA-A columns."""

    def __init__(self, model, s: AttackSettings, freeze: dict[str, torch.Tensor] | None):
        from peft import LoraConfig, get_peft_model

        paths = {n: path for n, (path, _) in linear_modules(model).items()}
        self.transposed = {n: ref.transposed for n, ref in adapter_of(model).linears.items()}
        # peft annotates lora_alpha as int but scales by alpha / r, a float alpha included
        cfg = LoraConfig(
            r=s.lora_rank,
            lora_alpha=s.lora_alpha,  # type: ignore[arg-type]
            lora_dropout=0.0,
            target_modules=list(paths.values()),
            fan_in_fan_out=any(self.transposed.values()),
        )
        self.peft = get_peft_model(model, cfg)
        self.inner = self.peft.get_base_model()
        # peft LoRA layers (lora_A, lora_B, get_delta_weight), which nn.Module's types do not know
        self.layers: dict[str, Any] = {n: self.inner.get_submodule(p) for n, p in paths.items()}
        self.handles = []
        for n, m in (freeze or {}).items():
            cols, rows = m.all(0), m.all(1)
            if torch.equal(cols, m.any(0)):  # whole input columns: zero LoRA-A's columns
                p, mask = self.layers[n].lora_A["default"].weight, cols.unsqueeze(0)  # A: (r × d_in)
            elif torch.equal(rows, m.any(1)):  # whole output rows: LoRA-B starts at zero; keep those rows
                p, mask = self.layers[n].lora_B["default"].weight, rows.unsqueeze(1)  # B: (d_out × r)
            else:
                raise ValueError(
                    f"LoRA can freeze whole rows or columns (units) only; the region on {n} is "
                    "neither: use full fine-tuning to freeze individual weights"
                )
            with torch.no_grad():
                p.masked_fill_(mask.to(p.device), 0)
            self.handles.append(p.register_hook(lambda g, mk=mask.to(p.device): g.masked_fill(mk, 0)))  # noqa: B008 (bound per parameter)

    def delta(self, n: str) -> torch.Tensor:
        """B·A of one weight (uniform orientation, fp32)."""
        with torch.no_grad():
            d = self.layers[n].get_delta_weight("default").float()
        return d.T if self.transposed[n] else d

    def deltas(self) -> dict[str, torch.Tensor]:
        return {n: self.delta(n) for n in self.layers}


class _Lazy(Mapping):
    """name -> tensor made on access (R_ft never holds every weight in fp32 at once)."""

    def __init__(self, names: list[str], make: Callable[[str], torch.Tensor]):
        self.names, self.make = list(names), make

    def __getitem__(self, name: str) -> torch.Tensor:
        if name not in self.names:
            raise KeyError(name)
        return self.make(name)

    def __iter__(self):
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)


Recorder = Callable[[int, torch.nn.Module, Callable[[], Mapping[str, torch.Tensor]]], None]


def attack_items(data: PromptSet, settings: AttackSettings) -> list:
    """The examples one run trains on: the data's first ``n_examples``, or (``examples="drawn"``) ``n_examples``
    drawn without replacement from the data with the run's seed. ValueError when a draw has nothing to choose from
    (the data holds no more than n_examples)."""
    if settings.examples == "first":
        return list(data.items[: settings.n_examples])
    if len(data.items) <= settings.n_examples:
        raise ValueError(
            f"drawing {settings.n_examples} attack examples needs a larger pool than {len(data.items)} "
            f"(fetch settings.pool = {settings.pool}, or use examples='first')"
        )
    g = torch.Generator().manual_seed(settings.seed)
    return [data.items[i] for i in torch.randperm(len(data.items), generator=g)[: settings.n_examples].tolist()]


def fine_tune_copy(
    lm,
    variant: Variant,
    settings: AttackSettings,
    data: PromptSet,
    system_prompt: str | None = None,
    on_eval: Recorder | None = None,
    progress=None,
) -> torch.nn.Module:
    """Fine-tune a deep copy of ``lm.model`` (with the variant's edit and frozen region) and return it
    (LoRA merged). ``on_eval(step, model, weights)`` runs at step 0 and every ``eval_every`` steps, with the
    model to generate from and a function giving the current weights, fp32, by name (decoder weights by uniform
    name, any other parameter — the lm_head, say — by its path)."""
    settings.validate()
    if len(data) == 0 or not all(it.response for it in data.items):
        raise ValueError(
            f"{data.name}: attack data needs a response for every prompt (a 'response' or 'target' column)"
        )
    items = attack_items(data, settings)
    _memory_guard(lm, settings, items, system_prompt, with_base=False)
    with applied(lm.model, *([variant.edit] if variant.edit else [])):
        model = copy.deepcopy(lm.model)
    torch.manual_seed(settings.seed)
    adapter = adapter_of(model)
    others = non_decoder_matrices(model)
    if settings.method == "lora":  # LoRA leaves the base weights alone: the current weights are start + B·A
        start = {n: ref.W.detach() for n, ref in adapter.linears.items()}  # unchanged until the merge
        lora = _Lora(model, settings, variant.freeze)
        train_model, params = lora.inner, [p for p in lora.peft.parameters() if p.requires_grad]

        def weights() -> Mapping[str, torch.Tensor]:  # LoRA adapts decoder Linears only; the rest stays as is
            return _Lazy(
                list(start) + others,
                lambda n: start[n].float() + lora.delta(n) if n in start else resolve(model, n).detach().float(),
            )
    else:
        lora, train_model, params = None, model, list(model.parameters())
        handles = _freeze_full(model, variant.freeze or {})

        def weights() -> Mapping[str, torch.Tensor]:
            return _Lazy(list(adapter.linears) + others, lambda n: resolve(model, n).detach().float())

    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(settings.seed)
    per_batch = min(settings.batch_size, len(items))
    order: list[int] = []
    evals = {0, settings.steps, *range(settings.eval_every, settings.steps + 1, settings.eval_every)}
    device = next(train_model.parameters()).device

    def checkpoint(step: int) -> None:
        if on_eval is not None and step in evals:
            train_model.eval()
            with torch.no_grad():
                on_eval(step, train_model, weights)

    checkpoint(0)
    train_model.train()
    for step in range(1, settings.steps + 1):
        if len(order) < per_batch:
            order += torch.randperm(len(items), generator=g).tolist()
        idx, order = order[:per_batch], order[per_batch:]
        b = encode_pairs(
            lm.tokenizer, [items[i].prompt for i in idx], [cast(str, items[i].response) for i in idx], system_prompt
        ).to(device)
        loss = train_model(input_ids=b.input_ids, attention_mask=b.attention_mask, labels=b.labels).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        checkpoint(step)
        train_model.train()
        if progress:
            progress(step / settings.steps, f"{variant.name}: step {step} of {settings.steps}, loss {loss.item():.3f}")
    train_model.eval()
    if lora is not None:
        return lora.peft.merge_and_unload()
    for h in handles:
        h.remove()
    return model


def _memory_guard(lm, settings: AttackSettings, items, system_prompt, with_base: bool) -> None:
    """Check the attack's memory plan on a GPU before anything is copied (one-line message if it cannot fit)."""
    from analysis.core import memory

    memory.guard(
        lm.model,
        lambda shape: memory.attack(
            shape,
            settings.method,
            min(settings.batch_size, max(len(items), 1)),
            memory.longest_prompt(lm.tokenizer, [f"{it.prompt} {it.response or ''}" for it in items], system_prompt),
            with_base,
        ),
    )


def run_attack(
    lm: "LoadedModel",
    variant: Variant,
    settings: AttackSettings,
    data: PromptSet,
    spec: EvalSpec,
    base: "LoadedModel | None" = None,
    n_samples: int = 3,
    progress=None,
) -> AttackCurve:
    """Attack a copy of ``lm`` (``lm`` is untouched) and record ASR, utility and R_ft at every evaluation.

    R_ft needs ``base``: P_k comes from the top ``settings.subspace_k`` of ΔW_align = W_aligned − W_base."""
    from analysis.methods.lox import alignment_factors, retention, retention_scope

    bases = base_w = None
    settings.validate()
    _memory_guard(lm, settings, attack_items(data, settings), spec.system_prompt, with_base=base is not None)
    if base is not None and settings.subspace_k >= 1:  # k = 0 (LoX on the whole ΔW) has no top-k subspace
        bases = {
            n: t.U
            for n, t in alignment_factors(
                lm, base, settings.subspace_k, scope=retention_scope(settings.r_metric)
            ).items()
        }
        with locked(base.model):  # model dtype; fp32 per weight at use
            base_w = {
                n: (base.adapter[n].W if n in base.adapter.linears else resolve(base.model, n)).detach().clone()
                for n in bases
            }
    curve = AttackCurve(variant.name, [], [], [], [], [], [])

    def record(step: int, model, weights) -> None:
        r = evaluate_model(model, lm.tokenizer, spec)
        w = weights() if bases else None
        curve.steps.append(step)
        curve.asr.append(r.asr)
        curve.asr_positive.append(r.asr_positive)
        curve.utility.append(r.utility)
        curve.utility_kind = r.utility_kind
        curve.over_refusal.append(r.over_refusal)
        # with bases set, w and base_w are set too
        curve.r_ft.append(
            retention(
                bases,
                _Lazy(list(bases), lambda n: cast(Mapping, w)[n] - cast(dict, base_w)[n].float()),
                settings.r_metric,
            )
            if bases
            else None
        )
        curve.samples.append([gg.text for gg in r.harmful[:n_samples]])
        curve.attacks.append(list(r.per_prompt("asr") or []))
        keep = ("asr_positive", "utility", "utility_tokens", "over_refusal")
        curve.outcomes.append({k: list(r.outcomes[k]) for k in keep if r.outcomes.get(k)})

    def train_progress(f: float, msg: str) -> None:
        if progress:
            progress(f, f"{msg}, ASR {curve.asr[-1]:.0%}" if curve.asr else msg)

    fine_tune_copy(lm, variant, settings, data, spec.system_prompt, record, train_progress)
    return curve


def run_attack_cached(
    lm: "LoadedModel",
    variant: Variant,
    settings: AttackSettings,
    data: PromptSet,
    spec: EvalSpec,
    base: "LoadedModel | None" = None,
    cache: Cache | None = None,
    progress=None,
) -> AttackCurve:
    """:func:`run_attack` through the disk cache, keyed by model(s), variant spec, settings, data and evaluation."""
    one_run = {  # one run: its own seed only; the default "first" examples leave earlier keys unchanged
        k: v for k, v in asdict(settings).items() if k != "seeds" and not (k == "examples" and v == "first")
    }
    parts = {
        "kind": "attack",
        "v": 4,  # 3: per-prompt attacks kept (paired comparisons of variants); 4: every rate's outcomes too
        "model": lm.fingerprint,
        "base": base.fingerprint if base else None,
        "variant": variant.spec or {"name": variant.name},
        "settings": one_run,
        "data": [[it.prompt, it.response] for it in attack_items(data, settings)],
        "eval": spec.key(),
    }

    def compute() -> dict:
        return asdict(run_attack(lm, variant, settings, data, spec, base, progress=progress))

    return AttackCurve(**(cache or Cache()).get_or_compute(parts, compute, "json"))
