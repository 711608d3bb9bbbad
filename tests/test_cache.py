import json

import pytest
import torch

from analysis.cache import Cache, make_key


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
