import json

import pytest
import torch

from analysis.core.cache import Cache, make_key


def test_key_is_canonical_and_sensitive():
    assert make_key(a=1, b=[1, 2]) == make_key(b=[1, 2], a=1)
    assert make_key(a=1, b=[1, 2]) != make_key(a=1, b=[2, 1])
    with pytest.raises(TypeError, match="JSON-serialisable"):
        make_key(a=torch.ones(2))


def test_json_and_tensor_roundtrip(tmp_path):
    c = Cache(tmp_path)
    c.put("ab" * 32, {"x": [1, 2.5]}, "json", {"kind": "demo"})
    assert c.get("ab" * 32, "json") == {"x": [1, 2.5]}
    t = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    c.put("cd" * 32, t, "safetensors", {"kind": "scores"})
    got = c.get("cd" * 32, "safetensors")
    assert torch.equal(got["w"], t["w"])
    info = c.info()
    assert info.entries == 2 and info.by_kind == {"demo": 1, "scores": 1} and info.bytes > 0
    assert not list(tmp_path.rglob(".tmp-*"))  # atomic writes leave no temp files


def test_corrupt_entry_is_detected_and_recomputed(tmp_path):
    c = Cache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    parts = {"kind": "t", "p": 1}
    assert c.get_or_compute(parts, compute) == {"value": 1}
    assert c.get_or_compute(parts, compute) == {"value": 1}  # hit
    payload = next(tmp_path.rglob("*.json"))
    payload = [p for p in tmp_path.rglob("*.json") if not p.name.endswith(".meta.json")][0]
    payload.write_text(json.dumps({"value": 999}))  # tampered / half-written
    assert c.get_or_compute(parts, compute) == {"value": 2}  # recomputed, not the corrupt value
    assert len(calls) == 2
    payload.write_bytes(b"\x00garbage")
    assert c.get(make_key(**parts), "json") is None  # deleted as corrupt
    assert c.info().entries == 0


def test_corrupt_safetensors_is_a_miss(tmp_path):
    c = Cache(tmp_path)
    c.put("ef" * 32, {"w": torch.ones(4)}, "safetensors")
    f = next(tmp_path.rglob("*.safetensors"))
    f.write_bytes(f.read_bytes()[:-3])
    assert c.get("ef" * 32, "safetensors") is None


def test_clear(tmp_path):
    c = Cache(tmp_path)
    for i in range(3):
        c.put(make_key(i=i), {"i": i}, "json", {"kind": "k"})
    assert c.clear() == 3
    assert c.info().entries == 0 and tmp_path.exists()


# --- the cache deletes only what it wrote ---------------------------------------
def test_clear_refuses_a_root_holding_foreign_files_and_deletes_nothing(tmp_path):
    thesis = tmp_path / "projects" / "thesis" / "d.tex"
    thesis.parent.mkdir(parents=True)
    thesis.write_text("a")
    c = Cache(tmp_path)
    c.put(make_key(i=1), {"i": 1}, "json", {"kind": "k"})
    with pytest.raises(ValueError, match="refusing to clear") as info:
        c.clear()
    assert "projects" in str(info.value) and "\n" not in str(info.value)
    assert thesis.read_text() == "a" and c.info().entries == 1


def test_clear_refuses_foreign_files_inside_a_shard_folder(tmp_path):
    c = Cache(tmp_path)
    key = make_key(i=1)
    c.put(key, {"i": 1}, "json", {"kind": "k"})
    notes = tmp_path / key[:2] / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(ValueError, match="notes.txt"):
        c.clear()
    assert notes.exists() and c.get(key, "json") == {"i": 1}


def test_clear_removes_entries_and_empty_shards_but_keeps_the_marker(tmp_path):
    c = Cache(tmp_path)
    for i in range(3):
        c.put(make_key(i=i), {"i": i}, "json", {"kind": "k"})
    c.put(make_key(t=1), {"w": torch.ones(2)}, "safetensors", {"kind": "t"})
    (tmp_path / make_key(i=0)[:2] / ".tmp-abc123.json").write_text("half")  # an interrupted write
    assert json.loads((tmp_path / ".brittle-cache").read_text())["format"] >= 1
    assert c.clear() == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == [".brittle-cache"]


def test_a_model_saved_inside_the_cache_stops_clear(tmp_path):
    c = Cache(tmp_path)
    c.put(make_key(i=1), {"i": 1}, "json", {"kind": "k"})
    (tmp_path / "mylox").mkdir()
    (tmp_path / "mylox" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="mylox"):
        c.clear()
    assert (tmp_path / "mylox" / "config.json").exists()


def test_a_cache_root_that_is_a_file_is_a_clear_error(tmp_path):
    f = tmp_path / "cachefile"
    f.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        Cache(f)


@pytest.fixture
def read_only(tmp_path):
    """Make folders immutable (works for root too); undone afterwards."""
    import subprocess

    made = []

    def make(*dirs):
        for d in dirs:
            if subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode != 0:
                pytest.skip("chattr +i is not available here")
            made.append(d)

    yield make
    for d in made:
        subprocess.run(["chattr", "-i", str(d)], capture_output=True)


def test_a_read_only_cache_serves_hits_returns_misses_uncached_and_refuses_clear(tmp_path, read_only):
    c = Cache(tmp_path)
    hit = {"kind": "k", "i": 1}
    c.get_or_compute(hit, lambda: {"v": 1})
    shard = tmp_path / make_key(**hit)[:2]
    read_only(tmp_path, shard)
    c = Cache(tmp_path)
    assert c.check_writable() is not None
    assert c.get_or_compute(hit, lambda: {"v": "recomputed"}) == {"v": 1}  # a hit still reads
    with pytest.warns(UserWarning, match="cannot be written"):
        assert c.get_or_compute({"kind": "k", "i": 2}, lambda: {"v": 2}) == {"v": 2}  # computed, not kept
    assert c.unwritable and c.info().entries == 1
    with pytest.raises(ValueError, match="cannot") as info:
        c.clear()
    assert "\n" not in str(info.value) and c.info().entries == 1


# --- the default root is resolved when a Cache is made; tests never touch the repository's cache/ ----
def test_default_root_follows_the_environment_at_creation(tmp_path, monkeypatch):
    monkeypatch.setenv("BRITTLE_CACHE", str(tmp_path / "a"))
    assert Cache().root == tmp_path / "a"
    monkeypatch.setenv("BRITTLE_CACHE", str(tmp_path / "b"))
    assert Cache().root == tmp_path / "b"


def test_the_test_session_has_its_own_cache_and_leaves_the_repo_cache_untouched():
    from analysis.core import cache as cache_mod
    from conftest import ROOT, _repo_cache_listing

    before = _repo_cache_listing()
    c = Cache()
    assert not cache_mod.is_inside(c.root, ROOT / "cache")
    c.get_or_compute({"kind": "session-check"}, lambda: {"ok": True})
    assert c.info().entries >= 1 and _repo_cache_listing() == before


@pytest.mark.parametrize("run", [1, 2])
def test_every_test_starts_with_an_empty_cache_of_its_own(run):
    """The autouse fixture: the second run would find the first one's entry if tests shared a cache."""
    c = Cache()
    assert c.count() == 0 and c.root.name.startswith("brittle-cache"), (c.root, c.count())
    c.get_or_compute({"kind": "isolation"}, lambda: {"run": run}, "json")
    assert c.count() == 1
