"""Where the model tells harmful from benign: residual-stream states, 2D views, probes, the refusal direction.

- States: the residual stream at every layer boundary (index 0 = embeddings, l = after decoder layer l), at the
  last prompt token and averaged over the prompt, for formatted chat prompts (left-padded, explicit positions).
- Views: scikit-learn PCA or umap-learn UMAP of one layer's states, seeded.
- Probes: cross-validated logistic-regression accuracy of harmful vs benign, per layer.
- Refusal direction (Arditi et al.; Li & Kim's "binary choice"): per layer, the difference of the mean
  last-token states, harmful − benign, unit-normalised. :func:`ablated` projects it out of every write into
  the residual stream (embeddings, attention and MLP outputs) with forward hooks — a reversible activation
  edit, held under the model's lock and removed on exit.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from analysis.core.arch import adapter_of, linear_modules
from analysis.core.cache import Cache
from analysis.core.chat import encode_prompts, format_prompt
from analysis.core.edits import Edit, applied, tensor_digest
from analysis.core.generation import left_padded
from analysis.data.prompts import PromptSet

if TYPE_CHECKING:
    from analysis.core.evaluation import EvalResult, EvalSpec
    from analysis.core.models import LoadedModel

POOLS = ("last", "mean")
PROJECTIONS = ("pca", "umap")


@dataclass
class States:
    last: torch.Tensor  # (layers + 1, N, d) — index 0 is the embedding output
    mean: torch.Tensor  # (layers + 1, N, d)

    def get(self, pool: str) -> torch.Tensor:
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        return self.last if pool == "last" else self.mean

    @property
    def n_layers(self) -> int:
        return self.last.shape[0]


@torch.no_grad()
def hidden_states(
    model, tokenizer, prompts: list[str], system_prompt: str | None = None, batch_size: int = 32
) -> States:
    """Residual-stream states of every prompt at every layer boundary (fp32, CPU)."""
    if not prompts:
        raise ValueError("no prompts to read hidden states from")
    dev = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    rows = encode_prompts(tokenizer, [format_prompt(tokenizer, p, system_prompt) for p in prompts])
    last, mean = [], []
    for s in range(0, len(rows), batch_size):
        ids, mask, pos = (t.to(dev) for t in left_padded(rows[s : s + batch_size], pad))
        hs = model(input_ids=ids, attention_mask=mask, position_ids=pos, output_hidden_states=True).hidden_states
        h = torch.stack([x.float() for x in hs])  # (L+1, B, T, d)
        m = mask.to(h.dtype)[None, :, :, None]
        last.append(h[:, :, -1].cpu())
        mean.append(((h * m).sum(2) / m.sum(2)).cpu())
    return States(torch.cat(last, 1), torch.cat(mean, 1))


def _edit_key(edit: "Edit | None") -> dict | None:
    return edit.spec() if edit is not None else None


def states_cached(
    lm: "LoadedModel",
    prompts: PromptSet,
    system_prompt: str | None = None,
    edit: "Edit | None" = None,
    cache: Cache | None = None,
) -> States:
    """:func:`hidden_states` through the cache, with ``edit`` applied in place (under the model's lock, restored
    after) only on a cache miss; keyed by the model's fingerprint and the edit's own spec."""
    from analysis.core.edits import applied

    parts = {
        "kind": "hidden-states",
        "v": 2,
        "model": lm.fingerprint,
        "edit": _edit_key(edit),
        "prompts": prompts.prompts(),
        "system": system_prompt,
    }

    def compute():
        with applied(lm.model, *([edit] if edit is not None else [])):
            s = hidden_states(lm.model, lm.tokenizer, prompts.prompts(), system_prompt)
        return {"last": s.last, "mean": s.mean}

    d = (cache or Cache()).get_or_compute(parts, compute, "safetensors")
    return States(d["last"], d["mean"])


def projection_cached(
    lm: "LoadedModel",
    harmful: PromptSet,
    benign: PromptSet,
    layer: int,
    pool: str = "last",
    method: str = "pca",
    system_prompt: str | None = None,
    edit: "Edit | None" = None,
    cache: Cache | None = None,
    seed: int = 0,
) -> np.ndarray:
    """2D view of one layer's harmful + benign states (harmful rows first), cached; reads cached states."""
    cache = cache or Cache()
    parts = {
        "kind": "projection",
        "v": 2,
        "model": lm.fingerprint,
        "edit": _edit_key(edit),
        "harmful": harmful.prompts(),
        "benign": benign.prompts(),
        "system": system_prompt,
        "layer": layer,
        "pool": pool,
        "method": method,
        "seed": seed,
    }

    def compute():
        sh = states_cached(lm, harmful, system_prompt, edit, cache)
        sb = states_cached(lm, benign, system_prompt, edit, cache)
        return project(torch.cat([sh.get(pool)[layer], sb.get(pool)[layer]]).numpy(), method, seed).tolist()

    return np.asarray(cache.get_or_compute(parts, compute, "json"))


