"""Video datasets whose split is named by an index file: a split list, a CSV or a JSON.

Most video releases ship the videos in one folder tree and say which of them form the training
split in a separate file (UCF101's ``trainlist01.txt``, Kinetics' ``train.csv``, SSv2's
``train.json``, ActivityNet's ``database``...). Their differences are only in that file's format
and field names, so one reader, ``video_index``, is configured per dataset by ``reader_args``:

- ``index``: the index file, relative to the root (or a list of candidates; the first that exists);
- ``format``: ``csv`` (``delimiter``; ``columns`` names the fields of a file without a header row,
  empty: the first row is the header) or ``json`` (``records``: the key holding the list of
  records, or the mapping of id -> record, whose key becomes the field ``id``);
- ``where``: {field: value or [values]} that a record must match (the split: ``subset: training``);
- ``key``, ``path``, ``label``: ``str.format`` templates over a record's fields: the item key (the
  dataset's own id), the video's path relative to ``videos`` (the extension may be left out: any
  video container matches), and its class (empty: none);
- ``videos``: the folder of the videos, relative to the root.

The video folder is listed once per index file, not probed file by file, because on an object
store one listing is cheap and a million ``exists`` calls are not. A video is found by its file
name without extension, preferring the one whose path ends with the index's path, so the
layouts users actually have (label sub-folders or flat, ``.mp4`` or ``.mkv``) all resolve. An
entry whose video is absent is rejected as ``missing_file``; a row without the fields the
templates need as ``bad_row``; an index that cannot be read or parsed rejects its whole unit
(``unreadable_annotation``, naming the file).
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
import string
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from uvd.format import storage
from uvd.format.rejects import Reject
from uvd.media.images import DecodeError
from uvd.media.video import VIDEO_EXTENSIONS
from uvd.pipeline.readers.files import VideoFileReader, media_files
from uvd.pipeline.records.items import Item

INDEX_ARGS: Mapping[str, Any] = {
    "index": "", "format": "csv", "delimiter": ",", "columns": (), "records": "", "where": {},
    "key": "{id}", "path": "{id}", "label": "",
}


@dataclass(frozen=True)
class Entry:
    """One record of an index that passed the split filter: its key, path and label, formatted."""

    key: str
    path: str
    label: str


def template_fields(template: str) -> set[str]:
    """The record fields a ``str.format`` template reads (``{a:0>6}`` -> ``a``)."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


class SplitIndex:
    """Mixin for readers whose items an index file names: finds the file, parses it, filters it
    by ``where`` and formats each record's key, path and label. Needs ``self.args`` (INDEX_ARGS)
    and ``self.reject`` (from Reader)."""

    args: Mapping[str, Any]

    def units(self, root: str) -> list[str]:
        candidates = self.args["index"]
        paths = [storage.join(root, c) for c in ([candidates] if isinstance(candidates, str) else candidates)]
        return [next((p for p in paths if storage.exists(p)), paths[0])]

    def found(self, root: str) -> bool:
        return any(storage.exists(u) for u in self.units(root))

    def unit_fields(self, unit: str) -> dict[str, str]:
        """Fields every record of ``unit`` shares (none by default; HMDB51's action, from the file name)."""
        return {}

    def index_entries(self, unit: str) -> Iterator[Entry | Reject]:
        """The unit's records of the split, once per key, and a ``bad_row`` Reject for each record
        that lacks a field the templates need. Raises DecodeError when the file cannot be read."""
        a = self.args
        where = {f: {str(v) for v in (want if isinstance(want, (list, tuple)) else [want])}
                 for f, want in a["where"].items()}
        needed = template_fields(a["key"]) | template_fields(a["path"]) | template_fields(a["label"]) | set(where)
        shared = self.unit_fields(unit)
        seen: set[str] = set()
        for place, record in self._records(unit, needed - set(shared)):
            record = {**shared, **record}
            try:
                if any(str(record[f]) not in accepted for f, accepted in where.items()):
                    continue
                entry = Entry(a["key"].format_map(record), a["path"].format_map(record),
                              a["label"].format_map(record))
            except (KeyError, IndexError, ValueError, TypeError) as e:
                yield self.reject(f"{unit}:{place}", "bad_row",
                                  f"{unit} {place}: cannot read field {e} of {json.dumps(record, default=str)[:200]}")
                continue
            if entry.key not in seen:  # AVA lists a video once per box: one item
                seen.add(entry.key)
                yield entry

    def _records(self, unit: str, needed: set[str]) -> Iterator[tuple[str, dict]]:
        """(place in the file, record) of every record of the index, in file order."""
        if not storage.exists(unit):
            raise DecodeError("missing_annotation", f"{unit}: index file not found (set reader_args index)")
        try:
            text = storage.read_text(unit).lstrip("\ufeff")
        except (OSError, UnicodeDecodeError) as e:
            raise DecodeError("unreadable_annotation", f"{unit}: cannot read ({e})") from e
        if self.args["format"] == "json":
            return self._json_records(unit, text)
        return self._csv_records(unit, text, needed)

    def _json_records(self, unit: str, text: str) -> Iterator[tuple[str, dict]]:
        try:
            data = json.loads(text)
        except ValueError as e:
            raise DecodeError("unreadable_annotation", f"{unit}: not valid JSON ({e})") from e
        for part in filter(None, self.args["records"].split(".")):
            data = data.get(part) if isinstance(data, dict) else None
        if isinstance(data, dict):
            return ((f"record {k!r}", {**v, "id": k} if isinstance(v, dict) else {"id": k, "value": v})
                    for k, v in data.items())
        if isinstance(data, list):
            return ((f"record {i}", r if isinstance(r, dict) else {}) for i, r in enumerate(data))
        raise DecodeError("unreadable_annotation", f"{unit}: no list or mapping of records at "
                                                   f"{self.args['records']!r}")

    def _csv_records(self, unit: str, text: str, needed: set[str]) -> Iterator[tuple[str, dict]]:
        """Rows as {column: cell}, streamed (a million-row index need not be held twice); a short
        row keeps only the fields it has, so the templates report the missing one as a bad row."""
        rows = csv.reader(io.StringIO(text, newline=""), delimiter=self.args["delimiter"], skipinitialspace=True)
        columns = list(self.args["columns"])
        try:
            for number, row in enumerate(rows, 1):
                if not any(cell.strip() for cell in row):
                    continue
                if not columns:  # the header row
                    columns = [c.strip() for c in row]
                    missing = sorted(needed - set(columns))
                    if missing:
                        raise DecodeError("unreadable_annotation",
                                          f"{unit}: no column(s) {missing} in its header {columns}")
                    continue
                yield f"line {number}", dict(zip(columns, (cell.strip() for cell in row)))
        except csv.Error as e:
            raise DecodeError("unreadable_annotation", f"{unit}: not a readable CSV ({e})") from e


