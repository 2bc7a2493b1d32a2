"""One person's taste: people as features, deviations from the shared model, the next question.

- :class:`UserEncoder` — user ids → one-hot features (an unknown or rare person is the average
  person).
- Every head learns people with ``user_features`` (a deviation of the shared head per person,
  shrunk by a Gaussian prior); :func:`add_users` adds new people to a fitted model without
  refitting the shared part.
- :func:`suggest_pairs`, :func:`suggest_items` — which pairs or images to ask a person next.

For heads that learn people (:mod:`skpercept.heads`): :class:`PersonalHeadMixin` (the
estimator's side: which columns are the person, fitting only people, the learned prior),
:class:`PersonalDeviation` and :class:`PersonalModuleMixin` (the torch side), and the helpers
:func:`entry_weights` and :func:`pair_context_columns`.
"""

from skpercept.personal._active import suggest_items, suggest_pairs
from skpercept.personal._add import add_users
from skpercept.personal._deviation import PersonalDeviation, PersonalModuleMixin
from skpercept.personal._mixin import (
    START_USER_ALPHA,
    USER_ALPHA_GRID,
    PersonalHeadMixin,
    entry_weights,
    pair_context_columns,
)
from skpercept.personal._prior import MAX_PRIOR_DIM, MIN_PRIOR_PEOPLE
from skpercept.personal._users import UserEncoder, UserIdWarning, id_text, leading_zero_twins

__all__ = [
    "MAX_PRIOR_DIM",
    "MIN_PRIOR_PEOPLE",
    "START_USER_ALPHA",
    "USER_ALPHA_GRID",
    "PersonalDeviation",
    "PersonalHeadMixin",
    "PersonalModuleMixin",
    "UserEncoder",
    "UserIdWarning",
    "add_users",
    "entry_weights",
    "id_text",
    "leading_zero_twins",
    "pair_context_columns",
    "suggest_items",
    "suggest_pairs",
]
