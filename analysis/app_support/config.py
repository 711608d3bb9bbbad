"""Launch settings from a TOML file (as llm-transparency-tool keeps its launch config in a file).

``BRITTLE_CONFIG=configs/demo.toml make run`` starts the app in demo mode: only the listed models, no custom
paths or uploads, and caps on prompts, tokens, grid points and attack steps — safe to show to an audience.
Without a file every limit is the permissive default below. A malformed file is a :class:`ConfigError`
whose message names the key and what was expected.

Serving: the app listens on ``server_address`` (default 127.0.0.1, only this machine; the Makefile passes it to
Streamlit). When it listens beyond localhost, :meth:`AppConfig.for_address` turns off typed model paths,
remote code and writing folders unless the file turns each on explicitly (``allow_custom_paths``,
``allow_remote_code``, ``allow_writes``) — whoever reaches the port must not run code or write on the server.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

ENV = "BRITTLE_CONFIG"


class ConfigError(ValueError):
    """The launch config cannot be used; the message says which key is wrong and what was expected."""


@dataclass(frozen=True)
class AppConfig:
    demo_mode: bool = False
    title: str = "Alignment brittleness explorer"
    allowed_models: tuple[str, ...] = ("demo",)  # in demo mode: the only aligned/base sources offered
    allow_custom_paths: bool = True  # free-text model folders / hub ids / output folders
    allow_uploads: bool = True  # prompt and attack-data uploads
    max_prompts: int = 120  # per prompt set
    max_new_tokens: int = 64
    max_prompt_chars: int = 2000  # typed prompts and system prompts
    max_grid_points: int = 441  # landscape points per computation (21 × 21)
    max_attack_steps: int = 60
    ray_address: str = ""  # landscape points / scoring on Ray ("" = in process)
    server_address: str = "127.0.0.1"  # where the app listens; beyond localhost locks the below
    allow_remote_code: bool = True  # the "Trust remote code" checkbox (runs a repo's Python)
    allow_writes: bool = True  # saving models into folders on the server
    source: str = ""  # the file this came from ("" = defaults)
    explicit: tuple[str, ...] = field(default=(), compare=False)  # the keys the file set (not defaults)
    exposed: bool = False  # set by for_address: listening beyond localhost

    def for_address(self, address: str | None = None) -> "AppConfig":
        """This config as served on ``address`` (default: ``server_address``): beyond localhost, typed paths,
        remote code and writes are off unless the file set them explicitly."""
        address = self.server_address if address is None else address
        if is_local(address):
            return replace(self, exposed=False)
        locked: dict[str, Any] = {k: getattr(self, k) if k in self.explicit else False for k in EXPOSED_LOCKS}
        return replace(self, **locked, exposed=True)


EXPOSED_LOCKS = ("allow_custom_paths", "allow_remote_code", "allow_writes")


def is_local(address: str | None) -> bool:
    """Whether a listening address reaches only this machine ('' and 0.0.0.0 mean every interface)."""
    a = (address or "").strip().lower().strip("[]")
    return a == "localhost" or a == "::1" or a.startswith("127.")


def _check(name: str, value, kind) -> None:
    ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not ok:
        want = {bool: "true or false", int: "an integer", str: "a string", list: "a list of strings"}[kind]
        raise ConfigError(f"config key '{name}' must be {want}, got {value!r}")


def load_config(path: str | Path | None = None) -> AppConfig:
    """Read the config named by ``path`` or ``$BRITTLE_CONFIG``; defaults when neither is set."""
    path = path or os.environ.get(ENV, "")
    if not path:
        return AppConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p.name}: not valid TOML ({e})") from None
    known = {f.name: f for f in fields(AppConfig) if f.name not in ("source", "explicit", "exposed")}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{p.name}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(known)}")
    values = {}
    for name, value in raw.items():
        default = getattr(AppConfig, name)
        if isinstance(default, tuple):
            _check(name, value, list)
            if not value or not all(isinstance(v, str) and v.strip() for v in value):
                raise ConfigError(f"config key '{name}' must be a non-empty list of model sources")
            value = tuple(v.strip() for v in value)
        else:
            _check(name, value, type(default))
            if type(value) is int and value < 1:
                raise ConfigError(f"config key '{name}' must be >= 1, got {value}")
        values[name] = value
    cfg = AppConfig(**values, source=str(p), explicit=tuple(sorted(raw)))
    if cfg.demo_mode:
        # demo mode closes what it does not explicitly open
        closed = ("allow_custom_paths", "allow_uploads", "allow_remote_code", "allow_writes")
        cfg = replace(cfg, **{k: raw.get(k, False) for k in closed})
    return cfg


if (
    __name__ == "__main__"
):  # `python -m analysis.app_support.config server_address`: one launch setting, for the Makefile
    import sys

    try:
        print(getattr(load_config(), sys.argv[1] if len(sys.argv) > 1 else "server_address"))
    except (ConfigError, AttributeError) as e:
        sys.exit(f"error: {e}")
