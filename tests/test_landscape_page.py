"""AppTest drives the safety-landscape page with small grids on the demo pair."""

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from conftest import plotly_values as _values


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    import analysis.core.cache as cache

    old = cache.DEFAULT_ROOT
    cache.DEFAULT_ROOT = tmp_path_factory.mktemp("cache")
    at = AppTest.from_file(str(ROOT / "pages" / "safety_landscape.py"), default_timeout=300)
    at.run()
    yield at
    cache.DEFAULT_ROOT = old


def test_waits_for_the_button(page):
    assert not page.exception
    assert any("grid points" in c.value and "Estimated run time" in c.value for c in page.caption)
    assert not page.get("plotly_chart")


def test_1d_landscape_with_and_without_system_prompt(page):
    page.slider(key="ls_sets_n").set_value(16)
    page.slider(key="ls_steps").set_value(5)
    page.radio(key="ls_sys").set_value("compare both")
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    metrics = {m.label: m.value for m in page.metric}  # "mean ± sd" over the default 3 directions
    assert set(metrics) == {
        "VISAGE · system prompt: none",
        "VISAGE · system prompt: helpful and safe",
        "VISAGE: none − helpful and safe (paired)",
    }
    means = {k: float(v.split(" ± ")[0]) for k, v in metrics.items()}
    assert all(0 <= means[k] <= 100 for k in means if "paired" not in k)
    assert means["VISAGE: none − helpful and safe (paired)"] == pytest.approx(
        means["VISAGE · system prompt: none"] - means["VISAGE · system prompt: helpful and safe"], abs=0.11
    )
    assert all(" ± " in v for v in metrics.values())
    paired = next(c.value for c in page.caption if "Paired over the same 3 directions" in c.value)
    assert "95 % t interval [" in paired and "over the directions" in paired  # a test, not only mean ± sd
    assert ("The t interval holds 0: no effect of the system prompt" in paired) == ("not significant" in paired)
    fig = page.get("plotly_chart")[0]
    chart = json.loads(fig.proto.spec)
    means = [t for t in chart["data"] if "(mean of 3 directions)" in t.get("name", "")]
    assert len(means) == 4  # ASR and utility, under each system prompt: the directions' mean, thick
    assert all(t.get("error_y") for t in means)  # with 95 % Wilson error bars
    bands = [t for t in chart["data"] if t.get("fill") == "toself"]
    singles = [t for t in chart["data"] if ", direction " in t.get("name", "")]
    assert len(bands) == 4 and len(singles) == 12  # the min–max band and every direction's own curve
    for t in bands:  # the band spans the three directions' curves of its series
        lines = np.array(
            [_values(s["y"]) for s in singles if s["name"].startswith(t["name"].split(": min–max")[0] + ", ")]
        )
        top = _values(t["y"])[: lines.shape[1]]
        assert lines.shape[0] == 3 and np.allclose(top, np.nanmax(lines, 0), equal_nan=True)
    assert any("Shaded bands: min–max over the directions" in c.value for c in page.caption)
    # picking another point keeps the landscape on screen and shows that point's generations
    page.select_slider(key="ls_gen_alpha").set_value(-0.5).run()
    assert not page.exception and page.get("plotly_chart") and len(page.dataframe) == 1


