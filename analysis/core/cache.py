"""Content-addressed results on disk, in safe formats only (JSON and safetensors; never pickle).

A key is the SHA-256 of the canonical JSON of what the result depends on (model fingerprint, data,
method, parameters). Each entry is a payload file plus a ``.meta.json`` holding the payload's SHA-256
and the key's parts; writes are atomic (temp file + rename) and a payload whose hash does not match
its meta is treated as missing, deleted, and recomputed by :meth:`Cache.get_or_compute`.

The cache only ever deletes what it wrote. Its layout is a marker file ``.brittle-cache`` (the format
version, written on first use) and shard folders ``<2 hex>/`` holding ``<64 hex>.json``,
``<64 hex>.safetensors`` and ``<64 hex>.meta.json`` (plus ``.tmp-*`` files of interrupted writes).
:meth:`Cache.clear` refuses a root that holds anything else and never descends into foreign folders.

A cache that cannot be written (a read-only folder or disk) still serves what it holds; new results are
returned uncached and :attr:`Cache.unwritable` says why (the CLI prints it as a note).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from safetensors.torch import load_file, save_file

REPO_CACHE = Path(__file__).resolve().parents[2] / "cache"
ENV = "BRITTLE_CACHE"
# A process-wide override of the default root (tests set it); None: $BRITTLE_CACHE, else the repo's cache/.
DEFAULT_ROOT: Path | None = None
FORMATS = ("json", "safetensors")
MARKER = ".brittle-cache"
FORMAT_VERSION = 1
_SHARD = re.compile(r"^[0-9a-f]{2}$")
_ENTRY = re.compile(r"^([0-9a-f]{64})\.(json|safetensors|meta\.json)$")
_TMP = re.compile(r"^\.tmp-[A-Za-z0-9_]+\.(json|safetensors)$")


class CacheWarning(UserWarning):
    """The cache could not store a result (it was returned uncached)."""


def default_root() -> Path:
    """Where ``Cache()`` keeps results, resolved now (not at import): the override, $BRITTLE_CACHE or cache/."""
    if DEFAULT_ROOT is not None:
        return Path(DEFAULT_ROOT)
    env = os.environ.get(ENV, "").strip()
    return Path(env).expanduser() if env else REPO_CACHE


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


def _atomic_write(path: Path, write: Callable[[str], object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_inside(path: str | Path, folder: str | Path) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (after resolving links and '..')."""
    p, f = Path(path).expanduser().resolve(), Path(folder).expanduser().resolve()
    return p == f or f in p.parents


@dataclass
class CacheInfo:
    root: Path
    entries: int
    bytes: int
    by_kind: dict[str, int]


