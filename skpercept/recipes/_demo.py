"""``skpercept demo``: the main job on the shipped OMI faces, offline.

:func:`run_demo` embeds the faces (registered backbones, cached), cross-validates a ridge
baseline, a :class:`~skpercept.heads.PairwiseRanker` and a
:class:`~skpercept.heads.RatingClassifier` (both ensembles of :data:`DEMO_ENSEMBLE` nets) on
image-disjoint folds (:func:`~skpercept.recipes.cross_validate`) beside the raters' noise
ceiling, prints the table, fits the final pipelines on all faces and writes them with a report.
``benchmarks/omi.py`` runs the same presets and protocol on more feature sets and heads.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.utils import Bunch

from skpercept._io import replace_together
from skpercept._utils import PICKLE_FORMAT, torch_threads
from skpercept.datasets import (
    load_omi,
    mean_standard_errors,
    ratings_with_face_index,
    sample_rating_rows,
    soft_consensus_pairs,
    subset_faces,
)
from skpercept.embed import DlibFaceEmbedder, dlib_available, make_backbones
from skpercept.heads import RATING_LEVELS, HeadSettings, make_head
from skpercept.persistence import save_model
from skpercept.preprocessing import PairFeatures
from skpercept.recipes._evaluation import MODEL_LABELS, cross_validate, noise_ceiling_table, results_table
from skpercept.recipes._features import embed_blocks, make_featurizer
from skpercept.report import markdown_table, reliability_curve, write_report

#: The OMI attributes :func:`run_demo` models unless told otherwise.
DEFAULT_ATTRIBUTES = ("trustworthy", "attractive", "smart")
#: Heads the demo cross-validates (the first is the baseline).
DEMO_MODELS = ("ridge", "ranker", "classifier")
#: Faces of a ``quick`` run.
QUICK_FACES = 40
#: Members of the demo's MLP heads (``HeadSettings.n_ensemble``): five nets, each stopped early
#: on its own held-out faces, order new faces better than one and give calibrated probabilities.
DEMO_ENSEMBLE = 5
PAIR_COLUMNS = ["image_a", "image_b"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_demo(
    output: str | Path = "skpercept-demo",
    *,
    attributes: Sequence[str] = DEFAULT_ATTRIBUTES,
    folds: int = 5,
    seed: int = 0,
    device: str = "auto",
    dlib: bool = True,
    flip: bool = True,
    face_upsample: int = 0,
    quick: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = _stderr,
) -> Bunch:
    """Cross-validate and fit on the shipped OMI faces; print the table, save models and a report.

    Parameters
    ----------
    output : str or Path, default='skpercept-demo'
        Folder for ``rating_model.joblib``, ``ranker_model.joblib`` and the report.
    attributes : sequence of str, default=('trustworthy', 'attractive', 'smart')
        OMI attributes (see :func:`skpercept.datasets.omi_attributes`).
    folds : int, default=5
        Image-disjoint folds.
    seed : int, default=0
    device : str, default='auto'
    dlib : bool, default=True
        Add dlib's face descriptor and the face's landmark geometry (the ``landmarks`` backbone)
        to lite0 when the ``[face]`` extra is installed.
    flip : bool, default=True
        Flip-average the lite0 features.
    face_upsample : int, default=0
        ``upsample`` of the dlib backbones' face detector (see
        :class:`~skpercept.embed.DlibFaceEmbedder`): 1 finds smaller faces, more slowly.
    quick : bool, default=False
        Smoke run: the first 40 faces and :meth:`~skpercept.heads.HeadSettings.quick` heads
        (one net each, not an ensemble).
    cache_dir : str, Path or None
        Embedding cache (None: no cache).
    progress : bool, default=True
        Progress bars and per-fold messages.
    log : callable, default: print to stderr
        Receives the status messages.

    Returns
    -------
    run : Bunch
        ``table`` (the results table), ``result`` (:class:`~skpercept.recipes.CVResult`),
        ``report`` (path of the report), ``models`` (paths of the saved pipelines).

    Examples
    --------
    A smoke run on the first 40 faces and one attribute (about a minute on a laptop CPU, which
    is why it is not run here). It prints the results table, then writes
    ``rating_model.joblib``, ``ranker_model.joblib`` and the report into the folder; ``run.table``
    has the noise ceiling, the ridge baseline, the ranker and the classifier, one row each.

    >>> import tempfile
    >>> from skpercept.recipes import run_demo
    >>> folder = tempfile.TemporaryDirectory()
    >>> run = run_demo(folder.name, attributes=["smart"], folds=3, quick=True, dlib=False,
    ...                progress=False)  # doctest: +SKIP
    >>> run.table.index.get_level_values("model").tolist()  # doctest: +SKIP
    ['noise ceiling', 'ridge (baseline)', 'PairwiseRanker', 'RatingClassifier']
    >>> sorted(run.models)  # doctest: +SKIP
    ['ranker', 'rating']
    >>> folder.cleanup()
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    if quick:
        settings = HeadSettings.quick(seed=seed, device=device)
    else:
        settings = HeadSettings(seed=seed, device=device, n_ensemble=DEMO_ENSEMBLE)
    omi = load_omi(list(attributes))
    if quick:
        omi = subset_faces(omi, QUICK_FACES)
    names = ["lite0"]
    notes = []
    if not dlib:
        notes.append("dlib face descriptors and landmarks skipped (--no-dlib).")
    elif dlib_available():
        names += ["dlib", "landmarks"]
    else:
        notes.append(
            "dlib face descriptors and landmarks skipped: not installed (pip install 'skpercept[face]')."
        )
    for note in notes:
        log(note)
    backbones = make_backbones(names, flip=flip, cache_dir=cache_dir, device=device, progress=progress)
    for embedder in backbones.values():
        if face_upsample and isinstance(embedder, DlibFaceEmbedder):
            embedder.set_params(upsample=face_upsample)
    images = omi.means["image"].to_numpy()
    log(f"Embedding {len(images)} OMI faces with {' + '.join(names)} (cache: {cache_dir or 'off'}) ...")
    t = time.perf_counter()
    Z, sizes = embed_blocks(backbones, images)
    embed_s = time.perf_counter() - t
    log(f"Embedded in {embed_s:.1f} s. Cross-validating ({folds} image-disjoint folds) ...")
    ceiling = noise_ceiling_table(omi, seed=seed)
    t = time.perf_counter()
    result = cross_validate(
        omi, Z, sizes, DEMO_MODELS, folds=folds, settings=settings, progress=log if progress else None
    )
    cv_s = time.perf_counter() - t
    table = results_table(result, ceiling)
    print(f"\nOMI faces, {len(images)} images, {folds}-fold image-disjoint CV, features: {' + '.join(names)}")
    print(markdown_table(table))

    log("Fitting the final models on all faces ...")
    t = time.perf_counter()
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    with replace_together():  # the models and the report of one run, or none of them
        models = _fit_final_models(omi, backbones, sizes, settings, out, backbone="+".join(names))
        final_s = time.perf_counter() - t
        total = time.perf_counter() - start
        notes += _notes(settings, result, embed_s, cv_s, final_s, total, time.process_time() - cpu_start)
        report = _write_report(out, omi, result, table, notes, folds, seed, names)
    print(f"\nModels: {models['ranker']}, {models['rating']}; report: {report}")
    print(f"Done in {total:.1f} s (CPU time {time.process_time() - cpu_start:.1f} s).")
    return Bunch(table=table, result=result, report=report, models=models)


