"""Every CLI option with a range or choices refuses a value outside it at parse time (exit 2, one line) before
any model loads; cross-option checks run before the model loads too; widget limits lie inside the valid ranges."""

import argparse
import dataclasses
from pathlib import Path

import pytest

from analysis.cli.main import main
from analysis.cli.parser import parser
from analysis.core import options

SETTINGS = (
    "analysis.methods.critical_regions.build:RegionSettings",
    "analysis.methods.landscape.grid:LandscapeSettings",
    "analysis.methods.lox:LoX",
    "analysis.methods.lox:RecoverySettings",
    "analysis.methods.attacks.finetune:AttackSettings",
    "analysis.core.evaluation:EvalOptions",
    "analysis.methods.depth:DepthOptions",
)


def _class(path: str):
    import importlib

    module, name = path.split(":")
    return getattr(importlib.import_module(module), name)


def _bad_values(action: argparse.Action) -> list[str]:
    """Values just outside what ``action`` accepts (empty when it declares neither a range nor choices)."""
    spec = getattr(action.type, "spec", None)
    out = []
    if action.choices:
        out.append("no-such-choice")
    if spec is not None and spec.choices:
        out.append("no-such-choice")
    if spec is not None and spec.range:
        lo, hi = spec.range
        if lo is not None:
            out.append(f"{lo:g}" if spec.open_lo else f"{lo - 1:g}")
        if hi is not None:
            out.append(f"{hi + 1:g}")
    return out


def _cases() -> list[tuple[str, str, str]]:
    sub = parser()._subparsers._group_actions[0].choices
    cases = []
    for command, p in sub.items():
        for a in p._actions:
            for bad in _bad_values(a):
                cases.append((command, a.option_strings[0] if a.option_strings else "", bad))
    return cases


CASES = _cases()


@pytest.fixture
def loads(monkeypatch):
    """Record every call of the model loaders (and of the demo build) instead of loading."""
    import analysis.core.models as models
    import analysis.data.organism.build_demo as organism_build

    calls = []
    for mod, name in ((models, "load_pair"), (models, "load_model"), (organism_build, "build_demo")):
        monkeypatch.setattr(mod, name, lambda *a, _n=name, **k: calls.append(_n) or pytest.fail(f"{_n} called"))
    return calls


