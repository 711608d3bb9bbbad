"""Teaching presets: one click sets a page's controls; `python -m analysis warm` fills the cache with them."""

import subprocess
import sys

import pytest
from streamlit.testing.v1 import AppTest

from analysis.app_support.presets import PRESETS, find, presets, region_settings
from analysis.methods.landscape.grid import LandscapeSettings
from conftest import ROOT

WIDGETS = {
    "critical_regions": {
        "method": "cr_method",
        "score": "cr_score",
        "q": "cr_q",
        "p": "cr_p",
        "group": "cr_group",
        "r_s": "cr_rs",
        "r_u": "cr_ru",
        "unit_kind": "cr_kind",
    },
    "safety_landscape": {
        "dim": "ls_dim",
        "kind": "ls_kind",
        "steps": "ls_steps",
        "system": "ls_sys",
        "compare": "ls_compare",
    },
    "attack_lab": {"data": "at_data", "n": "at_n", "steps": "at_steps", "every": "at_every", "variants": "at_variants"},
    "alignment_depth": {"edit": "ad_edit", "edit_alpha": "ad_edit_alpha", "edit_k": "ad_edit_k"},
}


def test_presets_are_well_formed():
    for page, items in PRESETS.items():
        assert items and len({p.name for p in items}) == len(items), page
        assert all(p.page == page and p.description for p in items)
    cr = region_settings(presets("critical_regions")[0])
    assert (cr.method, cr.r_s, cr.r_u) == ("orthogonal", 3, 8)  # the setting chosen on validation
    basin = presets("safety_landscape")[0].settings
    assert basin["lo"] <= -2 and basin["hi"] >= 2  # the basin's walls are in range
    with pytest.raises(ValueError, match="no preset"):
        find("lox", "nonsense")


def _shown(at, key: str):
    """The value of the widget the page rendered under ``key`` (not the session state a preset writes)."""
    for kind in ("slider", "selectbox", "radio", "multiselect", "number_input", "select_slider", "checkbox"):
        found = [w for w in at.get(kind) if getattr(w, "key", None) == key]
        if found:
            return found[0].value
    raise AssertionError(f"the page shows no widget {key!r}")


def _derived(page: str, at) -> str | None:
    """A line the page computes from its controls (None where a page has none before its button)."""
    if page == "safety_landscape":
        return next(c.value for c in at.caption if "grid points" in c.value).split(".")[0]
    return None


def _expected_derived(page: str, settings: dict) -> str | None:
    if page == "safety_landscape":
        n = settings["steps"] if settings["dim"] == "1D" else settings["steps"] ** 2
        dirs = LandscapeSettings.directions if settings["kind"] == "random" else 1  # 1D directions, 2D planes
        unit = "direction(s)" if settings["dim"] == "1D" else "plane(s)"
        return f"{n} grid points × {dirs} {unit} × {2 * settings['prompts']} prompts"
    return None


@pytest.mark.parametrize("page", sorted(WIDGETS))
def test_a_preset_sets_the_controls(page):
    """Each preset puts the page's rendered controls (those its method shows) at its values, and what the page
    derives from them (the landscape's point count) follows."""
    at = AppTest.from_file(str(ROOT / "pages" / f"{page}.py"), default_timeout=300).run()
    assert not at.exception, [e.value for e in at.exception]
    for i, preset in enumerate(presets(page)):
        if i:
            at.selectbox(key=f"{page}_preset").set_value(preset.name).run()
        assert not at.exception, (preset.name, [e.value for e in at.exception])
        for field, key in WIDGETS[page].items():
            if field in preset.settings:
                assert _shown(at, key) == preset.settings[field], (preset.name, field, _shown(at, key))
        assert _derived(page, at) == _expected_derived(page, preset.settings), preset.name
    if page == "safety_landscape":
        at.selectbox(key=f"{page}_preset").set_value(presets(page)[0].name).run()
        assert at.slider(key="ls_range").value == (-2.0, 2.0)
        at.radio(key="ls_dim").set_value("2D").run()  # 1D → 2D does not square 21 points
        assert at.slider(key="ls_steps").value == 7
        first = presets(page)[0].settings
        assert _derived(page, at) == _expected_derived(page, {**first, "dim": "2D", "steps": 7})


def test_warm_cli_fills_the_cache_and_rejects_unknown_presets(tmp_path):
    env = {"HF_HUB_OFFLINE": "1", "BRITTLE_THREADS": "1", "BRITTLE_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis",
            "warm",
            "--model",
            "demo",
            "--presets",
            "LoX as chosen on validation (k = 16, α = 0.75, decoder Linears)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "LoX k=16 α=0.75, decoder only: ASR" in run.stdout and "warmed 1 presets" in run.stdout
    assert len(list(tmp_path.rglob("*.json"))) >= 2  # aligned and LoX evaluations cached
    bad = subprocess.run(
        [sys.executable, "-m", "analysis", "warm", "--model", "demo", "--presets", "nope"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: no preset matches") and "Traceback" not in bad.stderr


def test_landscape_keeps_the_previous_result_until_the_new_one(tmp_path, monkeypatch):
    at = AppTest.from_file(str(ROOT / "pages" / "safety_landscape.py"), default_timeout=300).run()
    at.slider(key="ls_sets_n").set_value(8)
    at.slider(key="ls_steps").set_value(3)
    at.button(key="ls_go").click().run()
    assert not at.exception and len(at.get("plotly_chart")) == 1
    at.slider(key="ls_steps").set_value(5).run()  # settings changed, not recomputed yet
    assert not at.exception and len(at.get("plotly_chart")) == 1  # the previous chart stays, greyed
    assert any(c.value.startswith("Previous result") for c in at.caption)
    at.button(key="ls_go").click().run()
    assert len(at.get("plotly_chart")) == 1 and not any(c.value.startswith("Previous result") for c in at.caption)
    assert len(__import__("json").loads(at.get("plotly_chart")[0].proto.spec)["data"][0]["x"]) == 5
