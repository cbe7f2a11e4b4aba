"""An untrusted torch.export archive (``.pt2``) loaded without running anything it carries.

A ``.pt2`` of torch 2.13 is a zip under one top folder: ``archive_format``, ``archive_version``,
``byteorder``, ``.data/version``, ``.data/serialization_id``, the program as JSON
(``models/model.json``), its weights and constants as raw bytes (``data/weights/weight_N``,
``data/constants/tensor_N``) described by JSON configs, and the example inputs, a
``torch.save`` pickle (``data/sample_inputs/model.pt``). ``torch.export.load`` would also run
code from it: full unpickling of weights or constants marked ``use_pickle``, of torchbind and
opaque constants and of the legacy ``data/weights/model.pt``; a second, full unpickling of the
example inputs when the weights-only one fails; ``dlopen`` of an AOTInductor library; and
``sympy.sympify`` (Python ``eval``) of every symbolic-shape expression. So the bytes are read
once and checked before torch sees them, and what was checked is what is loaded:

- only the members a plain exported module has (anything else is refused by name);
- every weight and constant stored raw (``use_pickle`` false);
- example inputs that load with ``torch.load(weights_only=True)``, so torch never falls back;
- shape expressions in a small grammar (sympy names, symbols, numbers, arithmetic), and
  parameter and module names plain dotted identifiers (they become attribute paths in code).
"""

from __future__ import annotations

import functools
import io
import json
import keyword
import re
import tokenize
import zipfile

import torch

MEMBERS = re.compile(r"archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id"
                     r"|models/model\.json|data/sample_inputs/model\.pt|extra/[A-Za-z0-9_.-]+"
                     r"|data/weights/model_weights_config\.json|data/weights/weight_\d+"
                     r"|data/constants/model_constants_config\.json|data/constants/tensor_\d+")
PAYLOAD_CONFIGS = {"data/weights/model_weights_config.json": "weight_",  # config: stored file name prefix
                   "data/constants/model_constants_config.json": "tensor_"}
DOTTED_NAME = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*")
NAME_FIELDS = ("parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name", "fqn")
SYMBOL = re.compile(r"[a-z]+[0-9]+")
SYMBOL_STRING = re.compile(r"""(['"])[A-Za-z_][A-Za-z0-9_]*\1""")
SHAPE_OPERATORS = {"(", ")", ",", "=", "+", "-", "*", "/", "//", "**", "%"}


class UnsafeModelFile(ValueError):
    """A model archive holds something that could run code when loaded (or is not a .pt2)."""


def load_exported_program(data: bytes, name: str) -> torch.export.ExportedProgram:
    """The exported program in the archive bytes ``data`` (read from ``name``), after
    ``check_archive`` passed on these very bytes."""
    check_archive(data, name)
    return torch.export.load(io.BytesIO(data))


