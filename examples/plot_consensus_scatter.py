"""
Predicted scores against the raters' consensus
==============================================

How well does a model trained on pairwise judgments order faces it has never seen? This example
embeds 300 of the shipped One Million Impressions faces (``load_omi``; CC BY-NC-SA 4.0) with
the shipped EfficientNet-Lite0 (:class:`~skpercept.embed.TimmEmbedder`), trains a
:class:`~skpercept.heads.PairwiseRanker` on pairs of faces labelled by which one the raters
found more trustworthy on average, and scores the held-out faces of each of five
cross-validation folds. Each face is scored by a model that never saw it in any training pair,
so the scatter and its Spearman correlation measure what the model does for new faces.
"""

# %%
# Embed the faces
# ---------------
# ``cache_dir`` keeps one file per image, keyed on its content and the model: the first run
# embeds (a few seconds on a laptop CPU), later runs and the other examples of this gallery read
# the cache.

import tempfile

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import spearmanr
from sklearn.model_selection import KFold

from skpercept.datasets import consensus_pairs, load_omi
from skpercept.embed import TimmEmbedder, default_cache_dir
from skpercept.heads import PairwiseRanker
from skpercept.report import plot_scatter

omi = load_omi(["trustworthy"])
faces = omi.means.sample(300, random_state=0).reset_index(drop=True)
Z = TimmEmbedder(cache_dir=default_cache_dir()).fit_transform(faces["image"])
print(f"{len(faces)} faces, embeddings of shape {Z.shape}")

# %%
# Out-of-fold scores
# ------------------
# Folds split the *faces*, not the pairs: training pairs are drawn among the training faces
# only (``consensus_pairs`` on their mean ratings), so no held-out face leaks into training.
# ``faces.index`` is each face's row in ``Z``; passing it as the item column gives pairs of
# row numbers, which index ``Z`` directly.

rows = faces[["trustworthy"]].rename_axis("face").reset_index()
predicted = np.empty(len(faces))
for fold, (train, test) in enumerate(KFold(5, shuffle=True, random_state=0).split(rows)):
    pairs = consensus_pairs(
        rows.iloc[train], "trustworthy", n_pairs=3000, item_column="face", random_state=fold
    )
    X = np.hstack([Z[pairs["image_a"]], Z[pairs["image_b"]]])
    ranker = PairwiseRanker(max_epochs=40, random_state=0).fit(X, pairs["trustworthy"])
    scores = ranker.score_items(Z[test])  # one latent score per held-out face
    # A ranker's scores mean something only up to a shift and a scale, which differ between
    # the five fitted models: standardize each fold's scores before pooling them.
    predicted[test] = (scores - scores.mean()) / scores.std()
    rho = spearmanr(faces["trustworthy"].iloc[test], scores).statistic
    print(f"fold {fold}: {len(pairs)} training pairs, {len(test)} held-out faces, Spearman ρ {rho:.3f}")

# %%
# The scatter
# -----------
# :func:`skpercept.report.plot_scatter` draws one panel per attribute and writes it as PNG (it
# is what ``skpercept demo`` puts in its report); Spearman's ρ in its title is computed from
# exactly the plotted points, as is the one printed here.

rho = spearmanr(faces["trustworthy"], predicted).statistic
print(f"Spearman ρ between the out-of-fold scores and the consensus: {rho:.3f}")

with tempfile.TemporaryDirectory() as folder:
    path = plot_scatter(
        {"trustworthy": (faces["trustworthy"], predicted)},
        f"{folder}/scatter.png",
        ylabel="predicted score (standardized per fold)",
    )
    image = plt.imread(path)
fig = plt.figure(figsize=(image.shape[1] / 100, image.shape[0] / 100), dpi=100)
fig.figimage(image)  # the PNG at its own pixel size
plt.show()