def _save(model, info: dict, path: Path) -> Path:
    """Save ``model`` with ``info`` as ``skpercept_info_`` (what ``skpercept predict`` reads)."""
    model.skpercept_info_ = info
    save_model(model, path)
    return path


def _fit_final_models(omi, backbones: dict, sizes, settings, out: Path, backbone: str) -> dict:
    """The rating classifier and the pair ranker on all faces, saved under ``out``."""
    attributes = list(omi.attributes)
    images = omi.means["image"].to_numpy()
    rows, y = sample_rating_rows(
        ratings_with_face_index(omi),
        np.arange(len(images)),
        attributes,
        per_face=settings.ratings_per_face,
        random_state=settings.seed,
    )
    base = {"format": PICKLE_FORMAT, "attributes": attributes, "backbone": backbone, "users": False}
    # embeddings are cached by now, so these fits are head training: one torch thread (see HeadSettings)
    with torch_threads(settings.threads):
        rating = Pipeline(
            [
                ("features", make_featurizer(backbones, sizes)),
                ("head", make_head("classifier", settings)),
            ]
        )
        rating.fit(pd.Series(images[rows], name="image"), y)
        rating_path = _save(
            rating,
            {
                **base,
                "task": "rating",
                "head": "classifier",
                "output": "classes",
                "levels": RATING_LEVELS.tolist(),
            },
            out / "rating_model.joblib",
        )
        pairs = soft_consensus_pairs(
            omi.means,
            attributes,
            n_pairs=settings.n_pairs,
            standard_errors=mean_standard_errors(omi),
            random_state=settings.seed,
        )
        ranker = Pipeline(
            [
                ("pairs", PairFeatures(item_transformer=make_featurizer(backbones, sizes))),
                ("head", make_head("ranker", settings)),
            ]
        )
        ranker.fit(pairs[PAIR_COLUMNS], pairs[attributes].to_numpy(np.float32))
    ranker_path = _save(
        ranker, {**base, "task": "pairs", "head": "ranker", "output": "pairs"}, out / "ranker_model.joblib"
    )
    return {"rating": rating_path, "ranker": ranker_path}


