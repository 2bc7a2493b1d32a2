"""
Reliability diagram: is "70 % sure" right 70 % of the time?
===========================================================

A :class:`~skpercept.heads.PairwiseRanker` gives a probability for every pair of faces,
``P(left ≻ right)``. A reliability diagram bins these probabilities and plots, per bin, the
mean predicted probability against how often the left face really came first: a calibrated
model lies on the diagonal.

"Really came first" has two meanings here. The model is trained on the *consensus* order of
pairs of faces (which face has the higher mean rating over many raters) and is scored against
it on faces it never saw; but one *single rater*'s judgment of the same pair is much less
predictable, because raters disagree. Data: 300 of the shipped One Million Impressions faces
(``load_omi``; CC BY-NC-SA 4.0), their individual 0–100 ratings of trustworthiness, and the
shipped EfficientNet-Lite0 embeddings.
"""

# %%
# Train on the consensus of 240 faces
# -----------------------------------
# The faces are split first, so no held-out face appears in a training pair. The pipeline takes
# a table of pairs of image paths: :class:`~skpercept.preprocessing.PairFeatures` embeds each
# face once (read from the embedding cache the other examples share) and lays each pair out as
# ``[left | right]``.

import tempfile

import matplotlib.pyplot as plt
from sklearn.pipeline import make_pipeline

from skpercept.datasets import consensus_pairs, load_omi, sample_comparisons
from skpercept.embed import TimmEmbedder, default_cache_dir
from skpercept.heads import PairwiseRanker
from skpercept.metrics import expected_calibration_error, pairwise_accuracy
from skpercept.model_selection import image_disjoint_train_test_split
from skpercept.preprocessing import PairFeatures
from skpercept.report import plot_calibration, reliability_curve

omi = load_omi(["trustworthy"])
faces = omi.means.sample(300, random_state=0).reset_index(drop=True)
train_faces, test_faces = image_disjoint_train_test_split(faces, test_size=0.2, random_state=0)

train = consensus_pairs(train_faces, "trustworthy", n_pairs=3000, ties="drop", random_state=0)
model = make_pipeline(
    PairFeatures(item_transformer=TimmEmbedder(cache_dir=default_cache_dir())),
    PairwiseRanker(max_epochs=40, random_state=0),
)
model.fit(train[["image_a", "image_b"]], train["trustworthy"])
print(f"trained on {len(train)} consensus pairs of {len(train_faces)} faces")

# %%
# Two kinds of held-out judgments
# -------------------------------
# Every pair of the 60 held-out faces, labelled by their consensus order; and 3,000 single
# judgments of the same faces, simulated from the raters' individual ratings: for each pair, one
# rating of each face drawn at random and compared (``sample_comparisons``; ties dropped).

consensus = consensus_pairs(test_faces, "trustworthy", ties="drop", random_state=0)
held_out_ratings = omi.ratings[omi.ratings["image"].isin(test_faces["image"])]
single = sample_comparisons(held_out_ratings, "trustworthy", n_pairs=3000, ties="drop", random_state=0)

curves = {}
for name, pairs in {"consensus order": consensus, "one rater's judgment": single}.items():
    y, p = pairs["trustworthy"], model.predict_proba(pairs[["image_a", "image_b"]])[:, 1]
    curves[name] = reliability_curve(y, p, n_bins=10)
    print(
        f"{name:>22}: {len(pairs):>5} pairs, accuracy {pairwise_accuracy(y, p):.3f}, "
        f"ECE {expected_calibration_error(y, p):.3f}"
    )

# %%
# The diagram
# -----------
# Against the consensus the curve stays close to the diagonal; against one rater it is flatter:
# when the model is 90 % sure which face the crowd finds more trustworthy, a single person agrees
# much less often. Train on single judgments (``sample_comparisons``) when the probability should
# describe one person's choice. Each curve's table is printed below the figure (``count`` = pairs
# in the bin).

with tempfile.TemporaryDirectory() as folder:
    image = plt.imread(plot_calibration({"trustworthy, held-out faces": curves}, f"{folder}/calibration.png"))
fig = plt.figure(figsize=(image.shape[1] / 100, image.shape[0] / 100), dpi=100)
fig.figimage(image)  # the PNG at its own pixel size
plt.show()

for name, curve in curves.items():
    print(f"\n{name}\n{curve.round(3).to_string(index=False)}")
