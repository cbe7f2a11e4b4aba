"""Raven's Progressive Matrices, generated procedurally after the RAVEN benchmark family (Zhang et
al., CVPR 2019; I-RAVEN, Hu et al. 2021), and scored as LVM scores multiple choice.

A puzzle is a 3x3 matrix of panels whose last panel is missing, and 5 choices. Each panel holds
objects in one of three RAVEN configurations (``center_single``: one object; ``grid_2x2`` and
``grid_3x3``: objects in the cells of a grid); every object of a panel shares its type (triangle,
square, pentagon, hexagon, circle), size (6 scales) and colour (10 grey levels). Each attribute
follows one rule along every row: ``constant``, ``progression`` (+-1 or +-2 steps),
``arithmetic`` (third = first + or - second, counting levels from 1; set union / difference for
positions) or ``distribute_three`` (three values, each row a rotation of them); type never takes
arithmetic, as in RAVEN. In a grid either the number of objects or their positions carries a rule
(the other follows: positions are drawn at random for a number rule).

A puzzle is kept only when it is well posed: for every ruled attribute, every rule that fits the
first two rows predicts the same missing value. Each wrong choice changes one ruled attribute of
the answer, so exactly one choice agrees with the rules. The model sees the 8 panels row by row,
then a choice; the lowest-perplexity choice is its answer (chance 20 %; LVM reports 30 %).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

import cv2
import numpy as np

from uvd.model.choice import ChoiceItem

SIZE = 256
TYPES = ("triangle", "square", "pentagon", "hexagon", "circle")
SCALES = (0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # object radius as a fraction of its cell's half-width
GREYS = (255, 224, 196, 168, 140, 112, 84, 56, 28, 0)  # RAVEN's colour levels, white to black
CONFIGURATIONS = {"center_single": 1, "grid_2x2": 2, "grid_3x3": 3}  # name -> grid side
RULES = ("constant", "progression", "arithmetic", "distribute_three")
LEVELS = {"type": len(TYPES), "size": len(SCALES), "colour": len(GREYS)}
N_CHOICES = 5
GENERATOR = "uvd.model.raven/1"


@dataclass(frozen=True)
class Panel:
    positions: frozenset[int]  # occupied cells, row-major
    type: int
    size: int
    colour: int

    @property
    def number(self) -> int:
        return len(self.positions)


@dataclass(frozen=True)
class Rule:
    attribute: str  # number, position, type, size or colour
    name: str  # one of RULES
    param: int = 0  # progression: the step; arithmetic: +1 (add, union) or -1 (subtract, difference)


@dataclass(frozen=True)
class Puzzle:
    configuration: str
    rules: tuple[Rule, ...]
    rows: tuple[tuple[Panel, Panel, Panel], ...]  # the full matrix; rows[2][2] is the answer
    choices: tuple[Panel, ...]
    answer: int


# --- the rules, on one attribute's values (levels as ints, positions as frozensets) ---------------

def _shift(cells: frozenset[int], step: int, n_cells: int) -> frozenset[int]:
    return frozenset((c + step) % n_cells for c in cells)


def _amount(attribute: str, value) -> int:
    """Arithmetic counts levels from 1 (RAVEN: a size or colour level adds as level + 1)."""
    return value if attribute == "number" else value + 1


def apply_rule(rule: Rule, first, second, n_cells: int):
    """The third value of a row from its first two under ``rule`` (distribute_three aside), or None
    when the rule does not fit them or the result leaves the attribute's range."""
    a = rule.attribute
    if rule.name == "constant":
        return first if first == second else None
    if rule.name == "progression":
        if a == "position":
            return _shift(second, rule.param, n_cells) if _shift(first, rule.param, n_cells) == second else None
        return second + rule.param if second - first == rule.param and _in_range(a, second + rule.param, n_cells) else None
    if rule.name == "arithmetic":
        if a == "position":
            third = first | second if rule.param > 0 else first - second
            return third if third else None
        third = _amount(a, first) + rule.param * _amount(a, second)
        third = third if a == "number" else third - 1
        return third if _in_range(a, third, n_cells) else None
    raise ValueError(f"apply_rule does not handle {rule.name}")


def _in_range(attribute: str, value: int, n_cells: int) -> bool:
    return 1 <= value <= n_cells if attribute == "number" else 0 <= value < LEVELS[attribute]


