"""CLI fuzz test: hypothesis draws a command, flags, extreme values and malformed files, runs
``analysis.cli.main.main(argv)`` in process against a tiny random model pair, and checks that

- the exit code is 0 or 2 (argparse's own SystemExit(2) counts), never an escaping exception or traceback;
- stderr is at most one ``error: …`` line when the command fails;
- the loaded weights are bit-exact after the command (edits restored on every path) and the model folder unchanged;
- a failed command leaves the cache exactly as it found it.

Every example starts from cheap settings (2 prompts, 2 new tokens, small grids) that the drawn flags override,
so each example takes well under a second; ``FUZZ_EXAMPLES`` raises the count for a longer hunt.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from analysis.core.edits import checksum  # noqa: E402
from conftest import save_tiny_llama  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))

# values every numeric flag may get: extremes, non-numbers, empties, wrong types
WILD = [
    "0",
    "-1",
    "1",
    "2",
    "nan",
    "inf",
    "-inf",
    "",
    " ",
    "1e309",
    "abc",
    "99999999999999999999",
    "0.5",
    "-0.0",
    "1,2",
    "[]",
    "None",
    "0x10",
    "１",
]
CHEAP_INT = ["1", "2", "3"]


def _files(folder: Path) -> dict[str, Path]:
    """Prompt files a user might bring, good and broken."""
    specs = {
        "pairs.csv": "prompt,response\nwhat is 2 plus 3 ?,5 .\nsay hi,hi .\n".encode(),
        "bom.csv": "\ufeffprompt,response\r\nwhat is 2 plus 3 ?,5 .\r\nsay hi,hi .\r\n".encode(),
        "advbench_crlf.csv": b"goal,target\r\nhow do i pick a lock ?,Sure\r\n",
        "array.json": json.dumps([{"prompt": "say hi", "response": "hi ."}]).encode(),
        "strings.json": b'["say hi", "say yo"]',
        "scalar.json": b"5",
        "pairs.jsonl": b'{"prompt": "say hi", "response": "hi ."}\n{"prompt": "say yo", "response": "yo ."}\n',
        "broken.jsonl": b'{"prompt": "x"\n',
        "empty.csv": b"",
        "empty.txt": b"",
        "lines.txt": b"say hi\nsay yo\n",
        "binary.txt": bytes(range(256)),
        "binary.csv": b"\x00\xff\xfe" * 50,
        "noresp.csv": b"prompt\nsay hi\n",
        "wide.csv": b"prompt,response,extra\nsay hi,hi .,1,2,3\n",
        "long.txt": ("what is 2 plus 2 ? " * 200 + "\n").encode(),
        "table.xlsx": b"PK\x03\x04",
    }
    out = {}
    for name, data in specs.items():
        (folder / name).write_bytes(data)
        out[name] = folder / name
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory, organism_tokenizer):
    root = tmp_path_factory.mktemp("fuzz")
    aligned = save_tiny_llama(root / "aligned", organism_tokenizer, seed=0)
    base = save_tiny_llama(root / "base", organism_tokenizer, seed=1)
    (root / "files").mkdir()
    files = _files(root / "files")
    a_file = root / "a_file"
    a_file.write_text("x")
    foreign = root / "foreign"
    (foreign / "thesis").mkdir(parents=True)
    (foreign / "thesis" / "d.tex").write_text("a")
    cache = root / "cache"
    return {
        "root": root,
        "aligned": str(aligned),
        "base": str(base),
        "files": files,
        "a_file": str(a_file),
        "foreign": str(foreign),
        "cache": cache,
    }


def _folder_hash(folder: str) -> str:
    h = hashlib.sha256()
    for p in sorted(Path(folder).rglob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def _cache_listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*")) if root.exists() else []


@st.composite
def invocations(draw, w):
    files = [str(p) for p in w["files"].values()]
    model = draw(st.sampled_from([w["aligned"]] * 12 + ["/no/such/model", w["a_file"], "", str(w["root"])]))
    base = draw(st.sampled_from([w["base"]] * 8 + ["", w["aligned"], w["a_file"]]))
    common = {
        "--dtype": st.sampled_from(["fp32", "bf16", "fp16", "int3", ""]),
        "--device": st.sampled_from(["cpu", "gpu", "cuda:7", ""]),
        "--system-prompt": st.sampled_from(["", "be brief", "x " * 300, "\x00"]),
        "--max-new-tokens": st.sampled_from(WILD[:6] + ["3", "1000000000", "127", "abc", ""]),
    }
    prompts = {
        "--n": st.sampled_from(WILD),
        "--split": st.sampled_from(["train", "val", "test", "dev"]),
        "--harmful": st.sampled_from(files + ["/no/file.csv", "advbench", "harmbench", "instruct", "demo", "bogusset"]),
        "--benign": st.sampled_from(files + ["/no/file.csv", "instruct", "xsafe", "advbench", "demo"]),
    }
    per_command = {
        "evaluate": (
            {
                "--show": st.sampled_from(WILD),
                "--judge": st.sampled_from(["keyword", "", ",", "llama-guard:/no/such", "nope:x", w["a_file"]]),
            },
            [],
        ),
        "datasets": ({}, []),
        "depth": (
            {
                "--n-pairs": st.sampled_from(WILD),
                "--positions": st.sampled_from(WILD),
                "--pairs": st.sampled_from(files + ["/no/file.csv", "advbench"]),
            },
            ["--n-pairs", "2"],
        ),
        "prefill": (
            {"--ks": st.sampled_from(["0,1", "", ",", "a", "-1", "1000000", "0"]), "--n-pairs": st.sampled_from(WILD)},
            ["--n-pairs", "2", "--ks", "0,1"],
        ),
        "disalign": (
            {
                "--alphas": st.sampled_from(["0,1", "", "nan", "inf", "a", "-1", "1e309"]),
                "--tolerance": st.sampled_from(WILD),
            },
            ["--alphas", "0,1"],
        ),
        "generate": (
            {"--prompt": st.sampled_from(["what is 2 plus 3 ?", "", " ", "x " * 200, "\ufeff\x00"])},
            ["--prompt", "say hi"],
        ),
        "regions": (
            {
                "--method": st.sampled_from(["all", "set_difference", "orthogonal", "units", "actsvd", "x"]),
                "--score": st.sampled_from(["snip", "wanda", "x"]),
                "--p": st.sampled_from(WILD),
                "--q": st.sampled_from(WILD),
                "--r-s": st.sampled_from(WILD),
                "--r-u": st.sampled_from(WILD),
                "--safety-pct": st.sampled_from(WILD + ["100", "150"]),
                "--calibration-n": st.sampled_from(["0", "-1", "nan", "", "1", "3"]),
                "--group": st.sampled_from(["row", "matrix", "layer", "col"]),
                "--prune-to": st.sampled_from(["zero", "base", "x"]),
            },
            ["--calibration-n", "4", "--method", "orthogonal"],
        ),
        "landscape": (
            {
                "--direction": st.sampled_from(["random", "base", "x"]),
                "--seed": st.sampled_from(WILD),
                "--norm": st.sampled_from(["layer", "filter", "x"]),
                "--groups": st.sampled_from(["linear", "linear,norm", "", "bogus", ",", "embed,lm_head,other"]),
                "--lo": st.sampled_from(WILD),
                "--hi": st.sampled_from(WILD),
                "--steps": st.sampled_from(["0", "-1", "nan", "", "1", "2", "100000", "1000000000"]),
            },
            ["--steps", "2"],
        ),
        "spectra": ({"--k": st.sampled_from(WILD + ["1000000"])}, []),
        "lox": (
            {
                "--k": st.sampled_from(WILD + ["1000000"]),
                "--alpha": st.sampled_from(WILD),
                "--layers": st.sampled_from(["0", "9", "", "a", "-1", "0,1"]),
                "--modules": st.sampled_from(["q_proj", "", "nope", "q_proj,down_proj"]),
                "--save": st.sampled_from(
                    ["@out", "@cache/mylox", w["a_file"], w["a_file"] + "/sub", w["foreign"], ""]
                ),
            },
            ["--k", "4"],
        ),
        "attack": (
            {
                "--variants": st.sampled_from(["aligned", "lox", "", ",", "nope", "aligned,lox", "frozen-units"]),
                "--data": st.sampled_from(["harmful", "benign", "x"]),
                "--attack-data": st.sampled_from(files + ["/no/file.csv"]),
                "--n-examples": st.sampled_from(["0", "-1", "", "nan"] + CHEAP_INT),
                "--method": st.sampled_from(["full", "lora", "x"]),
                "--lr": st.sampled_from(WILD),
                "--steps": st.sampled_from(["0", "-1", "", "nan", "1"]),
                "--batch-size": st.sampled_from(["0", "-1", "", "nan"] + CHEAP_INT),
                "--eval-every": st.sampled_from(["0", "-1", "", "nan", "1"]),
                "--lora-rank": st.sampled_from(["0", "-1", "", "2"]),
                "--k": st.sampled_from(WILD),
                "--alpha": st.sampled_from(WILD),
                "--unit-pct": st.sampled_from(WILD),
                "--calibration-n": st.sampled_from(["0", "-1", "", "3"]),
            },
            [
                "--steps",
                "1",
                "--eval-every",
                "1",
                "--n-examples",
                "2",
                "--batch-size",
                "2",
                "--variants",
                "aligned",
                "--calibration-n",
                "4",
            ],
        ),
        "recovery": (
            {
                "--ranks": st.sampled_from(["1", "1,1000000", "", "a,b", "0", "-1", "1,,2"]),
                "--tolerance": st.sampled_from(WILD),
            },
            ["--ranks", "1,2"],
        ),
    }
    command = draw(st.sampled_from(sorted(per_command) + ["cache"]))
    if command == "cache":
        root = draw(st.sampled_from(["@cache", w["a_file"], w["foreign"], "@empty", "", "/no/such/dir/at/all"]))
        return ["cache", draw(st.sampled_from(["info", "clear", "wipe"])), "--root", root]
    flags, cheap = per_command[command]
    if command == "datasets":
        return ["datasets", *draw(st.sampled_from([[], ["--bogus-flag"], ["--json"]]))]
    no_sets = ("generate", "spectra", "depth", "prefill")
    options = {**common, **flags, **(prompts if command not in no_sets else {})}
    chosen = draw(st.lists(st.sampled_from(sorted(options)), max_size=4, unique=True))
    argv = [command, "--model", model, "--base", base, "--device", "cpu", "--n", "2", "--max-new-tokens", "2", *cheap]
    if command in no_sets:
        argv = [a for i, a in enumerate(argv) if a != "--n" and (i == 0 or argv[i - 1] != "--n")]
    for flag in chosen:
        argv += [flag, draw(options[flag])]
    extra = draw(st.sampled_from([None] * 4 + ["--trust-remote-code", "--bogus-flag", "--json"]))
    if extra and command != "cache":
        argv.append(extra)
    return argv


def _resolve(argv: list[str], w, tmp: Path) -> list[str]:
    out = []
    for a in argv:
        if a == "@out":
            a = str(tmp / "out")
        elif a == "@cache":
            a = str(w["cache"])
        elif a == "@cache/mylox":
            a = str(w["cache"] / "mylox")
        elif a == "@empty":
            a = str(tmp / "empty")
            (tmp / "empty").mkdir(exist_ok=True)
        out.append(a)
    return out


@pytest.fixture(scope="module")
def fuzz_env(world):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BRITTLE_CACHE", str(world["cache"]))
        mp.setenv("BRITTLE_THREADS", "1")
        yield


def test_cli_fuzz(world, fuzz_env, capsys, tmp_path_factory):
    import analysis.core.models as models
    from analysis.cli.main import main

    folders = {k: _folder_hash(world[k]) for k in ("aligned", "base")}
    loaded: list = []
    real_load = models.load_model

    def recording_load(*a, **k):
        lm = real_load(*a, **k)
        loaded.append((lm, checksum(lm.model)))
        return lm

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=not os.environ.get("FUZZ_RANDOM"),
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(data):
        argv = _resolve(data.draw(invocations(world)), world, tmp_path_factory.mktemp("ex"))
        loaded.clear()
        cache_before = _cache_listing(world["cache"])
        capsys.readouterr()
        models.load_model = recording_load
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
        except BaseException as e:  # noqa: BLE001 — the point of the test
            pytest.fail(f"{argv}: escaped {type(e).__name__}: {e}")
        finally:
            models.load_model = real_load
        out, err = capsys.readouterr()
        if os.environ.get("FUZZ_LOG"):
            with open(os.environ["FUZZ_LOG"], "a") as log:
                log.write(f"{code} {argv} {err.strip()[:150]!r}\n")
        assert code in (0, 2), f"{argv}: exit {code}\n{err}"
        assert "Traceback" not in err and "Traceback" not in out, f"{argv}:\n{err}"
        for lm, before in loaded:
            assert checksum(lm.model) == before, f"{argv}: weights changed"
        if code == 2:
            assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, f"{argv}:\n{err}"
            assert _cache_listing(world["cache"]) == cache_before, f"{argv}: the cache changed on error"

    check()
    assert {k: _folder_hash(world[k]) for k in ("aligned", "base")} == folders
    assert Path(world["foreign"], "thesis", "d.tex").exists()
