"""Reversible edits: many random edit/restore cycles with injected exceptions keep weights bit-exact."""

import random
import threading

import pytest
import torch

from analysis.core.arch import Adapter
from analysis.core.edits import Add, LowRank, Mask, Replace, applied, checksum, model_lock
from conftest import tiny_model


class Boom(RuntimeError):
    pass


def _random_edit(rng: random.Random, adapter: Adapter):
    names = rng.sample(list(adapter.linears), k=rng.randint(1, 4))
    kind = rng.choice(["mask", "add", "lowrank", "replace", "mask_base"])
    shapes = {n: adapter[n].shape for n in names}
    if kind == "mask":
        return Mask({n: torch.rand(s) < 0.3 for n, s in shapes.items()})
    if kind == "mask_base":
        return Mask(
            {n: torch.rand(s) < 0.3 for n, s in shapes.items()}, base={n: torch.randn(s) for n, s in shapes.items()}
        )
    if kind == "add":
        return Add({n: torch.randn(s) for n, s in shapes.items()}, scale=rng.uniform(-2, 2))
    if kind == "lowrank":
        return LowRank({n: (torch.randn(s[0], 2), torch.randn(2, s[1])) for n, s in shapes.items()}, scale=0.5)
    return Replace({n: torch.randn(s) for n, s in shapes.items()})


@pytest.mark.parametrize("family", ["llama", "gpt2", "phi3"])
def test_random_cycles_with_exceptions_restore_bit_exactly(family):
    model = tiny_model(family)
    adapter = Adapter(model)
    before = checksum(model)
    x = torch.tensor([[1, 4, 9, 16, 25]])
    logits0 = model(input_ids=x).logits
    rng = random.Random(0)
    torch.manual_seed(0)
    raised = changed = 0
    for _ in range(60):
        edits = [_random_edit(rng, adapter) for _ in range(rng.randint(1, 3))]
        try:
            with applied(model, *edits):
                if checksum(model) != before:
                    changed += 1
                if rng.random() < 0.4:
                    raise Boom()
        except Boom:
            raised += 1
        assert checksum(model) == before
    assert raised > 10 and changed >= 55
    assert torch.equal(model(input_ids=x).logits, logits0)


def test_failure_inside_an_edit_still_restores():
    model = tiny_model("llama")
    before = checksum(model)
    good = Add({"layers.0.mlp.down_proj": torch.ones(32, 64)})
    bad = Replace({"layers.1.mlp.up_proj": torch.zeros(3, 3)})  # wrong shape: raises after `good` applied
    with pytest.raises(ValueError, match="shape"):
        with applied(model, good, bad):
            pass
    assert checksum(model) == before


def test_edits_do_what_they_say():
    model = tiny_model("gpt2")
    a = Adapter(model)
    name = "layers.1.mlp.down_proj"
    W0 = a[name].W.clone()
    mask = torch.zeros_like(W0, dtype=torch.bool)
    mask[:, :5] = True
    with applied(model, Mask({name: mask})):
        assert torch.all(a[name].W[:, :5] == 0) and torch.equal(a[name].W[:, 5:], W0[:, 5:])
    A, B = torch.randn(W0.shape[0], 1), torch.randn(1, W0.shape[1])
    with applied(model, LowRank({name: (A, B)}, scale=2.0)):
        assert torch.allclose(a[name].W, W0 + 2 * A @ B, atol=1e-5)
    base = torch.randn_like(W0)
    with applied(model, Mask({name: mask}, base={name: base})):
        assert torch.equal(a[name].W[:, :5], base[:, :5])
    wte0 = model.transformer.wte.weight.detach().clone()
    with applied(model, Add({"transformer.wte.weight": torch.ones(64, 32)})):  # raw parameter path
        assert torch.allclose(model.transformer.wte.weight, wte0 + 1)
    assert torch.equal(model.transformer.wte.weight, wte0)
    assert torch.equal(a[name].W, W0)


def test_grad_mode_of_caller_is_kept_inside():
    model = tiny_model("llama")
    with applied(model, Add({"layers.0.attn.q_proj": torch.zeros(32, 32)})):
        assert torch.is_grad_enabled()
    with torch.no_grad(), applied(model):
        assert not torch.is_grad_enabled()


def test_concurrent_sessions_never_see_each_others_edits():
    """Two threads edit the same model; each sees only its own edit inside its context."""
    model = tiny_model("llama")
    name = "layers.0.mlp.up_proj"
    W = Adapter(model)[name].W
    before = checksum(model)
    seen_wrong = []

    def worker(value: float):
        for _ in range(30):
            with applied(model, Replace({name: torch.full((64, 32), value)})):
                if not torch.all(W == value):
                    seen_wrong.append(value)

    threads = [threading.Thread(target=worker, args=(v,)) for v in (1.0, 2.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not seen_wrong
    assert checksum(model) == before
    assert model_lock(model) is model_lock(model)


def test_a_thread_waiting_for_a_busy_model_reports_its_wait_and_can_abandon_it():
    """A page's run waiting for a model another session holds reports the wait (the page shows it, and Streamlit
    stops or reruns the run from inside the report); an exception from the report leaves without the lock."""
    from analysis.core.edits import WAIT_POLL_S, locked, on_lock_wait

    model = tiny_model("llama")
    name = "layers.0.mlp.up_proj"
    before = checksum(model)
    reports: dict[str, list] = {"patient": [], "impatient": []}
    inside: list[str] = []

    def session(who: str, give_up_after: int | None) -> None:
        def report(waited):
            reports[who].append(waited)
            if give_up_after is not None and len(reports[who]) >= give_up_after:
                raise Boom("the user changed a widget")

        on_lock_wait(report)
        try:
            with applied(model, Replace({name: torch.full((64, 32), 3.0)})):
                inside.append(who)
        except Boom:
            inside.append(f"{who} gave up")

    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with locked(model):
            held.set()
            release.wait(10)

    h = threading.Thread(target=holder)
    h.start()
    held.wait(5)
    threads = [threading.Thread(target=session, args=a) for a in (("patient", None), ("impatient", 2))]
    for t in threads:
        t.start()
    threads[1].join(10)
    assert inside == ["impatient gave up"] and len(reports["impatient"]) == 2  # left while the model was busy
    threading.Event().wait(3 * WAIT_POLL_S)
    assert inside == ["impatient gave up"]  # the patient one still waits
    waited = reports["patient"]
    assert len(waited) >= 3 and all(b > a for a, b in zip(waited, waited[1:])), waited
    release.set()
    h.join(5)
    threads[0].join(10)
    assert inside == ["impatient gave up", "patient"] and reports["patient"][-1] is None  # "free now" closes it
    probe = threading.Thread(target=lambda: inside.append(model_lock(model).acquire(blocking=False)))
    probe.start()
    probe.join()
    assert inside[-1] is True  # nobody kept the lock
    assert checksum(model) == before


def test_an_uncontended_model_is_taken_without_a_report():
    from analysis.core.edits import locked, on_lock_wait

    model, calls = tiny_model("llama"), []
    on_lock_wait(calls.append)
    try:
        with locked(model), locked(model):  # re-entrant within one thread
            pass
    finally:
        on_lock_wait(None)
    assert calls == []
