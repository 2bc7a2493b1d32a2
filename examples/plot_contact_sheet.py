"""
A contact sheet of photos ranked by a model
===========================================

:mod:`skpercept.photos` ranks a folder of photos with any fitted model: it groups versions of
one shot (re-saved copies, bursts), scores every photo, keeps the best of each group and says
why, and writes a CSV and an offline HTML contact sheet (the ``skpercept rank`` command).

Here the model is a :class:`~skpercept.heads.PairwiseRanker` trained on which of two faces the
raters found more trustworthy (240 of the shipped One Million Impressions faces, ``load_omi``;
CC BY-NC-SA 4.0), and the folder holds 60 other faces plus a low-quality re-saved copy of one
of them. The figure shows the faces the model finds most and least trustworthy-looking.
"""

# %%
# Train the model
# ---------------

# sphinx_gallery_thumbnail_number = 2

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from PIL import Image
from sklearn.pipeline import make_pipeline

from skpercept.datasets import consensus_pairs, load_omi
from skpercept.embed import TimmEmbedder, default_cache_dir
from skpercept.heads import PairwiseRanker
from skpercept.model_selection import image_disjoint_train_test_split
from skpercept.photos import photo_scorer, rank_photos, write_collection
from skpercept.preprocessing import PairFeatures

omi = load_omi(["trustworthy"])
faces = omi.means.sample(300, random_state=0).reset_index(drop=True)
train_faces, test_faces = image_disjoint_train_test_split(faces, test_size=0.2, random_state=0)
train = consensus_pairs(train_faces, "trustworthy", n_pairs=3000, ties="drop", random_state=0)
model = make_pipeline(
    PairFeatures(item_transformer=TimmEmbedder(cache_dir=default_cache_dir())),
    PairwiseRanker(max_epochs=40, random_state=0),
)
model.fit(train[["image_a", "image_b"]], train["trustworthy"])

# %%
# Rank a folder
# -------------
# The folder is temporary. :func:`~skpercept.photos.photo_scorer` turns the fitted pipeline
# into ``score(paths)``: the ranker's latent score of each face (higher = more
# trustworthy-looking). One face is saved a second time at JPEG quality 15: the two files are
# one group, and only one of them is the group's best.

temporary = tempfile.TemporaryDirectory()  # removed at the end, or at exit after an error
workdir = Path(temporary.name)
photos = workdir / "photos"
photos.mkdir()
for path in test_faces["image"]:
    shutil.copy(path, photos)
copied = Path(test_faces["image"].iloc[0]).name
Image.open(photos / copied).save(photos / f"copy_of_{copied}", quality=15)

table = rank_photos(
    photos,
    scorer=photo_scorer(model),
    score_name="trustworthiness",
    cache_dir=default_cache_dir(),
    thumbnails=True,
)
print(f"{len(table)} photos in {table['group'].nunique()} groups")
pair = table[table["group"].duplicated(keep=False)]
print(pair[["path", "group", "score", "rank", "confidence"]].to_string())

# %%
# The model scores trustworthiness, not photo quality: it may well prefer the blocky copy. To
# choose between versions of one shot, rank by quality (``rank_photos`` without a scorer uses
# :func:`~skpercept.photos.quality_baseline`) or train the model on such choices.

fig, axes = plt.subplots(1, 2, figsize=(5, 2.9))
for ax, (_, photo) in zip(axes, pair.iterrows()):
    ax.imshow(Image.open(photos / photo["path"]))
    ax.set_title(f"{photo['path']}\nrank {photo['rank']}, score {photo['score']:+.2f}", fontsize=9)
    ax.axis("off")
fig.tight_layout()

# %%
# The CSV and the HTML contact sheet (one self-contained page, thumbnails inside) land in the
# temporary folder:

written = write_collection(table, workdir / "ranking", title="Held-out faces", score_name="trustworthiness")
print({kind: path.name for kind, path in written.items()})
print(table.drop(columns="thumbnail").head().to_string())

# %%
# The most and the least trustworthy-looking faces
# ------------------------------------------------
# One photo per group (the best), sorted by score.

best = table[table["best"]].sort_values("score", ascending=False)
shown = {"most": best.head(6), "least": best.tail(6).iloc[::-1]}
fig, axes = plt.subplots(2, 6, figsize=(12, 4.6))
for row, (label, part) in zip(axes, shown.items()):
    for ax, (_, photo) in zip(row, part.iterrows()):
        ax.imshow(Image.open(photos / photo["path"]))
        ax.set_title(f"{photo['score']:+.2f}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    row[0].set_ylabel(f"{label}\ntrustworthy", fontsize=11)
fig.suptitle("Held-out faces ranked by predicted trustworthiness (latent score)")
fig.tight_layout()
plt.show()

temporary.cleanup()
