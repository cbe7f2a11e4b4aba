"""One declarative spec per UVDv1 source (plus generic image and video folders).

Every module in this package defines its spec(s) with ``register(DatasetSpec(...))``; importing
the package imports them all, so a new source is one new file. A duplicate name is refused.

    from uvd.dataset_specs import get_spec, all_specs
"""

from __future__ import annotations

import importlib
import pkgutil

from uvd.dataset_specs.base import GROUPS, DatasetSpec, UVDv1Row, UVDv1Share, register, registry, uvdv1_row, uvdv1_rows

_loaded = False
_load_error: Exception | None = None


def _load_all() -> None:
    """Import every spec module once; a module that fails makes every later call fail the same way
    (a half-filled registry would silently drop sources)."""
    global _loaded, _load_error
    if _load_error is not None:
        raise _load_error
    if _loaded:
        return
    _loaded = True
    try:
        for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
            if module != "base":
                importlib.import_module(f"{__name__}.{module}")
    except Exception as e:
        _load_error = RuntimeError(f"dataset spec module failed to load: {type(e).__name__}: {e}")
        raise _load_error from e


def all_specs() -> dict[str, DatasetSpec]:
    """Every registered spec, by name, in name order."""
    _load_all()
    return dict(sorted(registry().items()))


def get_spec(name: str) -> DatasetSpec:
    specs = all_specs()
    if name not in specs:
        raise KeyError(f"unknown dataset spec {name!r}; `uvd datasets list` shows all {len(specs)}")
    return specs[name]


__all__ = ["GROUPS", "DatasetSpec", "UVDv1Row", "UVDv1Share", "all_specs", "get_spec", "register", "uvdv1_row",
           "uvdv1_rows"]
