"""Tools around a build that need no Beam: ``stats`` (a report on a build), ``local`` (one source's
steps in one process: examples and rebuilds), ``lvm_jsonl`` (LVM's JSONL token files), ``estimate``
(the cost of all of UVDv1, for ``uvd plan``) and ``sample_data`` (the bundled real sample media)."""