def test_2d_toward_base(page):
    page.radio(key="ls_dim").set_value("2D").run()
    page.slider(key="ls_sets_n").set_value(16)
    page.slider(key="ls_steps").set_value(3)
    page.selectbox(key="ls_kind").set_value("toward base")
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert page.metric[0].label == "VISAGE (2D)"
    charts = [json.loads(c.proto.spec) for c in page.get("plotly_chart")]
    assert len(charts) == 3  # ASR surface, ASR map, utility map
    utility = charts[2]
    assert utility["layout"]["title"]["text"].endswith("utility map with the models")
    util = utility["data"][0]
    z = np.asarray(_values(util["z"]) if isinstance(util["z"], dict) else util["z"], dtype=float).reshape(3, 3)
    from analysis.core.stats import wilson

    n = 16  # the organism's exact utility: a share of the 16 benign prompts at each point, hover with its interval
    counts = z * n / 100
    assert np.allclose(counts, np.round(counts)) and (z >= 0).all() and (z <= 100).all() and z[1][1] >= 80
    for i, j in np.ndindex(3, 3):
        lo, hi = wilson(round(counts[i, j]), n)
        assert util["customdata"][i][j] == f"[{100 * lo:.1f}, {100 * hi:.1f}] over {n} prompts"
    assert any(c.value.startswith("Utility at each point of the same plane") for c in page.caption)
    beta = next(c.value for c in page.caption if c.value.startswith("The α axis is determined"))
    assert "the β axis is one random direction (seed 124" in beta and "one draw" in beta


def test_2d_random_plane_projects_the_base(page):
    page.radio(key="ls_dim").set_value("2D").run()  # each test sets what it needs: tests may run on other workers
    page.slider(key="ls_sets_n").set_value(16)
    page.slider(key="ls_steps").set_value(3)
    page.selectbox(key="ls_kind").set_value("random").run()
    page.number_input(key="ls_dirs").set_value(1)
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert any("base model projects onto this plane" in c.value for c in page.caption)
    card = next(m for m in page.metric if m.label == "VISAGE (2D)")
    assert card.proto.help.startswith(f"{card.value} [") and "bootstrap over the" in card.proto.help
    assert any("One plane is one random draw" in c.value for c in page.caption)
    page.number_input(key="ls_dirs").set_value(3)  # the other tests' default


def test_2d_over_random_planes_shows_each_plane_and_visage_mean_and_sd(page):
    """Several random planes: one picked plane on the charts, its VISAGE, and the mean ± sd over the planes, the
    same numbers the library computes; picking another plane redraws with that plane's grid."""
    import numpy as np

    from analysis.methods.landscape.visage import visage_2d

    page.radio(key="ls_dim").set_value("2D").run()  # each test sets what it needs: tests may run on other workers
    page.slider(key="ls_sets_n").set_value(16)
    page.slider(key="ls_steps").set_value(3)
    page.selectbox(key="ls_kind").set_value("random").run()
    page.number_input(key="ls_dirs").set_value(2)
    default_range = page.slider(key="ls_range").value
    page.slider(key="ls_range").set_value((-1.0, 1.0))  # inside the walls, where planes differ
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    over = next(m for m in page.metric if m.label == "VISAGE (2D) over 2 planes")
    one = next(m for m in page.metric if m.label == "VISAGE (2D), plane 1")

    def surface() -> np.ndarray:  # the ASR surface on screen, in percent (3 × 3 here)
        z = json.loads(page.get("plotly_chart")[0].proto.spec)["data"][0]["z"]
        return np.asarray(_values(z) if isinstance(z, dict) else z, dtype=float).reshape(3, 3)

    first = surface()
    assert one.value == f"{visage_2d(first, (1, 1)):.1f}"
    caption = next(c.value for c in page.caption if c.value.startswith("VISAGE (2D) over 2 random planes"))
    per = [float(x) for x in caption.split("per plane ")[1].rstrip(".").split(", ")]
    assert per[0] == float(one.value) and over.value == f"{np.mean(per):.1f} ± {np.std(per, ddof=1):.1f}"
    page.selectbox(key="ls_plane").set_value(1).run()
    assert not page.exception
    second = surface()
    assert not np.array_equal(second, first)  # the other plane's grid, not the first one's again
    label = "VISAGE (2D), plane 2"
    assert (
        next(m for m in page.metric if m.label == label).value == f"{per[1]:.1f}" == f"{visage_2d(second, (1, 1)):.1f}"
    )
    page.slider(key="ls_range").set_value(default_range)  # the other tests' range
    page.number_input(key="ls_dirs").set_value(3)


