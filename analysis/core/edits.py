"""Reversible in-place weight edits and the per-model lock.

An edit names weights (uniform decoder names from :mod:`arch`, or raw parameter paths such as
``model.embed_tokens.weight``) and says how to change them. ``with applied(model, edit): ...`` holds the
model's lock (and the locks of the models the edit reads), backs up exactly the tensors it touches, applies
the edit, and restores the backups bit-exactly on exit — also when the body or the edit itself raises.

Every edit names itself: ``edit.spec()`` is a JSON-serialisable dict that determines the edit completely
(as scikit-learn's ``get_params``), used in cache keys. An edit built by the library carries a ``recipe``
(the settings and data it was made from); any other edit is named by a content hash of its tensors.
An edit may also act on activations while applied (``activate``), e.g. a direction ablation by hooks.
"""

from __future__ import annotations

import hashlib
import threading
import time
import weakref
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Iterator

import torch
from torch import nn

from analysis.core.arch import UnsupportedArchitecture, adapter_of

_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()
WAIT_POLL_S = 0.5  # how often a thread waiting for a busy model reports its wait
_WAITING = threading.local()  # this thread's report of a wait (see on_lock_wait)


def model_lock(model: nn.Module) -> threading.RLock:
    """The one lock shared by every user (every Streamlit session) of a loaded model."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


def on_lock_wait(report: Callable[[float | None], None] | None) -> None:
    """While this thread waits for a model another thread (another Streamlit session) holds, call
    ``report(seconds waited)`` every :data:`WAIT_POLL_S`, and ``report(None)`` once the model is free. A page
    shows the wait, and its report is where Streamlit interrupts a run the user left: an exception from
    ``report`` abandons the wait without taking the lock. None: wait silently (the default)."""
    _WAITING.report = report


def _take(lock: threading.RLock) -> None:
    """Acquire ``lock``; a wait is reported to this thread's :func:`on_lock_wait` callback."""
    if lock.acquire(blocking=False):
        return
    report = getattr(_WAITING, "report", None)
    if report is None:
        lock.acquire()
        return
    start = time.monotonic()
    while not lock.acquire(timeout=WAIT_POLL_S):
        report(time.monotonic() - start)
    try:
        report(None)
    except BaseException:
        lock.release()
        raise


def resolve(model: nn.Module, name: str) -> torch.Tensor:
    """The (d_out × d_in) view of a decoder weight, or a raw parameter by its path."""
    try:
        adapter = adapter_of(model)
        if name in adapter.linears:
            return adapter.linears[name].W
    except UnsupportedArchitecture:
        pass
    try:
        return model.get_parameter(name).data
    except AttributeError:
        raise KeyError(f"no weight named {name!r} in this model") from None


def tensor_digest(h: "hashlib._Hash", t: torch.Tensor) -> None:
    """Feed a tensor's dtype, shape and exact bytes into ``h``."""
    t = t.detach().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.cpu().reshape(-1).view(torch.uint8).numpy().tobytes())


class Edit:
    """Base class: ``targets`` lists weight names; ``apply_to(name, W)`` changes W in place.

    Subclasses are dataclasses with a ``recipe`` field (``None`` = name the edit by its content)."""

    recipe: dict | None = None

    def targets(self) -> list[str]:
        raise NotImplementedError

    def apply_to(self, name: str, W: torch.Tensor) -> None:
        raise NotImplementedError

    def sources(self) -> list[nn.Module]:
        """Other models whose weights this edit reads while applied (locked after the edited model)."""
        return []

    def activate(self, model: nn.Module) -> ContextManager:
        """An activation-level change held while the edit is applied (none by default)."""
        return nullcontext()

    def spec(self) -> dict:
        """What determines this edit: its recipe, or a content hash of its tensors."""
        if self.recipe is not None:
            return {"type": type(self).__name__, "recipe": self.recipe}
        h = hashlib.sha256()
        self._digest(h)
        return {"type": type(self).__name__, "sha256": h.hexdigest()}

    def _digest(self, h) -> None:
        raise NotImplementedError(f"{type(self).__name__} needs a recipe to name itself")


@dataclass
class Mask(Edit):
    """Set masked entries to zero, or to the matching entries of ``base`` (restore-to-base pruning)."""

    masks: dict[str, torch.Tensor]
    base: dict[str, torch.Tensor] | None = None
    recipe: dict | None = None
    reads: tuple = field(default=(), compare=False, repr=False)  # the base model, when ``base`` views it

    def targets(self) -> list[str]:
        return list(self.masks)

    def sources(self) -> list[nn.Module]:
        return list(self.reads)

    def _digest(self, h) -> None:
        for n in sorted(self.masks):
            h.update(n.encode())
            tensor_digest(h, self.masks[n])
            if self.base is not None:
                tensor_digest(h, self.base[n])

    def apply_to(self, name: str, W: torch.Tensor) -> None:
        m = self.masks[name].to(W.device)
        if m.shape != W.shape:
            raise ValueError(f"mask for {name} has shape {tuple(m.shape)}, weight has {tuple(W.shape)}")
        if self.base is None:
            W.masked_fill_(m, 0)
        else:
            W.copy_(torch.where(m, self.base[name].to(W.device, W.dtype), W))

    def fraction(self) -> float:
        total = sum(m.numel() for m in self.masks.values())
        return sum(int(m.sum()) for m in self.masks.values()) / max(total, 1)


