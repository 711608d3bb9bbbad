"""Command line: ``python -m analysis <command>``. Parses, validates, runs one command; bad input is one line."""

from __future__ import annotations

import sys
from typing import cast

from analysis.cli import checks as V
from analysis.cli.parser import parser
from analysis.core.arch import UnsupportedArchitecture
from analysis.core.models import ModelLoadError
from analysis.data.prompts import DataFormatError


def main(argv: list[str] | None = None) -> int:
    """Run one command; bad input is one line (``error: …``, exit 2), Ctrl-C one line (exit 130)."""
    args = parser().parse_args(argv)
    kept_before = None
    try:
        import warnings

        from analysis.core.cache import Cache, CacheWarning

        warnings.simplefilter("ignore", CacheWarning)  # before_load already printed it as a note

        if args.command != "cache":
            kept_before = Cache().count()
        V.print_notes(V.before_load(args))  # every check that needs no model, before any loads
        return args.func(args)
    except (ModelLoadError, DataFormatError, UnsupportedArchitecture, ValueError) as e:
        print(f"error: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}", file=sys.stderr)
        return 2
    except (MemoryError, OSError) as e:
        what = "out of memory" if isinstance(e, MemoryError) else (e.strerror or str(e))
        print(
            f"error: {what}{f' ({cast(OSError, e).filename})' if getattr(e, 'filename', None) else ''}; "
            "nothing half-written was kept",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(f"interrupted; {_kept_since(kept_before)}", file=sys.stderr)
        return 130


def _kept_since(before: int | None) -> str:
    """What an interrupted run leaves: the finished results it added to the cache (never a half-written one)."""
    if before is None:
        return "nothing changed"
    try:
        from analysis.core.cache import Cache

        n = max(0, Cache().count() - before)
    except (OSError, ValueError):
        return "finished results stay in the cache"
    return f"{n} finished result{'s' if n != 1 else ''} kept in the cache (no partial ones)"


if __name__ == "__main__":
    sys.exit(main())