def test_plane_through_a_third_model(page, tmp_path, organism_tokenizer):
    from conftest import save_tiny_llama

    page.radio(key="ls_dim").set_value("2D").run()
    page.slider(key="ls_sets_n").set_value(16)
    page.slider(key="ls_steps").set_value(3)
    page.selectbox(key="ls_kind").set_value("plane: base + third model").run()
    assert any("Give the other model" in i.value for i in page.info), [i.value for i in page.info]
    page.text_input(key="ls_third").set_value(str(save_tiny_llama(tmp_path / "small", organism_tokenizer))).run()
    assert not page.exception
    assert "Could not use the other model" in page.error[0].value  # a 2-layer model does not fit the pair
    import analysis.data.organism.build_demo as build

    page.text_input(key="ls_third").set_value(str(build.WEIGHTS_DIR / "base")).run()
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert "on one line" in page.error[0].value  # base given twice: no plane, a clear message
    # a real third model: the aligned model nudged along a random direction, saved as a folder
    import torch

    from analysis.core.models import load_model
    from analysis.methods.landscape.directions import RandomDirection, perturbed_params

    third = load_model("demo", device="cpu")
    with torch.no_grad():
        for name, p in perturbed_params(third.model):
            p.add_(0.1 * RandomDirection(9).tensor(name, p))
    third.model.save_pretrained(tmp_path / "third")
    third.tokenizer.save_pretrained(tmp_path / "third")
    page.text_input(key="ls_third").set_value(str(tmp_path / "third")).run()
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert page.metric[0].label == "VISAGE (2D)" and not page.error
    # 1D interpolation toward that checkpoint: α = 1 is the checkpoint itself
    page.radio(key="ls_dim").set_value("1D").run()
    page.selectbox(key="ls_kind").set_value("toward another model").run()
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert page.metric[0].label.startswith("VISAGE")
    assert "one direction (toward another model)" in page.metric[0].proto.help  # no spread over directions,
    assert "95 % bootstrap over the" in page.metric[0].proto.help and " [" in page.metric[0].proto.help  # but prompts


def test_custom_system_prompt(page):
    page.radio(key="ls_dim").set_value("1D").run()
    page.radio(key="ls_sys").set_value("custom").run()
    page.text_input(key="ls_sys_text").set_value("be safe .")
    page.slider(key="ls_steps").set_value(3)
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    assert page.metric[0].label == "VISAGE · system prompt: custom"


def _paired_metrics(page) -> dict[str, float]:
    return {m.label: float(m.value.split(" ± ")[0]) for m in page.metric}


