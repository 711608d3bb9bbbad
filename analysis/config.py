"""Launch settings from a TOML file (as llm-transparency-tool keeps its launch config in a file).

``BRITTLE_CONFIG=configs/demo.toml make run`` starts the app in demo mode: only the listed models, no custom
paths or uploads, and caps on prompts, tokens, grid points and attack steps — safe to show to an audience.
Without a file every limit is the permissive default below. A malformed file is a :class:`ConfigError`
whose message names the key and what was expected.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

ENV = "BRITTLE_CONFIG"


class ConfigError(ValueError):
    """The launch config cannot be used; the message says which key is wrong and what was expected."""


@dataclass(frozen=True)
class AppConfig:
    demo_mode: bool = False
    title: str = "Alignment brittleness explorer"
    allowed_models: tuple[str, ...] = ("demo",)      # in demo mode: the only aligned/base sources offered
    allow_custom_paths: bool = True                  # free-text model folders / hub ids / output folders
    allow_uploads: bool = True                       # prompt and attack-data uploads
    max_prompts: int = 120                           # per prompt set
    max_new_tokens: int = 64
    max_prompt_chars: int = 2000                     # typed prompts and system prompts
    max_grid_points: int = 441                       # landscape points per computation (21 × 21)
    max_attack_steps: int = 60
    ray_address: str = ""                            # landscape points / scoring on Ray ("" = in process)
    source: str = ""                                 # the file this came from ("" = defaults)


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
    known = {f.name: f for f in fields(AppConfig) if f.name != "source"}
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
    cfg = AppConfig(**values, source=str(p))
    if cfg.demo_mode and (cfg.allow_custom_paths or cfg.allow_uploads) and \
            ("allow_custom_paths" not in raw or "allow_uploads" not in raw):
        # demo mode closes what it does not explicitly open
        cfg = AppConfig(**{**values, "allow_custom_paths": raw.get("allow_custom_paths", False),
                           "allow_uploads": raw.get("allow_uploads", False)}, source=str(p))
    return cfg
