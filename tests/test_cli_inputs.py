"""Through the CLI, in process: options checked against the model and data before the work starts,
units that match the utility's kind, clipping with a note, Ctrl-C as one line with exit 130."""

import argparse
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from analysis.cli.main import main
from analysis.core.cache import Cache
from conftest import ROOT


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, words):
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and words in err, err
    assert "Traceback" not in err


@pytest.fixture
def benign_pairs(tmp_path):
    f = tmp_path / "benign.csv"
    f.write_text("prompt,response\nwhat is 2 plus 3 ?,5 .\nwhat is 4 plus 4 ?,8 .\nwhat is 1 plus 6 ?,7 .\n")
    return f


def test_a_loss_utility_is_never_printed_as_a_percentage(capsys, benign_pairs):
    from analysis.app_support.formatting import format_utility

    assert format_utility(1.963, "loss") == "1.963L" and format_utility(0.975, "exact") == "97.5%"
    assert format_utility(float("nan"), "exact") == "-" and format_utility(None, "loss") == "-"
    code, out, err = run(capsys, "lox", "--n", "4", "--k", "4", "--benign", str(benign_pairs), "--max-new-tokens", "8")
    assert code == 0, err
    rows = [ln for ln in out.splitlines() if " utility " in ln and not ln.strip().startswith("paired")]
    paired = next(ln for ln in out.splitlines() if ln.strip().startswith("paired LoX vs aligned, utility (loss): "))
    assert " nats [" in paired and "paired bootstrap over 3 items" in paired, paired  # the change in nats, paired
    assert len(rows) == 2 and all(
        re.search(r" utility \d+\.\d{3}L \[\d+\.\d{3}, \d+\.\d{3}\]  over-refusal", ln) for ln in rows
    ), out  # a loss and its bootstrap interval, in nats
    assert not any("utility" in ln and "%  over" in ln.split("utility")[1][:12] for ln in rows)
    code, out, err = run(
        capsys,
        "landscape",
        "--steps",
        "2",
        "--n",
        "3",
        "--benign",
        str(benign_pairs),
        "--max-new-tokens",
        "8",
        "--directions",
        "1",
    )
    assert code == 0, err
    points = [ln.split() for ln in out.splitlines() if ln.strip().startswith(("-0.500", "0.500"))]
    # alpha, ASR "x % [lo, hi]", ASR+ likewise, utility (a loss in nats with its bootstrap interval), degenerate
    assert len(points) == 2 and all(p[3].startswith("[") and p[9].endswith("L") for p in points), out
    assert not any("%" in p[9] for p in points)
    for p in points:
        loss, lo, hi = float(p[9].rstrip("L")), float(p[10].strip("[,")), float(p[11].rstrip("]"))
        assert lo <= loss <= hi and lo < hi, p  # 3 benign items resampled: a real spread
    assert "a loss utility (L, nats): 95 % bootstrap over the benign items" in out
    code, out, err = run(capsys, "landscape", "--dim", "2D", "--steps", "3", "--n", "3", "--benign", str(benign_pairs))
    assert code == 0, err
    lines = out.splitlines()
    u = lines.index("utility loss, nats (mean response loss on the benign items; lower is better)")
    grid = [[float(x) for x in ln.split()[1:]] for ln in lines[u + 2 : u + 5]]
    assert all(len(row) == 3 and all(v > 0 for v in row) for row in grid) and "%" not in lines[u + 3]
    note = lines[u + 5]  # "… at most W nats wide on this grid; at the model L [lo, hi]"
    at_model = note.split("at the model ")[1].replace("[", "").replace("]", "").replace(",", "").split()
    loss, lo, hi = (float(x) for x in at_model)
    assert note.startswith("  95 % bootstrap intervals over the benign items") and loss == grid[1][1], note
    assert lo <= loss <= hi and lo < hi


def test_a_benign_file_without_responses_is_refused_before_the_model_loads(capsys, tmp_path):
    f = tmp_path / "benign.txt"
    f.write_text("say hi\nsay yo\n")
    for command in ("landscape", "regions", "evaluate", "lox"):
        code, out, err = run(capsys, command, "--benign", str(f), "--n", "2")
        one_line_error(code, err, "have no response")


