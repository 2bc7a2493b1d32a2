"""
One person's taste: accuracy per person against their number of judgments
==========================================================================

People disagree about faces. A :class:`~skpercept.heads.PairwiseRanker` with
``user_features`` learns a model shared by everyone plus a deviation per person, shrunk
toward the shared model: a person with few judgments gets nearly the average taste, a person
with many gets their own. This example shows how each person's accuracy grows with the number
of judgments they gave.

Data. The One Million Impressions faces (``load_omi``; CC BY-NC-SA 4.0) come without rater
ids, so the *people* are simulated on 300 real faces. A person's liking of a face mixes two
traits with a personal weight: how trustworthy and how attractive the face looks (each as the
shipped EfficientNet-Lite0 embedding predicts the raters' consensus, so that a gap between a
person and their model is the model's, not the embedding's). Some people care about one trait,
some about the other, some dislike one. Their choices between two faces are noisy
(Bradley–Terry). 24 known people give 5 to 320 judgments of 240 training faces; they and 6
unseen people then judge pairs of the 60 other faces.
"""

# %%
# Simulate the people
# -------------------

import tempfile

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline

from skpercept.datasets import load_omi
from skpercept.embed import TimmEmbedder, default_cache_dir
from skpercept.heads import PairwiseRanker
from skpercept.metrics import pairwise_accuracy, per_user_scores
from skpercept.model_selection import image_disjoint_train_test_split
from skpercept.personal import UserEncoder
from skpercept.preprocessing import PairFeatures
from skpercept.report import per_person_summary, plot_per_person

rng = np.random.default_rng(0)
omi = load_omi(["trustworthy", "attractive"])
faces = omi.means.sample(300, random_state=0).reset_index(drop=True)
Z = TimmEmbedder(cache_dir=default_cache_dir()).fit_transform(faces["image"])
traits = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(Z, faces[["trustworthy", "attractive"]]).predict(Z)
traits = (traits - traits.mean(0)) / traits.std(0)
train_faces, test_faces = image_disjoint_train_test_split(faces, test_size=0.2, random_state=0)

known = {f"p{i:02d}": n for i, n in enumerate(np.repeat([5, 20, 80, 320], 6))}
unseen = [f"new{i}" for i in range(6)]
# 0 = likes trustworthy-looking faces only, ±π/2 = only (un)attractive ones
angle = dict(zip([*known, *unseen], rng.uniform(-np.pi / 2, np.pi / 2, len(known) + len(unseen))))


def judgments(person: str, pool: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` choices of ``person`` between two different faces of ``pool`` (y = 1: the left one)."""
    first = rng.integers(len(pool), size=n)
    second = (first + rng.integers(1, len(pool), size=n)) % len(pool)
    a, b = pool.index[first], pool.index[second]
    liking = traits @ [np.cos(angle[person]), np.sin(angle[person])]
    p_left = expit(3.0 * (liking[a] - liking[b]))
    return pd.DataFrame(
        {
            "image_a": faces["image"][a].to_numpy(),
            "image_b": faces["image"][b].to_numpy(),
            "user_id": person,
            "y": (rng.random(n) < p_left).astype(float),
            "p_true": p_left,  # the person's own, noise-free odds: no model can do better
        }
    )


train = pd.concat([judgments(person, train_faces, n) for person, n in known.items()], ignore_index=True)
test = pd.concat([judgments(person, test_faces, 40) for person in angle], ignore_index=True)
print(f"{len(train)} training judgments by {len(known)} people; {len(test)} held-out judgments")

# %%
# Fit the shared model and the people
# -----------------------------------
# :class:`~skpercept.personal.UserEncoder` turns the person into one-hot columns appended to
# each half of a pair (an unknown person becomes all zeros: the average person), and
# ``user_features='auto'`` finds them. ``user_alpha='auto'`` (the default) picks the strength
# of the shrinkage by cross-validation over the training people's judgments.

columns = ["image_a", "image_b", "user_id"]
model = make_pipeline(
    PairFeatures(
        item_transformer=TimmEmbedder(cache_dir=default_cache_dir()), context_transformer=UserEncoder()
    ),
    PairwiseRanker(user_features="auto", max_epochs=40, random_state=0),
)
model.fit(train[columns], train["y"])
print(f"chosen shrinkage: user_alpha_ = {model[-1].user_alpha_}")

# %%
# Accuracy per person
# -------------------
# :func:`~skpercept.metrics.per_user_scores` scores each person on their held-out judgments and
# counts their training judgments; unseen people have none and get the shared model. In the
# figure, a dot's area grows with the person's number of held-out judgments.

p = model.predict_proba(test[columns])[:, 1]
scores = per_user_scores(test["y"], p, test["user_id"], train_users=train["user_id"])
print(per_person_summary(scores).round(3).to_string())

with tempfile.TemporaryDirectory() as folder:
    image = plt.imread(plot_per_person(scores, f"{folder}/per_person.png", chance=0.5))
fig = plt.figure(figsize=(image.shape[1] / 100, image.shape[0] / 100), dpi=100)
fig.figimage(image)  # the PNG at its own pixel size
plt.show()

# %%
# The same held-out judgments scored three ways, by the person's number of training judgments:
# the model of each person, the shared model alone (every person treated as unknown) and the
# person's own noise-free odds, the best any model can do on noisy choices.

shared = model.predict_proba(test[columns].assign(user_id="nobody"))[:, 1]
n_train = test["user_id"].map(train["user_id"].value_counts()).fillna(0).astype(int)
table = pd.DataFrame(
    {
        name: test.assign(q=q).groupby(n_train).apply(lambda g: pairwise_accuracy(g["y"], g["q"]))
        for name, q in {"the person's model": p, "shared model": shared, "own odds": test["p_true"]}.items()
    }
).rename_axis("training judgments")
print(table.round(3).to_string())
