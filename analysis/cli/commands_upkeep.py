"""``build-demo``, ``cache`` and ``warm``: build the demo organism, inspect or clear the cache, warm it with the
teaching presets."""

from __future__ import annotations

from analysis.cli.common import load_checked_pair, set_threads


def cmd_build_demo(args) -> int:
    from pathlib import Path

    from analysis.data.organism.build_demo import WEIGHTS_DIR, build_demo

    set_threads()
    if args.seed != 0 and not args.out:
        raise ValueError("--seed other than 0 builds a different pair: give --out FOLDER (the shipped pair is seed 0)")
    base_from = Path(args.base_from) / "base" if args.base_from else None
    build_demo(Path(args.out) if args.out else WEIGHTS_DIR, seed=args.seed, base_from=base_from)
    return 0


def cmd_cache(args) -> int:
    from analysis.core.cache import Cache

    c = Cache(args.root)
    if args.action == "clear":
        print(f"removed {c.clear()} entries from {c.root}")
    else:
        i = c.info()
        print(f"cache at {i.root}: {i.entries} entries, {i.bytes / 1e6:.2f} MB")
        for kind, n in sorted(i.by_kind.items()):
            print(f"  {kind}: {n}")
    return 0


def cmd_warm(args) -> int:
    from analysis.app_support.config import load_config
    from analysis.app_support.warm import warm

    cfg = load_config(args.config)
    pair = load_checked_pair(args)
    names = None if args.presets == ["all"] else [n.strip() for n in args.presets if n.strip()]
    n = warm(pair, cfg, names)
    if n == 0:
        raise ValueError(f"no preset matches {' / '.join(args.presets)!r}; see analysis/app_support/presets.py")
    print(f"warmed {n} presets into the cache")
    return 0
