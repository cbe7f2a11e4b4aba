"""The build: dataset folders in their real layouts -> visual sentences -> token shards.

It owns reading each source (``readers``), the records that travel between stages (``records``),
sentence layouts and mixtures (``planning``), the pictures a sentence shows (``views``), the
per-source steps as plain functions (``steps``), the Apache Beam graph that runs them at scale and
commits shards exactly once (``graph``), and the tools around a build (``tools``: stats, plan,
JSONL interop, examples). Only ``graph`` imports Beam.
"""
