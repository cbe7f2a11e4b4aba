"""One declarative spec per UVDv1 source (plus generic image and video folders).

Every module in this package defines its spec(s) with ``register(DatasetSpec(...))``; importing
the package imports them all, so a new source is one new file. A duplicate name is refused.

    from uvd.dataset_specs import get_spec, all_specs
"""

from __future__ import annotations

import importlib
import pkgutil

from .base import GROUPS, DatasetSpec, UVDv1Share, register, registry

_loaded = False


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True  # before importing: a failing module must not be re-imported half-registered
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module != "base":
            importlib.import_module(f"{__name__}.{module}")


def all_specs() -> dict[str, DatasetSpec]:
    """Every registered spec, by name, in name order."""
    _load_all()
    return dict(sorted(registry().items()))


def get_spec(name: str) -> DatasetSpec:
    specs = all_specs()
    if name not in specs:
        raise KeyError(f"unknown dataset spec {name!r}; `uvd datasets list` shows all {len(specs)}")
    return specs[name]


__all__ = ["GROUPS", "DatasetSpec", "UVDv1Share", "all_specs", "get_spec", "register"]
