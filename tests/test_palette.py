"""The course's one palette: modalities and runs keep one colour each, in every figure."""
from __future__ import annotations

import subprocess
import sys

import pytest

from hfr_tutorial import palette
from hfr_tutorial.palette import (FALLBACK_RUN_COLORS, FIXED_RUN_COLORS, MODALITY_COLORS, assign_run_color,
                                  modality_color, run_color)


@pytest.fixture(autouse=True)
def _fresh_table():
    """Each test starts with the fixed runs only, and leaves the table as it found it."""
    saved = (dict(palette._assigned), dict(palette._fallback))
    palette._forget_run_colors()
    yield
    palette._forget_run_colors()
    palette._assigned.update(saved[0])
    palette._fallback.update(saved[1])


def test_palette_is_a_leaf_without_matplotlib():
    code = ("import sys, hfr_tutorial.palette; "
            "print(sorted(m for m in sys.modules if m.startswith(('matplotlib', 'hfr_tutorial.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['hfr_tutorial.palette']"


def test_modalities_have_one_colour_each_and_unknown_ones_a_stable_one():
    assert modality_color("NIR") == MODALITY_COLORS["nir"]
    assert len({MODALITY_COLORS[m] for m in ("vis", "nir", "thermal")}) == 3
    assert modality_color("sketchy") == modality_color("sketchy")
    assert modality_color("sketchy") not in MODALITY_COLORS.values()


def test_no_run_colour_is_a_modality_colour():
    modality = {c.upper() for c in MODALITY_COLORS.values()}
    runs = {c.upper() for c in (*FALLBACK_RUN_COLORS, *FIXED_RUN_COLORS.values())}
    assert not runs & modality
    assert len(set(c.upper() for c in FALLBACK_RUN_COLORS)) == len(FALLBACK_RUN_COLORS)


def test_fixed_runs_and_registered_runs_keep_their_colour():
    assert run_color("baseline") == run_color("RGB baseline") == run_color("before (unadapted)") == palette.STARTING_MODEL_COLOR
    assign_run_color("paper/infonce+distill", "#1B9E77")
    assign_run_color("paper/infonce+distill", "#1b9e77")  # the same colour again: nothing happens
    assert run_color("paper/infonce+distill") == "#1B9E77"
    assert palette.assigned_run_colors()["paper/infonce+distill"] == "#1B9E77"


def test_a_run_has_the_same_colour_whatever_the_other_runs_of_the_figure():
    """Notebook 05's bug: colours handed out by position made teal a different run in each figure."""
    assign_run_color("paper/infonce+distill", "#1B9E77")
    assign_run_color("full/infonce+distill", "#C49A00")
    first = palette.run_colors(["baseline", "paper/infonce+distill", "full/infonce+distill"])
    second = palette.run_colors(["full/infonce+distill", "ablation/x", "paper/infonce+distill"])
    assert first["paper/infonce+distill"] == second["paper/infonce+distill"] == "#1B9E77"
    assert first["full/infonce+distill"] == second["full/infonce+distill"]


def test_unknown_names_get_stable_distinct_colours():
    names = [f"my run {k}" for k in range(len(FALLBACK_RUN_COLORS))]
    colors = [run_color(n) for n in names]
    assert len(set(colors)) == len(names)  # distinct while the fallback colours last
    assert [run_color(n) for n in names] == colors  # and kept
    assert set(colors) <= set(FALLBACK_RUN_COLORS)
    # across processes: a name alone in its slot gets the same colour (no per-process hashing)
    code = "from hfr_tutorial.palette import run_color; print(run_color('my run 0'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    palette._forget_run_colors()
    assert out == run_color("my run 0")


def test_an_unknown_name_avoids_the_colours_of_registered_runs():
    slot = palette._slot("lonely", len(FALLBACK_RUN_COLORS))
    assign_run_color("registered", FALLBACK_RUN_COLORS[slot])
    assert run_color("lonely") != FALLBACK_RUN_COLORS[slot]
    # a registration that takes the colour an unknown name was given moves that name, never the registered run
    palette._forget_run_colors()
    given = run_color("early")
    assign_run_color("late registration", given)
    assert run_color("late registration") == given and run_color("early") != given


@pytest.mark.parametrize("name, color, match", [
    ("x", "teal", "not a '#RRGGBB'"),
    ("", "#123456", "non-empty"),
    ("x", MODALITY_COLORS["thermal"], "colour of the modality 'thermal'"),
    ("x", FIXED_RUN_COLORS["baseline"], "'baseline', 'RGB baseline', 'before \\(unadapted\\)' already have that colour"),
    ("baseline", "#123456", "already has colour"),
])
def test_bad_assignments_are_refused(name, color, match):
    with pytest.raises(ValueError, match=match):
        assign_run_color(name, color)


def test_run_color_takes_a_name_not_a_position():
    with pytest.raises(TypeError, match="takes a run's name"):
        run_color(0)