def predictions(attribute: str, rows: list[tuple], n_cells: int) -> set:
    """Every third value of the last row that some rule fitting the first two full rows allows."""
    (a0, a1, a2), (b0, b1, b2), (c0, c1) = rows[0], rows[1], rows[2][:2]
    found = set()
    for rule in candidate_rules(attribute):
        if rule.name == "distribute_three":
            triple = (a0, a1, a2)
            if len(set(triple)) == 3 and set((b0, b1, b2)) == set(triple):
                shift = triple.index(b0)
                if (b0, b1, b2) == tuple(triple[(shift + i) % 3] for i in range(3)) and shift:
                    third = tuple(triple[(2 * shift + i) % 3] for i in range(3))
                    if (c0, c1) == third[:2]:
                        found.add(third[2])
            continue
        if apply_rule(rule, a0, a1, n_cells) == a2 and apply_rule(rule, b0, b1, n_cells) == b2:
            third = apply_rule(rule, c0, c1, n_cells)
            if third is not None:
                found.add(third)
    return found


def candidate_rules(attribute: str) -> list[Rule]:
    rules = [Rule(attribute, "constant")]
    rules += [Rule(attribute, "progression", d) for d in (-2, -1, 1, 2)]
    if attribute != "type":
        rules += [Rule(attribute, "arithmetic", s) for s in (1, -1)]
    return rules + [Rule(attribute, "distribute_three")]


# --- generating a puzzle --------------------------------------------------------------------------

def _random_value(attribute: str, rng: random.Random, n_cells: int):
    if attribute == "position":
        return frozenset(rng.sample(range(n_cells), rng.randint(1, n_cells)))
    if attribute == "number":
        return rng.randint(1, n_cells)
    return rng.randrange(LEVELS[attribute])


def _valid(attribute: str, value, n_cells: int) -> bool:
    return bool(value) if attribute == "position" else _in_range(attribute, value, n_cells)


def row_values(rule: Rule, rng: random.Random, n_cells: int) -> tuple | None:
    """One row's three values of ``rule``'s attribute (not distribute_three), or None if none fits."""
    a = rule.attribute
    for _ in range(100):
        first = _random_value(a, rng, n_cells)
        if rule.name == "constant":
            second = first
        elif rule.name == "progression":
            second = _shift(first, rule.param, n_cells) if a == "position" else first + rule.param
        else:
            second = _random_value(a, rng, n_cells)
        third = apply_rule(rule, first, second, n_cells) if _valid(a, second, n_cells) else None
        if third is not None:
            return first, second, third
    return None


def attribute_rows(rule: Rule, rng: random.Random, n_cells: int) -> list[tuple] | None:
    """The 3x3 values of one attribute under ``rule``."""
    if rule.name == "distribute_three":
        triple: list = []
        while len(triple) < 3:
            value = _random_value(rule.attribute, rng, n_cells)
            if value not in triple:
                triple.append(value)
        step = rng.choice((1, 2))
        return [tuple(triple[(r * step + i) % 3] for i in range(3)) for r in range(3)]
    rows = [row_values(rule, rng, n_cells) for _ in range(3)]
    return None if None in rows else rows


def random_rules(configuration: str, rng: random.Random) -> tuple[Rule, ...]:
    attributes = ["type", "size", "colour"]
    if configuration != "center_single":
        attributes.insert(0, rng.choice(("number", "position")))
    rules = []
    for a in attributes:  # the rule first, then its parameter, as RAVEN samples them
        name = rng.choice([r for r in RULES if not (a == "type" and r == "arithmetic")])
        rules.append(rng.choice([r for r in candidate_rules(a) if r.name == name]))
    return tuple(rules)


def _panels(values: dict[str, list[tuple]], configuration: str, rng: random.Random) -> list[list[Panel]]:
    """Panels from each attribute's 3x3 values; positions are drawn when only the number is ruled."""
    n_cells = CONFIGURATIONS[configuration] ** 2
    rows = []
    for r in range(3):
        row = []
        for c in range(3):
            if "position" in values:
                positions = values["position"][r][c]
            else:
                number = values["number"][r][c] if "number" in values else 1
                positions = frozenset(rng.sample(range(n_cells), number))
            row.append(Panel(positions, values["type"][r][c], values["size"][r][c], values["colour"][r][c]))
        rows.append(row)
    return rows


def attribute_of(panel: Panel, attribute: str):
    return panel.positions if attribute == "position" else getattr(panel, attribute)


def well_posed(rows: list[list[Panel]], rules: tuple[Rule, ...], n_cells: int) -> bool:
    """Every rule that fits the first two rows predicts the answer's value, attribute by attribute."""
    for rule in rules:
        values = [tuple(attribute_of(p, rule.attribute) for p in row) for row in rows]
        if predictions(rule.attribute, values, n_cells) != {values[2][2]}:
            return False
    return True


