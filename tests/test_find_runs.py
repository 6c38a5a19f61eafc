"""One folder walk (clipxai.runs.find): load_run, `clipxai runs` and the viewer list the same runs."""

import json
import os

import pytest
from helpers_runs import write_run

from clipxai.cli.commands import main
from clipxai.runs.find import MAX_DEPTH, find_runs
from clipxai.runs.load import load_run


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """Seeds grouped in a folder, a sweep (sweep/runs/<row>), a sweep of sweeps, a loose run, and what
    must not be listed: a hidden folder, a run inside a run's own subfolder, links out of the tree and
    a link back up it; a link to a run of the tree names it a second time."""
    base = tmp_path_factory.mktemp("walk")
    root, outside = base / "runs", base / "outside"
    expected = []
    for s in range(3):
        expected.append(write_run(root / "heart", f"heart-seed{s}", n=6, seed=s))
    for row in ("a", "b"):
        expected.append(write_run(root / "sweep" / "runs", f"row-{row}", n=6))
    expected.append(write_run(root / "grid" / "inner" / "runs", "deep", n=6))   # 4 folders down
    expected.append(write_run(root, "loose", n=6))
    write_run(root / ".trash", "hidden", n=6)
    write_run(root / "loose" / "analysis", "nested", n=6)      # a run's own subfolders are not searched
    write_run(root / "grid" / "inner" / "runs" / "x", "too-deep", n=6)   # 5 folders down
    write_run(outside, "far", n=6)
    (root / "away").symlink_to(outside, target_is_directory=True)       # leaves the root: not followed
    (root / "again").symlink_to(root / "heart", target_is_directory=True)   # inside: listed once, by its path
    (root / "sweep" / "up").symlink_to(root, target_is_directory=True)  # a loop
    return root, sorted(expected)


def _listed_by_runs_command(folder, capsys):
    assert main(["runs", str(folder), "--json"]) == 0
    return sorted(r["path"] for r in json.loads(capsys.readouterr().out))


def test_the_walk_finds_grouped_swept_and_loose_runs_and_nothing_else(tree):
    root, expected = tree
    assert MAX_DEPTH == 4
    found = find_runs(root)
    assert found == sorted(found) and sorted(found) == expected
    assert not any(".trash" in p.parts or "away" in p.parts or "again" in p.parts or "up" in p.parts for p in found)
    assert find_runs(root / "heart" / "heart-seed0") == [root / "heart" / "heart-seed0"]   # a run is itself
    assert find_runs(root, max_depth=1) == [root / "loose"]


def test_load_run_and_clipxai_runs_list_the_same_runs(tree, capsys):
    root, expected = tree
    loaded = load_run(root)
    assert sorted(r.path for r in loaded) == expected
    assert _listed_by_runs_command(root, capsys) == sorted(str(p) for p in expected)
    sweep = root / "sweep"
    assert [r.path.name for r in load_run(sweep)] == ["row-a", "row-b"]   # sweep/runs/<row>: two folders down
    assert _listed_by_runs_command(sweep, capsys) == sorted(str(r.path) for r in load_run(sweep))


def test_the_viewer_lists_the_same_runs(tree):
    pytest.importorskip("starlette")
    from clipxai.view.catalog import Catalog
    root, expected = tree
    rows = Catalog(root.resolve()).rows()
    assert sorted(r["id"] for r in rows) == sorted(p.relative_to(root).as_posix() for p in expected)


def test_a_link_inside_the_root_reaches_what_only_it_leads_to(tmp_path):
    root = tmp_path / "runs"
    stored = write_run(root / "store" / "a" / "b" / "c", "kept", n=6)   # beyond MAX_DEPTH from the root
    (root / "shortcut").symlink_to(stored.parent, target_is_directory=True)
    assert find_runs(root) == [root / "shortcut" / "kept"]
    assert os.path.realpath(find_runs(root)[0]) == os.path.realpath(stored)
