"""Readers for the on-disk layouts sources ship in; one small module per layout family.

Each module defines ``Reader`` subclasses with a unique ``name``; importing the package
registers them all in ``READERS``. ``make_reader(spec)`` builds the one a spec names.
"""

from __future__ import annotations

import importlib
import pkgutil

from uvd.pipeline.readers.base import DecodeContext, Reader

READERS: dict[str, type[Reader]] = {}


def _load_all() -> dict[str, type[Reader]]:
    if READERS:
        return READERS
    found: dict[str, type[Reader]] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        if module == "base":
            continue
        mod = importlib.import_module(f"{__name__}.{module}")
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, Reader) and obj.__module__ == mod.__name__ and obj.name:
                if obj.name in found and found[obj.name] is not obj:
                    raise ValueError(f"two readers are named {obj.name!r}: {found[obj.name]} and {obj}")
                found[obj.name] = obj
    READERS.update(found)
    return READERS


def reader_class(name: str) -> type[Reader]:
    readers = _load_all()
    if name not in readers:
        raise KeyError(f"unknown reader {name!r}; known: {sorted(readers)}")
    return readers[name]


def make_reader(spec, source: str | None = None) -> Reader:
    """The reader a DatasetSpec names, configured with its reader_args and split."""
    return reader_class(spec.reader)(source or spec.name, spec.reader_args, spec.split)


__all__ = ["READERS", "DecodeContext", "Reader", "make_reader", "reader_class"]
