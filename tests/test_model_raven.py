"""The Raven generator: every puzzle has exactly one choice that its rules allow (checked by a solver
written here, which infers each rule from the first two rows), the pictures show the panels'
attributes, and puzzles are seeded."""

from __future__ import annotations

import collections

import cv2
import numpy as np
import pytest

from uvd.model.raven import CONFIGURATIONS, GREYS, N_CHOICES, SCALES, make_items, make_puzzles, render_panel

# --- an independent solver -------------------------------------------------------------------------

TYPE_LEVELS, SIZE_LEVELS, COLOUR_LEVELS = 5, len(SCALES), len(GREYS)


def value(panel, attribute):
    return panel.positions if attribute == "position" else getattr(panel, attribute)


def row_fits(name: str, step, attribute: str, row: tuple, n_cells: int) -> bool:
    """Does one row (three values) obey rule ``name`` with parameter ``step``?"""
    a, b, c = row
    if name == "constant":
        return a == b == c
    if name == "progression":
        if attribute == "position":
            move = lambda s: frozenset((x + step) % n_cells for x in s)  # noqa: E731
            return move(a) == b and move(b) == c
        return b - a == step and c - b == step
    if name == "arithmetic":
        if attribute == "type":
            return False
        if attribute == "position":
            return c == (a | b if step > 0 else a - b) and bool(c)
        if attribute == "number":
            return c == a + step * b
        return c + 1 == (a + 1) + step * (b + 1)  # levels counted from 1
    raise AssertionError(name)


def rows_fit(attribute: str, rows: list[tuple], n_cells: int) -> bool:
    """Some rule of the RAVEN family fits all three rows of this attribute."""
    for name, steps in (("constant", [0]), ("progression", [-2, -1, 1, 2]), ("arithmetic", [1, -1])):
        if any(all(row_fits(name, s, attribute, r, n_cells) for r in rows) for s in steps):
            return True
    first = rows[0]
    if len(set(first)) == 3:  # distribute three: each row a rotation of the first, rotations all different
        rotations = [tuple(first[(k + i) % 3] for i in range(3)) for k in range(3)]
        return sorted(rotations.index(r) if r in rotations else -1 for r in rows) == [0, 1, 2]
    return False


def consistent(puzzle, choice) -> bool:
    """The completed matrix obeys a rule on every attribute the puzzle rules (any rule that fits)."""
    n_cells = CONFIGURATIONS[puzzle.configuration] ** 2
    matrix = [list(r) for r in puzzle.rows]
    matrix[2][2] = choice
    for attribute in [rule.attribute for rule in puzzle.rules]:
        rows = [tuple(value(p, attribute) for p in row) for row in matrix]
        if not rows_fit(attribute, rows, n_cells):
            return False
    return True


# --- the tests -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def puzzles():
    return make_puzzles(240, seed=7)


def test_exactly_one_choice_fits_the_rules(puzzles):
    for puzzle in puzzles:
        fitting = [i for i, choice in enumerate(puzzle.choices) if consistent(puzzle, choice)]
        assert fitting == [puzzle.answer], (puzzle.rules, fitting, puzzle.answer)
        assert len(set(puzzle.choices)) == N_CHOICES


def test_every_rule_of_every_attribute_occurs_and_answers_move(puzzles):
    seen = collections.Counter((r.attribute, r.name) for p in puzzles for r in p.rules)
    for attribute in ("type", "size", "colour", "number", "position"):
        names = {"constant", "progression", "distribute_three"} | ({"arithmetic"} if attribute != "type" else set())
        assert {n for a, n in seen if a == attribute} == names, attribute
    assert {p.configuration for p in puzzles} == set(CONFIGURATIONS)
    assert set(collections.Counter(p.answer for p in puzzles)) == set(range(N_CHOICES))  # shuffled
    # a grid rules either the number of objects or their positions, never both
    assert all(sum(r.attribute in ("number", "position") for r in p.rules) == (p.configuration != "center_single")
               for p in puzzles)


def test_puzzles_are_seeded():
    assert make_puzzles(6, seed=3) == make_puzzles(6, seed=3)
    assert make_puzzles(6, seed=3) != make_puzzles(6, seed=4)
    with pytest.raises(ValueError, match="unknown Raven configuration"):
        make_puzzles(1, configurations=("out_in",))


def objects(img: np.ndarray) -> list[tuple[float, float, int]]:
    """(x, y, fill grey) of each drawn object: connected non-white regions, filled inside their outline."""
    ink = (img.min(axis=2) < 250).astype(np.uint8)
    n, labels, stats, centroids = cv2.connectedComponentsWithStats(ink, 8)
    out = []
    for i in range(1, n):
        filled = np.zeros_like(ink)
        contours, _ = cv2.findContours((labels == i).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(filled, contours, -1, 1, -1)
        inner = cv2.erode(filled, np.ones((9, 9), np.uint8)).astype(bool)
        out.append((*centroids[i], int(np.median(img[inner][:, 0]))))
    return out


def test_panels_show_their_number_positions_and_colour(puzzles):
    for puzzle in puzzles[:30]:
        side = CONFIGURATIONS[puzzle.configuration]
        for panel in [p for row in puzzle.rows for p in row] + list(puzzle.choices):
            found = objects(render_panel(panel, puzzle.configuration))
            assert len(found) == panel.number
            cells = {int(y // (256 / side)) * side + int(x // (256 / side)) for x, y, _ in found}
            assert cells == set(panel.positions)
            assert all(abs(grey - GREYS[panel.colour]) <= 2 for *_, grey in found)


def test_items_show_eight_panels_and_five_choices():
    (item,) = make_items(1, seed=2)
    assert len(item.context) == 8 and len(item.candidates) == N_CHOICES
    assert all(img.shape == (256, 256, 3) and img.dtype == np.uint8 for img in item.context + item.candidates)
    assert item.info["rules"] and 0 <= item.answer < N_CHOICES
