"""The memoized look-up of DoFn state and timer specs gives what Beam's own gives, for every DoFn
of uvd's graphs and for stateful ones, and never hands one caller's sets to another."""

from __future__ import annotations

import inspect
from unittest import mock

import apache_beam as beam
import pytest
from apache_beam.coders import VarIntCoder
from apache_beam.transforms import userstate
from apache_beam.transforms.timeutil import TimeDomain

from uvd.pipeline.graph import dofn_specs_cache, transforms, writing

COUNT = userstate.BagStateSpec("count", VarIntCoder())
FLUSH = userstate.TimerSpec("flush", TimeDomain.WATERMARK)
COUNT_PARAM, FLUSH_PARAM = beam.DoFn.StateParam(COUNT), beam.DoFn.TimerParam(FLUSH)


class CountingFn(beam.DoFn):
    def process(self, element, count=COUNT_PARAM, flush=FLUSH_PARAM):
        count.add(1)
        yield element

    @userstate.on_timer(FLUSH)
    def flushed(self, count=COUNT_PARAM):
        yield sum(count.read())


class Helper:
    def stateful(self, element, count=COUNT_PARAM):
        return element

    def stateless(self, element):
        return element


class HoldsAMethodFn(beam.DoFn):
    """A DoFn whose instance stores a bound method: its specs depend on the instance."""

    def __init__(self, method):
        self.extra = method

    def process(self, element):
        yield element


def uvd_dofns() -> list[beam.DoFn]:
    """An instance of every DoFn class uvd's graph modules define (constructed without running)."""
    found = []
    for module in (transforms, writing):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, beam.DoFn) and cls.__module__ == module.__name__:
                fn = cls.__new__(cls)  # the specs come from the class's methods, not from __init__'s state
                found.append(fn)
    return found


@pytest.fixture(autouse=True)
def empty_cache():
    dofn_specs_cache._cache.clear()
    yield
    dofn_specs_cache._cache.clear()


def test_the_cache_is_installed_by_the_graph_package():
    assert userstate.get_dofn_specs is dofn_specs_cache.get_dofn_specs


@pytest.mark.parametrize("fn", [*uvd_dofns(), beam.Map(len).fn, beam.Filter(bool).fn, CountingFn(),
                                HoldsAMethodFn(Helper().stateless)], ids=lambda fn: type(fn).__name__)
def test_cached_specs_equal_beams_own(fn):
    expected = dofn_specs_cache._original(fn)
    assert dofn_specs_cache.get_dofn_specs(fn) == expected
    assert dofn_specs_cache.get_dofn_specs(fn) == expected  # from the cache now


def test_stateful_dofns_are_still_recognized_and_validated():
    assert userstate.is_stateful_dofn(CountingFn())
    userstate.validate_stateful_dofn(CountingFn())
    assert not userstate.is_stateful_dofn(transforms.AssembleSentenceFn())
    states, timers = userstate.get_dofn_specs(CountingFn())
    assert {s.name for s in states} == {"count"} and [t.name for t in timers] == [FLUSH.name]


def test_instances_holding_different_bound_methods_do_not_share_an_entry():
    helper = Helper()
    assert not userstate.is_stateful_dofn(HoldsAMethodFn(helper.stateless))
    assert userstate.is_stateful_dofn(HoldsAMethodFn(helper.stateful))


def test_one_introspection_per_class_and_callers_get_their_own_sets():
    with mock.patch.object(dofn_specs_cache, "_original", wraps=dofn_specs_cache._original) as original:
        first_states, _ = userstate.get_dofn_specs(CountingFn())
        first_states.clear()
        states, timers = userstate.get_dofn_specs(CountingFn())
        assert original.call_count == 1
    assert len(states) == 1 and len(timers) == 1


def test_a_build_pipeline_constructs_with_the_cache():
    """The graph's own construction path (ParDo's stateful checks) goes through the cache."""
    with mock.patch.object(dofn_specs_cache, "_original", wraps=dofn_specs_cache._original) as original:
        p = beam.Pipeline()
        _ = (p | beam.Create([1, 2]) | "A" >> beam.ParDo(transforms.AssembleSentenceFn(), num_shards=1)
             | "B" >> beam.ParDo(transforms.AssembleSentenceFn(), num_shards=1))
        p.to_runner_api()
    classes = {type(call.args[0]) for call in original.call_args_list}
    assert transforms.AssembleSentenceFn in classes
    assert original.call_count == len(classes)  # many look-ups per ParDo, one introspection per class
