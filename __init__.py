"""uvd: build LVM visual-sentence datasets with Apache Beam and train on them."""

__version__ = "0.1.0"