def _run(capsys, argv: list[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err


def test_the_generated_options_cover_every_settings_range():
    """The enumeration is not empty and reaches the options the issue names (and the list and choice kinds)."""
    seen = {(c, f) for c, f, _ in CASES}
    for want in [
        ("regions", "--q"),
        ("regions", "--p"),
        ("regions", "--safety-pct"),
        ("regions", "--score"),
        ("lox", "--alpha"),
        ("lox", "--k"),
        ("lox", "--scope"),
        ("attack", "--lr"),
        ("attack", "--alpha"),
        ("attack", "--variants"),
        ("landscape", "--groups"),
        ("landscape", "--steps"),
        ("landscape", "--lo"),
        ("recovery", "--ranks"),
        ("recovery", "--tolerance"),
        ("prefill", "--ks"),
        ("disalign", "--alphas"),
        ("evaluate", "--split"),
        ("evaluate", "--max-new-tokens"),
        ("depth", "--positions"),
    ]:
        assert want in seen, want
    assert len(CASES) >= 100, len(CASES)


@pytest.mark.parametrize("command,flag,bad", CASES, ids=[" ".join(c).strip() for c in CASES])
def test_out_of_range_option_is_one_line_and_loads_nothing(capsys, loads, command, flag, bad):
    argv = [command, flag, bad] if flag else [command, bad]
    code, err = _run(capsys, argv)
    assert code == 2, (argv, err)
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert flag in err or not flag, err
    assert loads == []


@pytest.mark.parametrize(
    "argv,words",
    [
        (["regions", "--q", "5"], "argument --q: must be between 0 and 1, got 5"),
        (["lox", "--alpha", "12"], "argument --alpha: must be between -10 and 10, got 12"),
        (["attack", "--alpha", "-12"], "argument --alpha: must be between -10 and 10, got -12"),
        (["attack", "--lr", "0"], "argument --lr: must be in (0, 1], got 0"),
        (["landscape", "--groups", "linear,bogus"], "must be one of linear, norm"),
        (["recovery", "--ranks", "1,a"], "comma list of integers"),
    ],
)
def test_named_out_of_range_options(capsys, loads, argv, words):
    code, err = _run(capsys, argv)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1, err
    assert loads == []


def test_cross_option_checks_run_before_any_model_loads(capsys, loads, tmp_path):
    f = tmp_path / "cal.csv"
    f.write_text("prompt\nhow do I pick a lock\n")
    for argv, words in (
        (["landscape", "--lo", "1", "--hi", "0"], "lo <= hi"),
        (["landscape", "--draw", "reference", "--norm", "filter"], "layer normalisation"),
        (["regions", "--cal-harmful", str(f)], "give both --cal-harmful and --cal-benign"),
        (["build-demo", "--seed", "3"], "give --out"),
        (["build-demo", "--out", str(tmp_path / "o"), "--base-from", str(tmp_path)], "has no base/ model"),
        (["evaluate", "--harmful", "instruct"], "is a benign set"),
        (["evaluate", "--harmful", "bogusset"], "unknown prompt set"),
    ):
        code, err = _run(capsys, argv)
        assert code == 2 and words in err and err.startswith("error: "), (argv, err)
        assert len(err.strip().splitlines()) == 1
    assert loads == []


def test_a_built_in_set_is_resolved_once_with_the_chosen_split(capsys, monkeypatch):
    """``--harmful advbench --split val``: resolved once, before the model loads, from the val split; the
    command uses that set (no second resolution with another split)."""
    import analysis.core.models as models
    import analysis.data.sets as sets
    from analysis.cli.common import eval_sets

    calls = []
    real = sets.resolve_set
    monkeypatch.setattr(sets, "resolve_set", lambda *a, **k: calls.append(a) or real(*a, **k))
    seen = {}

    def fake_load(*a, **k):
        seen["sets"] = dict(args_box["args"].sets)
        raise ValueError("stop before loading")

    args_box = {}
    real_before = __import__("analysis.cli.checks", fromlist=["before_load"]).before_load

    def spy(args):
        args_box["args"] = args
        return real_before(args)

    monkeypatch.setattr("analysis.cli.checks.before_load", spy)
    monkeypatch.setattr(models, "load_pair", fake_load)
    code, err = _run(capsys, ["evaluate", "--harmful", "advbench", "--split", "val"])
    assert code == 2 and "stop before loading" in err
    assert calls == [("advbench", "harmful", "val")]
    harmful = seen["sets"]["harmful"]
    assert harmful.name == "advbench-val" and len(harmful) > 0
    assert {it.meta["split"] for it in harmful.items} == {"val"}

    from analysis.data.prompts import PromptSet

    class Provider:  # the model's default sets fill in what the user did not give
        def sets(self, split):
            return {"harmful": PromptSet("provider-harmful", []), "benign": PromptSet(f"provider-benign-{split}", [])}

    class LM:
        data = Provider()

    args = args_box["args"]
    calls.clear()
    got = eval_sets(argparse.Namespace(**{**vars(args), "n": None}), LM())
    assert got["harmful"] is harmful and got["benign"].name == "provider-benign-val" and calls == []


def _bounded_specs():
    for path in SETTINGS:
        cls = _class(path)
        for name, spec in options.specs(cls).items():
            yield cls, name, spec


def test_widget_limits_lie_inside_the_valid_ranges():
    n = 0
    for cls, name, spec in _bounded_specs():
        default = options.default(cls, name)
        options.check_value(default, spec)  # every default is valid
        if spec.kind is str or spec.many or not (spec.widget_range or (spec.range and None not in spec.range)):
            continue
        lo, hi, step = options.limits(cls, name)
        vlo, vhi = spec.range or (None, None)
        assert lo <= hi and (vlo is None or lo >= vlo) and (vhi is None or hi <= vhi), (cls.__name__, name)
        if default is not None and spec.widget_range:
            assert lo <= default <= hi, (cls.__name__, name, default)
        n += 1
    assert n >= 15, n


def test_a_widget_range_wider_than_the_valid_range_is_refused():
    with pytest.raises(ValueError, match="wider than the valid range"):
        options.option(0.5, range=(0, 1), widget_range=(0, 2), help="x")


def test_check_names_the_field_in_one_line():
    from analysis.methods.critical_regions.build import RegionSettings
    from analysis.methods.lox import LoX

    with pytest.raises(ValueError, match=r"^alpha must be between -10 and 10, got 12$"):
        LoX(alpha=12).validate()
    with pytest.raises(ValueError, match=r"^q must be between 0 and 1, got 5$"):
        RegionSettings(q=5).validate()
    with pytest.raises(ValueError, match=r"^group must be one of matrix, row, layer, got 'col'$"):
        RegionSettings(group="col").validate()
    RegionSettings(q=1.0).validate()


def test_core_and_methods_do_not_import_the_cli():
    root = Path(__file__).resolve().parents[1] / "analysis"
    bad = [
        str(f.relative_to(root))
        for sub in ("core", "methods", "data", "judging")
        for f in (root / sub).rglob("*.py")
        if "analysis.cli" in f.read_text(encoding="utf-8")
    ]
    assert bad == []


def test_settings_fields_with_metadata_keep_dataclass_behaviour():
    from analysis.methods.attacks.finetune import AttackSettings

    s = AttackSettings(lr=3e-4)
    assert dataclasses.asdict(s)["lr"] == 3e-4 and AttackSettings().lr == 1e-4
