"""Output folders: checked before any work so a run does not fail at its end."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def writable_new_folder(out: str | Path, cache_root: str | Path | None = None) -> Path:
    """Check that a new model folder can be written at ``out`` before any work: not inside the results cache
    (``cache clear`` would refuse or it would be mixed with cache entries), not an existing file, not under a
    file, not a non-empty folder, and in a place this process can write. Returns the path."""
    from analysis.core.cache import default_root, is_inside

    raw = str(out).strip()
    if not raw:
        raise ValueError("the output folder is empty; give a path for the new model folder")
    out = Path(raw).expanduser()
    root = Path(cache_root) if cache_root is not None else default_root()
    if is_inside(out, root):
        raise ValueError(f"{out} is inside the results cache ({root}); save models outside it")
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is an existing file; choose a new folder")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose a new folder")
    parent = out if out.is_dir() else out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"cannot create {out}: {parent} is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(dir=parent, prefix=".brittle-probe-")
        os.rmdir(probe)
    except OSError as e:
        raise ValueError(f"cannot write {out}: {parent} is not writable ({e.strerror or e})") from None
    return out
