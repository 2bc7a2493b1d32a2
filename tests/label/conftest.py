"""Fixtures of the labelling app's tests: tiny real images, a store on SQLite or PostgreSQL,
projects with random embeddings (no model weights) and their Flask test clients.

The PostgreSQL cases need a server, found as the tuning-worker tests find it
(tests/model_selection/test_workers.py): ``SKPERCEPT_TEST_POSTGRES_URL``
(``postgresql+psycopg://user:password@host:port/database``; ``source scripts/test-services.sh
postgres`` starts one and exports it); without it they are skipped.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("flask", reason="the labelling app: pip install skpercept[label]")
pytest.importorskip("sqlalchemy", reason="the labelling app: pip install skpercept[label]")

from skpercept.label import LabelProject, LabelStore, create_app, project_images

POSTGRES_ENV = "SKPERCEPT_TEST_POSTGRES_URL"
ITEMS = [f"im{k:02d}.jpg" for k in range(10)]


def make_images(folder: Path, n: int = 10, size: int = 16) -> list[str]:
    """``n`` tiny JPEGs ``im00.jpg`` … in ``folder``, from dark to bright red; their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for k in range(n):
        name = f"im{k:02d}.jpg"
        level = int(255 * k / max(n - 1, 1))
        Image.new("RGB", (size, size), (level, 40, 255 - level)).save(folder / name, quality=90)
        names.append(name)
    return names


def postgres_url() -> str:
    """The test server's URL, or a skip saying how to get one."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV} (.ci/run starts one)")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install skpercept[postgres]")
    return url


def _drop_tables(url: str) -> None:
    import sqlalchemy as sa

    from skpercept.label._store import _metadata

    engine = sa.create_engine(url)
    try:
        _metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, empty database: an SQLite file, or the PostgreSQL test database emptied of the
    store's tables before and after the test."""
    if request.param == "sqlite":
        yield str(tmp_path / "db" / "labels.sqlite")
        return
    url = postgres_url()
    _drop_tables(url)
    yield url
    _drop_tables(url)


@pytest.fixture
def store(store_url):
    """A store configured for pairs of :data:`ITEMS` about 'smart' and 'warm', with labellers
    ann and bo."""
    store = LabelStore(store_url)
    store.configure(attributes=["smart", "warm"], kind="pairs", levels=2, items=ITEMS)
    store.tokens = {who: store.add_labeller(who) for who in ("ann", "bo")}
    yield store
    store.close()


@pytest.fixture
def photos(tmp_path) -> Path:
    """A folder of 10 tiny images (and a non-image file)."""
    folder = tmp_path / "photos"
    make_images(folder, 10)
    (folder / "notes.txt").write_text("not an image")
    return folder


def embeddings_for(n: int, width: int = 6, seed: int = 0) -> np.ndarray:
    return np.random.RandomState(seed).normal(size=(n, width)).astype(np.float32)


class Site:
    """A project, its app's test client and helpers to act as a labeller or the admin."""

    def __init__(self, project: LabelProject):
        self.project = project
        self.app = create_app(project)
        self.app.testing = True
        self.client = self.app.test_client()
        self.tokens: dict[str, str] = {}

    def add(self, who: str) -> str:
        self.tokens[who] = self.project.store.add_labeller(who)
        return self.tokens[who]

    def csrf(self, who: str) -> str:
        """The CSRF token the labeller's page carries (read from the page, as the script does)."""
        page = self.client.get(f"/l/{self.tokens[who]}/")
        assert page.status_code == 200
        return re.search(r'data-csrf="([0-9a-f]+)"', page.get_data(as_text=True)).group(1)

    def next(self, who: str, **params) -> dict:
        response = self.client.get(f"/l/{self.tokens[who]}/api/next", query_string=params)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def post(self, who: str, route: str, body, *, csrf: str | None = None):
        csrf = self.csrf(who) if csrf is None else csrf
        return self.client.post(
            f"/l/{self.tokens[who]}/api/{route}", json=body, headers={"X-CSRF-Token": csrf}
        )

    def answer(self, who: str, question: dict, value: int, client_id: str, *, csrf: str | None = None):
        body = {
            "client_id": client_id,
            "attribute": question["attribute"],
            "item_a": question["item_a"],
            "item_b": question.get("item_b"),
            "value": value,
        }
        return self.post(who, "judge", body, csrf=csrf)


@pytest.fixture
def make_site(tmp_path):
    """Build a :class:`Site` on a folder of tiny images; the learner updates in the caller."""
    sites = []

    def make(n_images: int = 10, attributes=("warm",), *, folder=None, **options) -> Site:
        folder = folder if folder is not None else tmp_path / "photos"
        if not folder.exists():
            make_images(folder, n_images)
        options.setdefault("workspace", tmp_path / "workspace")
        options.setdefault("background", False)
        n = len(project_images(folder))
        options.setdefault("embeddings", embeddings_for(n))
        site = Site(LabelProject(folder, list(attributes), **options))
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.project.close()