def _notes(settings, result, embed_s, cv_s, final_s, total, cpu_s) -> list[str]:
    return [
        "pair_acc: accuracy of ordering two held-out faces as their mean ratings do (all pairs of "
        "test faces, ties skipped); spearman: rank correlation of model scores with mean ratings; "
        "headroom: (pair_acc - 0.5) / (ceiling - 0.5).",
        "Noise ceiling: split-half reliability of the mean ratings (Spearman-Brown) turned into the "
        "best achievable pair accuracy; its rating columns are each face's own modal class "
        "(an in-sample oracle).",
        "RatingClassifier: trained on individual 0-100 ratings binned to classes 1-4 "
        "([0,25), [25,50), [50,75), [75,100]), "
        f"{settings.ratings_per_face} ratings per face and attribute; scored on all individual "
        "ratings of test faces; its face score is the expected class. ECE: top-label ECE of its "
        "class probabilities; for PairwiseRanker, ECE of P(left preferred) on test pairs, each pair "
        "counted in both orders (which face is left is file order, not a property of the pair).",
        f"Timings (wall clock): embedding {embed_s:.1f} s, cross-validation {cv_s:.1f} s, final "
        f"fits {final_s:.1f} s, total {total:.1f} s; CPU time of this process "
        f"{cpu_s:.1f} s. Cross-validation per model: "
        + ", ".join(f"{MODEL_LABELS[m]} {sec:.1f} s" for m, sec in result.seconds.items())
        + ".",
        "Data: One Million Impressions (Peterson et al., 2022, PNAS), CC BY-NC-SA 4.0.",
    ]


def _write_report(out: Path, omi, result, table, notes, folds: int, seed: int, names) -> Path:
    attributes = list(omi.attributes)
    means = omi.means[attributes].to_numpy()
    scatter = {a: (means[:, k], result.scores["ranker"][:, k]) for k, a in enumerate(attributes)}
    # the points pool every fold's out-of-fold scores; the titles show what the table shows
    ranker = result.metrics[result.metrics["model"] == "ranker"].groupby("attribute")["spearman"]
    rho = {a: (float(ranker.mean()[a]), f"mean of {folds} folds") for a in attributes}
    curves = {
        "PairwiseRanker: P(left preferred)": {
            a: reliability_curve(*result.pair_curves[a]) for a in attributes
        },
        "RatingClassifier: top class": {
            a: reliability_curve(*result.rating_curves[a], labels=RATING_LEVELS) for a in attributes
        },
    }
    return write_report(
        out,
        tables={"Results": table},
        title="skpercept demo: OMI face impressions",
        intro=f"{len(omi.means)} faces, {folds}-fold image-disjoint cross-validation (no test face in "
        f"any training row), seed {seed}. Features: {' + '.join(names)}.",
        scatter=scatter,
        calibration=curves,
        notes=notes,
        scatter_ylabel="PairwiseRanker score (out of fold)",
        scatter_rho=rho,
    )
