"""Small helpers shared across skpercept: device resolution, local seeding, optional imports."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import itertools
import numbers
import re
import sys
import threading
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import torch
from scipy.special import expit
from threadpoolctl import threadpool_limits

_DEVICES = ("cpu", "cuda", "auto")


#: Text that is a whole number written with a decimal point ("12.0"): CSV cells are text.
_WHOLE_NUMBER_TEXT = re.compile(r"^-?\d+\.0+$")


def id_text(value: Any) -> str:
    """An id (a person's, an item's) as the text it stands for: whole numbers as integers
    (``12``, ``12.0`` and ``'12'`` are one id), text as written and stripped (``'007'`` is not
    ``'7'``).

    Examples
    --------
    >>> from skpercept.personal import id_text
    >>> id_text(12.0), id_text(" 12 "), id_text("007")
    ('12', '12', '007')
    """
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    text = str(value).strip()
    return text.split(".")[0] if _WHOLE_NUMBER_TEXT.match(text) else text


def resolve_device(device: str | None) -> str:
    """Turn a user ``device`` string into a concrete torch device string.

    ``'auto'`` (or ``None``) picks ``'cuda'`` when a GPU is visible, else ``'cpu'``.
    ``'cuda'`` without a visible GPU is an error rather than a silent fallback, so a user who
    asked for the GPU learns that they did not get it. Indexed forms such as ``'cuda:1'`` pass.
    """
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str) or device.split(":")[0] not in _DEVICES:
        raise ValueError(f"device must be one of {_DEVICES} (or 'cuda:N'), got {device!r}.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"device={device!r} was requested but torch sees no CUDA device; "
            "use device='cpu' or device='auto'."
        )
    return device


def resolve_seed(random_state: int | np.random.RandomState | None) -> int:
    """The integer seed of one ``fit`` from an estimator's ``random_state``.

    An int is used as given; a ``RandomState`` instance gives a draw from it (scikit-learn's
    convention: the caller's instance advances); ``None`` draws fresh entropy from the
    operating system, so unseeded fits differ from each other without reading or advancing the
    global ``random`` / ``numpy`` / ``torch`` generators.
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    raise ValueError(f"random_state must be an int, a RandomState instance or None, got {random_state!r}.")


def torch_generator(seed: int) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with ``seed``: batch order and samplers draw from it."""
    return torch.Generator().manual_seed(seed)


#: Held while a block works on torch's global generators (:func:`seeded_torch`). They are one
#: per process: two seeded blocks in two threads would otherwise draw from, and on exit restore,
#: each other's state, and neither fit would be reproducible.
_GLOBAL_GENERATORS = threading.RLock()


@contextlib.contextmanager
def seeded_torch(seed: int, device: str = "cpu") -> Iterator[None]:
    """Run a block with torch's global generators forked and seeded with ``seed``.

    Weight initialization, dropout masks and augmentations draw from torch's global generator
    (CPU, and the CUDA device when ``device`` is one). Inside this block they are a private
    copy seeded with ``seed``; on exit the caller's state is restored, so a ``fit`` is
    reproducible without re-seeding, or consuming, the caller's generators. Only the CUDA
    device in use is forked: forking every visible device would initialize CUDA for CPU fits.

    The generators are process-wide, so one seeded block runs at a time (a re-entrant lock):
    keep the block short (the heads build their network in it, then draw weights and dropout
    from generators of their own and train outside it) and seeded fits in other threads stay
    reproducible without waiting long.
    """
    cuda = []
    if str(device).startswith("cuda"):
        index = torch.device(device).index
        cuda = [torch.cuda.current_device() if index is None else index]
    with _GLOBAL_GENERATORS, torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)
        for index in cuda:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def symmetric_expit(d: np.ndarray) -> np.ndarray:
    """σ(d) computed so that σ(d) + σ(−d) == 1 holds exactly in floating point.

    For d ≥ 0 it is ``expit(d)``; for d < 0 it is ``1 − expit(−d)``, which is exact because
    ``expit(−d)`` lies in [0.5, 1] (Sterbenz). Swapped halves give ``d → −d`` exactly, so
    ``P(left ≻ right) + P(right ≻ left) == 1`` bit for bit.

    Examples
    --------
    >>> import numpy as np
    >>> from skpercept._utils import symmetric_expit
    >>> d = np.array([-3.7, 0.0, 0.3])
    >>> bool(np.all(symmetric_expit(d) + symmetric_expit(-d) == 1.0))
    True
    """
    d = np.asarray(d, dtype=np.float64)
    return np.where(d >= 0, expit(d), 1.0 - expit(-d))


def optional_import(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or raise an ImportError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            f"{module!r} is required for this feature; install it with `pip install 'skpercept[{extra}]'`."
        ) from exc


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads and BLAS threads (``None``: leave them alone).

    Both thread counts are restored on exit, also when the block raises.
    """
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        with threadpool_limits(limits=int(n)):
            yield
    finally:
        torch.set_num_threads(old)


def estimator_parameters(cls: type) -> type:
    """Declare an estimator's parameters once, as annotated class attributes.

    The class becomes a keyword-only dataclass that keeps scikit-learn's ``repr`` and identity
    equality: its ``__init__`` takes exactly the declared parameters (its bases' first) and only
    stores them, scikit-learn's contract, and ``get_params`` reads them from that signature. A
    subclass declares only the parameters it adds, or redeclares one to change its default.

    Examples
    --------
    >>> from sklearn.base import BaseEstimator
    >>> from skpercept._utils import estimator_parameters
    >>> @estimator_parameters
    ... class Base(BaseEstimator):
    ...     alpha: float = 1.0
    >>> @estimator_parameters
    ... class Child(Base):
    ...     beta: int = 2
    >>> Child(alpha=0.5)
    Child(alpha=0.5)
    >>> sorted(Child().get_params())
    ['alpha', 'beta']
    """
    return dataclasses.dataclass(kw_only=True, repr=False, eq=False)(cls)


#: The format of skpercept's pickled estimators (joblib / pickle). A file of another format is
#: refused with both versions named, never read by guesswork: 1 is the first versioned format.
PICKLE_FORMAT = 1


class SavedFormatError(ValueError):
    """A saved skpercept file is in a format this version does not read."""


#: skpercept's API reference: one page per public class, ``<public module>.<ClassName>.html``.
API_DOCS_URL = "https://skpercept.readthedocs.io/en/latest/api/generated/"


@functools.cache
def public_module(cls: type) -> str:
    """The public module that exports ``cls``: the shortest one on its module's path that lists
    it in ``__all__`` (``skpercept.heads`` for :class:`~skpercept.heads.PairwiseRanker`, defined
    in ``skpercept.heads._ranking``), else its module's path up to the first private part.

    The package ``skpercept`` itself is passed over: it only names a few estimators of the
    subpackages, and the API reference documents them there.

    Examples
    --------
    >>> from skpercept._utils import public_module
    >>> from skpercept.heads import PairwiseRanker
    >>> public_module(PairwiseRanker)
    'skpercept.heads'
    """
    public = list(itertools.takewhile(lambda part: not part.startswith("_"), cls.__module__.split(".")))
    for end in range(2, len(public) + 1):
        module = importlib.import_module(".".join(public[:end]))
        if cls.__name__ in getattr(module, "__all__", ()) and getattr(module, cls.__name__, None) is cls:
            return module.__name__
    return ".".join(public)


class DocLinkMixin:
    """The "?" of scikit-learn's HTML diagram links to the class's page of skpercept's API
    reference (:data:`API_DOCS_URL`), named by the public module that exports the class.

    Classes outside skpercept (a user's subclass) get no link, as scikit-learn does for them.
    """

    _doc_link_module = "skpercept"
    _doc_link_template = API_DOCS_URL + "{estimator_module}.{estimator_name}.html"

    def _doc_link_url_param_generator(self) -> dict[str, str]:
        return {"estimator_module": public_module(type(self)), "estimator_name": type(self).__name__}


class SavedFormatMixin(DocLinkMixin):
    """Pickles carry :data:`PICKLE_FORMAT`; unpickling another format is a :class:`SavedFormatError`.

    Every skpercept estimator derives from it, so it also carries what they all share: the
    link to their API page (:class:`DocLinkMixin`), and a loaded network's device that holds
    until ``device`` is set (:func:`current_device`).
    """

    def __getstate__(self) -> dict:
        # a copy: on Python 3.11+ scikit-learn hands over the instance's own __dict__
        state = dict(super().__getstate__())
        state.pop(LOADED_DEVICE, None)  # where this machine runs it: chosen again at load
        state["_skpercept_format"] = PICKLE_FORMAT
        return state

    def __setstate__(self, state: dict) -> None:
        found = state.pop("_skpercept_format", None)
        if found != PICKLE_FORMAT:
            saved = f"format {found}" if found is not None else "a format from before versioned formats"
            raise SavedFormatError(
                f"This {type(self).__name__} was saved by skpercept in {saved}; this skpercept reads "
                f"pickle format {PICKLE_FORMAT}. Fit it again with this version, or load it with the "
                "version that saved it."
            )
        super().__setstate__(state)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "device":
            # set_params(device=...): chosen now, where loading put the network no longer holds
            self.__dict__.pop(LOADED_DEVICE, None)
        super().__setattr__(name, value)


def to_arrays(value: Any) -> Any:
    """``value`` with every torch tensor as a NumPy array and every list subclass (a skorch
    ``History``) as a plain list, inside dicts, lists and tuples: state that a safe loader
    (skops) reads without trusting torch or skorch."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if isinstance(value, dict):
        return {k: to_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_arrays(v) for v in value]
    if isinstance(value, tuple):
        return tuple(to_arrays(v) for v in value)
    return value


def to_tensors(state: dict) -> dict:
    """A state dict of NumPy arrays (as :func:`to_arrays` saves it) as torch tensors."""
    return {k: torch.from_numpy(np.array(v)) for k, v in state.items()}


#: Packages whose frames a warning about the user's input looks past (see :func:`warn_at_caller`).
_LIBRARY_PACKAGES = frozenset({"skpercept", "sklearn"})


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """Warn from the first frame outside skpercept and scikit-learn: the user's own line.

    A fixed ``stacklevel`` points at scikit-learn's files when the call came through
    ``fit_transform`` (its output wrapper) or a ``Pipeline``; walking out of both packages names
    the line the user wrote, however deep the call went.
    """
    frame = sys._getframe(1)
    level = 2  # 1 is this function's own call to warnings.warn
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in _LIBRARY_PACKAGES:
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)


class DeviceFallbackWarning(UserWarning):
    """A loaded estimator was saved for a device this machine lacks; it runs on the CPU."""


def loadable_device(device: str | None, what: str) -> str:
    """The device a loaded ``what`` runs on: its saved ``device`` when this machine has it, else
    the CPU, said once with a :class:`DeviceFallbackWarning`."""
    try:
        return resolve_device(device)
    except RuntimeError:
        warnings.warn(
            f"{what} was saved with device={device!r}, which this machine does not have; it runs on the "
            "CPU (set_params(device=...) chooses another).",
            DeviceFallbackWarning,
            stacklevel=3,
        )
        return "cpu"


#: The attribute where a loaded estimator keeps ``(device parameter, device)``: its network runs on
#: that device while the parameter keeps that value (runtime state, never saved).
LOADED_DEVICE = "_loaded_device"


def loaded_device(estimator: Any, device: str | None = None) -> str:
    """Choose where a just-loaded ``estimator``'s network runs, and remember it.

    ``device`` when given (a loader's explicit choice), else the saved ``device`` parameter when
    this machine has that device, else the CPU, said once with a :class:`DeviceFallbackWarning`.
    The choice holds until the parameter is set (:func:`current_device`).
    """
    if device is None:
        device = loadable_device(estimator.device, type(estimator).__name__)
    estimator.__dict__[LOADED_DEVICE] = (estimator.device, device)
    return device


def current_device(estimator: Any) -> str:
    """The device a fitted ``estimator``'s network is to run on now.

    Where loading put it (:func:`loaded_device`) until ``device`` is set, by ``set_params`` or
    assignment (:class:`SavedFormatMixin` then forgets it); otherwise the device the parameter
    names. So ``set_params(device=...)`` after fit or load moves the network at its next call,
    with no refit, and a device this machine lacks is then an error, as it is in ``fit``.
    """
    loaded = estimator.__dict__.get(LOADED_DEVICE)
    if loaded is not None and loaded[0] == estimator.device:
        return loaded[1]
    return resolve_device(estimator.device)


def move_net(net: Any, device: str) -> None:
    """Move a fitted skorch ``net`` to ``device``: its modules, criteria, optimizer state and
    ``net.device`` (the device skorch sends each batch to)."""
    for name in (*net._modules, *net._criteria):
        getattr(net, name + "_").to(device)
    for name in net._optimizers:
        optimizer = getattr(net, name + "_")
        # torch casts loaded state to its parameters' device (the step counts stay where they are)
        optimizer.load_state_dict(optimizer.state_dict())
    net.device = device
