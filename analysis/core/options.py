"""Settings options: each settings dataclass field declares, once, its default, help, valid range or choices.

``option(...)`` makes such a field; ``check(obj)`` validates a settings object against its fields; the CLI's
argparse options (``add_arguments``) and the pages' widget limits (``limits``, ``slider_args``) are generated
from the same declarations, so a limit lives in one place (as scikit-learn's ``_parameter_constraints``).

A field whose default is a tuple is a list option: its range or choices apply to every element, and on the
command line it is a comma list (kept as text: the command splits it).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, cast

KEY = "option"
Number = float | int


class OptionError(argparse.ArgumentTypeError, ValueError):
    """A bad option value: argparse shows its message; outside argparse it is a ValueError like any bad input."""


@dataclass(frozen=True)
class Spec:
    """What one option accepts."""

    help: str
    kind: type  # int, float or str (of each element, for a list option)
    range: tuple[Number | None, Number | None] | None = None  # inclusive bounds; None: unbounded on that side
    choices: tuple | None = None
    step: Number | None = None  # a widget's step
    cli: str | None = None  # the flag, when not --field-name
    widget_range: tuple[Number, Number] | None = None  # a narrower teaching range for widgets
    open_lo: bool = False  # the lower bound itself is excluded (a learning rate > 0)
    many: bool = False  # a list option (tuple default)

    def bounds(self) -> str:
        lo, hi = self.range or (None, None)
        if lo is not None and hi is not None:
            return f"in ({num(lo)}, {num(hi)}]" if self.open_lo else f"between {num(lo)} and {num(hi)}"
        if lo is not None:
            return f"> {num(lo)}" if self.open_lo else f">= {num(lo)}"
        return f"<= {num(cast(Number, hi))}"  # a range bounds at least one side


def num(v: Number) -> str:
    """A number as a message shows it: whole numbers in full, others short."""
    return str(v) if isinstance(v, int) else f"{v:g}"


def option(
    default: Any,
    *,
    help: str,
    range: tuple | None = None,
    choices: Iterable | None = None,
    step: Number | None = None,
    cli: str | None = None,
    widget_range: tuple | None = None,
    kind: type | None = None,
    open_lo: bool = False,
) -> Any:
    """A dataclass field with its option metadata (``kind`` is needed only when the default is None)."""
    many = isinstance(default, tuple)
    if kind is None:
        sample = default[0] if many and default else default
        kind = str if choices is not None and sample is None else type(sample)
    if kind not in (int, float, str):
        raise TypeError(f"option kind must be int, float or str, got {kind!r}")
    spec = Spec(
        help,
        kind,
        tuple(range) if range else None,
        tuple(choices) if choices is not None else None,
        step,
        cli,
        tuple(widget_range) if widget_range else None,
        open_lo,
        many,
    )
    if widget_range is not None and range is not None:
        lo, hi = range
        if (lo is not None and widget_range[0] < lo) or (hi is not None and widget_range[1] > hi):
            raise ValueError(f"widget range {widget_range} is wider than the valid range {range}")
    return dataclasses.field(default=default, metadata={KEY: spec})


def specs(cls) -> dict[str, Spec]:
    """The option fields of a settings class (or object), by field name, in declaration order."""
    return {f.name: f.metadata[KEY] for f in dataclasses.fields(cls) if KEY in f.metadata}


def default(cls, name: str) -> Any:
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    return f.default


def check_value(value: Any, spec: Spec) -> Any:
    """``value`` (or each element of a list option) against ``spec``; raises OptionError without a name."""
    if value is None:
        return value
    values = value if spec.many else (value,)
    if spec.many and not values:
        raise OptionError("expected at least one value")
    for v in values:
        if spec.choices is not None and v not in spec.choices:
            raise OptionError(f"must be one of {', '.join(map(str, spec.choices))}, got {v!r}")
        if spec.kind in (int, float):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or (spec.kind is int and v != int(v)):
                raise OptionError(f"expected {'a whole number' if spec.kind is int else 'a number'}, got {v!r}")
            if not math.isfinite(v):
                raise OptionError(f"must be a finite number, got {v!r}")
            lo, hi = spec.range or (None, None)
            if (lo is not None and (v <= lo if spec.open_lo else v < lo)) or (hi is not None and v > hi):
                raise OptionError(f"must be {spec.bounds()}, got {num(v)}")
    return value


def check(obj) -> None:
    """Validate every option field of a settings object; a one-line ValueError naming the field."""
    for name, spec in specs(obj).items():
        try:
            check_value(getattr(obj, name), spec)
        except OptionError as e:
            raise ValueError(f"{name} {e}" if str(e).startswith("must") else f"{name}: {e}") from None


def _parse_one(text: str, kind: type) -> Any:
    if kind is str:
        return text
    try:
        v = kind(text.strip())
    except (TypeError, ValueError):
        raise OptionError(f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}") from None
    return v


def parser_type(spec: Spec) -> Callable[[str], Any]:
    """An argparse ``type=`` function: parses and checks the range (and, for lists, each element's choices)."""

    def parse(text: str) -> Any:
        text = str(text)
        if spec.many:
            parts = [p.strip() for p in text.split(",") if p.strip()]
            if not parts:
                raise OptionError(f"expected a comma list, e.g. {example(spec)}; got nothing")
            try:
                values = tuple(_parse_one(p, spec.kind) for p in parts)
            except OptionError:
                raise OptionError(
                    f"expected a comma list of {'integers' if spec.kind is int else 'numbers'}, got {text!r}"
                ) from None
            check_value(values, spec)
            return ",".join(parts)
        v = _parse_one(text, spec.kind)
        if spec.kind is not str:
            check_value(v, spec)
        return v

    cast(Any, parse).spec = spec  # what the tests read to build out-of-range values
    return parse


def example(spec: Spec) -> str:
    if spec.choices:
        return ",".join(map(str, spec.choices[:2]))
    lo = (spec.range or (None, None))[0]
    first = 1 if lo is None else (lo if not spec.open_lo else lo + 1)
    return f"{first:g},{first + 1:g}" if spec.kind is not str else "a,b"


def ranged(
    kind: type,
    range: tuple | None = None,
    *,
    choices: Iterable | None = None,
    many: bool = False,
    open_lo: bool = False,
) -> Callable[[str], Any]:
    """An argparse ``type=`` for a hand-written option (one that belongs to no settings class)."""
    return parser_type(
        Spec("", kind, tuple(range) if range else None, tuple(choices) if choices else None, open_lo=open_lo, many=many)
    )


def flag(name: str, spec: Spec) -> str:
    return spec.cli or "--" + name.replace("_", "-")


def add_arguments(
    parser: argparse.ArgumentParser, cls, fields: Iterable[str | tuple[str, str]] | None = None, **defaults: Any
) -> None:
    """Add ``cls``'s option fields (all, or ``fields``: names or (name, flag) pairs) to ``parser``: flag, type
    with the range checked at parse time, default, choices, help. ``defaults`` overrides a field's default."""
    all_specs = specs(cls)
    for item in fields if fields is not None else all_specs:
        name, fl = item if isinstance(item, tuple) else (item, None)
        spec = all_specs[name]
        value = defaults.get(name, default(cls, name))
        kw: dict[str, Any] = {"help": spec.help, "dest": name if fl is None else fl.lstrip("-").replace("-", "_")}
        if spec.many:
            kw.update(type=parser_type(spec), default=",".join(map(_text, value)))
            if spec.choices:
                kw["help"] += f" (comma list of {', '.join(map(str, spec.choices))})"
        elif spec.choices is not None and spec.kind is str:
            kw.update(default=value, choices=list(spec.choices))
        else:
            kw.update(type=parser_type(spec), default=value)
            if spec.range:
                kw["help"] += f" ({spec.bounds()})"
        kw["help"] = kw["help"].replace("%", "%%")  # argparse %-formats help text
        parser.add_argument(fl or flag(name, spec), **kw)


def _text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def from_args(cls, args: argparse.Namespace, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments for ``cls`` from the parsed arguments of its generated options (lists as tuples)."""
    out: dict[str, Any] = {}
    for name, spec in specs(cls).items():
        if not hasattr(args, name):
            continue
        v = getattr(args, name)
        out[name] = tuple(_parse_one(p, spec.kind) for p in v.split(",")) if spec.many and isinstance(v, str) else v
    return {**out, **overrides}


def limits(cls, name: str) -> tuple[Number, Number, Number | None]:
    """(lo, hi, step) for a widget: the declared teaching range (never wider than the valid one), else the
    valid range."""
    spec = specs(cls)[name]
    lo, hi = spec.widget_range or spec.range or (None, None)
    if lo is None or hi is None:
        raise ValueError(f"{cls.__name__}.{name} has no bounded range for a widget; declare widget_range")
    step = spec.step
    return (spec.kind(lo), spec.kind(hi), spec.kind(step) if step is not None else None)


def slider_args(cls, name: str, value: Any = None) -> dict[str, Any]:
    """``min_value``, ``max_value``, ``value`` (the class default unless given, clipped into the limits) and
    ``step`` for a Streamlit slider or number input."""
    lo, hi, step = limits(cls, name)
    v = default(cls, name) if value is None else value
    out = {"min_value": lo, "max_value": hi, "value": min(max(v, lo), hi)}
    if step is not None:
        out["step"] = step
    return out
