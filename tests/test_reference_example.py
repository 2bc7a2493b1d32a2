"""examples/reference_folder.py: the generated reference-schema folder, and the command's journey on it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skpercept.datasets import load_omi, load_perception_xlsx

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "reference_folder.py"
SCHEMA = ["attractive", "smart", "trustworthy"]


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("reference_folder", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def omi_dir() -> Path:
    # the OMI copy shipped inside the package (ratings/<attribute>.csv.gz): present in CI too
    return Path(load_omi(["smart"]).image_dir).parent


@pytest.fixture(scope="module")
def folder(example, omi_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("reference")
    summary = example.make_reference_folder(omi_dir, out, n_faces=14, n_people=8, n_unseen=2, seed=3)
    return out, summary


def test_folder_keeps_omi_license_and_attribution(folder, omi_dir):
    out, summary = folder
    assert (out / "LICENSE.txt").read_text() == (omi_dir / "LICENSE.txt").read_text()
    readme = (out / "README.md").read_text()
    for needed in (
        "CC BY-NC-SA 4.0",
        "Peterson",
        "10.1073/pnas.2115228119",
        "What was changed",
        "--one-means first",
    ):
        assert needed in readme
    assert len(list((out / "images").glob("*.jpg"))) == summary["faces"] == 14


def test_folder_loads_with_the_schema_and_splits_by_face_and_person(folder):
    out, _ = folder
    train = load_perception_xlsx(out / "train", one_means="first")  # errors='raise': no bad row
    test = load_perception_xlsx(out / "test", one_means="first")
    for data in (train, test):
        ratings = data.ratings[SCHEMA].to_numpy()
        assert set(np.unique(ratings[~np.isnan(ratings)])) <= {1.0, 2.0, 3.0, 4.0}
        assert data.comparisons[SCHEMA].notna().any(axis=1).all()
    faces = {split: set(d.ratings["image"]) | set(d.comparisons["image_a"]) | set(d.comparisons["image_b"])
             for split, d in (("train", train), ("test", test))}  # fmt: skip
    assert not faces["train"] & faces["test"]
    train_people = set(train.ratings["user_id"]) | set(train.comparisons["user_id"])
    test_people = set(test.ratings["user_id"]) | set(test.comparisons["user_id"])
    assert len(train_people) == 6 and len(test_people - train_people) == 2
    raw = pd.read_excel(out / "train" / "big_compare_label.xlsx")
    codes = raw[SCHEMA].to_numpy(dtype=float).ravel()
    assert set(codes[~np.isnan(codes)]) == {1.0, 2.0}  # coded 1/2 as in the reference system


def test_comparisons_agree_with_the_same_persons_ratings(folder):
    out, _ = folder
    data = load_perception_xlsx(out / "train", one_means="first")
    rated = data.ratings.set_index(["user_id", "image"])
    checked = 0
    for attribute in SCHEMA:
        c = data.comparisons.dropna(subset=[attribute])
        for user, a, b, first in zip(c["user_id"], c["image_a"], c["image_b"], c[attribute]):
            if (user, a) in rated.index and (user, b) in rated.index:
                ra, rb = rated.loc[(user, a), attribute], rated.loc[(user, b), attribute]
                if not np.isnan(ra) and not np.isnan(rb) and ra != rb:
                    checked += 1
                    assert (ra > rb) == (first == 1.0), (user, a, b, attribute)
    assert checked > 10


def test_generator_refuses_bad_settings(example, omi_dir, tmp_path):
    with pytest.raises(ValueError, match="schema"):
        example.make_reference_folder(omi_dir, tmp_path, attributes=["dominant"])
    with pytest.raises(ValueError, match="n_unseen"):
        example.make_reference_folder(omi_dir, tmp_path, n_people=3, n_unseen=3)
    with pytest.raises(FileNotFoundError, match="attribute_ratings.zip"):
        example.make_reference_folder(tmp_path, tmp_path / "out")


def test_command_journey_end_to_end(omi_dir, tmp_path):
    """The example as a user runs it: write the folder, `skpercept fit` it, `skpercept evaluate`."""
    out = tmp_path / "reference"
    command = [sys.executable, str(EXAMPLE), "--data", str(omi_dir), "--out", str(out), "--faces", "12",
               "--people", "8", "--unseen", "2", "--epochs", "2", "--tasks", "pairs"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    report = Path(summary["journey_pairs"]["report"])
    text = report.read_text()
    assert "## Per person" in text and "| unseen" in text and "| known" in text
    assert (report.parent / "per_person.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    people = pd.read_csv(report.parent / "per_person.csv")
    assert (
        len(people) == 8
        and people["known"].sum() == 6
        and (people.loc[~people["known"], "n_train"] == 0).all()
    )
    assert "Per person" in done.stdout  # printed by evaluate, not only written


def test_taste_moves_each_persons_impressions_with_traits_of_their_own(example, omi_dir):
    """--taste: a person's values move with a personal mix of other OMI traits (so people
    disagree systematically); 0 keeps the folder as before, draw for draw."""
    rng = np.random.default_rng(0)
    traits = example.read_face_traits(omi_dir, example.ATTRIBUTES)
    assert not set(example.ATTRIBUTES) & set(traits.columns)
    np.testing.assert_allclose(traits.std(), 1.0)
    people = example._people(6, example.ATTRIBUTES, rng, traits, taste=30.0)
    for person in people:
        assert set(person.taste) == set(person.attributes)
        for shift in person.taste.values():
            assert shift.std() == pytest.approx(30.0)
    # two people's shifts of one attribute are different mixtures of the traits
    shifts = [p.taste["smart"] for p in people if "smart" in p.taste]
    if len(shifts) > 1:
        assert abs(np.corrcoef(shifts[0], shifts[1])[0, 1]) < 0.99
    plain = example._people(6, example.ATTRIBUTES, np.random.default_rng(0))
    assert all(not p.taste for p in plain)
