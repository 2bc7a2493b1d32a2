"""A reference-schema Excel folder from OMI's ratings, fitted and evaluated
========================================================================

A reference-schema Excel folder made from OMI's real ratings, then fitted and evaluated.

The reference labelling system keeps its judgments in four Excel tables (see
``skpercept.datasets.load_perception_xlsx``): ratings 1–4 (``big_label.xlsx``), comparisons coded
1/2 (``big_compare_label.xlsx``), images (``big_data.xlsx``) and pairs (``big_compares.xlsx``).
This script writes such a folder from the One Million Impressions faces (Peterson et al., 2022,
PNAS; CC BY-NC-SA 4.0) and runs the command-line journey on it, for comparisons and for
ratings (``--tasks``)::

    skpercept fit FOLDER/train --one-means first --task pairs --model pairs.joblib --epochs 30
    skpercept evaluate FOLDER/test --one-means first --model pairs.joblib --output report-pairs

The command reads the folder's tables itself, finds the attribute columns and the person column
(``user_id``), fits one model with a personal part per known person, and ``evaluate`` prints and
writes per-person accuracy (known vs unseen people, against each person's number of training
judgments). The last line is one JSON object: table sizes and each step's seconds.

Data. OMI has real individual 0–100 ratings but no rater ids, so the *people* are made up:
each person sees some faces and, for each face and attribute they judge, takes one of that
face's real ratings, drawn at a personal quantile (some people are lenient, some harsh). That
value becomes a 1–4 rating (four equal bins of the 0–100 scale) and decides the person's
comparisons of two faces (the higher value is chosen), so a person's ratings and comparisons
agree. Judgments are split image-disjointly: ``train/`` holds the known people's judgments of
the training faces, ``test/`` their judgments of the held-out faces plus every judgment of a few
unseen people. Both point at one ``images/`` folder with OMI's license and a note of what was
changed. Usage::

    python examples/reference_folder.py                       # ../shared/data/omi, 60 faces
    python examples/reference_folder.py --data DIR --out reference --faces 40 --people 24
    python examples/reference_folder.py --tasks               # only write (and load) the folder

``--data`` is an OMI copy with ``images/{stimulus}.jpg`` and either ``attribute_ratings.zip``
(the source layout) or ``ratings/{attribute}.csv.gz`` (the copy inside skpercept,
``Path(load_omi().image_dir).parent``). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from skpercept.datasets import load_perception_xlsx, to_rating_classes

ATTRIBUTES = ("attractive", "smart", "trustworthy")  # the reference schema's columns
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "omi"  # ../shared/data/omi
LANGS = ("en", "fa")
ONE_MEANS = "first"  # how this folder codes comparisons: 1 = the pair's first image (im1) was chosen

FOLDER_README = """# A reference-schema folder made from One Million Impressions (OMI)

Made by `examples/reference_folder.py` of skpercept (seed {seed}) for trying the `skpercept`
command on the reference labelling system's Excel schema.