def test_numeric_options_are_refused_at_parse_time(capsys):
    cases = {
        ("evaluate", "--n", "0"): "must be >= 1",
        ("evaluate", "--n", "-1"): "must be >= 1",
        ("landscape", "--hi", "inf"): "finite",
        ("landscape", "--lo", "nan"): "finite",
        ("landscape", "--steps", "100000"): "between 1 and 1001",
        ("landscape", "--steps", "1000000000"): "1001",
        ("spectra", "--k", "-1"): "must be >= 1",
        ("recovery", "--ranks", ""): "got nothing",
        ("recovery", "--tolerance", "nan"): "finite",
        ("attack", "--variants", ""): "got nothing",
        ("regions", "--calibration-n", "abc"): "a whole number",
        ("evaluate", "--n", "1e3"): "whole number",
    }
    for argv, words in cases.items():
        with pytest.raises(SystemExit) as e:
            main(list(argv))
        err = capsys.readouterr().err
        assert e.value.code == 2 and err.startswith("error: argument") and words in err, (argv, err)
        assert len(err.strip().splitlines()) == 1


def test_options_checked_against_the_model(capsys):
    code, out, err = run(capsys, "evaluate", "--max-new-tokens", "1000000000", "--n", "2")
    one_line_error(code, err, "positions")
    for argv in (
        ("spectra",),
        ("lox", "--n", "2"),
        ("recovery", "--n", "2"),
        ("attack", "--n", "2"),
        ("landscape", "--direction", "base", "--n", "2"),
    ):
        code, out, err = run(capsys, *argv, "--base", "demo")  # aligned = base
        one_line_error(code, err, "identical weights")
    code, out, err = run(capsys, "generate", "--prompt", "what is 2 plus 2 ? " * 100)
    one_line_error(code, err, "beyond the model's")


def test_recovery_ranks_above_the_weight_size_are_clipped_with_a_note(capsys):
    code, out, err = run(capsys, "recovery", "--ranks", "1,1000000", "--n", "4", "--max-new-tokens", "8")
    assert code == 0, err
    tried = [ln for ln in out.splitlines() if ln.strip().startswith("r =")]
    assert "note: ranks above 128" in out and [ln.split(":")[0].split()[-1] for ln in tried] == ["1", "128"]


def test_calibration_n_is_capped_by_the_data_with_a_note(demo_pair):
    from analysis.cli.checks import against_model, calibration_cap

    args = argparse.Namespace(command="regions", calibration_n=100_000_000, system_prompt=None, max_new_tokens=8)
    notes = against_model(args, demo_pair)
    assert args.calibration_n == calibration_cap(demo_pair.aligned) < 100_000_000
    assert any("capped" in n for n in notes)


def test_attack_k_0_means_the_whole_delta_like_lox(capsys):
    code, out, err = run(
        capsys,
        "attack",
        "--variants",
        "lox",
        "--k",
        "0",
        "--steps",
        "2",
        "--eval-every",
        "2",
        "--n",
        "4",
        "--n-examples",
        "4",
        "--batch-size",
        "4",
        "--max-new-tokens",
        "8",
    )
    assert code == 0, err
    assert "LoX k=full" in out
    assert "needs k >= 1 and is not computed" in out and "R_ft    " not in out


