"""The Beam graph of a build: composite transforms and their DoFns, the RunInference handler, the
committed state of each phase, and ``job.run()``, which chains the phases.

Nothing else in uvd imports Apache Beam. Importing this package registers Beam FileSystems as the
storage backend for gs:// and other object stores (graph/filesystems.py), on the launcher and on
every worker that unpickles one of its DoFns.
"""

from uvd.pipeline.graph import filesystems

filesystems.register()
