"""The shard format: the contract between the build that writes shards and everything that reads them.

It owns the sample encoding (``<key>.tokens.npy`` + ``<key>.meta.json`` in gzip tars), the
manifest and rejects tables, the one manifest reader and the one sample reader (which verifies a
shard's sha256 before yielding any of its samples), and storage: local, s3:// and registered
object stores, with the one atomic write. It imports neither Beam nor torch, so the trainer,
``uvd show``, stats and JSONL interop read shards without loading the build's machinery.
docs/FORMAT.md specifies the bytes.
"""

from uvd.format.reading import ShardError, iter_sentences, read_sentence, read_shard
from uvd.format.rejects import Reject
from uvd.format.sample import FORMAT_VERSION, Position, SentenceMeta, VisualSentence, decode_sample, encode_sample
from uvd.format.shards import ShardInfo, write_shard
from uvd.format.tables import MANIFEST_NAME, REJECTS_NAME, SUMMARY_NAME, Manifest, ShardEntry, read_manifest

__all__ = ["FORMAT_VERSION", "MANIFEST_NAME", "REJECTS_NAME", "SUMMARY_NAME", "Manifest", "Position", "Reject",
           "SentenceMeta", "ShardEntry", "ShardError", "ShardInfo", "VisualSentence", "decode_sample", "encode_sample",
           "iter_sentences", "read_manifest", "read_sentence", "read_shard", "write_shard"]
