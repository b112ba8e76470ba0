"""The space grammar of studies: ranges, lists and single values, and their sampling.

Space syntax (per hyperparameter):
- `[start, end, step]`: a range, end inclusive within float tolerance, when the three are
  numbers with `step > 0`, `start <= end` and `step <= end - start` (or `start == end`);
  e.g. `[0.01, 0.05, 0.01]` -> 0.01, 0.02, 0.03, 0.04, 0.05. Any other list is an
  explicit list of values (`[16, 32, 64]`, `[100]`); force either reading with
  `{"range": [start, end, step]}` or `{"values": [...]}`. A scalar is a single value.
- grid sampler: the cartesian product, first hyperparameter varying slowest, in the
  order the space gives them; random sampler: `n_samples` distinct combinations drawn
  with `random.Random(seed)` (reproducible), in draw order.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ...errors import ProvKBError
from ...ontology import Sampler

GRID, RANDOM = Sampler.GRID, Sampler.RANDOM
SAMPLERS = (GRID, RANDOM)
MAX_ITEMS = 100_000


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _tidy(value: float) -> float:
    """Drop float noise: 0.1 + 2 * 0.1 is 0.3, not 0.30000000000000004."""
    return float(f"{value:.12g}")


def range_values(start: float, end: float, step: float) -> list[int | float]:
    """start, start + step, ... up to end inclusive (within float tolerance)."""
    if not all(_is_number(v) and math.isfinite(v) for v in (start, end, step)):
        raise ProvKBError(f"a range needs finite numbers, got {[start, end, step]}")
    if step <= 0:
        raise ProvKBError(f"a range's step must be > 0, got {step}")
    if start > end:
        raise ProvKBError(f"a range's start {start} is after its end {end}")
    count = math.floor((end - start) / step + 1e-9) + 1
    if count > MAX_ITEMS:
        raise ProvKBError(f"the range {[start, end, step]} has {count} values (max {MAX_ITEMS})")
    if all(isinstance(v, int) for v in (start, end, step)):
        return [start + i * step for i in range(count)]
    return [_tidy(start + i * step) for i in range(count)]


def _looks_like_range(spec: Sequence[Any]) -> bool:
    if len(spec) != 3 or not all(_is_number(v) for v in spec):
        return False
    start, end, step = spec
    span = end - start
    return step > 0 and start <= end and (step <= span * (1 + 1e-9) or start == end)


def _plain_list(values: Iterable[Any]) -> list[Any]:
    out = []
    for v in values:
        item = getattr(v, "item", None)  # numpy scalars
        out.append(item() if callable(item) and getattr(v, "ndim", 0) == 0 else v)
    return out


def dimension_values(name: str, spec: Any) -> list[Any]:
    """The values a space entry stands for (see the module docstring)."""
    if isinstance(spec, Mapping):
        keys = set(spec)
        if keys == {"range"}:
            values = list(spec["range"])
            if len(values) != 3:
                raise ProvKBError(f"{name}: a range is [start, end, step], got {values}")
            return range_values(*values)
        if keys == {"values"}:
            spec = list(spec["values"])
        else:
            raise ProvKBError(
                f"{name}: use [start, end, step], a list of values, {{'range': [...]}} "
                f"or {{'values': [...]}}; got {spec!r}"
            )
    elif isinstance(spec, range):
        spec = list(spec)
    elif isinstance(spec, list | tuple) or hasattr(spec, "tolist"):
        spec = _plain_list(spec.tolist() if hasattr(spec, "tolist") else spec)
        if _looks_like_range(spec):
            return range_values(*spec)
    else:
        spec = [spec]
    if not spec:
        raise ProvKBError(f"{name}: no values")
    for value in spec:
        _check_json(name, value)
    return list(spec)


def _check_json(name: str, value: Any) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ProvKBError(f"{name}: {value!r} is not a JSON value ({exc})") from exc


def normalize_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """The space in JSON-ready form (validated: every entry expands)."""
    if not isinstance(space, Mapping) or not space:
        raise ProvKBError("a space maps each hyperparameter name to a range or a list of values")
    out: dict[str, Any] = {}
    for name, spec in space.items():
        if not isinstance(name, str) or not name.strip():
            raise ProvKBError(f"hyperparameter names are non-empty text, got {name!r}")
        dimension_values(name, spec)
        if isinstance(spec, Mapping):
            ((form, values),) = spec.items()
            values = _plain_list(values)
            # keep the explicit form only where the bare list would read otherwise
            plain = _looks_like_range(values) == (form == "range")
            out[name] = values if plain else {form: values}
        elif isinstance(spec, range):
            out[name] = list(spec)
        elif isinstance(spec, list | tuple) or hasattr(spec, "tolist"):
            out[name] = _plain_list(spec.tolist() if hasattr(spec, "tolist") else spec)
        else:
            out[name] = spec
    return out


def expand(
    space: Mapping[str, Any],
    sampler: str = GRID,
    n_samples: int | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The parameter combinations of a space, in queue order (see the module docstring)."""
    if sampler not in SAMPLERS:
        raise ProvKBError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    names = list(space)
    dims = [dimension_values(n, space[n]) for n in names]
    total = math.prod(len(d) for d in dims)
    if sampler == GRID:
        if total > MAX_ITEMS:
            raise ProvKBError(f"the grid has {total} combinations (max {MAX_ITEMS})")
        combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*dims)]
        return combos if n_samples is None else combos[: max(0, n_samples)]
    count = total if n_samples is None else min(max(0, n_samples), total)
    if count > MAX_ITEMS:
        raise ProvKBError(f"{count} samples asked (max {MAX_ITEMS})")
    out = []
    for index in random.Random(seed).sample(range(total), count):
        values = []
        for d in reversed(dims):  # mixed-radix decoding, last dimension fastest
            index, digit = divmod(index, len(d))
            values.append(d[digit])
        out.append(dict(zip(names, reversed(values), strict=True)))
    return out


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """An item's parameters, checked (named, JSON values) and as plain data."""
    if not isinstance(params, Mapping) or not params:
        raise ProvKBError("an item's parameters are a non-empty mapping of name -> value")
    out = {}
    for name, value in params.items():
        if not isinstance(name, str) or not name.strip():
            raise ProvKBError(f"hyperparameter names are non-empty text, got {name!r}")
        value = _plain_list([value])[0]
        _check_json(name, value)
        out[name] = value
    return out
