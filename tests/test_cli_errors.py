"""Mistakes on the command line fail loudly, in one line that says what was expected, before any
work: a misspelled or empty source root, a build whose every input is rejected, and a missing or
unfinished build folder given to train, show, stats or jsonl export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from fixtures.common import photo, write_image

from uvd.cli import main
from uvd.format.tables import read_manifest, read_rejects

BUILD = ["--tokenizer", "random:tiny", "--no-progress", "--device", "cpu"]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def error_line(result) -> str:
    """The one line a failed command printed about its failure (click prints it last)."""
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output  # not a crash
    lines = result.output.strip().splitlines()
    assert "Traceback" not in result.output and sum(line.startswith("Error") for line in lines) == 1, result.output
    assert lines[-1].startswith("Error: "), result.output
    return lines[-1]


def test_misspelled_source_root_names_source_path_and_layout(tmp_path):
    (tmp_path / "photos").mkdir()
    result = run("build", "--source", f"images:{tmp_path / 'phtos'}", "--out", str(tmp_path / "out"), *BUILD)
    line = error_line(result)
    assert "source 'images' (spec images)" in line and str(tmp_path / "phtos") in line
    assert "is not a folder" in line and "expected image files" in line
    assert not (tmp_path / "out").exists()


def test_source_root_with_nothing_the_spec_reads(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "notes.txt").write_text("no videos here")
    result = run("build", "--source", f"clips=videos:{tmp_path / 'clips'}", "--out", str(tmp_path / "out"), *BUILD)
    line = error_line(result)
    assert "source 'clips' (spec videos)" in line and f"no items in {tmp_path / 'clips'}" in line
    assert "expected video files" in line and not (tmp_path / "out").exists()


def test_index_naming_only_missing_files_is_rejected_and_fails_the_build(tmp_path):
    root = tmp_path / "ucf"
    (root / "ucfTrainTestlist").mkdir(parents=True)
    (root / "UCF-101").mkdir()
    (root / "ucfTrainTestlist" / "trainlist01.txt").write_text("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n")
    result = run("build", "--source", f"ucf101:{root}", "--out", str(tmp_path / "out"), *BUILD)
    assert "every one of the 1 inputs was rejected" in error_line(result)
    (reject,) = read_rejects(str(tmp_path / "out"))  # a bad input: recorded, named, with its reason
    assert reject.reason == "missing_file" and "v_ApplyEyeMakeup_g08_c01.avi" in reject.message


def test_a_source_whose_every_input_is_rejected_fails_the_build_after_the_others(tmp_path):
    write_image(tmp_path / "photos" / "good.jpg", photo(0))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "bad.jpg").write_bytes(b"not a jpeg")
    result = run("build", "--source", f"images:{tmp_path / 'photos'}", "--source", f"more=images:{tmp_path / 'broken'}",
                 "--out", str(tmp_path / "out"), *BUILD)
    assert "every input of source(s) more (1) was rejected" in error_line(result)
    assert read_manifest(str(tmp_path / "out")).num_samples == 1  # the good source was built
    assert [r.item_key for r in read_rejects(str(tmp_path / "out"))] == ["bad.jpg"]


def test_build_that_rejects_every_input_fails_after_writing_its_rejects(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"not a jpeg")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    result = run("build", "--source", f"images:{folder}", "--out", str(tmp_path / "out"), *BUILD)
    line = error_line(result)
    assert "every one of the 2 inputs was rejected" in line
    assert "Build summary" in result.output  # the summary, then the failure
    rejects = read_rejects(str(tmp_path / "out"))
    assert sorted(r.item_key for r in rejects) == ["a.jpg", "b.png"]


def test_a_build_with_one_good_input_succeeds(tmp_path):
    folder = tmp_path / "photos"
    write_image(folder / "good.jpg", photo(0))
    (folder / "bad.jpg").write_bytes(b"not a jpeg")
    result = run("build", "--source", f"images:{folder}", "--out", str(tmp_path / "out"), *BUILD)
    assert result.exit_code == 0, result.output


COMMANDS = {
    "train": lambda d, tmp: ["train", d, "--out", str(tmp / "ckpt")],
    "show": lambda d, tmp: ["show", d, "--out", str(tmp / "x.png")],
    "stats": lambda d, tmp: ["stats", d],
    "jsonl export": lambda d, tmp: ["jsonl", "export", d, "--out", str(tmp / "x.jsonl")],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_missing_build_folder_is_one_line(command, tmp_path):
    missing = str(tmp_path / "shrads")
    line = error_line(run(*COMMANDS[command](missing, tmp_path)))
    assert line == f"Error: {missing} does not exist; expected the --out folder of a finished uvd build" + (
        ", or one of its shard files" if command == "show" else "")


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_folder_without_a_finished_build_is_one_line(command, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    line = error_line(run(*COMMANDS[command](str(empty), tmp_path)))
    assert f"{empty}: no manifest.parquet; expected the --out folder of a finished uvd build" in line


def test_a_file_where_a_build_folder_belongs(tmp_path):
    file = Path(tmp_path / "manifest.parquet")
    file.write_bytes(b"")
    assert "is a file, not a folder" in error_line(run("train", str(file), "--out", str(tmp_path / "c")))


# Every other command's input paths: (arguments, with {m} the missing path and {d} an existing folder;
# what the one line must say it expected).
CKPT = "a checkpoint (uvd train's --out folder, or one of its step folders)"
INPUTS = {
    "build --config": (["build", "--config", "{m}", "--source", "images:{d}", "--out", "{d}/o"],
                       "a build config file (TOML or JSON)"),
    "build --root": (["build", "--root", "{m}", "--out", "{d}/o"], "a folder of datasets, each in its spec's folder"),
    "rebuild": (["rebuild", "{m}"], "the --out folder of a finished uvd build"),
    "plan --figures": (["plan", "--figures", "{m}"], "a figures file as the benchmarks write it"),
    "plan --prices": (["plan", "--prices", "{m}"], "a JSON price table"),
    "datasets list --root": (["datasets", "list", "--root", "{m}"], "a folder holding datasets in their spec folders"),
    "datasets show --root": (["datasets", "show", "coco_detection", "--root", "{m}"],
                             "the dataset's folder, or a folder holding it"),
    "train --init-from": (["train", "{d}", "--init-from", "{m}", "--out", "{d}/c"], CKPT),
    "eval perplexity": (["eval", "perplexity", "{m}", "{d}"], CKPT),
    "eval perplexity data": (["eval", "perplexity", "{d}", "{m}"], "the --out folder of a finished uvd build"),
    "eval reasoning": (["eval", "reasoning", "{m}"], CKPT),
    "generate sequential": (["generate", "sequential", "{m}", "--out", "{d}/x.png"], CKPT),
    "generate sequential --frames": (["generate", "sequential", "{d}", "--frames", "{m}", "--out", "{d}/x.png"],
                                     "an image file"),
    "generate sequential --from-build": (["generate", "sequential", "{d}", "--from-build", "{m}", "--out", "{d}/x.png"],
                                         "the --out folder of a finished uvd build"),
    "generate analogy --query": (["generate", "analogy", "{d}", "--query", "{m}", "--out", "{d}/x.png"],
                                 "an image file"),
    "model export-hf": (["model", "export-hf", "{m}", "--out", "{d}/h"], CKPT),
    "model import-hf": (["model", "import-hf", "{m}", "--out", "{d}/c"],
                        "a Hugging Face Llama folder (config.json + model.safetensors)"),
    "tokenizer convert --yaml": (["tokenizer", "convert", "{d}", "--yaml", "{m}", "--out", "{d}/t"],
                                 "a taming YAML file"),
    "tokenizer train --images": (["tokenizer", "train", "--images", "{m}", "--out", "{d}/t"], "a folder of images"),
    "tokenizer train --videos": (["tokenizer", "train", "--videos", "{m}", "--out", "{d}/t"], "a folder of videos"),
    "tokenizer train --from-build": (["tokenizer", "train", "--from-build", "{m}", "--out", "{d}/t"],
                                     "the --out folder of a finished uvd build"),
    "jsonl import": (["jsonl", "import", "{m}", "--out", "{d}/j"], "an LVM JSONL file"),
}


@pytest.mark.parametrize("case", sorted(INPUTS))
def test_every_commands_missing_input_is_one_line(case, tmp_path):
    args, expected = INPUTS[case]
    missing = str(tmp_path / "missing")
    line = error_line(run(*(arg.format(m=missing, d=tmp_path) for arg in args)))
    assert line == f"Error: {missing} does not exist; expected {expected}"


def test_the_executable_keeps_exit_codes_and_output_when_it_skips_native_teardown(tmp_path):
    """``python -m uvd.cli`` (what the ``uvd`` script runs) ends with os._exit after Python's own exit
    handlers: piped output still arrives whole, and every exit status is the command's."""
    def run(*args):
        return subprocess.run([sys.executable, "-m", "uvd.cli", *args], capture_output=True, text=True, timeout=300)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.strip().startswith("uvd, version")
    refused = run("build", "--source", f"nope:{tmp_path}", "--out", str(tmp_path / "out"))
    assert refused.returncode == 2 and "unknown dataset spec 'nope'" in refused.stderr
    listed = run("datasets", "list")  # a long piped output, all of it
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) > 50