def test_lox_save_is_checked_before_the_work(capsys, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    before = Cache().count()
    targets = ((f, "existing file"), (f / "sub", "is a file"), (Cache().root / "mylox", "inside the results cache"))
    for target, words in targets:
        code, out, err = run(capsys, "lox", "--save", str(target), "--n", "4")
        one_line_error(code, err, words)
        assert out == ""  # nothing computed, nothing printed
    assert Cache().count() == before


def test_a_read_only_cache_still_computes_with_a_note(capsys, tmp_path, monkeypatch):
    ro = tmp_path / "ro-cache"
    ro.mkdir()
    if subprocess.run(["chattr", "+i", str(ro)], capture_output=True).returncode:
        pytest.skip("chattr +i not available")
    monkeypatch.setenv("BRITTLE_CACHE", str(ro))
    try:
        code, out, err = run(capsys, "evaluate", "--n", "3", "--max-new-tokens", "8")
        assert code == 0, err
        assert "note: the cache at" in out and "not kept" in out
        assert any(ln.startswith("aligned") for ln in out.splitlines())
        assert "Traceback" not in err and "Warning" not in err
        code, out, err = run(capsys, "cache", "clear")
        one_line_error(code, err, "cannot clear")
    finally:
        subprocess.run(["chattr", "-i", str(ro)], capture_output=True)


def test_cache_clear_refuses_a_foreign_root(capsys, tmp_path):
    (tmp_path / "projects" / "thesis").mkdir(parents=True)
    (tmp_path / "projects" / "thesis" / "d.tex").write_text("a")
    code, out, err = run(capsys, "cache", "clear", "--root", str(tmp_path))
    one_line_error(code, err, "refusing to clear")
    assert (tmp_path / "projects" / "thesis" / "d.tex").exists()


def test_interrupt_in_process_is_one_line_and_exit_130(capsys, monkeypatch, tmp_path):
    import analysis.cli.commands_landscape as cli

    monkeypatch.setenv("BRITTLE_CACHE", str(tmp_path))
    calls = []

    def bar(frac, msg):
        calls.append(frac)
        if len(calls) > 1 and Cache().count() >= 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(cli, "progress_bar", bar)
    code, out, err = run(capsys, "landscape", "--steps", "4", "--n", "4", "--max-new-tokens", "8")
    assert code == 130
    n = Cache().count()
    plural = "s" if n != 1 else ""
    assert n >= 1 and err.strip() == f"interrupted; {n} finished result{plural} kept in the cache (no partial ones)"


def test_ctrl_c_on_a_real_process(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "BRITTLE_THREADS": "1", "BRITTLE_CACHE": str(tmp_path)}
    p = subprocess.Popen(
        # long enough (303 points × 32 + 32 prompts) that the run cannot finish before the signal, even on a
        # loaded machine: the demo pair's short refusals make a small landscape take seconds
        [sys.executable, "-m", "analysis", "landscape", "--steps", "101", "--n", "32"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # a test run started in the background (a shell's `&`, some CI runners) ignores SIGINT, and a child
        # inherits that: give the CLI the terminal's default, as a user pressing Ctrl-C has
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    # signal once two points are cached, or after 10 s (model loaded, points running) should the count lag
    start = time.time()
    while Cache(tmp_path).count() < 2 and time.time() < start + 10 and p.poll() is None:
        time.sleep(0.1)
    seen = (Cache(tmp_path).count(), round(time.time() - start, 1), p.poll())
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 130, (seen, err, out[-500:])
    assert len(err.strip().splitlines()) == 1 and err.startswith("interrupted; ") and "kept in the cache" in err, err
    assert "Traceback" not in err


def test_an_attack_with_a_loss_utility_pairs_its_change_in_nats(capsys, benign_pairs):
    """Benign pairs without exact answers give a loss utility: at the attack's last step each variant's loss is
    paired with the aligned run's over the same benign items (a bootstrap in nats), never as percentage points."""
    code, out, err = run(
        capsys,
        *("attack", "--variants", "aligned,lox", "--n", "4", "--benign", str(benign_pairs)),
        *("--steps", "2", "--eval-every", "2", "--n-examples", "4", "--batch-size", "4", "--max-new-tokens", "8"),
    )
    assert code == 0, err
    line = next(ln.strip() for ln in out.splitlines() if ln.strip().startswith("utility (loss): "))
    assert " nats [" in line and "paired bootstrap over 3 items" in line and "points" not in line, line
    bars = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("utility 95 % interval (nats) ")]
    assert len(bars) == 2, out  # each variant's loss at each evaluated step (0 and 2) with its bootstrap interval
    for ln in bars:
        pairs = [tuple(float(x) for x in b.rstrip("] ").split(", ")) for b in ln.split("[")[1:]]
        assert len(pairs) == 2 and all(0 < lo <= hi for lo, hi in pairs), ln


def test_an_attack_can_draw_its_examples_per_seed(capsys):
    """``attack --examples drawn``: the CLI fetches a pool of 5 × n_examples and says so; a bad value is refused."""
    code, out, err = run(
        capsys,
        *("attack", "--variants", "aligned", "--n", "4", "--examples", "drawn", "--n-examples", "4"),
        *("--steps", "2", "--eval-every", "2", "--batch-size", "4", "--seeds", "2", "--max-new-tokens", "8"),
    )
    assert code == 0, err
    assert "4 examples drawn per seed from 20, full fine-tune" in out, out
    assert "seeds are one run" not in out
    code, out, err = run(  # the fixed first 4 in a batch of 4: two seeds are one run, and the CLI says so
        capsys,
        *("attack", "--variants", "aligned", "--n", "4", "--n-examples", "4"),
        *("--steps", "2", "--eval-every", "2", "--batch-size", "4", "--seeds", "2", "--max-new-tokens", "8"),
    )
    assert code == 0, err
    assert "note: the batch (4) holds every example, so the 2 data-order seeds are one run (sd 0)" in out, out
    assert "ASR mean ± sd over seeds " in out and all(
        v.endswith("±0") for v in out.split("ASR mean ± sd over seeds ")[1].splitlines()[0].split()
    )
    with pytest.raises(SystemExit):  # argparse refuses a value outside the choices
        run(capsys, "attack", "--examples", "some")
    assert "invalid choice: 'some'" in capsys.readouterr().err