class Cache:
    """Results keyed by content hash under ``root`` (default: :func:`default_root`, resolved per Cache)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser() if root is not None and str(root) != "" else default_root()
        if self.root.exists() and not self.root.is_dir():
            raise ValueError(f"the cache root {self.root} is a file; point --root / {ENV} at a folder")
        self.unwritable: str | None = None  # why the last write failed (None: writes work)

    # --- layout ---------------------------------------------------------------------------------
    def _paths(self, key: str, fmt: str) -> tuple[Path, Path]:
        d = self.root / key[:2]
        return d / f"{key}.{fmt}", d / f"{key}.meta.json"

    def _mark(self) -> None:
        marker = self.root / MARKER
        if not marker.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            _atomic_write(
                marker,
                lambda t: Path(t).write_text(
                    json.dumps({"format": FORMAT_VERSION, "written_by": "analysis.core.cache"}) + "\n"
                ),
            )

    def foreign(self) -> list[Path]:
        """What under the root the cache did not write (top level and inside shard folders; never deeper)."""
        if not self.root.is_dir():
            return []
        out = []
        for child in sorted(self.root.iterdir()):
            if child.name == MARKER and child.is_file() and not child.is_symlink():
                continue
            if child.name == ".gitkeep" and child.is_file() and child.stat().st_size == 0:
                continue  # the repository's placeholder for its cache/ folder
            if not (_SHARD.match(child.name) and child.is_dir() and not child.is_symlink()):
                out.append(child)
                continue
            for f in sorted(child.iterdir()):
                m = _ENTRY.match(f.name)
                ok = (m and m.group(1)[:2] == child.name) or _TMP.match(f.name)
                if not ok or not f.is_file() or f.is_symlink():
                    out.append(f)
        return out

    def check_writable(self) -> str | None:
        """None when results can be stored here, else why not (checked by creating and removing a file)."""
        if self.root.exists() and not self.root.is_dir():
            return f"the cache root {self.root} is a file"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".json")
            os.close(fd)
            os.unlink(tmp)
        except OSError as e:
            return f"the cache at {self.root} cannot be written ({e.strerror or e})"
        return None

    # --- entries --------------------------------------------------------------------------------
    def put(self, key: str, value, fmt: str, parts: dict | None = None) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}")
        if not re.fullmatch(r"[0-9a-f]{64}", key):
            raise ValueError(f"cache keys are 64 lowercase hex digits (make_key), got {key!r}")
        self._mark()
        payload, meta = self._paths(key, fmt)
        if fmt == "json":
            _atomic_write(payload, lambda t: Path(t).write_text(json.dumps(value)))
        else:
            tensors = {k: v.detach().cpu().contiguous() for k, v in value.items()}
            _atomic_write(payload, lambda t: save_file(tensors, t))
        info = {
            "sha256": _sha256(payload),
            "format": fmt,
            "created": time.time(),
            "kind": (parts or {}).get("kind", "?"),
            "parts": parts or {},
        }
        _atomic_write(meta, lambda t: Path(t).write_text(json.dumps(info, default=str)))

    def get(self, key: str, fmt: str):
        """The stored value, or None when absent or corrupt (a corrupt entry is deleted when it can be)."""
        payload, meta = self._paths(key, fmt)
        if not payload.is_file() or not meta.is_file():
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
            try:
                p.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only cache: the entry stays a miss

    def get_or_compute(self, parts: dict, compute: Callable[[], object], fmt: str = "json"):
        """Return the cached value for ``parts`` or compute, store and return it (uncached when the cache
        cannot be written; :attr:`unwritable` then says why and a :class:`CacheWarning` is issued)."""
        key = make_key(**parts)
        hit = self.get(key, fmt)
        if hit is not None:
            return hit
        value = compute()
        try:
            self.put(key, value, fmt, parts)
        except OSError as e:
            self.unwritable = f"the cache at {self.root} cannot be written ({e.strerror or e}); results are not kept"
            warnings.warn(self.unwritable, CacheWarning, stacklevel=2)
        return value

    def _metas(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return [
            m
            for d in self.root.iterdir()
            if _SHARD.match(d.name) and d.is_dir() and not d.is_symlink()
            for m in d.glob("*.meta.json")
            if _ENTRY.match(m.name)
        ]

    def count(self) -> int:
        """How many entries (cheap: no file is read)."""
        return len(self._metas())

    def info(self) -> CacheInfo:
        metas = self._metas()
        total = 0
        kinds: dict[str, int] = {}
        for m in metas:
            stem = m.name[: -len(".meta.json")]
            for p in (m, m.parent / f"{stem}.json", m.parent / f"{stem}.safetensors"):
                if p.is_file():
                    total += p.stat().st_size
            try:
                kind = json.loads(m.read_text()).get("kind", "?")
            except (OSError, ValueError):
                kind = "corrupt"
            kinds[kind] = kinds.get(kind, 0) + 1
        return CacheInfo(self.root, len(metas), total, kinds)

    def clear(self) -> int:
        """Delete every entry the cache wrote (and then-empty shard folders); returns how many entries.

        Refuses (ValueError, nothing deleted) a root holding anything the cache did not write, and a root
        that cannot be written. Keeps the root folder and its marker."""
        if not self.root.exists():
            return 0
        if not self.root.is_dir():
            raise ValueError(f"the cache root {self.root} is a file, not a cache folder; nothing removed")
        alien = self.foreign()
        if alien:
            shown = ", ".join(str(p.relative_to(self.root)) for p in alien[:3])
            more = f" and {len(alien) - 3} more" if len(alien) > 3 else ""
            raise ValueError(
                f"refusing to clear {self.root}: it holds {shown}{more}, which the cache did not "
                "write; nothing removed (is --root / BRITTLE_CACHE the right folder?)"
            )
        why = self.check_writable()
        if why:
            raise ValueError(f"cannot clear: {why}; nothing removed")
        n = self.info().entries
        try:
            for shard in [d for d in self.root.iterdir() if d.is_dir()]:
                for f in shard.iterdir():
                    f.unlink()
                shard.rmdir()
        except OSError as e:
            raise ValueError(f"cannot clear {self.root}: {e.strerror or e} (some entries may remain)") from None
        return n
