"""(input, target) pairs of image-to-image tasks, in the three ways their releases store them.

- ``paired_folders``: two files whose relative paths differ by one part, e.g. SIDD's
  ``Data/<scene>/NOISY_SRGB_010.PNG`` and ``GT_SRGB_010.PNG``, LOL's ``our485/low/<n>.png``
  and ``our485/high/<n>.png``. A file whose partner is missing is rejected, on either side.
- ``side_by_side_pairs``: one file holding both halves, e.g. DID-MDN's training images
  (rainy on the left, clean on the right, as its loader crops them).
- ``parquet_pairs``: rows of a parquet with two image columns (Hugging Face image structs
  ``{bytes, path}``), e.g. InstructPix2Pix's original and edited image. Listing reads each file
  once (it must look at every row to find incomplete pairs); a render reads the file's footer
  and its row group's image columns, not the whole file. Parquet's smallest readable unit is a
  column chunk, so a render reads every image of its row group: files written with small row
  groups (Hugging Face `datasets` wrote image datasets in groups of 100 rows) keep that small.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.images import IMAGE_EXTENSIONS, DecodeError
from uvd.pipeline.readers.base import DecodeContext, Reader, decode_still, read_image, view_file_pictures
from uvd.pipeline.records.items import Item, Picture, to_json

PAIR_VIEWS = ("input", "target")


def _matching_images(root: str, pattern: str) -> dict[str, str]:
    """relative path -> path of every image matching ``pattern`` (relative to root), hidden ones skipped."""
    found = {}
    for path in storage.match(storage.join(root, pattern)):
        rel = storage.relative(path, root)
        if rel.lower().endswith(IMAGE_EXTENSIONS) and not storage.is_hidden(rel):
            found[rel] = path
    return found


def _swap_last(text: str, old: str, new: str) -> str:
    head, sep, tail = text.rpartition(old)
    return head + new + tail if sep else text


class PairedFilesReader(Reader):
    """Inputs are the images matching ``input_glob``; each one's target is the path with the last
    ``input_part`` replaced by ``target_part``."""

    name = "paired_folders"
    EXPECTS = "images matching {input_glob}, each with a partner named {target_part} for {input_part}"
    stills = True
    views = PAIR_VIEWS
    ARGS = {"input_glob": "", "input_part": "", "target_part": ""}

    def __init__(self, source, args=None, split="train"):
        super().__init__(source, args, split)
        a = self.args
        if not (a["input_glob"] and a["input_part"] and a["target_part"]) or a["input_part"] not in a["input_glob"]:
            raise ValueError(f"reader {self.name}: input_glob, input_part and target_part are required, and "
                             f"input_part must occur in input_glob; got {a}")

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        a = self.args
        target_glob = _swap_last(a["input_glob"], a["input_part"], a["target_part"])
        inputs, targets = _matching_images(unit, a["input_glob"]), _matching_images(unit, target_glob)
        if not inputs and not targets:
            raise DecodeError("missing_file", f"{unit}: no image matches {a['input_glob']} or {target_glob}")
        for rel, path in sorted(inputs.items()):
            partner = _swap_last(rel, a["input_part"], a["target_part"])
            if partner in targets:
                yield Item(source=self.source, key=storage.relative(path, root), paths=(path, targets[partner]))
            else:
                yield self.reject(storage.relative(path, root), "missing_pair",
                                  f"{path}: no target {storage.join(unit, partner)}")
        for rel, path in sorted(targets.items()):
            partner = _swap_last(rel, a["target_part"], a["input_part"])
            if partner not in inputs:
                yield self.reject(storage.relative(path, root), "missing_pair",
                                  f"{path}: no input {storage.join(unit, partner)}")

    def pictures(self, item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        return view_file_pictures(self, item, requests, ctx)


class SideBySidePairsReader(Reader):
    """Each image matching ``glob`` is a pair side by side; ``input_half`` says which half is the input."""
    name = "side_by_side_pairs"
    EXPECTS = "images matching {glob}, each an input and its target side by side"
    stills = True
    views = PAIR_VIEWS
    ARGS = {"glob": "", "input_half": "left"}

    def __init__(self, source, args=None, split="train"):
        super().__init__(source, args, split)
        if not self.args["glob"] or self.args["input_half"] not in ("left", "right"):
            raise ValueError(f"reader {self.name}: needs a glob and input_half 'left' or 'right'; got {self.args}")

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        found = _matching_images(unit, self.args["glob"])
        if not found:
            raise DecodeError("missing_file", f"{unit}: no image matches {self.args['glob']}")
        for _, path in sorted(found.items()):
            yield Item(source=self.source, key=storage.relative(path, root), paths=(path,))

    def pictures(self, item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        image = read_image(item.paths[0], ctx)
        half = image.shape[1] // 2
        if half == 0:
            raise DecodeError("unreadable_image", f"{item.paths[0]}: {image.shape[1]} px wide, too narrow to "
                                                  f"hold two halves")
        left, right = image[:, :half], image[:, half:2 * half]
        halves = {"input": left, "target": right} if self.args["input_half"] == "left" else \
            {"input": right, "target": left}
        return {(frame, view): Picture(np.ascontiguousarray(halves[view])) for frame, view in requests}


class _RangeFile(io.RawIOBase):
    """A read-only, seekable view of a file of known size through ``storage.read_range``, so that
    pyarrow fetches only the byte ranges it needs (a parquet footer, one row group)."""

    def __init__(self, path: str, size: int):
        super().__init__()
        self.path, self.length, self.position = path, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        wanted = min(len(buffer), max(0, self.length - self.position))
        if wanted == 0:
            return 0
        data = storage.read_range(self.path, self.position, wanted)
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


class ParquetPairsReader(Reader):
    """Rows of the parquet files matching ``files_glob`` (one unit each): ``input_column`` and
    ``target_column`` hold image structs ``{bytes, path}``; ``text_columns`` go to the annotation.
    A row with no image bytes in either column is rejected."""

    name = "parquet_pairs"
    EXPECTS = "parquet files matching {files_glob} with image columns {input_column} and {target_column}"
    views = PAIR_VIEWS
    ARGS = {"files_glob": "", "input_column": "", "target_column": "", "text_columns": ()}

    def __init__(self, source, args=None, split="train"):
        super().__init__(source, args, split)
        if not (self.args["files_glob"] and self.args["input_column"] and self.args["target_column"]):
            raise ValueError(f"reader {self.name}: files_glob, input_column and target_column are required; "
                             f"got {self.args}")
        self.columns = {"input": self.args["input_column"], "target": self.args["target_column"]}

    def units(self, root: str) -> list[str]:
        files = storage.match(storage.join(root, self.args["files_glob"]))
        if not files:
            raise ValueError(f"{root}: no file matches {self.args['files_glob']}")
        return files

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        try:
            data = storage.read_bytes(unit)
            parquet = pq.ParquetFile(pa.BufferReader(data))
        except (OSError, pa.ArrowException) as e:
            raise DecodeError("unreadable_annotation", f"{unit}: not a readable parquet file ({e})") from e
        texts = list(self.args["text_columns"])
        wanted = [self.columns["input"], self.columns["target"], *texts]
        missing = [c for c in wanted if c not in parquet.schema_arrow.names]
        if missing:
            raise DecodeError("unreadable_annotation", f"{unit}: no column(s) {missing}; it has "
                                                       f"{parquet.schema_arrow.names}")
        stem = storage.relative(unit, root).removesuffix(".parquet")
        row = 0
        for group_index in range(parquet.num_row_groups):
            group = parquet.read_row_group(group_index, columns=wanted)
            present = {view: _has_image_bytes(group.column(column), unit, column)
                       for view, column in self.columns.items()}
            notes = {column: group.column(column).to_pylist() for column in texts}
            for index in range(group.num_rows):
                key = f"{stem}/{row}"
                lacking = [self.columns[v] for v in self.views if not present[v][index]]
                if lacking:
                    yield self.reject(key, "missing_pair",
                                      f"{unit} row {row}: no image bytes in {' and '.join(lacking)}, so the pair "
                                      f"is incomplete")
                else:
                    yield Item(source=self.source, key=key, paths=(unit,),
                               annotation=to_json({c: notes[c][index] for c in texts}) if texts else "",
                               extra=(("row", row), ("row_group", group_index), ("index", index),
                                      ("file_size", len(data))))
                row += 1

    def _row_images(self, item: Item, views: list[str]) -> dict[str, tuple[bytes, str]]:
        """view -> (the row's image bytes for it, a name for messages), reading one row group."""
        path, row = item.paths[0], item.get("row")
        try:
            with pq.ParquetFile(_RangeFile(path, item.get("file_size"))) as parquet:
                group = parquet.read_row_group(item.get("row_group"), columns=[self.columns[v] for v in views])
        except (OSError, pa.ArrowException) as e:
            raise DecodeError("unreadable_file", f"{path} row {row}: {e}") from e
        out = {}
        for view in views:
            column = self.columns[view]
            cell = group.column(column)[item.get("index")].as_py() or {}
            if not cell.get("bytes"):
                raise DecodeError("missing_pair", f"{path} row {row}: no image bytes in {column}")
            out[view] = (cell["bytes"], f"{path} row {row} {column}")
        return out

    def content_hash(self, item: Item, ctx: DecodeContext) -> str:
        digest = hashlib.sha256()
        for data, _ in self._row_images(item, list(self.views)).values():
            digest.update(hashlib.sha256(data).digest())
        return digest.hexdigest()

    def pictures(self, item, requests, ctx: DecodeContext) -> dict[tuple[int, str], Picture]:
        self.check_views(requests, item)
        views = sorted({v for _, v in requests})
        images = {view: decode_still(data, ctx, where)
                  for view, (data, where) in self._row_images(item, views).items()}
        return {(frame, view): Picture(images[view]) for frame, view in requests}


def _has_image_bytes(column, path: str, name: str) -> list[bool]:
    """Per row, whether an image struct column holds non-empty bytes (a null struct holds none)."""
    structs = column.combine_chunks()
    if not pa.types.is_struct(structs.type) or structs.type.get_field_index("bytes") < 0:
        raise DecodeError("unreadable_annotation", f"{path}: column {name} is {structs.type}, not an image "
                                                   f"struct {{bytes, path}}")
    data = structs.flatten()[structs.type.get_field_index("bytes")]  # flatten() carries the structs' nulls
    return pc.fill_null(pc.greater(pc.binary_length(data), 0), False).to_pylist()
