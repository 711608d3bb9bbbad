"""The house's layout: sub-packages by concern, imports that flow one way, few modules at the top."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ANALYSIS = ROOT / "analysis"

# Which sub-package may import which. The command line sits on top; the app's support code uses the
# methods; methods use the core, data and judges; nothing below imports what sits above it.
MAY_IMPORT = {
    "core": {"core", "data", "judging"},
    "data": {"core", "data", "judging"},
    "judging": {"core", "data", "judging"},
    "methods": {"core", "data", "judging", "methods"},
    "app_support": {"core", "data", "judging", "methods", "app_support"},
    "experiments": {"core", "data", "judging", "methods", "app_support"},
    "cli": {"core", "data", "judging", "methods", "app_support", "experiments", "cli"},
}


def _package_of(path: Path) -> str:
    rel = path.relative_to(ANALYSIS)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.stem != "__main__" else "cli"


def _imported_packages(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "analysis" and len(parts) > 1:
                out.add(parts[1])
    return out


def test_imports_flow_one_way_between_sub_packages():
    bad = []
    for f in ANALYSIS.rglob("*.py"):
        if f.parent == ANALYSIS and f.name in ("__init__.py", "__main__.py"):
            continue
        pkg = _package_of(f)
        allowed = MAY_IMPORT.get(pkg)
        assert allowed is not None, f"{f.relative_to(ROOT)}: sub-package {pkg!r} has no place in MAY_IMPORT"
        bad += [f"{f.relative_to(ROOT)} imports analysis.{p}" for p in _imported_packages(f) - allowed]
    assert not bad, bad


def test_a_layering_violation_is_caught(tmp_path):
    """The checker itself: a core module importing the command line is reported."""
    f = tmp_path / "x.py"
    f.write_text("from analysis.cli.checks import max_positions\nimport analysis.methods.lox\n")
    assert _imported_packages(f) == {"cli", "methods"}
    assert not _imported_packages(f) <= MAY_IMPORT["core"]


def test_at_most_ten_modules_directly_in_analysis():
    top = sorted(p.name for p in ANALYSIS.glob("*.py"))
    assert len(top) <= 10, top
    packages = sorted(p.name for p in ANALYSIS.iterdir() if (p / "__init__.py").exists())
    assert packages == ["app_support", "cli", "core", "data", "judging", "methods"], packages


def test_no_two_modules_share_a_confusable_name():
    """One module per stem across the library (e.g. no ``judge.py`` beside ``judges/``, no two ``units.py``)."""
    stems: dict[str, list[str]] = {}
    for f in ANALYSIS.rglob("*.py"):
        if f.name in ("__init__.py", "__main__.py") or not (f.parent / "__init__.py").exists():
            continue
        stems.setdefault(f.stem, []).append(str(f.relative_to(ROOT)))
    dirs = {d.name for d in ANALYSIS.rglob("*") if d.is_dir() and (d / "__init__.py").exists()}
    clashes = {s: v for s, v in stems.items() if len(v) > 1 or s in dirs or s + "s" in dirs or s.rstrip("s") in dirs}
    assert not clashes, clashes
