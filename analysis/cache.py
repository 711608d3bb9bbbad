"""Content-addressed results on disk, in safe formats only (JSON and safetensors; never pickle).

A key is the SHA-256 of the canonical JSON of what the result depends on (model fingerprint, data,
method, parameters). Each entry is a payload file plus a ``.meta.json`` holding the payload's SHA-256
and the key's parts; writes are atomic (temp file + rename) and a payload whose hash does not match
its meta is treated as missing, deleted, and recomputed by :meth:`Cache.get_or_compute`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from safetensors.torch import load_file, save_file

DEFAULT_ROOT = Path(os.environ.get("BRITTLE_CACHE", Path(__file__).resolve().parent.parent / "cache"))
FORMATS = ("json", "safetensors")


def make_key(**parts) -> str:
    """SHA-256 of the parts as canonical JSON (they must be JSON-serialisable)."""
    try:
        blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=_no_default)
    except TypeError as e:
        raise TypeError(f"cache key parts must be JSON-serialisable: {e}") from None
    return hashlib.sha256(blob.encode()).hexdigest()


def _no_default(obj):
    raise TypeError(f"{type(obj).__name__} is not JSON-serialisable")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic_write(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class CacheInfo:
    root: Path
    entries: int
    bytes: int
    by_kind: dict[str, int]


class Cache:
    """Results keyed by content hash under ``root``."""

    def __init__(self, root: str | Path = DEFAULT_ROOT):
        self.root = Path(root)

    def _paths(self, key: str, fmt: str) -> tuple[Path, Path]:
        d = self.root / key[:2]
        return d / f"{key}.{fmt}", d / f"{key}.meta.json"

    def put(self, key: str, value, fmt: str, parts: dict | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}")
        payload, meta = self._paths(key, fmt)
        if fmt == "json":
            _atomic_write(payload, lambda t: Path(t).write_text(json.dumps(value)))
        else:
            tensors = {k: v.detach().cpu().contiguous() for k, v in value.items()}
            _atomic_write(payload, lambda t: save_file(tensors, t))
        info = {"sha256": _sha256(payload), "format": fmt, "created": time.time(),
                "kind": (parts or {}).get("kind", "?"), "parts": parts or {}}
        _atomic_write(meta, lambda t: Path(t).write_text(json.dumps(info, default=str)))

    def get(self, key: str, fmt: str):
        """The stored value, or None when absent or corrupt (a corrupt entry is deleted)."""
        payload, meta = self._paths(key, fmt)
        if not payload.exists() or not meta.exists():
            return None
        try:
            info = json.loads(meta.read_text())
            if info.get("sha256") != _sha256(payload):
                raise ValueError("checksum mismatch")
            if fmt == "json":
                return json.loads(payload.read_text())
            return load_file(str(payload))
        except Exception:  # noqa: BLE001 — any unreadable entry is a miss
            self.delete(key, fmt)
            return None

    def delete(self, key: str, fmt: str) -> None:
        for p in self._paths(key, fmt):
            p.unlink(missing_ok=True)

    def get_or_compute(self, parts: dict, compute: Callable[[], object], fmt: str = "json"):
        """Return the cached value for ``parts`` or compute, store and return it."""
        key = make_key(**parts)
        hit = self.get(key, fmt)
        if hit is not None:
            return hit
        value = compute()
        self.put(key, value, fmt, parts)
        return value

    def info(self) -> CacheInfo:
        metas = list(self.root.glob("*/*.meta.json")) if self.root.exists() else []
        total, kinds = 0, {}
        for m in metas:
            for p in m.parent.glob(m.name.replace(".meta.json", ".*")):
                total += p.stat().st_size
            try:
                kind = json.loads(m.read_text()).get("kind", "?")
            except (OSError, ValueError):
                kind = "corrupt"
            kinds[kind] = kinds.get(kind, 0) + 1
        return CacheInfo(self.root, len(metas), total, kinds)

    def clear(self) -> int:
        """Delete every entry; returns how many there were. Keeps the root folder."""
        n = self.info().entries
        if self.root.exists():
            for child in self.root.iterdir():
                if child.is_dir():
                    shutil.rmtree(child)
        return n