def without_video_extension(name: str) -> str:
    stem, ext = posixpath.splitext(name)
    return stem if ext.lower() in VIDEO_EXTENSIONS else name


class VideoFolder:
    """The videos under a folder, found by name without extension (one listing, not one stat each)."""
    def __init__(self, folder: str):
        self.folder = folder
        self.by_name: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for relative, path in media_files(folder, VIDEO_EXTENSIONS):
            stem = without_video_extension(relative)
            self.by_name[posixpath.basename(stem)].append((stem, path))

    def find(self, name: str) -> str | None:
        """The video ``name`` (relative, extension optional): the one at that path if present, else
        the first of the same file name elsewhere under the folder (a flat copy of a nested layout)."""
        wanted = without_video_extension(name.strip("/"))
        same_name = self.by_name.get(posixpath.basename(wanted), [])
        for stem, path in same_name:
            if stem == wanted or stem.endswith("/" + wanted):
                return path
        return same_name[0][1] if same_name else None


class VideoIndexReader(SplitIndex, VideoFileReader):
    """Video files named by an index file (see the module docstring for the reader_args)."""
    name = "video_index"
    index_paths = True
    EXPECTS = "the index file {index} and the videos it names below {videos}"
    ARGS = {**INDEX_ARGS, "videos": ""}

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        entries = list(self.index_entries(unit))
        folder = storage.join(root, self.args["videos"].format_map(self.unit_fields(unit)))
        videos = VideoFolder(folder)
        for entry in entries:
            yield entry if isinstance(entry, Reject) else self._video(folder, videos, unit, entry)

    def _video(self, folder: str, videos: VideoFolder, unit: str, entry: Entry) -> Item | Reject:
        named = self.confined(folder, entry.path, key=entry.key, named_by=unit)
        if isinstance(named, Reject):
            return named
        path = videos.find(entry.path)
        if path is None:
            return self.reject(entry.key, "missing_file", f"{unit} names {named}, which is not there (no video of "
                                                          f"that name under {folder})")
        path = self.confined(folder, storage.relative(path, folder), key=entry.key, named_by=unit)  # a symlink out?
        return path if isinstance(path, Reject) else Item(source=self.source, key=entry.key, paths=(path,),
                                                          label=entry.label)


class HMDB51Reader(VideoIndexReader):
    """HMDB51: one split file per action, ``testTrainMulti_7030_splits/<action>_test_split<N>.txt``,
    lines ``<video>.avi <id>`` (1 train, 2 test, 0 unused); videos in ``hmdb51_org/<action>/``.
    Each action's file is a unit; its videos folder is that action's."""

    name = "hmdb51_splits"
    EXPECTS = ("{index}/<action>_test_split{split_number}.txt split lists and the videos they name below "
               "hmdb51_org/<action>/")
    SUFFIX = "_test_split{}.txt"
    ARGS = {**VideoIndexReader.ARGS, "index": "testTrainMulti_7030_splits", "split_number": 1,
            "delimiter": " ", "columns": ("video", "split_id"), "where": {"split_id": "1"},
            "key": "{action}/{video}", "path": "{video}", "label": "{action}", "videos": "hmdb51_org/{action}"}

    def units(self, root: str) -> list[str]:
        pattern = storage.join(root, self.args["index"], "*" + self.SUFFIX.format(self.args["split_number"]))
        return storage.match(pattern) or [pattern]  # none: the one unit reports the split files missing

    def unit_fields(self, unit: str) -> dict[str, str]:
        return {"action": posixpath.basename(unit)[:-len(self.SUFFIX.format(self.args["split_number"]))]}


class VideoTreeReader(VideoFileReader):
    """Every video under one folder of the root (a split that ships as a folder, e.g. MultiSports'
    ``trainval/<sport>/``); keys are paths relative to the root, labels the first folder below it."""

    name = "video_tree"
    EXPECTS = "video files below {folder}"
    ARGS = {"folder": ""}

    def units(self, root: str) -> list[str]:
        return [storage.join(root, self.args["folder"])]

    def found(self, root: str) -> bool:
        return any(media_files(self.units(root)[0], VIDEO_EXTENSIONS))

    def items(self, root: str, unit: str) -> Iterator[Item | Reject]:
        for relative, path in media_files(unit, VIDEO_EXTENSIONS):
            label = relative.split("/", 1)[0] if "/" in relative else ""
            yield Item(source=self.source, key=storage.relative(path, root), paths=(path,), label=label)
