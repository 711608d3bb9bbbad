"""The shape of the code: no import cycles, no private imports across modules, no
locks or cache keys in pages, no organism data or checks outside the organism package, defaults in one place."""

import ast
import collections
import re
from pathlib import Path

from conftest import ROOT

ANALYSIS = ROOT / "analysis"


def _modules() -> dict[str, Path]:
    out = {}
    for f in ANALYSIS.rglob("*.py"):
        name = ".".join(f.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = f
    return out


def _imports(name: str, f: Path, mods: dict[str, Path]):
    pkg = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = pkg.split(".")
                target = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("analysis"):
                yield target, [a.name for a in node.names]


def _graph():
    mods = _modules()
    graph, private = collections.defaultdict(set), []
    for name, f in mods.items():
        for target, names in _imports(name, f, mods):
            for c in [target] + [f"{target}.{n}" for n in names]:
                if c in mods and c != name and not name.startswith(c + "."):
                    graph[name].add(c)
            private += [(name, target, n) for n in names if n.startswith("_") and not n.startswith("__")]
    return graph, private


def test_no_import_cycles_and_no_private_imports():
    graph, private = _graph()
    cycles = set()
    for a in list(graph):
        for b in graph[a]:
            seen, stack = {b}, [b]
            while stack:
                x = stack.pop()
                if x == a:
                    cycles.add(tuple(sorted((a, b))))
                    break
                for y in graph.get(x, ()):
                    if y not in seen:
                        seen.add(y)
                        stack.append(y)
    assert not cycles, cycles
    assert not private, private
    assert "analysis.core.distributed" in _modules()  # the module is seen at all
    assert not [
        m for m in graph["analysis.core.distributed"] if m.startswith("analysis.methods")
    ]  # core knows no method


def test_pages_take_no_locks_and_build_no_cache_keys():
    for f in (ROOT / "pages").glob("*.py"):
        text = f.read_text()
        assert "locked(" not in text and "model_lock" not in text, f.name
        assert "make_key" not in text and "get_or_compute" not in text, f.name
        assert not re.search(r"\.split\(['\"]\.['\"]\)", text), f"{f.name} parses weight names"


def test_the_library_never_imports_streamlit():
    for f in ANALYSIS.rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+streamlit", f.read_text(), re.M), f


def test_organism_specifics_live_in_the_organism_package():
    for f in ANALYSIS.rglob("*.py"):
        if "organism" in f.relative_to(ANALYSIS).parts:
            continue
        text = f.read_text()
        assert 'startswith("sure' not in text and "corpus" not in text.replace("corpus.py", ""), f
        assert "harmful-test" not in text and "harmful_items" not in text, f


def test_defaults_live_in_the_settings_dataclasses():
    from analysis.cli.main import parser
    from analysis.methods.attacks.finetune import AttackSettings
    from analysis.methods.critical_regions.build import RegionSettings
    from analysis.methods.landscape.grid import LandscapeSettings
    from analysis.methods.lox import LoX

    sub = {a.dest: a for a in parser()._subparsers._group_actions[0].choices["regions"]._actions}
    assert (sub["r_u"].default, sub["r_s"].default, sub["q"].default, sub["group"].default) == (
        RegionSettings.r_u,
        RegionSettings.r_s,
        RegionSettings.q,
        RegionSettings.group,
    )
    lox = {a.dest: a for a in parser()._subparsers._group_actions[0].choices["lox"]._actions}
    assert (lox["k"].default, lox["alpha"].default) == (LoX.k, LoX.alpha)
    att = {a.dest: a for a in parser()._subparsers._group_actions[0].choices["attack"]._actions}
    assert (att["lr"].default, att["steps"].default, att["k"].default) == (
        AttackSettings.lr,
        AttackSettings.steps,
        LoX.k,
    )
    assert AttackSettings.subspace_k == LoX.k
    land = {a.dest: a for a in parser()._subparsers._group_actions[0].choices["landscape"]._actions}
    assert (land["lo"].default, land["hi"].default, land["steps"].default) == (
        LandscapeSettings.lo,
        LandscapeSettings.hi,
        LandscapeSettings.steps,
    )
    # every convention flag defaults to the settings' default, which is the reference's
    assert (sub["procedure"].default, sub["positions"].default) == (RegionSettings.procedure, RegionSettings.positions)
    assert (
        (lox["scope"].default, att["scope"].default, att["r_metric"].default)
        == (LoX.scope, LoX.scope, AttackSettings.r_metric)
        == ("all-2d", "all-2d", "mean")
    )
    assert (land["visage"].default, land["draw"].default, tuple(land["groups"].default.split(","))) == (
        LandscapeSettings.visage,
        LandscapeSettings.draw,
        LandscapeSettings.groups,
    )


def test_every_edit_names_itself(demo_pair):
    """Equal edits share a spec, different ones do not; library edits carry recipes."""
    import torch

    from analysis.core.edits import Add, LowRank, Mask
    from analysis.methods.lox import LoX

    lm, base = demo_pair.aligned, demo_pair.base
    name = "layers.0.mlp.down_proj"
    m = torch.zeros(lm.adapter[name].shape, dtype=torch.bool)
    m2 = m.clone()
    m2[0, 0] = True
    assert Mask({name: m}).spec() == Mask({name: m.clone()}).spec() != Mask({name: m2}).spec()
    d = torch.ones(lm.adapter[name].shape)
    assert Add({name: d}, 1.0).spec() != Add({name: d}, 2.0).spec()
    A, B = torch.ones(d.shape[0], 1), torch.ones(1, d.shape[1])
    assert LowRank({name: (A, B)}).spec() != LowRank({name: (A, 2 * B)}).spec()
    e1, e2 = LoX(4, 1.0).edit(lm, base), LoX(4, 1.5).edit(lm, base)
    assert e1.spec()["recipe"]["lox"]["alpha"] == 1.0 and e1.spec() != e2.spec()
    assert e1.spec()["recipe"]["base"] == base.fingerprint


def test_readme_library_map_matches_the_files_one_to_one():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Library shape", 1)[1].split("```", 2)[1]
    listed = {ln.split()[0] for ln in block.splitlines() if ln.strip() and not ln.startswith(" ")}
    files = {
        str(f.relative_to(ROOT))
        for d in ("analysis", "pages")
        for f in (ROOT / d).rglob("*.py")
        if f.name != "__init__.py" and "__pycache__" not in f.parts
    } | {"app.py"}
    assert listed == files, (sorted(files - listed), sorted(listed - files))