def check_archive(data: bytes, name: str) -> None:
    """Raise UnsafeModelFile, naming the member, unless ``data`` is a .pt2 that loads without
    unpickling, loading a library or evaluating Python (see the module docstring)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise UnsafeModelFile(f"{name}: not a torch.export .pt2 archive ({e})") from None
    with archive:
        members = _members(archive, name)
        for config, prefix in PAYLOAD_CONFIGS.items():
            if config in members:
                _check_payloads(_json(archive, members[config], name), prefix, f"{name}[{config}]")
        if "models/model.json" not in members or "data/sample_inputs/model.pt" not in members:
            raise UnsafeModelFile(f"{name}: no models/model.json or example inputs; save it with torch.export.save")
        _check_program(_json(archive, members["models/model.json"], name), f"{name}[models/model.json]")
        _check_example_inputs(archive.read(members["data/sample_inputs/model.pt"]), name)


def _json(archive: zipfile.ZipFile, member: str, name: str):
    try:
        return json.loads(archive.read(member))
    except ValueError as e:
        raise UnsafeModelFile(f"{name}[{member}]: not JSON ({e})") from None


def _members(archive: zipfile.ZipFile, name: str) -> dict[str, str]:
    """{member name below the top folder: full name}; refuses a member a plain module does not have."""
    names = [n for n in archive.namelist() if not n.endswith("/")]
    if len(set(names)) != len(names):  # which copy would torch read? Not the one checked, perhaps
        raise UnsafeModelFile(f"{name}: a member name occurs twice: {sorted(n for n in names if names.count(n) > 1)[0]}")
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) != 1 or any("/" not in n for n in names):
        raise UnsafeModelFile(f"{name}: not a .pt2 archive (members are not under one top folder: {sorted(tops)[:3]})")
    members = {n.split("/", 1)[1]: n for n in names}
    for inner, full in members.items():
        if not MEMBERS.fullmatch(inner):
            raise UnsafeModelFile(f"{name}: member {full!r} is not part of a plain exported module (pickled "
                                  f"objects, compiled libraries and other models are refused)")
    return members


def _check_payloads(config: dict, prefix: str, where: str) -> None:
    """Every weight or constant stored as raw bytes, under a plain name."""
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict) or not all(isinstance(meta, dict) for meta in entries.values()):
        raise UnsafeModelFile(f"{where}: not a payload config (a 'config' mapping of names to their storage)")
    for fqn, meta in entries.items():
        if not DOTTED_NAME.fullmatch(fqn):
            raise UnsafeModelFile(f"{where}: {fqn!r} is not a plain dotted name")
        stored = str(meta.get("path_name"))
        if meta.get("use_pickle", True) or not re.fullmatch(re.escape(prefix) + r"\d+", stored):
            raise UnsafeModelFile(f"{where}: {fqn!r} is stored as a pickle or an object ({stored}); only raw "
                                  f"tensors are loaded")


def _check_program(node, where: str) -> None:
    """Walk the program JSON: shape expressions in the grammar, attribute names plain."""
    if isinstance(node, list):
        for value in node:
            _check_program(value, where)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "expr_str":
            check_shape_expression(str(value), where)
        elif key in NAME_FIELDS and value and not DOTTED_NAME.fullmatch(str(value)):
            raise UnsafeModelFile(f"{where}: {key} {str(value)[:80]!r} is not a plain dotted name")
        else:
            _check_program(value, where)


@functools.lru_cache(maxsize=1)
def _sympy_names() -> frozenset[str]:
    """The classes a shape expression may call: sympy's and torch's symbolic-shape functions."""
    import sympy  # noqa: PLC0415 - a torch dependency, needed only when a model is checked
    from torch.utils._sympy import functions  # noqa: PLC0415 - idem

    return frozenset({n for module in (sympy, functions) for n, obj in vars(module).items()
                      if not n.startswith("_") and isinstance(obj, type) and issubclass(obj, sympy.Basic)}
                     | {"True", "False", "oo", "zoo", "nan"})


def check_shape_expression(expr: str, where: str) -> None:
    """Refuse a symbolic-shape expression that is more than sympy arithmetic over symbols
    (``sympify`` evaluates it as Python)."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(expr).readline)
                  if t.type not in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER)]
    except (tokenize.TokenError, SyntaxError) as e:
        raise UnsafeModelFile(f"{where}: shape expression {expr[:80]!r} does not parse ({e})") from None
    for i, token in enumerate(tokens):
        keyword_arg = token.type == tokenize.NAME and i + 1 < len(tokens) and tokens[i + 1].string == "="
        allowed = (
            (token.type == tokenize.NAME and not keyword.iskeyword(token.string)
             and (token.string in _sympy_names() or SYMBOL.fullmatch(token.string)
                  or (keyword_arg and re.fullmatch(r"[a-z_]+", token.string))))
            or token.string in ("True", "False")
            or token.type == tokenize.NUMBER
            or (token.type == tokenize.STRING and SYMBOL_STRING.fullmatch(token.string))
            or (token.type == tokenize.OP and token.string in SHAPE_OPERATORS))
        if not allowed:
            raise UnsafeModelFile(f"{where}: shape expression {expr[:80]!r} has {token.string!r}, which is not "
                                  f"sympy arithmetic over symbols")


def _check_example_inputs(data: bytes, name: str) -> None:
    """torch.export.load unpickles the example inputs fully when a weights-only load fails: make
    sure it does not fail."""
    try:
        torch.load(io.BytesIO(data), weights_only=True)
    except Exception as e:  # the weights-only unpickler raises many types; any of them means "refused"
        reason = re.search(r"WeightsUnpickler error:\s*(.+?)(\n\n|$)", str(e), re.S)
        detail = " ".join((reason.group(1) if reason else f"{type(e).__name__}: {e}").split())[:160]
        raise UnsafeModelFile(f"{name}: its example inputs are a pickle that a weights-only load refuses "
                              f"({detail}); only plain tensors are loaded") from None
