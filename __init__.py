"""uvd: build LVM's visual-sentence training data (UVDv1) with Apache Beam, and train on it.

Packages, top to bottom (imports only go down; ARCHITECTURE.md): ``cli``; ``pipeline`` (the build)
and ``model`` (the trainer); ``dataset_specs`` and ``tokenizer``; ``media``; ``format`` (the shards).
"""

__version__ = "0.1.0"
