"""The across-builds record the app reads (``analysis/data/organism/across_builds.json``): its counts, its
checks, how ``across_builds.py --record`` writes it, and the note the pages show on the shipped pair only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from analysis.data.organism import WEIGHTS_DIR, robustness
from conftest import ROOT

PHENOMENA = [
    "evaluate targets",
    "critical regions",
    "LoX vs a harmful attack",
    "basin with walls",
    "refusal-direction ablation",
]


def _across_builds():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import across_builds

    return across_builds


def test_shipped_record_covers_both_groups_and_every_phenomenon():
    record = robustness.load_record()
    assert set(record["groups"]) == set(robustness.GROUPS)
    for group in record["groups"].values():
        assert "shipped" in group["builds"] and len(group["builds"]) >= 4  # the shipped build and ≥ 3 others
    for name, build in record["builds"].items():
        assert list(build["verdicts"]) == PHENOMENA, name
    # the shipped build is the one the pages show: every phenomenon held on it but LoX, which holds the attack but
    # fails the clean rule by one degenerate reply once the attack's examples are drawn per seed
    shipped = record["builds"]["shipped"]["verdicts"]
    assert [p for p, v in shipped.items() if not v["pass"]] == ["LoX vs a harmful attack"]
    assert "(not clean)" in shipped["LoX vs a harmful attack"]["numbers"]
    lox = [record["builds"][b]["verdicts"]["LoX vs a harmful attack"]["numbers"] for b in record["builds"]]
    assert all("draws of the examples" in n or n == "no setting qualified" for n in lox), lox


def test_counts_are_the_verdicts_of_each_group():
    record = robustness.load_record()
    for phenomenon in PHENOMENA:
        for h in robustness.held(phenomenon):
            builds = record["groups"][h.group]["builds"]
            assert h.total == len(builds)
            assert h.passed == sum(record["builds"][b]["verdicts"][phenomenon]["pass"] for b in builds)
            lo, hi = h.interval()
            assert lo <= h.passed / h.total <= hi
    # measured (README, "Seeds"): LoX held on 2 of 10 fresh builds; the ablation on every build of both groups
    lox = {h.group: (h.passed, h.total) for h in robustness.held("LoX vs a harmful attack")}
    assert lox == {"base_seeds": (2, 10), "alignment_runs": (1, 6)}
    assert all(h.passed == h.total for h in robustness.held("refusal-direction ablation"))
    every = {h.group: h.passed for h in robustness.every_phenomenon()}
    assert every == {"base_seeds": 0, "alignment_runs": 1}  # one re-alignment of the shipped BASE (order 1)


def test_caveat_names_the_counts_and_intervals():
    text = robustness.caveat("LoX vs a harmful attack")
    assert "2 of 10 fresh builds" in text and "95 % interval [6, 51] %" in text
    assert (
        "\n\nWhere that share is low" in text
    )  # its own paragraph, not glued to the last bullet (seen in the browser)
    assert text.count("\n- ") == 2  # one line per group
    assert robustness.caveat("no such phenomenon") == ""


def test_damaged_records_are_refused_with_the_file_named(tmp_path):
    bad = tmp_path / "r.json"
    for text, says in (
        ("{", "cannot read"),
        ('{"groups": {}}', "no 'builds'"),
        ('{"builds": {}, "groups": {"base_seeds": {"builds": ["x"]}}}', "without verdicts"),
        ('{"builds": {}, "groups": {"other": {"builds": []}}}', "unknown"),
    ):
        bad.write_text(text)
        with pytest.raises(ValueError, match=says) as e:
            robustness.held("critical regions", bad)
        assert str(bad) in str(e.value)


def test_record_verdicts_adds_and_replaces_builds_and_keeps_notes(tmp_path):
    ab = _across_builds()
    path = tmp_path / "record.json"
    ok, bad = {"pass": True, "numbers": "a"}, {"pass": False, "numbers": "b"}
    ab.record_verdicts(path, "base_seeds", {"shipped": ("shipped (…)", {"critical regions": ok})})
    ab.record_verdicts(path, "base_seeds", {"seed1": ("seed1 (…)", {"critical regions": bad})})
    record = json.loads(path.read_text())
    record["groups"]["base_seeds"]["notes"] = {"critical regions": "why"}
    path.write_text(json.dumps(record))
    ab.record_verdicts(path, "base_seeds", {"seed1": ("seed1 (again)", {"critical regions": ok})})  # a re-run
    ab.record_verdicts(path, "alignment_runs", {"shipped": ("shipped (…)", {"critical regions": ok})})
    [seeds, runs] = robustness.held("critical regions", path)
    assert (seeds.group, seeds.passed, seeds.total, seeds.note) == ("base_seeds", 2, 2, "why")
    assert (runs.group, runs.passed, runs.total) == ("alignment_runs", 1, 1)
    assert json.loads(path.read_text())["builds"]["seed1"]["label"] == "seed1 (again)"
    assert not path.with_suffix(".tmp").exists()


def test_record_verdicts_in_part_keeps_a_builds_other_verdicts(tmp_path):
    ab = _across_builds()
    path = tmp_path / "record.json"
    ok, bad = {"pass": True, "numbers": "a"}, {"pass": False, "numbers": "b"}
    ab.record_verdicts(path, "base_seeds", {"seed1": ("seed1", {"critical regions": ok, "basin with walls": ok})})
    ab.record_verdicts(path, "base_seeds", {"seed1": ("seed1 (re-scored)", {"basin with walls": bad})})  # --only
    verdicts = json.loads(path.read_text())["builds"]["seed1"]["verdicts"]
    assert verdicts == {"critical regions": ok, "basin with walls": bad}
    assert list(verdicts) == ["critical regions", "basin with walls"]  # the table's order is kept


def test_record_takes_measured_runs_of_recorded_builds_only(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "across_builds.py"), "--pairs", "shipped"]
    record = tmp_path / "r.json"
    for extra, says in (
        (["--quick"], "measured runs only"),  # a smoke test's numbers mean nothing
        (["--only", "evaluate targets"], "recorded builds only"),  # a build scored in part must be in the record
        (["--only", "no such thing"], "no phenomenon named"),
    ):
        run = subprocess.run(
            [*cmd, "--record", "base_seeds", "--record-file", str(record), *extra],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert run.returncode != 0 and says in run.stderr and "Traceback" not in run.stderr, run.stderr[-500:]
    assert not record.exists()


def test_is_shipped_is_the_shipped_pair_only(tmp_path):
    assert robustness.is_shipped(WEIGHTS_DIR / "aligned")
    assert not robustness.is_shipped(tmp_path / "aligned")
    assert not robustness.is_shipped(None) and not robustness.is_shipped("")