def test_1d_compares_the_base_and_another_scope_on_the_same_directions(page):
    """The aligned model's basin vs its base's, then the reference scope vs decoder Linears only: two landscapes
    on the same seeds, VISAGE of each and their paired difference; a second comparison at once is refused."""
    page.radio(key="ls_dim").set_value("1D").run()
    page.selectbox(key="ls_kind").set_value("random")
    page.radio(key="ls_sys").set_value("none").run()
    page.number_input(key="ls_dirs").set_value(3)
    page.slider(key="ls_sets_n").set_value(16)
    page.slider(key="ls_steps").set_value(5)
    page.selectbox(key="ls_compare").set_value("the base model").run()
    assert "× 3 direction(s) × 32 prompts" in next(c.value for c in page.caption if "grid points" in c.value)
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    m = _paired_metrics(page)
    assert set(m) == {"VISAGE · aligned model", "VISAGE · base model", "VISAGE: aligned − base (paired)"}, m
    assert m["VISAGE: aligned − base (paired)"] == pytest.approx(
        m["VISAGE · aligned model"] - m["VISAGE · base model"], abs=0.11
    )
    assert m["VISAGE · aligned model"] - m["VISAGE · base model"] > 30  # the organism's base has no basin
    paired = next(c.value for c in page.caption if c.value.startswith("Paired over the same 3 directions"))
    assert "over the directions, significant" in paired and "an effect of alignment over these directions" in paired
    chart = json.loads(page.get("plotly_chart")[0].proto.spec)
    means = {t["name"] for t in chart["data"] if "(mean of 3 directions)" in t.get("name", "")}
    assert means == {
        f"{y} · {who} model (mean of 3 directions)" for y in ("ASR", "utility") for who in ("aligned", "base")
    }
    page.selectbox(key="ls_gen_label").set_value("base model").run()  # the base's replies along the line
    assert not page.exception and len(page.dataframe) == 1

    page.selectbox(key="ls_compare").set_value("another scope of tensors").run()
    page.multiselect(key="ls_compare_groups").set_value(["linear"]).run()
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    m = _paired_metrics(page)
    assert set(m) == {
        "VISAGE · scope: all but norm",
        "VISAGE · scope: linear",
        "VISAGE: all but norm − linear (paired)",
    }
    assert m["VISAGE: all but norm − linear (paired)"] == pytest.approx(
        m["VISAGE · scope: all but norm"] - m["VISAGE · scope: linear"], abs=0.11
    )
    page.multiselect(key="ls_compare_groups").set_value(["linear", "embed", "lm_head", "other"]).run()
    assert "the compared scope is the same" in page.error[0].value and not page.get("plotly_chart")
    page.multiselect(key="ls_compare_groups").set_value(["linear"])
    page.radio(key="ls_sys").set_value("compare both").run()
    assert "compare one thing at a time" in page.error[0].value
    page.selectbox(key="ls_compare").set_value("nothing")
    page.radio(key="ls_sys").set_value("none").run()
    assert not page.error


def test_no_tensor_group_is_explained(page):
    default_groups = page.multiselect(key="ls_groups").value
    page.multiselect(key="ls_groups").set_value([]).run()
    assert not page.exception
    assert "at least one group" in page.error[0].value
    page.multiselect(key="ls_groups").set_value(default_groups).run()  # the other tests' scope


def test_two_system_prompts_along_the_base_direction_are_paired_over_prompts(page):
    """One determined direction has no spread over directions: the two system prompts' VISAGE are compared by a
    paired bootstrap over the same prompts, and the caption's difference is the two cards' difference."""
    from analysis.methods.landscape.directions import REFERENCE_GROUPS

    page.multiselect(key="ls_groups").set_value(list(REFERENCE_GROUPS))  # each test sets what it needs
    page.radio(key="ls_dim").set_value("1D").run()
    page.selectbox(key="ls_kind").set_value("random").run()
    page.selectbox(key="ls_compare").set_value("nothing").run()
    page.selectbox(key="ls_kind").set_value("toward base").run()
    page.radio(key="ls_sys").set_value("compare both")
    page.slider(key="ls_sets_n").set_value(16)
    page.slider(key="ls_steps").set_value(11)
    default_range = page.slider(key="ls_range").value
    page.slider(key="ls_range").set_value((-0.5, 1.5))  # the walk to the base, where the prompts differ
    page.button(key="ls_go").click().run()
    assert not page.exception, [e.value for e in page.exception]
    cards = {m.label: float(m.value) for m in page.metric}
    assert len(set(cards.values())) == 2, cards  # the two prompts differ here: the sign of the difference matters
    caption = next(c.value for c in page.caption if "along this one direction, paired over the same" in c.value)
    d = float(caption.split("(95 % bootstrap): ")[1].split(" [")[0])
    assert d == pytest.approx(
        cards["VISAGE · system prompt: none"] - cards["VISAGE · system prompt: helpful and safe"], abs=0.11
    )
    lo, hi = (float(x) for x in caption.split(" [")[1].split("]")[0].split(", "))
    assert lo <= d <= hi and ("not significant" in caption) == (lo <= 0 <= hi)
    page.radio(key="ls_sys").set_value("none")
    page.slider(key="ls_range").set_value(default_range)
    page.selectbox(key="ls_kind").set_value("random").run()