def project(X: np.ndarray, method: str = "pca", seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """2D coordinates of the rows of X (standardised first)."""
    if method not in PROJECTIONS:
        raise ValueError(f"projection must be one of {PROJECTIONS}, got {method!r}")
    X = np.asarray(X, dtype=np.float64)
    if len(X) < 3:
        raise ValueError(f"a 2D view needs at least 3 prompts, got {len(X)}")
    X = (X - X.mean(0)) / (X.std(0) + 1e-8)
    if method == "pca":
        from sklearn.decomposition import PCA

        return PCA(n_components=2, random_state=seed).fit_transform(X)
    import umap

    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(n_neighbors, len(X) - 1),
        random_state=seed,
        init="random" if len(X) < 10 else "spectral",
    )
    return reducer.fit_transform(X)


def probe_cv(
    X_by_layer: torch.Tensor, labels: np.ndarray, folds: int = 5, seed: int = 0
) -> tuple[list[float], list[list[bool]]]:
    """Cross-validated logistic-regression probes per layer: (mean accuracy over the folds, as scikit-learn's
    ``cross_val_score``, and per prompt whether the fold that held it out classified it right — the outcomes a
    paired test of two models on the same prompts needs)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    counts = np.bincount(labels.astype(int))
    if len(counts) < 2 or counts.min() < folds:
        raise ValueError(f"probes need at least {folds} prompts of each class, got {counts.tolist()}")
    splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(labels)), labels))
    accuracy, correct = [], []
    for X in X_by_layer:
        Xn, hit = X.numpy(), np.zeros(len(labels), dtype=bool)
        per_fold = []
        for train, test in splits:
            clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0)).fit(
                Xn[train], labels[train]
            )
            hit[test] = clf.predict(Xn[test]) == labels[test]
            per_fold.append(float(hit[test].mean()))
        accuracy.append(float(np.mean(per_fold)))
        correct.append(hit.tolist())
    return accuracy, correct


def probe_accuracy(X_by_layer: torch.Tensor, labels: np.ndarray, folds: int = 5, seed: int = 0) -> list[float]:
    """Mean cross-validated accuracy of a logistic-regression probe per layer."""
    return probe_cv(X_by_layer, labels, folds, seed)[0]


def probe_cv_cached(
    lm: "LoadedModel",
    harmful: PromptSet,
    benign: PromptSet,
    system_prompt: str | None = None,
    edit: "Edit | None" = None,
    pool: str = "last",
    cache: Cache | None = None,
) -> dict:
    """:func:`probe_cv` of harmful vs benign states per layer ({"accuracy": per layer, "correct": per layer, per
    prompt, harmful first}), cached like the states it reads."""
    cache = cache or Cache()
    parts = {
        "kind": "probe-accuracy",
        "v": 3,
        "model": lm.fingerprint,
        "edit": _edit_key(edit),
        "harmful": harmful.prompts(),
        "benign": benign.prompts(),
        "system": system_prompt,
        "pool": pool,
        "folds": 5,
        "seed": 0,
    }

    def compute():
        sh = states_cached(lm, harmful, system_prompt, edit, cache)
        sb = states_cached(lm, benign, system_prompt, edit, cache)
        y = np.array([1] * len(harmful) + [0] * len(benign))
        accuracy, correct = probe_cv(torch.cat([sh.get(pool), sb.get(pool)], 1), y)
        return {"accuracy": accuracy, "correct": correct}

    return cache.get_or_compute(parts, compute, "json")


def refusal_directions(harmful: States, benign: States, pool: str = "last") -> torch.Tensor:
    """Unit difference-of-means directions, harmful − benign, one per layer boundary: (layers + 1, d)."""
    d = harmful.get(pool).mean(1) - benign.get(pool).mean(1)
    return d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _residual_writers(model) -> list[torch.nn.Module]:
    """Modules whose outputs are added to the residual stream: embeddings, o_proj and down_proj."""
    adapter = adapter_of(model)
    writers = [m for n, (_, m) in linear_modules(model).items() if adapter[n].module in ("o_proj", "down_proj")]
    emb = [model.get_input_embeddings()]
    wpe = getattr(getattr(model, "transformer", None), "wpe", None)  # GPT-2 position embeddings
    return emb + ([wpe] if wpe is not None else []) + writers


@dataclass
class DirectionAblation(Edit):
    """An activation edit: project ``direction`` out of every write into the residual stream (embeddings,
    attention and MLP outputs) with forward hooks, removed when the edit is undone. Changes no weight."""

    direction: torch.Tensor
    recipe: dict | None = None

    def targets(self) -> list[str]:
        return []

    def _digest(self, h) -> None:
        tensor_digest(h, self.direction.float())

    @contextmanager
    def activate(self, model) -> Iterator[None]:
        r = self.direction.float() / self.direction.float().norm().clamp_min(1e-12)

        def hook(mod, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            rr = r.to(out.device, out.dtype)
            new = out - (out @ rr)[..., None] * rr
            return (new, *output[1:]) if isinstance(output, tuple) else new

        handles = [m.register_forward_hook(hook) for m in _residual_writers(model)]
        try:
            yield
        finally:
            for h in handles:
                h.remove()


@contextmanager
def ablated(model, direction: torch.Tensor) -> Iterator[None]:
    """Project ``direction`` out of every write into the residual stream while inside the ``with``
    (the model's lock is held)."""
    with applied(model, DirectionAblation(direction)):
        yield


@dataclass
class AblationScan:
    layers: list[int]
    asr: list[float]
    asr_positive: list[float | None]  # really complies (where the spec has a compliance judge)
    utility: list[float | None]
    over_refusal: list[float]
    replies: list[list[str]]  # harmful replies per layer
    baseline_asr: float
    utility_kind: str = "none"
    baseline: EvalResult | None = None  # the unedited model's evaluation (its per-prompt outcomes)
    results: list[EvalResult] = field(default_factory=list)  # each layer's ablated evaluation, in ``layers`` order

    @property
    def best_layer(self) -> int:
        return self.layers[int(np.argmax(self.asr))]


def val_chosen_layer(
    lm: "LoadedModel",
    directions: torch.Tensor,
    spec: "EvalSpec",
    layers: list[int] | None = None,
    cache: Cache | None = None,
    progress=None,
) -> tuple[int, AblationScan] | None:
    """The layer whose direction's ablation raises ASR most on the model's *validation* prompts (as many per set
    as ``spec`` has, with its system prompt, reply length and judge), and that validation scan: the layer a page
    reports is then not chosen on the prompts it reports on. None when the model's data has no validation split."""
    from dataclasses import replace

    try:
        sets = lm.data.sets("val", max(len(spec.harmful), len(spec.benign)))
    except (ValueError, FileNotFoundError, KeyError):
        return None
    val = replace(spec, harmful=sets["harmful"].head(len(spec.harmful)), benign=sets["benign"].head(len(spec.benign)))
    val = replace(val, compliance=lm.data.compliance_judge(val.harmful) or spec.compliance)
    scan = ablation_scan(lm, directions, val, layers, cache, progress)
    return (scan.best_layer, scan) if scan.layers else None


def ablation_scan(
    lm: "LoadedModel",
    directions: torch.Tensor,
    spec: "EvalSpec",
    layers: list[int] | None = None,
    cache: Cache | None = None,
    progress=None,
) -> AblationScan:
    """ASR / utility with each layer's refusal direction ablated everywhere (each one cached)."""
    from analysis.core.evaluation import evaluate

    cache = cache or Cache()
    layers = list(range(directions.shape[0])) if layers is None else layers
    base = evaluate(lm, spec, cache=cache)
    out = AblationScan([], [], [], [], [], [], base.asr, base.utility_kind, baseline=base)
    for i, layer in enumerate(layers):
        e = evaluate(lm, spec, DirectionAblation(directions[layer]), cache=cache)
        out.layers.append(layer)
        out.asr.append(e.asr)
        out.asr_positive.append(e.asr_positive)
        out.utility.append(e.utility)
        out.over_refusal.append(e.over_refusal)
        out.replies.append([g.text for g in e.harmful])
        out.results.append(e)
        if progress:
            progress((i + 1) / len(layers), f"direction {i + 1} of {len(layers)} ablated: ASR {e.asr:.0%}")
    return out


def refusal_directions_for(
    lm: "LoadedModel",
    harmful: PromptSet,
    benign: PromptSet,
    system_prompt: str | None = None,
    cache: Cache | None = None,
) -> torch.Tensor:
    """The difference-of-means directions of the model's own states on these (training) prompts."""
    return refusal_directions(
        states_cached(lm, harmful, system_prompt, cache=cache), states_cached(lm, benign, system_prompt, cache=cache)
    )
