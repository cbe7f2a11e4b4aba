"""The rejects record: every input that did not become a sentence, and why (``rejects.parquet``)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True, order=True)
class Reject:
    source: str
    item_key: str
    stage: str  # list | probe | plan | decode | assemble | dedup
    reason: str  # stable class, e.g. unreadable_image, video_too_short, unsafe_path
    message: str  # human-readable, names the file

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict) -> Reject:
        return cls(**d)
