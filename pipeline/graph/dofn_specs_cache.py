"""Beam looks up a DoFn's state and timer specs by introspecting the signature of every method the
DoFn has (``userstate.get_dofn_specs``), and does so several times per DoFn, both when a pipeline
is built and again when each worker builds its bundle processors: some 30 ``inspect.signature``
calls per look-up, about 1,200 look-ups per build of three phases. That came to ~2 s of CPU per
``uvd build`` whatever its size (a quarter of a small build, and most of the test suite's Beam time).

The specs are a function of the DoFn's class (its methods' default arguments), and of bound
methods stored on the instance, so they are memoized on exactly that key. A DoFn whose specs could
come from somewhere else (``__slots__``, a ``__getattr__``) is looked up the slow way every time.
The cached sets are copied out, so no caller can change another's. Installed by
``uvd.pipeline.graph`` on the launcher and on every worker that unpickles uvd's DoFns; remove
``install()`` there to get Beam's own behaviour back (the outputs do not depend on it)."""

from __future__ import annotations

import functools
import types

from apache_beam.transforms import userstate

_original = userstate.get_dofn_specs
_cache: dict[tuple, tuple[frozenset, frozenset]] = {}  # dict get and set are atomic under the GIL


def _cache_key(dofn) -> tuple | None:
    """(class, bound methods stored on the instance), or None if the specs may depend on more."""
    cls = type(dofn)
    if getattr(cls, "__getattr__", None) is not None or not hasattr(dofn, "__dict__"):
        return None
    bound = tuple(sorted((name, value.__func__) for name, value in vars(dofn).items()
                         if isinstance(value, types.MethodType)))
    try:
        hash(bound)
    except TypeError:
        return None
    return (cls, bound)


@functools.wraps(_original)
def get_dofn_specs(dofn):
    key = _cache_key(dofn)
    if key is None:
        return _original(dofn)
    found = _cache.get(key)
    if found is None:  # two threads may both introspect once: same answer
        states, timers = _original(dofn)
        found = _cache[key] = (frozenset(states), frozenset(timers))
    return set(found[0]), set(found[1])


def install() -> None:
    """Route Beam's look-ups (userstate.is_stateful_dofn, validate_stateful_dofn, DoFnSignature,
    ParDo) through the cache; idempotent."""
    userstate.get_dofn_specs = get_dofn_specs