@dataclass
class Add(Edit):
    """W += scale · delta."""

    deltas: dict[str, torch.Tensor]
    scale: float = 1.0
    recipe: dict | None = None

    def targets(self) -> list[str]:
        return list(self.deltas)

    def _digest(self, h) -> None:
        h.update(repr(float(self.scale)).encode())
        for n in sorted(self.deltas):
            h.update(n.encode())
            tensor_digest(h, self.deltas[n])

    def apply_to(self, name: str, W: torch.Tensor) -> None:
        W.add_(self.deltas[name].to(W.device, W.dtype), alpha=self.scale)


@dataclass
class LowRank(Edit):
    """W += scale · A @ B with A (d_out × r) and B (r × d_in), computed in fp32."""

    factors: dict[str, tuple[torch.Tensor, torch.Tensor]]
    scale: float = 1.0
    recipe: dict | None = None

    def targets(self) -> list[str]:
        return list(self.factors)

    def _digest(self, h) -> None:
        h.update(repr(float(self.scale)).encode())
        for n in sorted(self.factors):
            h.update(n.encode())
            for t in self.factors[n]:
                tensor_digest(h, t)

    def apply_to(self, name: str, W: torch.Tensor) -> None:
        A, B = self.factors[name]
        W.copy_((W.float() + self.scale * (A.float().to(W.device) @ B.float().to(W.device))).to(W.dtype))


@dataclass
class Replace(Edit):
    """W ← new weight."""

    weights: dict[str, torch.Tensor] = field(default_factory=dict)
    recipe: dict | None = None

    def targets(self) -> list[str]:
        return list(self.weights)

    def _digest(self, h) -> None:
        for n in sorted(self.weights):
            h.update(n.encode())
            tensor_digest(h, self.weights[n])

    def apply_to(self, name: str, W: torch.Tensor) -> None:
        new = self.weights[name]
        if new.shape != W.shape:
            raise ValueError(f"replacement for {name} has shape {tuple(new.shape)}, weight has {tuple(W.shape)}")
        W.copy_(new.to(W.device, W.dtype))


@dataclass
class Deferred(Edit):
    """An edit named by its recipe and built only when it is applied: a cache hit never builds it (a seeded
    random control, say, whose building takes the model's lock). ``kind`` is the built edit's class name, so
    both name themselves alike; building checks that they do."""

    kind: str
    build: Callable[[], Edit] = field(repr=False, compare=False)
    recipe: dict | None = None
    _built: Edit | None = field(default=None, repr=False, compare=False)

    def spec(self) -> dict:
        return {"type": self.kind, "recipe": self.recipe}

    def built(self) -> Edit:
        if self._built is None:
            edit = self.build()
            if edit.spec() != self.spec():
                raise RuntimeError(f"a deferred edit built {edit.spec()}, named {self.spec()}")
            self._built = edit
        return self._built

    def targets(self) -> list[str]:
        return self.built().targets()

    def apply_to(self, name: str, W: torch.Tensor) -> None:
        self.built().apply_to(name, W)

    def sources(self) -> list[nn.Module]:  # called first by :func:`applied`, before it takes the locks
        return self.built().sources()

    def activate(self, model: nn.Module) -> ContextManager:
        return self.built().activate(model)


@contextmanager
def applied(model: nn.Module, *edits: Edit) -> Iterator[nn.Module]:
    """Apply ``edits`` in order for the body of the ``with``; restore every touched tensor exactly."""
    grad_mode = torch.is_grad_enabled()
    readers = [m for e in edits for m in e.sources()]
    with locked(model, *readers), torch.no_grad(), ExitStack() as active:
        names = list(dict.fromkeys(n for e in edits for n in e.targets()))
        views = {n: resolve(model, n) for n in names}
        # back up each underlying storage once (a transposed view shares its parameter's storage)
        backups: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for v in views.values():
            key = v.untyped_storage().data_ptr()
            if key not in backups:
                base = v.T if not v.is_contiguous() and v.T.is_contiguous() else v
                backups[key] = (base, base.detach().clone())
        try:
            for e in edits:
                for n in e.targets():
                    e.apply_to(n, views[n])
            for e in edits:
                active.enter_context(e.activate(model))
            with torch.set_grad_enabled(grad_mode):
                yield model
        finally:
            for live, saved in backups.values():
                live.copy_(saved)


@contextmanager
def locked(*models: nn.Module) -> Iterator[nn.Module | None]:
    """Hold the locks of ``models``, in the order given (for reading models other sessions may be editing).
    Library-internal: always the edited (aligned) model first, then its base or other models, so no two
    sessions wait in a cycle. Pages never call this: library functions take the locks they need."""
    with ExitStack() as stack:
        for m in dict.fromkeys(models):
            lock = model_lock(m)
            _take(lock)
            stack.callback(lock.release)
        yield models[0] if models else None


def checksum(model: nn.Module) -> str:
    """Exact content hash of every parameter (for tests and integrity checks; hashes all bytes)."""
    import hashlib

    h = hashlib.sha256()
    for name, p in model.named_parameters():
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