## Source and license
The faces and ratings come from the One Million Impressions dataset: Peterson, J. C.,
Uddenberg, S., Griffiths, T., Todorov, A., & Suchow, J. W. (2022). Deep models of superficial
face judgments. PNAS 119(17) e2115228119, doi:10.1073/pnas.2115228119
(github.com/jcpeterson/omi). License: CC BY-NC-SA 4.0, Creative Commons
Attribution-NonCommercial-ShareAlike 4.0 International (`LICENSE.txt`,
https://creativecommons.org/licenses/by-nc-sa/4.0/): this folder is a derived work under the
same license, for non-commercial use only.

## What was changed
- `images/`: {n_faces} of the 1,004 faces, resized from the original 1024×1024 to 256×256
  (JPEG, quality 90).
- The people are invented: OMI has no rater ids. Each person's judgment of a face on an
  attribute is one of that face's real 0–100 ratings (repeat ratings excluded), drawn at a
  per-person quantile (lenient or harsh raters), turned into a 1–4 rating by four equal bins
  (0–25, 25–50, 50–75, 75–100). A comparison of two faces picks the face with the higher such
  value (ties by a coin flip), so each person's ratings and comparisons agree.{taste_note}
- `_id`s, `lang` and `insert_time` are invented.

## Tables (in `train/` and `test/`)
- `big_data.xlsx` (images): `_id, name, data_image_part, update_date`; paths are relative to
  the table's folder (`../images/N.jpg`), `name` is OMI's stimulus number.
- `big_compares.xlsx` (pairs): `_id, im1, im2, db1, _id1, db2, _id2, name`.
- `big_label.xlsx` (ratings 1–4): `_id, user_id, item_id, attractive, smart, trustworthy, lang,
  insert_time`; `item_id` is an image `_id`; an attribute a person did not judge is empty.
- `big_compare_label.xlsx` (comparisons): the same columns with **1 = the first image (`im1`)
  was chosen, 2 = the second (`im2`)**: read it with `--one-means first`.

`train/` holds the known people's judgments of {n_train_faces} faces; `test/` their judgments of
the other {n_test_faces} faces plus all judgments of {n_unseen} people who are not in `train/`
(unseen people). No face is in both.
"""


# -- OMI --------------------------------------------------------------------------------------
def read_omi_ratings(data_dir: Path, attributes: Sequence[str]) -> pd.DataFrame:
    """Individual ratings ``stimulus, attribute, rating`` (0–100), repeat ratings excluded."""
    data_dir = Path(data_dir)
    packed = data_dir / "attribute_ratings.zip"
    if packed.is_file():
        frame = pd.read_csv(packed, usecols=["rating", "attribute", "rating_type", "stimulus"])
        frame = frame[frame["attribute"].isin(attributes)]
    else:
        parts = []
        for attribute in attributes:
            path = data_dir / "ratings" / f"{attribute}.csv.gz"
            if not path.is_file():
                raise FileNotFoundError(
                    f"{data_dir} has neither attribute_ratings.zip nor ratings/{attribute}.csv.gz: "
                    "pass --data an OMI copy (e.g. ../shared/data/omi)."
                )
            parts.append(pd.read_csv(path).assign(attribute=attribute))
        frame = pd.concat(parts, ignore_index=True)
    frame = frame[frame["rating_type"] != "repeat"]
    return frame[["stimulus", "attribute", "rating"]].reset_index(drop=True)


# -- judgments ------------------------------------------------------------------------------
def _object_ids(rng: np.random.Generator, n: int) -> list[str]:
    """Ids shaped like the reference system's MongoDB ObjectIds (24 hex digits)."""
    return [bytes(row).hex() for row in rng.integers(0, 256, size=(n, 12), dtype=np.uint8)]


@dataclass
class _Person:
    """One invented rater: which attributes they judge, how lenient they are, their impressions."""

    user_id: str
    attributes: list[str]
    leniency: float  # shift of the quantile (in standard-normal units) their ratings are drawn at
    lang: str
    rng: np.random.Generator
    taste: dict[str, pd.Series] = field(default_factory=dict)  # attribute -> shift per face (0–100 units)
    values: dict[tuple[int, str], float] = field(default_factory=dict)

    def value(self, face: int, attribute: str, pool: dict) -> float:
        """The person's 0–100 impression: one real rating of the face, at a personal quantile,
        moved by the person's taste (``--taste``), clipped to 0–100.

        Memoised, so the same face gets the same value in the person's rating and comparisons.
        """
        key = (face, attribute)
        if key not in self.values:
            ratings = pool[key]
            quantile = norm.cdf(self.rng.normal() + self.leniency)
            value = float(ratings[min(int(quantile * len(ratings)), len(ratings) - 1)])
            if attribute in self.taste:
                value = float(np.clip(value + self.taste[attribute].loc[face], 0.0, 100.0))
            self.values[key] = value
        return self.values[key]


def _judge(person: _Person, faces: np.ndarray, n_ratings: int, n_pairs: int, pool: dict) -> tuple[list, list]:
    """A person's rating rows (face, {attribute: 1–4}) and comparison rows (a, b, {attribute: 1|2})."""
    rng = person.rng
    ratings = []
    for face in rng.choice(faces, size=min(n_ratings, len(faces)), replace=False):
        values = {a: person.value(int(face), a, pool) for a in person.attributes}
        ratings.append((int(face), {a: int(to_rating_classes([v])[0]) for a, v in values.items()}))
    comparisons = []
    for _ in range(n_pairs):
        a, b = (int(f) for f in rng.choice(faces, size=2, replace=False))
        codes = {}
        for attribute in person.attributes:
            va, vb = person.value(a, attribute, pool), person.value(b, attribute, pool)
            first = va > vb if va != vb else bool(rng.random() < 0.5)
            codes[attribute] = 1 if first else 2  # ONE_MEANS = 'first'
        comparisons.append((a, b, codes))
    return ratings, comparisons


def read_face_traits(data_dir: Path, attributes: Sequence[str]) -> pd.DataFrame:
    """OMI's per-face means of the attributes people do not judge, standardized (faces × traits)."""
    for name in ("attribute_means.csv", "attribute_means.csv.gz"):
        path = Path(data_dir) / name
        if path.is_file():
            means = pd.read_csv(path).set_index("stimulus").drop(columns=list(attributes), errors="ignore")
            return (means - means.mean()) / means.std()
    raise FileNotFoundError(
        f"{data_dir} has no attribute_means.csv(.gz): --taste needs OMI's per-face means."
    )


def _people(
    n_people: int,
    attributes: Sequence[str],
    rng: np.random.Generator,
    traits: pd.DataFrame | None = None,
    taste: float = 0.0,
) -> list[_Person]:
    """Invented raters. With ``taste > 0`` each person's impression of an attribute moves with a
    personal mixture of other traits of the face (e.g. one finds older, happier faces more
    trustworthy): ``taste`` points of the 0–100 scale per standard deviation of that mixture."""
    people = []
    for k in range(n_people):
        # "an attribute or two" per person, as labelling sessions split the work
        judged = sorted(
            rng.choice(attributes, size=min(len(attributes), int(rng.integers(1, 3))), replace=False)
        )
        lang = LANGS[int(rng.random() < 0.3)]
        person = _Person(f"user{k + 1:03d}", list(judged), float(rng.normal(0, 0.5)), lang, rng)
        if taste > 0 and traits is not None:
            for attribute in judged:
                # a few traits, mixed with random signs, scaled to one standard deviation
                picked = rng.choice(traits.columns, size=3, replace=False)
                mix = traits[picked] @ rng.normal(size=3)
                person.taste[attribute] = taste * mix / mix.std()
        people.append(person)
    return people


# -- tables ---------------------------------------------------------------------------------
def _tables(images, pair_ids, ratings, comparisons, rng, start) -> dict[str, pd.DataFrame]:
    """The four tables of one split, rows as the reference system writes them."""
    image_table = images.reset_index(drop=True)
    id_of = dict(zip(image_table["name"], image_table["_id"]))
    used_pairs = sorted({(a, b) for _, a, b, _ in comparisons})
    pair_table = pd.DataFrame(
        {
            "_id": [pair_ids[p] for p in used_pairs],
            "im1": [a for a, _ in used_pairs],
            "im2": [b for _, b in used_pairs],
            "db1": "omi",
            "_id1": [id_of[a] for a, _ in used_pairs],
            "db2": "omi",
            "_id2": [id_of[b] for _, b in used_pairs],
            "name": [f"{a}_{b}" for a, b in used_pairs],
        }
    )

    def label_table(rows, item_ids) -> pd.DataFrame:
        table = pd.DataFrame(
            {
                "_id": _object_ids(rng, len(rows)),
                "user_id": [r[0].user_id for r in rows],
                "item_id": item_ids,
                **{a: [r[-1].get(a, np.nan) for r in rows] for a in ATTRIBUTES},
                "lang": [r[0].lang for r in rows],
            }
        )
        # one labelling session per person: judgments a few seconds apart
        table["insert_time"] = start + pd.to_timedelta(np.arange(len(rows)) * 7, unit="s")
        return table

    return {
        "big_data.xlsx": image_table,
        "big_compares.xlsx": pair_table,
        "big_label.xlsx": label_table(ratings, [id_of[face] for _, face, _ in ratings]),
        "big_compare_label.xlsx": label_table(comparisons, [pair_ids[(a, b)] for _, a, b, _ in comparisons]),
    }


def make_reference_folder(
    data_dir: str | Path,
    out: str | Path,
    *,
    n_faces: int = 60,
    n_people: int = 30,
    n_unseen: int = 5,
    test_share: float = 0.25,
    attributes: Sequence[str] = ATTRIBUTES,
    taste: float = 0.0,
    seed: int = 0,
) -> dict:
    """Write ``out/{images, train, test}`` and the folder's README/LICENSE; return a summary.

    Parameters
    ----------
    data_dir : path
        OMI copy (``images/`` and ``attribute_ratings.zip`` or ``ratings/*.csv.gz``).
    out : path
        Created; an existing folder's tables and images are replaced.
    n_faces, n_people, n_unseen : int
        Faces used; people in all; of them, people who appear only in ``test/``.
    test_share : float
        Share of the faces held out for ``test/``.
    attributes : sequence of str
        Attributes people judge (each person one or two of them), among the schema's three.
    taste : float
        How far people's tastes differ: each person's impressions move by ``taste`` points
        (0–100 scale) per standard deviation of a personal mixture of three of the face's other
        OMI traits (0: everyone shares one taste and differs only in leniency and noise).
    seed : int

    Returns
    -------
    summary : dict
        Row counts of each table, people, faces, the ``one_means`` coding.
    """
    unknown = sorted(set(attributes) - set(ATTRIBUTES))
    if unknown:
        raise ValueError(f"attributes must be among the schema's {ATTRIBUTES}; got {unknown}.")
    if not 0 <= n_unseen < n_people:
        raise ValueError(f"n_unseen must be in [0, n_people); got {n_unseen} of {n_people}.")
    data_dir, out = Path(data_dir), Path(out)
    rng = np.random.default_rng(seed)
    ratings = read_omi_ratings(data_dir, attributes)
    if not (data_dir / "LICENSE.txt").is_file():
        raise FileNotFoundError(
            f"{data_dir / 'LICENSE.txt'} is missing: OMI's license must travel with its data."
        )
    per_face = ratings.groupby(["stimulus", "attribute"])["rating"].apply(lambda r: np.sort(r.to_numpy()))
    rated_by_all = per_face.unstack("attribute").dropna().index.to_numpy()
    on_disk = np.array([s for s in rated_by_all if (data_dir / "images" / f"{s}.jpg").is_file()])
    if len(on_disk) < max(n_faces, 8):
        raise ValueError(f"{data_dir} has {len(on_disk)} rated faces with images; {max(n_faces, 8)} needed.")
    faces = np.sort(rng.choice(on_disk, size=n_faces, replace=False))
    n_test = max(4, int(round(test_share * n_faces)))
    test_faces = np.sort(rng.choice(faces, size=n_test, replace=False))
    train_faces = np.setdiff1d(faces, test_faces)
    pool = per_face.to_dict()

    (out / "images").mkdir(parents=True, exist_ok=True)
    for face in faces:
        shutil.copyfile(data_dir / "images" / f"{face}.jpg", out / "images" / f"{face}.jpg")
    shutil.copyfile(data_dir / "LICENSE.txt", out / "LICENSE.txt")
    images = pd.DataFrame(
        {
            "_id": _object_ids(rng, n_faces),
            "name": faces,
            "data_image_part": [f"../images/{face}.jpg" for face in faces],
            "update_date": pd.Timestamp("2024-03-01"),
        }
    )
    pair_ids: dict[tuple[int, int], str] = {}
    splits: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    traits = read_face_traits(data_dir, attributes) if taste > 0 else None
    people = _people(n_people, attributes, rng, traits, taste)
    for k, person in enumerate(people):
        unseen = k >= n_people - n_unseen
        # people label very different amounts: a handful of judgments for some, dozens for others
        size = int(rng.integers(3, 3 + len(train_faces)))
        for split, split_faces, scale in (("train", train_faces, 1.0), ("test", test_faces, 0.5)):
            if split == "train" and unseen:
                continue
            n_rate = max(2, int(size * scale * len(split_faces) / len(train_faces)))
            rated, compared = _judge(person, split_faces, n_rate, max(2, int(size * scale)), pool)
            splits[split][0].extend((person, face, codes) for face, codes in rated)
            splits[split][1].extend((person, a, b, codes) for a, b, codes in compared)
            for a, b, _ in compared:
                pair_ids.setdefault((a, b), _object_ids(rng, 1)[0])
    summary = {"faces": int(n_faces), "people": n_people, "unseen_people": n_unseen, "one_means": ONE_MEANS}
    for split, split_faces in (("train", train_faces), ("test", test_faces)):
        folder = out / split
        folder.mkdir(exist_ok=True)
        start = pd.Timestamp("2024-03-04 09:00") + pd.Timedelta(days=0 if split == "train" else 14)
        keep = images[images["name"].isin(split_faces)]
        for name, table in _tables(keep, pair_ids, *splits[split], rng, start).items():
            table.to_excel(folder / name, index=False, engine="openpyxl")
            summary[f"{split}/{name}"] = len(table)
    (out / "README.md").write_text(
        FOLDER_README.format(
            seed=seed,
            n_faces=n_faces,
            n_train_faces=len(train_faces),
            n_test_faces=len(test_faces),
            n_unseen=n_unseen,
            taste_note=(
                f"\n- Tastes differ (taste {taste:g}): each person's value of an attribute is moved by "
                f"{taste:g} points per standard deviation of a personal mixture of three other OMI "
                "traits of the face (`attribute_means`), then clipped to 0–100."
                if taste > 0
                else ""
            ),
        ),
        encoding="utf-8",
    )
    return summary


# -- the journey ----------------------------------------------------------------------------
def run_journey(folder: Path, work: Path, *, task: str = "pairs", epochs: int = 30) -> dict:
    """``skpercept fit`` on ``folder/train`` and ``skpercept evaluate`` on ``folder/test``.

    The command finds the attribute columns and the person column (``user_id``) itself, and
    trains one model for all attributes with a personal part per known person; ``evaluate``
    writes ``work/report-<task>/report.md`` with the per-person section.
    """
    model = work / f"{task}.joblib"
    report = work / f"report-{task}"
    common = ["--one-means", ONE_MEANS, "--no-progress", "--cache-dir", str(work / "cache")]
    steps = {
        "fit": ["fit", str(folder / "train"), "--task", task, "--model", str(model), "--epochs", str(epochs)],
        "evaluate": ["evaluate", str(folder / "test"), "--model", str(model), "--output", str(report)],
    }
    seconds = {}
    for name, args in steps.items():
        command = [sys.executable, "-m", "skpercept.cli", *args, *common]
        print("$ skpercept", " ".join(args + common), flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        seconds[name] = round(time.perf_counter() - start, 1)
        print(done.stdout + done.stderr, flush=True)
        if done.returncode != 0:
            raise RuntimeError(f"skpercept {name} failed with exit code {done.returncode}.")
    return {"report": str(report / "report.md"), "seconds": seconds}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="OMI copy (default ../shared/data/omi)")
    p.add_argument("--out", type=Path, default=Path("reference_folder"), help="folder to write")
    p.add_argument("--faces", type=int, default=60)
    p.add_argument("--people", type=int, default=30)
    p.add_argument("--unseen", type=int, default=5, help="people who appear only in test/")
    p.add_argument("--attributes", nargs="+", default=list(ATTRIBUTES), help="attributes people judge")
    p.add_argument("--test-share", type=float, default=0.25, help="share of the faces held out for test/")
    p.add_argument(
        "--taste",
        type=float,
        default=0.0,
        help="how far people's tastes differ (points of the 0–100 scale; 0: one shared taste)",
    )
    p.add_argument("--epochs", type=int, default=30, help="most training epochs of each model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--tasks",
        nargs="*",
        default=["pairs", "rating"],
        choices=["pairs", "rating"],
        help="models to fit and evaluate with the skpercept command (none: only write the folder)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    summary = make_reference_folder(
        args.data,
        args.out,
        n_faces=args.faces,
        n_people=args.people,
        n_unseen=args.unseen,
        attributes=args.attributes,
        test_share=args.test_share,
        taste=args.taste,
        seed=args.seed,
    )
    for split in ("train", "test"):
        data = load_perception_xlsx(args.out / split, one_means=ONE_MEANS, attributes=list(ATTRIBUTES))
        print(
            f"{split}: {len(data.ratings)} ratings, {len(data.comparisons)} comparisons by "
            f"{data.comparisons['user_id'].nunique()} people"
        )
    for task in args.tasks:
        summary[f"journey_{task}"] = run_journey(args.out, args.out / "run", task=task, epochs=args.epochs)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
