"""Local multi-worker builds: SDK workers forked warm from a forkserver, in processes of their own,
each with its share of the cores."""

from __future__ import annotations

import os

import apache_beam as beam
import pytest
import torch
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from uvd.pipeline.graph import job, resources
from uvd.pipeline.graph.workers import warm_worker_pool


def test_threads_per_worker_share_the_cores():
    assert resources.threads_per_worker(1, cores=2) == 2
    assert resources.threads_per_worker(2, cores=2) == 1
    assert resources.threads_per_worker(3, cores=2) == 1  # never zero
    assert resources.threads_per_worker(2, cores=16) == 8
    assert resources.threads_per_worker(2, threads=3, cores=2) == 3  # asked for: oversubscribe knowingly
    assert resources.available_cores() == len(os.sched_getaffinity(0))  # taskset counts
    with pytest.raises(ValueError, match=">= 1"):
        resources.threads_per_worker(1, threads=0)


class WhereFn(beam.DoFn):
    def process(self, element):
        yield os.getpid(), torch.get_num_threads()


def test_workers_are_forked_processes_with_their_share_of_threads():
    options = PipelineOptions([])
    options.view_as(DirectOptions).direct_num_workers = 2
    with warm_worker_pool(options, threads=1) as environment:
        for _ in range(2):  # a build is several pipelines: every one gets workers from the same warm pool
            with beam.Pipeline(runner=job.make_runner(options, environment), options=options) as p:
                where = (p
                         | beam.Create(range(40))
                         | beam.Reshuffle()
                         | beam.ParDo(WhereFn())
                         | "Seen" >> beam.Distinct())
                pids = where | "Pids" >> beam.Map(lambda pid_threads: pid_threads[0]) | "EachPid" >> beam.Distinct()
                threads = (where | "Threads" >> beam.Map(lambda pid_threads: pid_threads[1])
                           | "EachCount" >> beam.Distinct())
                assert_that(pids | beam.combiners.Count.Globally(), equal_to([2]), label="TwoWorkers")
                assert_that(pids | beam.Filter(lambda pid, me: pid == me, me=os.getpid()), equal_to([]),
                            label="NotTheLauncher")
                assert_that(threads, equal_to([1]), label="OneThreadEach")
