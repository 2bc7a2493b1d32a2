"""Photo collections: grouping planted series and bursts, scoring, bad files, outputs, ``skpercept rank``."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw, ImageFilter
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline

from skpercept import cli, photos
from skpercept.embed import load_image
from skpercept.heads._ranking import PairwiseRanker
from skpercept.heads._rating import RatingClassifier, RatingRegressor
from skpercept.persistence import save_model
from skpercept.photos import (
    CHECK,
    DETAIL_SIDE,
    RANKING_COLUMNS,
    detail_similarity,
    detail_view,
    find_images,
    group_photos,
    grouping_confidence,
    grouping_view,
    load_photo_scorer,
    photo_pairs,
    photo_scorer,
    quality_baseline,
    rank_photos,
    scan_photos,
    write_collection,
)
from skpercept.photos import _collection as collection
from skpercept.preprocessing._pairs import PairFeatures
from tests._images import make_zoo


class PixelEmbedder(TransformerMixin, BaseEstimator):
    """A transparent embedder for planted scenes: the image at 8 x 8 grey pixels, centred."""

    def __init__(self, on_error="raise"):
        self.on_error = on_error

    def fit(self, X, y=None):
        self.n_features_in_ = 1
        return self

    def transform(self, X):
        rows = []
        for path in pd.Series(X).tolist():
            try:
                pixels = np.asarray(load_image(path).convert("L").resize((8, 8), Image.BOX), dtype=np.float64)
            except OSError:
                if self.on_error == "raise":
                    raise
                pixels = np.full((8, 8), np.nan)
            rows.append(pixels.ravel() - pixels.mean())
        return np.asarray(rows)


def scene(seed: int, size=(96, 128)) -> Image.Image:
    """A photo-like scene with hard edges: coloured rectangles on a background."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size[1], size[0]), tuple(int(v) for v in rng.integers(0, 256, 3)))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.integers(0, size[1] - 20), rng.integers(0, size[0] - 20)
        w, h = rng.integers(10, 60, size=2)
        draw.rectangle(
            [int(x0), int(y0), int(x0 + w), int(y0 + h)], fill=tuple(int(v) for v in rng.integers(0, 256, 3))
        )
    return image


