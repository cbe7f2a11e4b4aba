"""The rejects record: every input that did not become a sentence, and why."""

from __future__ import annotations

import dataclasses
import logging

from apache_beam.metrics import Metrics

LOG = logging.getLogger("uvd")
REJECT_NAMESPACE = "uvd.rejects"


@dataclasses.dataclass(frozen=True, order=True)
class Reject:
    source: str
    item_key: str
    stage: str  # list | decode | tokenize | assemble | write
    reason: str  # stable class, e.g. unreadable_image, video_too_short
    message: str  # human-readable, names the file


def record_reject(reject: Reject) -> Reject:
    """Count the drop reason as a Beam metric and log it, then hand the record on."""
    Metrics.counter(REJECT_NAMESPACE, reject.reason).inc()
    LOG.warning("rejected %s/%s at %s: %s", reject.source, reject.item_key, reject.stage, reject.message)
    return reject