def _vary(panel: Panel, attribute: str, rng: random.Random, n_cells: int) -> Panel:
    """The panel with one ruled attribute changed (the number with fresh positions)."""
    if attribute == "number":
        number = rng.choice([n for n in range(1, n_cells + 1) if n != panel.number])
        return replace(panel, positions=frozenset(rng.sample(range(n_cells), number)))
    if attribute == "position":
        return replace(panel, positions=_random_value("position", rng, n_cells))
    return replace(panel, **{attribute: rng.choice([v for v in range(LEVELS[attribute])
                                                   if v != getattr(panel, attribute)])})


def make_puzzle(configuration: str, rng: random.Random) -> Puzzle:
    """A well-posed puzzle of ``configuration``: rules, matrix, 5 shuffled choices."""
    n_cells = CONFIGURATIONS[configuration] ** 2
    while True:
        rules = random_rules(configuration, rng)
        values = {rule.attribute: attribute_rows(rule, rng, n_cells) for rule in rules}
        if any(v is None for v in values.values()):
            continue
        rows = _panels(values, configuration, rng)
        if well_posed(rows, rules, n_cells):
            break
    answer = rows[2][2]
    choices = [answer]
    while len(choices) < N_CHOICES:
        wrong = _vary(answer, rng.choice(rules).attribute, rng, n_cells)
        if wrong not in choices:
            choices.append(wrong)
    rng.shuffle(choices)
    return Puzzle(configuration, rules, tuple(tuple(r) for r in rows), tuple(choices), choices.index(answer))


# --- pictures -------------------------------------------------------------------------------------

def _vertices(kind: str, centre: tuple[float, float], radius: float) -> np.ndarray:
    n = TYPES.index(kind) + 3
    offset = -np.pi / 4 if kind == "square" else -np.pi / 2  # squares upright, others on a vertex
    angles = offset + 2 * np.pi * np.arange(n) / n
    return np.stack([centre[0] + radius * np.cos(angles), centre[1] + radius * np.sin(angles)], 1)


def render_panel(panel: Panel, configuration: str) -> np.ndarray:
    """A panel -> (256, 256, 3) uint8: black-outlined shapes filled with their grey on white."""
    side = CONFIGURATIONS[configuration]
    cell = SIZE / side
    img = np.full((SIZE, SIZE, 3), 255, np.uint8)
    grey, kind = GREYS[panel.colour], TYPES[panel.type]
    for position in sorted(panel.positions):
        row, col = divmod(position, side)
        centre = ((col + 0.5) * cell, (row + 0.5) * cell)
        radius = SCALES[panel.size] * cell / 2 * 0.9
        if kind == "circle":
            c = (int(round(centre[0])), int(round(centre[1])))
            cv2.circle(img, c, int(round(radius)), (grey,) * 3, -1, cv2.LINE_AA)
            cv2.circle(img, c, int(round(radius)), (0, 0, 0), 2, cv2.LINE_AA)
        else:
            points = np.round(_vertices(kind, centre, radius)).astype(np.int32)
            cv2.fillPoly(img, [points], (grey,) * 3, cv2.LINE_AA)
            cv2.polylines(img, [points], True, (0, 0, 0), 2, cv2.LINE_AA)
    return img


def to_item(puzzle: Puzzle, item_id: str) -> ChoiceItem:
    """The model's view: the 8 panels row by row as context, the choices as candidates."""
    panels = [p for row in puzzle.rows for p in row][:8]
    return ChoiceItem(item_id, puzzle.configuration, tuple(render_panel(p, puzzle.configuration) for p in panels),
                      tuple(render_panel(p, puzzle.configuration) for p in puzzle.choices), puzzle.answer,
                      {"rules": [[r.attribute, r.name, r.param] for r in puzzle.rules]})


def make_puzzles(n: int, seed: int = 0, configurations: tuple[str, ...] = tuple(CONFIGURATIONS)) -> list[Puzzle]:
    """``n`` puzzles, the configurations taking turns; puzzle i depends on (seed, configuration, i) only."""
    unknown = set(configurations) - set(CONFIGURATIONS)
    if unknown:
        raise ValueError(f"unknown Raven configuration(s) {sorted(unknown)}; known: {list(CONFIGURATIONS)}")
    out = []
    for i in range(n):
        configuration = configurations[i % len(configurations)]
        out.append(make_puzzle(configuration, random.Random(f"{seed}:raven:{configuration}:{i}")))
    return out


def make_items(n: int = 300, seed: int = 0) -> list[ChoiceItem]:
    return [to_item(p, f"{p.configuration}_{i:05d}") for i, p in enumerate(make_puzzles(n, seed))]


def item_meta(n: int, seed: int) -> dict:
    return {"eval": "raven", "generator": GENERATOR, "seed": seed, "configurations": list(CONFIGURATIONS),
            "choices": N_CHOICES}
