"""The architecture holds: the trainer and the shard readers load no Apache Beam, and every package says
what it owns. (The import contracts themselves run as `lint-imports` in `make lint`, before the tests.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules_after(code: str) -> set[str]:
    """The top-level modules a fresh interpreter has loaded after running ``code``."""
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, check=True,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return {line.split(".")[0] for line in out.stdout.split()}


@pytest.mark.parametrize("code", [
    "import uvd.model.train",
    "import uvd.format; import uvd.model.loader",
    "from click.testing import CliRunner; from uvd.cli import main; "
    "assert CliRunner().invoke(main, ['train', '--help']).exit_code == 0",
    "from click.testing import CliRunner; from uvd.cli import main; "
    "assert CliRunner().invoke(main, ['show', '--help']).exit_code == 0",
])
def test_the_trainer_and_readers_load_no_beam(code):
    assert "apache_beam" not in modules_after(code)


def test_uvd_show_decodes_a_build_without_loading_beam(tmp_path):
    """A real ``uvd show`` on shards (written through uvd.format), in a fresh process."""
    code = f"""
import numpy as np
from click.testing import CliRunner
from uvd.cli import main
from uvd.format import SentenceMeta, VisualSentence, storage, tables, write_shard
meta = SentenceMeta(source="s", group="unpaired_images", layout="single_image", item_keys=("a",),
                    image_items=(0,), frame_indices=(0,), views=("image",), seed=0)
out = {str(tmp_path / 'build')!r}
info = write_shard(out, 0, [VisualSentence("s_0", np.zeros((1, 256), np.uint16), meta)])
prov = {{"tokenizer": {{"spec": "random:tiny"}}}}
storage.atomic_write(out + "/manifest.parquet", tables.parquet_bytes(tables.manifest_table([info], prov)))
result = CliRunner().invoke(main, ["show", out, "--out", {str(tmp_path / 'x.png')!r}])
assert result.exit_code == 0, result.output
"""
    assert "apache_beam" not in modules_after(code)
    assert (tmp_path / "x.png").is_file()


def test_every_package_says_what_it_owns():
    for init in sorted(ROOT.glob("**/__init__.py")):
        if ".venv" in init.parts or "tests" in init.parts or "out" in init.parts:
            continue
        doc = init.read_text().lstrip()
        assert doc.startswith('"""') and len(doc.split('"""')[1].split()) >= 12, f"{init}: no package docstring"
