"""Training tables from a rated-image dataset shaped like :func:`load_omi`'s Bunch.

The functions here read a Bunch with ``means`` (one row per image: ``image`` and one column per
attribute), ``ratings`` (long table, one row per individual rating: ``image``, ``attribute``,
``rating``), ``attributes`` and ``images``; any dataset in that shape works, not only OMI.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.utils import Bunch, check_random_state

from skpercept._dataframes import as_pandas_frame
from skpercept.datasets._derive import consensus_pairs, to_rating_classes


def subset_faces(data: Bunch, n_faces: int) -> Bunch:
    """A copy of ``data`` restricted to its first ``n_faces`` images (images, ratings, means).

    Examples
    --------
    >>> from skpercept.datasets import load_omi, subset_faces
    >>> small = subset_faces(load_omi(["smart"]), 10)
    >>> len(small.means), small.ratings["image"].nunique()
    (10, 10)
    """
    keep = data.means["image"].iloc[:n_faces]
    return Bunch(
        **{
            **data,
            "images": data.images[data.images["image"].isin(keep)].reset_index(drop=True),
            "ratings": data.ratings[data.ratings["image"].isin(keep)].reset_index(drop=True),
            "means": data.means.iloc[:n_faces].reset_index(drop=True),
        }
    )


def ratings_with_face_index(data: Bunch) -> pd.DataFrame:
    """``data.ratings`` with a ``face`` column: the row position of each rating's image in
    ``data.means`` (so rows of a feature matrix in ``means`` order can be looked up).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.utils import Bunch
    >>> from skpercept.datasets import ratings_with_face_index
    >>> data = Bunch(means=pd.DataFrame({"image": ["a", "b"], "smart": [10.0, 70.0]}),
    ...              ratings=pd.DataFrame({"image": ["b", "a", "b"], "attribute": ["smart"] * 3,
    ...                                    "rating": [60, 10, 80]}))
    >>> ratings_with_face_index(data)["face"].tolist()
    [1, 0, 1]
    """
    face = pd.Series(np.arange(len(data.means)), index=data.means["image"].to_numpy())
    return data.ratings.assign(face=face.loc[data.ratings["image"].to_numpy()].to_numpy())


def mean_standard_errors(data: Bunch) -> np.ndarray:
    """Standard error of each image's mean rating: sample std / sqrt(count).

    Returns an array of shape (n_images, n_attributes), rows in ``data.means`` order and
    columns in ``data.attributes`` order (NaN where an image has fewer than two ratings).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn.utils import Bunch
    >>> from skpercept.datasets import mean_standard_errors
    >>> data = Bunch(attributes=["smart"],
    ...              means=pd.DataFrame({"image": ["a", "b"], "smart": [20.0, 60.0]}),
    ...              ratings=pd.DataFrame({"image": ["a", "a", "b"], "attribute": ["smart"] * 3,
    ...                                    "rating": [10.0, 30.0, 60.0]}))
    >>> mean_standard_errors(data).round(2)  # b has a single rating: no spread
    array([[10.],
           [nan]])
    """
    grouped = data.ratings.groupby(["image", "attribute"])["rating"]
    se = (grouped.std() / np.sqrt(grouped.count())).unstack("attribute")
    return se.reindex(index=data.means["image"], columns=list(data.attributes)).to_numpy(np.float64)


def soft_consensus_pairs(
    means: pd.DataFrame,
    attributes: Sequence[str],
    *,
    n_pairs: int,
    standard_errors: np.ndarray | None = None,
    random_state: int | np.random.RandomState | None = None,
) -> pd.DataFrame:
    """Consensus pairs among the rows of ``means`` (ties dropped), with soft labels.

    The pairs are :func:`consensus_pairs` with ``ties='drop'`` and at most every distinct pair.
    When ``standard_errors`` (of the means, rows as ``means``) is given, a label is
    ``Φ((m_a − m_b) / sqrt(se_a² + se_b²))``: the probability that image a's true mean rating
    exceeds b's given the sampled raters, so near-ties teach "unsure" instead of a coin-flip
    hard label (a zero spread keeps the hard label). On OMI this leaves pair accuracy about
    unchanged and makes a ranker's pair probabilities better calibrated.

    Parameters
    ----------
    means : DataFrame
        ``image`` and one column per attribute, one row per image.
    attributes : sequence of str
    n_pairs : int
        Pairs wanted (capped at n·(n−1)/2).
    standard_errors : ndarray of shape (n_images, n_attributes) or None
        None gives hard 0/1 labels.
    random_state : int, RandomState or None

    Returns
    -------
    pairs : DataFrame
        ``image_a``, ``image_b`` and one label column per attribute (NaN where tied).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skpercept.datasets import soft_consensus_pairs
    >>> means = pd.DataFrame({"image": ["a", "b"], "smart": [60.0, 40.0]})
    >>> pairs = soft_consensus_pairs(means, ["smart"], n_pairs=1, standard_errors=np.array([[10.0], [10.0]]))
    >>> p_a = pairs["smart"].iloc[0] if pairs["image_a"].iloc[0] == "a" else 1 - pairs["smart"].iloc[0]
    >>> round(float(p_a), 3)  # Φ(20 / sqrt(200))
    0.921
    """
    attributes = list(attributes)
    means = as_pandas_frame(means, "means")  # polars / pyarrow: read by column name
    total = len(means) * (len(means) - 1) // 2
    pairs = consensus_pairs(
        means[["image"] + attributes],
        attributes,
        n_pairs=min(n_pairs, total),
        ties="drop",
        random_state=random_state,
    )
    if standard_errors is not None:
        se = np.asarray(standard_errors, dtype=np.float64)
        row = pd.Series(np.arange(len(means)), index=means["image"].to_numpy())
        a, b = row.loc[pairs["image_a"]].to_numpy(), row.loc[pairs["image_b"]].to_numpy()
        m = means[attributes].to_numpy(np.float64)
        spread = np.sqrt(se[a] ** 2 + se[b] ** 2)
        soft = norm.cdf((m[a] - m[b]) / np.where(spread > 0, spread, np.inf))
        soft = np.where(spread > 0, soft, (m[a] > m[b]).astype(float))
        pairs[attributes] = np.where(pairs[attributes].isna(), np.nan, soft)
    return pairs


def sample_rating_rows(
    ratings: pd.DataFrame,
    faces: np.ndarray,
    attributes: Sequence[str],
    *,
    per_face: int,
    random_state: int | np.random.RandomState | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Training rows of individual rating classes for the images at positions ``faces``.

    ``per_face`` ratings of each attribute are drawn per image (all of them if fewer) and
    binned to classes 1–4 by :func:`to_rating_classes`. Without rater ids the k-th drawn rating
    of every attribute shares row k of its image: each attribute's head still sees each drawn
    rating exactly once, and a row misses the attributes with fewer than k+1 ratings (NaN).

    Parameters
    ----------
    ratings : DataFrame
        Long ratings with a ``face`` column (see :func:`ratings_with_face_index`).
    faces : ndarray of int
        Image positions to draw from; row ``i`` of the output belongs to ``faces[rows[i]]``.
    attributes : sequence of str
    per_face : int
    random_state : int, RandomState or None

    Returns
    -------
    rows : ndarray of shape (n_rows,)
        Index into ``faces`` of each row's image.
    classes : ndarray of shape (n_rows, n_attributes)
        Rating classes, NaN where a row has no rating of that attribute.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skpercept.datasets import sample_rating_rows
    >>> ratings = pd.DataFrame({"face": [0, 0, 0, 1, 1], "attribute": ["smart"] * 5,
    ...                         "rating": [10.0, 40.0, 90.0, 60.0, 80.0]})
    >>> rows, classes = sample_rating_rows(ratings, np.array([0, 1]), ["smart"], per_face=2,
    ...                                    random_state=0)
    >>> rows.tolist()  # two drawn ratings per image
    [0, 0, 1, 1]
    >>> classes.shape, set(classes[:, 0]) <= {1.0, 2.0, 3.0, 4.0}
    ((4, 1), True)
    """
    rng = check_random_state(random_state)
    ratings = as_pandas_frame(ratings, "ratings")  # polars / pyarrow: read by column name
    wanted = pd.Series(np.arange(len(faces)), index=faces)
    rows = ratings[ratings["face"].isin(wanted.index)]
    blocks = {}
    for attribute in attributes:
        part = rows[rows["attribute"] == attribute]
        shuffled = part.iloc[rng.permutation(len(part))]
        shuffled = shuffled.assign(k=shuffled.groupby("face").cumcount())
        blocks[attribute] = shuffled[shuffled["k"] < per_face].set_index(["face", "k"])["rating"]
    table = pd.concat(blocks, axis=1).reindex(columns=list(attributes))
    return (
        wanted.loc[table.index.get_level_values(0)].to_numpy(),
        to_rating_classes(table.to_numpy(dtype=np.float64)),
    )