def noisy(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    pixels = pixels + np.random.default_rng(seed).normal(0, sigma, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.fixture
def planted(tmp_path):
    """Three scenes x (sharp, blurred, noisy) in sub-folders, plus three unreadable files."""
    root = tmp_path / "photos"
    for s in range(3):
        folder = root / f"scene{s}"
        folder.mkdir(parents=True)
        image = scene(s)
        image.filter(ImageFilter.GaussianBlur(1.5)).save(folder / "a_blurred.png")
        noisy(image, 12, s).save(folder / "b_noisy.png")
        image.save(folder / "c_sharp.png")
    zoo = make_zoo(tmp_path / "zoo")
    for kind in ("corrupt", "empty", "truncated"):
        (root / f"{kind}.jpg").write_bytes(zoo[kind].read_bytes())
    return root


def test_find_images_walks_the_tree_and_skips_other_files(planted):
    (planted / "notes.txt").write_text("not a photo")
    (planted / ".thumbs").mkdir()
    (planted / ".thumbs" / "x.jpg").write_bytes(b"")
    found = [p.relative_to(planted).as_posix() for p in find_images(planted)]
    assert len(found) == 12 and found == sorted(found)
    assert "scene0/c_sharp.png" in found and "notes.txt" not in found and ".thumbs/x.jpg" not in found


def test_group_photos_recovers_planted_series_and_numbers_them_in_order():
    rng = np.random.default_rng(0)
    labels = np.repeat([2, 0, 3, 1], 3)
    photos = [scene(10 + s, size=(120, 160)) for s in range(4)]
    damage = [
        lambda image: image.filter(ImageFilter.GaussianBlur(1.5)),
        lambda image: noisy(image, 12, 0),
        lambda image: Image.fromarray((np.asarray(image) * 0.5).astype(np.uint8)),
    ]
    versions = [damage[k % 3](photos[s]) for k, s in enumerate(labels)]
    details = np.stack([detail_view(v) for v in versions])
    X = np.tile([1.0, 0.0], (12, 1)) + 0.01 * rng.normal(size=(12, 2))  # every pair a candidate
    groups = group_photos(X, details)
    assert groups.tolist() == np.repeat([0, 1, 2, 3], 3).tolist()
    assert group_photos(X, details, min_similarity=0.999).max() == 11  # too strict: every photo alone
    assert group_photos(X[:1], details[:1]).tolist() == [0]


def test_bursts_join_on_the_scene_within_the_time_window_only():
    rng = np.random.default_rng(1)
    details = rng.normal(size=(3, DETAIL_SIDE, DETAIL_SIDE))  # no two share their detail
    X = np.array([[1.0, 0.0], [0.97, 0.24], [0.0, 1.0]])  # 0 and 1 are 0.03 apart: one scene
    assert group_photos(X, details).tolist() == [0, 1, 2]
    assert group_photos(X, details, capture_times=[10.0, 11.5, 12.0]).tolist() == [0, 0, 1]
    assert group_photos(X, details, capture_times=[10.0, 14.0, 12.0]).tolist() == [0, 1, 2]
    assert group_photos(X, details, capture_times=[10.0, np.nan, 12.0]).tolist() == [0, 1, 2]
    none = group_photos(X, details, capture_times=[10.0, 11.5, 12.0], burst_seconds=None)
    assert none.tolist() == [0, 1, 2]
    far = np.array([[1.0, 0.0], [0.6, 0.8], [-0.6, 0.8]])  # a burst, but no two one scene (0.4 apart or more)
    assert group_photos(far, details, capture_times=[10.0, 11.0, 12.0]).tolist() == [0, 1, 2]
    pairs = photo_pairs(X, details, capture_times=[10.0, 11.5, 12.0])
    _, group, _ = grouping_confidence([0, 0, 1], [True, False, True], pairs)
    assert group.tolist() == [CHECK, CHECK, ""]  # joined by time, not by detail: to check


def test_grouping_view_is_blind_to_exposure_blur_and_noise():
    from skpercept.datasets import load_omi

    image = Image.open(load_omi().means["image"][0]).convert("RGB")  # a real photo: a shipped face
    versions = [
        Image.fromarray((np.asarray(image) * 0.4).astype(np.uint8)),
        Image.fromarray(np.clip(np.asarray(image) * 1.9, 0, 255).astype(np.uint8)),
        image.filter(ImageFilter.GaussianBlur(2)),
        noisy(image, 25, 0),
    ]
    original, view = np.asarray(image.convert("L"), float), np.asarray(grouping_view(image), float)
    assert grouping_view(image).mode == "L" and min(view.shape) == 240
    for version in versions:
        raw_gap = np.abs(np.asarray(version.convert("L"), float) - original).mean()
        view_gap = np.abs(np.asarray(grouping_view(version), float) - view).mean()
        assert view_gap < raw_gap / 2


def test_group_photos_rejects_bad_input():
    details = np.zeros((2, DETAIL_SIDE, DETAIL_SIDE))
    with pytest.raises(ValueError, match="NaN"):
        group_photos([[1.0, np.nan], [0.0, 1.0]], details)
    with pytest.raises(ValueError, match="min_similarity"):
        group_photos([[1.0, 0.0], [0.0, 1.0]], details, min_similarity=1.0)
    with pytest.raises(ValueError, match="one value per photo"):
        group_photos([[1.0, 0.0], [0.0, 1.0]], details, capture_times=[1.0])
    with pytest.raises(ValueError, match="one view per photo"):
        group_photos([[1.0, 0.0], [0.0, 1.0]], details[:1])
    with pytest.raises(ValueError, match="linkage"):
        group_photos([[1.0, 0.0], [0.0, 1.0]], details, linkage="ward")
    with pytest.raises(ValueError, match="views must have shape"):
        detail_similarity(np.zeros((2, 8, 8)), [0], [1])


def test_quality_baseline_prefers_the_undamaged_version():
    image = scene(5, size=(120, 160))
    versions = [
        image,
        image.filter(ImageFilter.GaussianBlur(2)),
        noisy(image, 25, 0),
        Image.fromarray((np.asarray(image) * 0.3).astype(np.uint8)),
    ]
    table = quality_baseline(versions)
    assert list(table.columns) == ["score", *photos.QUALITY_TERMS]
    assert table["score"].idxmax() == 0
    assert table["sharpness"][0] > table["sharpness"][1] and table["noise"][2] > table["noise"][0]


def test_quality_baseline_sees_jpeg_blocking(tmp_path):
    image = noisy(scene(6, size=(128, 128)), 3, 1).filter(ImageFilter.GaussianBlur(0.6))
    image.save(tmp_path / "good.jpg", quality=95)
    image.save(tmp_path / "blocky.jpg", quality=5)
    table = quality_baseline([tmp_path / "good.jpg", tmp_path / "blocky.jpg"])
    assert table["blocking"][1] > table["blocking"][0] + 0.5
    assert table["score"][0] > table["score"][1]


def test_quality_baseline_lists_bad_files(tmp_path):
    from skpercept.embed import BadImageWarning

    zoo = make_zoo(tmp_path)
    with pytest.warns(BadImageWarning, match="corrupt"):
        table = quality_baseline([zoo["good"], zoo["corrupt"]])
    assert np.isfinite(table.iloc[0]).all() and table.iloc[1].isna().all()


def test_scan_reads_exif_capture_time(tmp_path):
    exif = Image.Exif()
    exif.get_ifd(0x8769).update({0x9003: "2024:05:01 10:00:00", 0x9291: "25"})
    scene(1).save(tmp_path / "timed.jpg", exif=exif)
    scene(1).save(tmp_path / "plain.jpg")
    table = scan_photos([tmp_path / "timed.jpg", tmp_path / "plain.jpg"])
    assert table["captured"][0] == pytest.approx(1714557600.25)
    assert np.isnan(table["captured"][1])
    assert table["thumbnail"][0].startswith("data:image/jpeg;base64,")


def test_rank_photos_groups_scores_and_keeps_bad_files(planted, tmp_path):
    table = rank_photos(planted, embedder=PixelEmbedder(), cache_dir=tmp_path / "cache")
    assert list(table.columns) == list(RANKING_COLUMNS)
    readable = table[table["group"].notna()]
    assert len(readable) == 9 and readable["group"].nunique() == 3
    for _, members in readable.groupby("group"):
        assert members["path"].str.split("/").str[0].nunique() == 1  # one scene per group
        assert members["rank"].tolist() == [1, 2, 3] and members["best"].tolist() == [True, False, False]
        assert members["path"].iloc[0].endswith("c_sharp.png")  # the undamaged one wins
        assert members["score"].is_monotonic_decreasing
    bad = table[table["group"].isna()]
    assert sorted(bad["path"]) == ["corrupt.jpg", "empty.jpg", "truncated.jpg"]
    assert bad["score"].isna().all() and bad["rank"].isna().all() and not bad["best"].any()
    assert bad["reason"].str.len().gt(0).all() and (readable["reason"] == "").all()
    again = rank_photos(planted, embedder=PixelEmbedder(), cache_dir=tmp_path / "cache")
    pd.testing.assert_frame_equal(again, table)  # the warm cache gives the same answer


def test_rank_photos_takes_a_scorer_and_a_path_list(planted):
    files = [p for p in find_images(planted) if p.suffix == ".png"]
    table = rank_photos(files, embedder=PixelEmbedder(), scorer=lambda paths: ["sharp" in p for p in paths])
    assert set(table["path"]) == {str(p) for p in files}
    best = table[table["best"]]["path"].tolist()
    assert all(p.endswith("c_sharp.png") for p in best)  # the scorer decides, not the baseline
    as_is = rank_photos(files, embedder=PixelEmbedder(), view=False)
    assert as_is["group"].nunique() == 3


def test_write_collection_writes_csv_and_html(planted, tmp_path):
    table = rank_photos(planted, embedder=PixelEmbedder(), thumbnails=True)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "ranking.csv").write_text("old")
    paths = write_collection(table, out)
    csv = pd.read_csv(paths["csv"], keep_default_na=False)
    assert list(csv.columns) == list(RANKING_COLUMNS) and len(csv) == 12
    assert (csv.loc[csv["reason"] != "", ["group", "score", "rank"]] == "").all().all()
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("data-group=") == 3 and page.count('class="photo best"') == 3
    assert page.count("data:image/jpeg;base64,") == 9 and "could not be read" in page
    assert sorted(p.name for p in out.iterdir()) == ["contact_sheet.html", "ranking.csv"]  # no temporary left


def test_file_names_are_escaped_in_the_sheet(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    scene(0).save(root / "<b>bold<b>&'.png")
    table = rank_photos(root, embedder=PixelEmbedder(), thumbnails=True)
    page = write_collection(table, tmp_path / "out")["html"].read_text(encoding="utf-8")
    assert "<b>bold" not in page and "&lt;b&gt;bold&lt;b&gt;&amp;&#x27;.png" in page


# -- models ---------------------------------------------------------------------------------
def _pairs_model(planted):
    files = sorted(str(p) for p in planted.glob("scene*/*.png"))
    sharp = [f for f in files if f.endswith("c_sharp.png")]
    other = [f for f in files if not f.endswith("c_sharp.png")]
    pairs = pd.DataFrame({"image_a": sharp * 2, "image_b": other})
    model = Pipeline(
        [("pairs", PairFeatures(item_transformer=PixelEmbedder())), ("head", PairwiseRanker(max_epochs=3))]
    )
    return model.fit(pairs, np.ones(len(pairs))), files


def test_photo_scorer_accepts_ranker_and_rating_pipelines(planted):
    model, files = _pairs_model(planted)
    scores = photo_scorer(model)(files)
    assert scores.shape == (9,) and np.isfinite(scores).all()
    np.testing.assert_allclose(scores, model[-1].score_items(PixelEmbedder().fit(None).transform(files)))
    X, y = pd.Series(files, name="image"), np.tile([1, 2, 4], 3)
    for head in (RatingClassifier(max_epochs=2, classes=[1, 2, 3, 4]), RatingRegressor(max_epochs=2)):
        rating = Pipeline([("features", PixelEmbedder()), ("head", head)]).fit(X, y)
        scores = photo_scorer(rating)(files)
        assert scores.shape == (9,)
        assert ((scores >= 1) & (scores <= 4)).all() if isinstance(head, RatingClassifier) else True


def test_photo_scorer_refuses_other_models_with_one_clear_line(planted):
    with pytest.raises(
        ValueError, match="ends in a Ridge; rank accepts a Pipeline ending in a PairwiseRanker"
    ):
        photo_scorer(Pipeline([("f", PixelEmbedder()), ("ridge", Ridge())]))
    with pytest.raises(ValueError, match="not a Pipeline"):
        photo_scorer(Ridge())
    model, _ = _pairs_model(planted)
    model.skpercept_info_ = {"attributes": ["trustworthy"]}
    with pytest.raises(ValueError, match="no attribute 'smart'"):
        photo_scorer(model, "smart")


# -- the command --------------------------------------------------------------------------------
@pytest.fixture
def pixel_embedder(monkeypatch):
    monkeypatch.setattr(collection, "_default_embedder", lambda *args: PixelEmbedder())


def run(*argv) -> int:
    return cli.main([str(a) for a in argv])


def test_rank_command_writes_outputs_and_lists_bad_files(planted, tmp_path, pixel_embedder, capsys):
    out = tmp_path / "out"
    assert (
        run(
            "rank",
            planted,
            "--output",
            out,
            "--min-similarity",
            0.5,
            "--cache-dir",
            tmp_path / "c",
            "--no-progress",
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "9 photos in 3 groups (3 with more than one photo: " in err and "); 3 unreadable." in err
    assert "unreadable: corrupt.jpg:" in err
    csv = pd.read_csv(out / "ranking.csv")
    assert csv["best"].sum() == 3 and (out / "contact_sheet.html").stat().st_size > 1000


@pytest.mark.parametrize("linkage", ["complete", "average", "single"])
def test_rank_command_passes_the_linkage(planted, tmp_path, pixel_embedder, monkeypatch, linkage):
    seen = []
    original = collection.group_photos

    def spy(*args, **kwargs):
        seen.append(kwargs["linkage"])
        return original(*args, **kwargs)

    monkeypatch.setattr(collection, "group_photos", spy)
    out = tmp_path / "out"
    assert run("rank", planted, "--output", out, "--linkage", linkage, "--no-progress") == 0
    assert seen == [linkage]
    assert pd.read_csv(out / "ranking.csv")["group"].nunique() == 3


def test_rank_command_with_a_model(planted, tmp_path, pixel_embedder):
    model, _ = _pairs_model(planted)
    save_model(model, tmp_path / "model.joblib")
    out = tmp_path / "out"
    assert run("rank", planted, "--output", out, "--model", tmp_path / "model.joblib") == 0
    html = (out / "contact_sheet.html").read_text(encoding="utf-8")
    assert "model model.joblib" in html
    csv = pd.read_csv(out / "ranking.csv")
    expected = load_photo_scorer(tmp_path / "model.joblib")([str(planted / p) for p in csv["path"][:9]])
    np.testing.assert_allclose(csv["score"][:9], expected, rtol=1e-5)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"hello, not a model", "has no skpercept checksum"),
        ("ridge", "it holds a Ridge, not a Pipeline"),
    ],
)
def test_rank_command_refuses_bad_model_files(planted, tmp_path, pixel_embedder, capsys, content, message):
    path = tmp_path / "model.joblib"
    if content == "ridge":
        save_model(Ridge(), path)
    elif content is not None:
        path.write_bytes(content)
    assert run("rank", planted, "--model", path, "--output", tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"skpercept rank: error: --model {path}: ") and message in err
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_rank_command_on_an_empty_or_missing_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert run("rank", tmp_path / "empty") == 2
    assert "no image files found" in capsys.readouterr().err
    assert run("rank", tmp_path / "nowhere") == 2
    assert "is not a folder" in capsys.readouterr().err


# -- the contact sheet in a real browser --------------------------------------------------------
class _Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text."""

    def __init__(self):
        super().__init__()
        self.elements, self.text = [], []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _browser() -> str | None:
    return next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )


@pytest.mark.skipif(
    _browser() is None, reason="no headless Chromium (Debian: apt-get install chromium); sheet not rendered"
)
def test_contact_sheet_renders_in_headless_chromium(planted, tmp_path):
    (planted / "scene1" / "c_sharp.png").rename(planted / "scene1" / "sharp <1> & co.png")
    table = rank_photos(planted, embedder=PixelEmbedder(), thumbnails=True)
    page = write_collection(table, tmp_path / "out")["html"]
    shot = tmp_path / "sheet.png"
    command = [_browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += ["--window-size=1280,1000", f"--screenshot={shot}", "--dump-dom", page.as_uri()]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    parsed = _Elements()
    parsed.feed(dom)  # the DOM as the browser built it, not the file as written
    classes = [(tag, attrs.get("class", ""), attrs) for tag, attrs in parsed.elements]
    groups = [
        attrs["data-group"] for tag, cls, attrs in classes if tag == "section" and cls.split()[0] == "group"
    ]
    assert groups == ["1", "2", "3"]
    figures = [(cls, attrs["data-rank"]) for tag, cls, attrs in classes if tag == "figure"]
    assert [rank for _, rank in figures] == ["1", "2", "3"] * 3
    assert [cls for cls, _ in figures] == ["photo best", "photo", "photo"] * 3
    images = [attrs["src"] for tag, _, attrs in classes if tag == "img"]
    assert len(images) == 9 and all(src.startswith("data:image/jpeg;base64,") for src in images)
    bad = [i for i, (tag, cls, _) in enumerate(classes) if tag == "section" and cls == "bad"]
    assert len(bad) == 1 and sum(tag == "li" for tag, _, _ in classes[bad[0] :]) == 3
    text = "".join(parsed.text)
    assert "scene1/sharp <1> & co.png" in text and not any(tag == "1" for tag, _, _ in classes)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape == (1000, 1280, 3)
    green = np.all(np.abs(pixels.astype(int) - (26, 127, 55)) < 12, axis=2)  # the best photos' frames
    assert green.sum() > 1000
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 2000  # the noisy thumbnails were drawn
