"""The Beam graph of a build: composite transforms and their DoFns, the RunInference handler, the
committed state of each phase, and ``job.run()``, which chains the phases.

Nothing else in uvd imports Apache Beam. Importing this package registers Beam FileSystems as the
storage backend for gs:// and other object stores (graph/filesystems.py), on the launcher and on
every worker that unpickles one of its DoFns; it also memoizes Beam's look-up of a DoFn's state
and timer specs there (graph/dofn_specs_cache.py: ~2 s of CPU per build, none of the output).
"""

from uvd.pipeline.graph import dofn_specs_cache, filesystems

filesystems.register()
dofn_specs_cache.install()
