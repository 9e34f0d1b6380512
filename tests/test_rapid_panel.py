"""The rapid panel benchmark's bookkeeping (benchmarks/_common/panel.py, which
benchmarks/rapid_panel.py runs): a row rebuilt from a saved autoattack side and a new rapid sweep
names the same disagreeing images as a side-by-side row, reused rows are kept out of the
wall-time target, parts on adjacent images join into one panel, and other images and weights are
refused."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def panel() -> ModuleType:
    """benchmarks/_common/panel.py, loaded by path (no test imports a benchmark script)."""
    spec = importlib.util.spec_from_file_location("benchmarks_common_panel", ROOT / "benchmarks" / "_common" / "panel.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def _sweeps(panel: ModuleType) -> tuple[Any, Any]:
    """autoattack and rapid on 6 images at 2 eps, with known outcomes."""
    aa = panel.Sweep(
        correct=[[True, True, False, False, True, False], [True, False, False, False, False, True]],
        fooled_by=[[None, None, "apgd-ce", None, None, "apgd-t"], [None, "apgd-t", "apgd-ce", None, "square", None]],
        passes=[900, 400],
        seconds=[90.0, 40.0],
    )
    rapid = panel.Sweep(
        correct=[[True, False, False, False, True, True], [True, False, False, False, True, False]],
        fooled_by=[[None, "malt", "apgd-ce", None, None, None], [None, "malt", "apgd-ce", None, None, "apgd-ce"]],
        passes=[60, 35],
        seconds=[6.0, 4.0],
    )
    return aa, rapid


def test_rerun_row_matches_side_by_side(panel: ModuleType) -> None:
    aa, rapid = _sweeps(panel)
    rows = panel.compare("m", (1.0, 2.0), aa, rapid, None, None, "abc")
    assert [r.aa_only for r in rows] == [[(5, "apgd-t")], [(4, "square")]]
    assert [r.rapid_only for r in rows] == [[(1, "malt")], [(5, "apgd-ce")]]
    saved = json.loads(json.dumps([asdict(r) for r in rows]))
    rebuilt = [panel.rerun_row(s, rapid, k, "abc") for k, s in enumerate(saved)]
    for a, b in zip(rows, rebuilt, strict=True):
        assert (a.aa_correct, a.rapid_correct, a.aa_passes, a.rapid_passes) == (b.aa_correct, b.rapid_correct, b.aa_passes, b.rapid_passes)
        assert [tuple(x) for x in a.aa_only] == b.aa_only and [tuple(x) for x in a.rapid_only] == b.rapid_only
        assert b.reused and not a.reused


def test_an_offset_panel_numbers_images_from_the_first_test_image(panel: ModuleType) -> None:
    """--offset 100 (an out-of-sample panel): the disagreeing images and autoattack's survivors are
    named by their built-in test image, and a rerun of the saved rows finds the same ones."""
    aa, rapid = _sweeps(panel)
    rows = panel.compare("m", (1.0, 2.0), aa, rapid, None, None, "abc", 100)
    assert [r.aa_only for r in rows] == [[(105, "apgd-t")], [(104, "square")]]
    assert [r.rapid_only for r in rows] == [[(101, "malt")], [(105, "apgd-ce")]]
    assert rows[0].aa_survivors == [100, 101, 104]
    saved = json.loads(json.dumps([asdict(r) for r in rows]))
    rebuilt = [panel.rerun_row(s, rapid, k, "abc") for k, s in enumerate(saved)]
    assert [b.aa_only for b in rebuilt] == [[(105, "apgd-t")], [(104, "square")]]
    assert [b.rapid_only for b in rebuilt] == [[(101, "malt")], [(105, "apgd-ce")]]


def test_rerun_refuses_other_images(panel: ModuleType) -> None:
    aa, rapid = _sweeps(panel)
    saved = json.loads(json.dumps([asdict(r) for r in panel.compare("m", (1.0, 2.0), aa, rapid, None, None, "abc", 100)]))
    panel.check_parts(saved, 6, 100)
    with pytest.raises(SystemExit, match=r"not of 6 images from image 0: pass their --n and --offset"):
        panel.check_parts(saved, 6, 0)
    with pytest.raises(SystemExit, match=r"not of 5 images from image 100"):
        panel.check_parts(saved, 5, 100)


def test_rows_saved_without_outcomes_say_so(panel: ModuleType) -> None:
    aa, rapid = _sweeps(panel)
    old = {k: v for k, v in asdict(panel.compare("m", (1.0, 2.0), aa, rapid, None)[0]).items() if k not in ("aa_survivors", "aa_fooled_by")}
    row = panel.rerun_row(old, rapid, 0, "abc")
    assert row.aa_only is None and row.rapid_only is None
    assert "not recorded" in panel.markdown([row])


def test_verdict_times_only_side_by_side_rows(panel: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    aa, rapid = _sweeps(panel)
    rows = panel.compare("m", (1.0, 2.0), aa, rapid, None)
    slow = panel.rerun_row(asdict(rows[0]), panel.Sweep(rapid.correct, rapid.fooled_by, [60, 35], [80.0, 30.0]), 0, "abc")
    assert panel.verdict([*rows, slow]) is True  # the reused row's 80 s is not a side-by-side time
    out = capsys.readouterr().out
    assert "worst 1/10.0; total 1/13.0; over the 2 rows timed side by side" in out
    assert panel.verdict([slow]) is True
    assert "wall time: not measured side by side" in capsys.readouterr().out
    assert panel.verdict([rows[0], panel.compare("m", (1.0,), aa, panel.Sweep([[False] * 6], [[None] * 6], [95], [1.0]), None)[0]]) is False


def test_rerun_refuses_other_weights(panel: ModuleType) -> None:
    aa, rapid = _sweeps(panel)
    saved = json.loads(json.dumps([asdict(r) for r in panel.compare("builtin/vgg", (1.0, 2.0), aa, rapid, None, None, "aaaa1111")]))
    panel.check_weights("builtin/vgg", "aaaa1111ffff", saved, {})
    with pytest.raises(SystemExit, match=r"builtin/vgg: its weights \(bbbb2222\) are not the saved rows' \(aaaa1111\)"):
        panel.check_weights("builtin/vgg", "bbbb2222", saved, {})
    old = [{k: v for k, v in r.items() if k != "weights"} for r in saved]
    with pytest.raises(SystemExit, match=r"not the saved rows' \(not recorded\)"):
        panel.check_weights("builtin/vgg", "bbbb2222", old, {})
    with pytest.raises(SystemExit, match=r"not the saved rows' \(aaaa\)"):
        panel.check_weights("builtin/vgg", "bbbb2222", old, {"builtin/vgg": "aaaa"})
    panel.check_weights("builtin/vgg", "aaaa1111", old, {"builtin/vgg": "aaaa"})


def test_join_adds_adjacent_parts_and_times_only_the_side_by_side_one(panel: ModuleType) -> None:
    """Images 0-5 (a reused autoattack side) and 6-11 (side by side) as one 12-image panel: images,
    disagreements and passes add up, numbered from the first image; seconds only from the timed part."""
    aa, rapid = _sweeps(panel)
    timed = panel.compare("m", (1.0, 2.0), aa, rapid, None, None, "abc", 6)
    reused = [
        panel.rerun_row(asdict(r), rapid, k, "abc") for k, r in enumerate(panel.compare("m", (1.0, 2.0), aa, rapid, None, None, "abc"))
    ]
    joined = panel.join([*timed, *reused])
    assert [(r.n, r.aa_correct, r.rapid_correct) for r in joined] == [(12, 6, 6), (12, 4, 4)]
    assert joined[0].aa_only == [(5, "apgd-t"), (11, "apgd-t")] and joined[1].rapid_only == [(5, "apgd-ce"), (11, "apgd-ce")]
    assert joined[0].aa_survivors == [0, 1, 4, 6, 7, 10] and len(joined[0].aa_fooled_by) == 12
    assert (joined[0].aa_passes, joined[0].rapid_passes) == (1800, 120)
    assert (joined[0].aa_seconds, joined[0].rapid_seconds, joined[0].timed_n, joined[0].reused) == (90.0, 6.0, 6, False)
    assert "90 / 6 (1/15.0) on 6 images" in panel.markdown(joined)


def test_join_refuses_gaps_and_other_weights(panel: ModuleType) -> None:
    aa, rapid = _sweeps(panel)
    first = panel.compare("m", (1.0,), aa, rapid, None, None, "abc")
    with pytest.raises(SystemExit, match=r"images 0-5 is followed by one from image 7; join only parts of adjacent images"):
        panel.join([*first, *panel.compare("m", (1.0,), aa, rapid, None, None, "abc", 7)])
    with pytest.raises(SystemExit, match=r"measured on other weights \(abc, xyz\)"):
        panel.join([*first, *panel.compare("m", (1.0,), aa, rapid, None, None, "xyz", 6)])
    assert panel.join(first) == first


def test_join_keeps_the_recorded_one_of_repeat_runs_and_refuses_ones_that_differ(panel: ModuleType) -> None:
    """A rerun of images 0-5 that records autoattack's per-image outcome replaces the saved row
    that did not; a rerun with other counts is not the same measurement and is refused."""
    aa, rapid = _sweeps(panel)
    recorded = panel.compare("m", (1.0,), aa, rapid, None, None, "abc")
    unrecorded = [replace(r, aa_only=None, rapid_only=None, aa_survivors=None, aa_fooled_by=None, reused=True) for r in recorded]
    later = panel.compare("m", (1.0,), aa, rapid, None, None, "abc", 6)
    for order in ([*unrecorded, *recorded, *later], [*recorded, *later, *unrecorded]):
        joined = panel.join(order)
        assert len(joined) == 1 and joined[0].n == 12 and joined[0].aa_only is not None and joined[0].timed_n is None
    other = [replace(r, rapid_correct=r.rapid_correct + 1) for r in unrecorded]
    with pytest.raises(SystemExit, match=r"m at 255/255 on images 0-5: two runs of the same images differ \(rapid_correct 3 vs 4\)"):
        panel.join([*recorded, *other])


def test_summarise_joins_saved_parts_and_times_torchattacks_on_the_timed_part(
    panel: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--summarise --join of two saved parts (images 0-5 reused, 6-11 side by side with torchattacks'
    MultiAttack timed): the joined table, and MultiAttack's seconds against the timed part's."""
    aa, rapid = _sweeps(panel)
    timed = panel.compare("m", (1.0, 2.0), aa, rapid, ([120.0, 30.0], [0.5, 0.0]), None, "abc", 6)
    reused = [
        panel.rerun_row(asdict(r), rapid, k, "abc") for k, r in enumerate(panel.compare("m", (1.0, 2.0), aa, rapid, None, None, "abc"))
    ]
    parts = [tmp_path / "a.json", tmp_path / "b.json"]
    parts[0].write_text(json.dumps([asdict(r) for r in reused]))
    parts[1].write_text(json.dumps([asdict(r) for r in timed]))
    assert panel.load_rows(parts) == [*reused, *timed]
    panel.summarise(parts, join_parts=True)
    out = capsys.readouterr().out
    assert out.startswith(f"2 panel rows from {parts[0]}, {parts[1]}:")
    assert "| **all** | | 10 images | 10 images | | | 2,600 / 190 (1/13.7) | 130 / 10 (1/13.0) |" in out
    assert "torchattacks MultiAttack, `m` at 255/255 on 6 images: 120 s, 20.0x rapid's and 1.33x autoattack's; accuracy 50.0%" in out
    assert "`m` at 510/255 on 6 images: 30 s, 7.5x rapid's and 0.75x autoattack's; accuracy 0.0%" in out
