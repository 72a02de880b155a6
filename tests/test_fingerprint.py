"""The split fingerprint a model card quotes: the same data under two parent folders give the same one."""

from __future__ import annotations

import shutil

from covidxray.data.fingerprint import relative_paths, same_split, split_fingerprint, table_fingerprint
from covidxray.data.manifest import build_manifest
from covidxray.data.split import SplitSettings, assign_splits
from covidxray.hashing import sha256_file


def _split_file(dataset, folder):
    """Copy dataset under folder, build its manifest and split there, as a user would; the split CSV."""
    root = folder / dataset.name
    shutil.copytree(dataset, root)
    table = assign_splits(build_manifest([root]), SplitSettings(seed=3))
    path = folder / "split.csv"
    table.to_csv(path, index=False)
    return path, table


def test_same_data_in_two_places_gives_the_same_fingerprint(mini_dark, mini_cohen, tmp_path):
    for dataset in (mini_dark, mini_cohen):
        here, table_here = _split_file(dataset, tmp_path / dataset.name / "a")
        there, table_there = _split_file(dataset, tmp_path / dataset.name / "b" / "deeper" / "still")
        assert sha256_file(here) != sha256_file(there)  # the paths differ, so the files do
        assert split_fingerprint(here) == split_fingerprint(there)
        assert len(split_fingerprint(here)) == 64
        changed = table_there.copy()
        changed.loc[0, "label"] = "pneumonia" if changed.loc[0, "label"] != "pneumonia" else "normal"
        assert table_fingerprint(changed) != split_fingerprint(there)  # a changed label is another split
        assert table_fingerprint(table_here) == split_fingerprint(here)


def test_paths_become_relative_to_their_common_folder():
    paths = ["/x/data/cohen/images/a.jpg", "/x/data/dark/No_findings/b.png", "relative/c.png"]
    assert relative_paths(paths) == ["cohen/images/a.jpg", "dark/No_findings/b.png", "relative/c.png"]


def test_records_match_by_fingerprint_or_by_the_older_file_sha256():
    assert same_split({"split_fingerprint": "f1", "split_sha256": "s1"}, "f1", "other")
    assert not same_split({"split_fingerprint": "f1", "split_sha256": "s1"}, "f2", "s1")
    assert same_split({"split_sha256": "s1"}, "f9", "s1")  # a checkpoint made before fingerprints
    assert not same_split({}, "f1", "")
