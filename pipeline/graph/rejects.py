"""Rejects inside the Beam graph: counted as a Beam metric, logged with the file and reason, and
routed to the ``rejects`` output of the step that made them."""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.metrics import Metrics

from uvd.format.rejects import Reject

LOG = logging.getLogger("uvd")
REJECTS = "rejects"  # the tag of every step's rejects output
REJECT_NAMESPACE = "uvd.rejects"


def record_reject(reject: Reject) -> Reject:
    """Count the drop reason as a Beam metric and log it, then hand the record on."""
    Metrics.counter(REJECT_NAMESPACE, reject.reason).inc()
    LOG.warning("rejected %s/%s at %s: %s", reject.source, reject.item_key, reject.stage, reject.message)
    return reject


def rejected(reject: Reject, shard: int | None = None) -> beam.pvalue.TaggedOutput:
    """The tagged output of a reject; after placement, as ``(shard, reject)`` (it belongs to that shard)."""
    value = record_reject(reject)
    return beam.pvalue.TaggedOutput(REJECTS, value if shard is None else (shard, value))
