"""The embedded One Million Impressions (OMI) demo dataset."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

#: Folder of the shipped OMI demo data: ``attribute_means.csv.gz``, ``ratings/`` (one
#: ``<attribute>.csv.gz`` of individual ratings per attribute), ``images/`` and the licence.
OMI_DIR = Path(__file__).resolve().parent / "data" / "omi"

_DEFAULT_ATTRIBUTES = ("trustworthy", "attractive", "smart")


def omi_attributes() -> list[str]:
    """Names of the attributes whose individual ratings ship with skpercept (sorted).

    Returns
    -------
    attributes : list of str
        Valid values for ``load_omi(attributes=...)``.

    Examples
    --------
    >>> from skpercept.datasets import omi_attributes
    >>> {"trustworthy", "attractive", "smart"} <= set(omi_attributes())
    True
    """
    return sorted(p.name[: -len(".csv.gz")] for p in (OMI_DIR / "ratings").glob("*.csv.gz"))


def _check_attributes(attributes: str | Iterable[str] | None) -> list[str]:
    available = omi_attributes()
    if attributes is None or (isinstance(attributes, str) and attributes == "all"):
        return available
    if isinstance(attributes, str):
        attributes = [attributes]
    attributes = list(attributes)
    if not attributes:
        raise ValueError("attributes must name at least one attribute.")
    unknown = [a for a in attributes if a not in available]
    if unknown:
        raise ValueError(f"Unknown OMI attribute(s) {unknown}; available: {', '.join(available)}.")
    if len(set(attributes)) != len(attributes):
        raise ValueError(f"attributes contains duplicates: {attributes}.")
    return attributes


def load_omi(
    attributes: str | Iterable[str] | None = _DEFAULT_ATTRIBUTES,
    *,
    as_frame: bool = True,
    include_repeats: bool = False,
) -> Bunch:
    """Load the embedded One Million Impressions faces and their human ratings.

    1,004 synthetic faces (256×256 JPEG) rated on a 0–100 scale by many people per face
    (Peterson et al., 2022, PNAS 119(17) e2115228119; CC BY-NC-SA 4.0, see ``license``). The
    data ship inside the package: nothing is downloaded.

    Parameters
    ----------
    attributes : str, sequence of str or None, default=('trustworthy', 'attractive', 'smart')
        Which attributes' ratings to load. ``None`` or ``'all'`` loads all 34; see
        :func:`omi_attributes`. An unknown name raises a ``ValueError`` listing the valid ones.
    as_frame : bool, default=True
        If True, tables are pandas DataFrames. If False they are NumPy arrays, as in
        scikit-learn's loaders: ``images`` a 1-D array of paths, ``ratings`` a record array
        (fields as the DataFrame's columns), ``means`` a float array of shape
        (n_faces, n_attributes) aligned with ``images``.
    include_repeats : bool, default=False
        Keep the ``rating_type == 'repeat'`` rows (a rater seeing the same face a second time).
        They are excluded by default because they are not independent judgments; the noise
        ceilings quoted for OMI exclude them too. ``fill-in`` ratings are always kept.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the fields below (arrays instead of DataFrames with
        ``as_frame=False``).

        images : DataFrame
            Columns ``stimulus`` (int id) and ``image`` (absolute path).
        ratings : DataFrame
            Long: one row per individual rating, columns ``image``, ``stimulus``,
            ``attribute``, ``rating`` (int 0–100), ``rating_type``.
        means : DataFrame
            Wide: one row per face, ``image`` and one column per attribute, the mean of the
            returned ratings (so it follows ``include_repeats``).
        attributes : list of str
            The loaded attribute names.
        image_dir : str
            Absolute path of the image folder.
        DESCR : str
            The dataset's README (attribution and what was changed).
        license : str
            The dataset's license text.

    Examples
    --------
    >>> from skpercept.datasets import load_omi
    >>> omi = load_omi(["trustworthy"])
    >>> omi.images.shape, list(omi.means.columns)
    ((1004, 2), ['image', 'trustworthy'])
    >>> bool(omi.ratings.rating.between(0, 100).all())
    True
    """
    attributes = _check_attributes(attributes)
    names = sorted(
        (int(p.stem) for p in (OMI_DIR / "images").glob("*.jpg")),
    )
    images = pd.DataFrame(
        {
            "stimulus": np.asarray(names, dtype=np.int64),
            "image": [str(OMI_DIR / "images" / f"{n}.jpg") for n in names],
        }
    )
    path_of = dict(zip(images["stimulus"], images["image"], strict=True))

    parts = []
    for attribute in attributes:
        part = pd.read_csv(
            OMI_DIR / "ratings" / f"{attribute}.csv.gz",
            dtype={"stimulus": np.int64, "rating": np.int64, "rating_type": str},
        )
        if not include_repeats:
            part = part[part["rating_type"] != "repeat"]
        part.insert(1, "attribute", attribute)
        parts.append(part)
    ratings = pd.concat(parts, ignore_index=True)
    ratings.insert(0, "image", ratings["stimulus"].map(path_of))
    if ratings["image"].isna().any():
        orphans = sorted(ratings.loc[ratings["image"].isna(), "stimulus"].unique())[:10]
        raise RuntimeError(
            f"The embedded OMI data are damaged: ratings of stimuli {orphans} have no image in "
            f"{OMI_DIR / 'images'}. Reinstall skpercept."
        )
    ratings = ratings[["image", "stimulus", "attribute", "rating", "rating_type"]]

    means = (
        ratings.groupby(["stimulus", "attribute"], sort=False)["rating"]
        .mean()
        .unstack("attribute")
        .reindex(index=images["stimulus"], columns=attributes)
    )
    means.columns.name = None
    means.insert(0, "image", images["image"].to_numpy())
    means = means.reset_index(drop=True)

    bunch = Bunch(
        images=images,
        ratings=ratings,
        means=means,
        attributes=attributes,
        image_dir=str(OMI_DIR / "images"),
        DESCR=(OMI_DIR / "README.md").read_text(encoding="utf-8"),
        license=(OMI_DIR / "LICENSE.txt").read_text(encoding="utf-8"),
    )
    if not as_frame:
        bunch.images = images["image"].to_numpy(dtype=object)
        bunch.ratings = ratings.to_records(index=False)
        bunch.means = means[attributes].to_numpy(dtype=np.float64)
    return bunch
