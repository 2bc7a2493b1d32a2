"""LabelStore: settings fixed at the start, each click stored once and committed before it is
acknowledged, undo that keeps the history, tokens; on SQLite and (when running) PostgreSQL."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy as sa

from skpercept.label import Judgment, JudgmentError, LabelStore
from tests.label.conftest import ITEMS


def click(client_id="click-0001", labeller="ann", attribute="smart", a=ITEMS[0], b=ITEMS[1], value=1):
    return Judgment(client_id, labeller, attribute, "pairs", a, b, value)


def standing(store, **kw):
    frame = store.judgments(**kw)
    return frame[["client_id", "labeller", "attribute", "item_a", "item_b", "value"]].values.tolist()


# -- settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, old, new",
    [
        (dict(attributes=["smart", "calm"]), "['smart', 'warm']", "['smart', 'calm']"),
        (dict(kind="rating", levels=4), "'pairs'", "'rating'"),
    ],
)
def test_configure_again_with_other_settings_is_an_error_naming_both(store, change, old, new):
    settings = dict(attributes=["smart", "warm"], kind="pairs", levels=2, items=ITEMS)
    with pytest.raises(ValueError) as info:
        store.configure(**{**settings, **change})
    assert old in str(info.value) and new in str(info.value)
    assert store.settings()["attributes"] == ["smart", "warm"] and store.settings()["kind"] == "pairs"


def test_configure_rating_levels_cannot_change(store_url):
    store = LabelStore(store_url)
    try:
        store.configure(attributes=["keep"], kind="rating", levels=3, items=ITEMS)
        with pytest.raises(ValueError, match=r"levels=3.*levels=4"):
            store.configure(attributes=["keep"], kind="rating", levels=4, items=ITEMS)
        store.configure(attributes=["keep"], kind="rating", levels=3, items=ITEMS)  # the same: fine
        assert store.settings()["levels"] == 3
    finally:
        store.close()


def test_configure_accepts_new_items_and_keeps_old_ones(store):
    store.configure(attributes=["smart", "warm"], kind="pairs", levels=2, items=["new.jpg", ITEMS[0]])
    items = store.settings()["items"]
    assert set(items) == set(ITEMS) | {"new.jpg"}
    assert store.record(click(a="new.jpg", b=ITEMS[9]))
    secret = store.settings()["secret"]
    store.configure(attributes=["smart", "warm"], kind="pairs", levels=2, items=ITEMS)
    assert store.settings()["secret"] == secret, "the secret is made once"
    assert "new.jpg" in store.settings()["items"]


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(attributes=[], kind="pairs", levels=2), "at least one"),
        (dict(attributes=["a b"], kind="pairs", levels=2), "attributes"),
        (dict(attributes=["warm\n"], kind="pairs", levels=2), "attributes"),
        (dict(attributes=["x"], kind="votes", levels=2), "kind"),
        (dict(attributes=["x"], kind="rating", levels=1), "levels"),
        (dict(attributes=["x"], kind="rating", levels=11), "levels"),
    ],
)
def test_configure_refuses_bad_settings(tmp_path, settings, message):
    store = LabelStore(tmp_path / "labels.sqlite")
    with pytest.raises(ValueError, match=message):
        store.configure(items=ITEMS, **settings)
    assert store.settings() == {}
    store.close()


def test_record_before_configure_is_refused(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite")
    with pytest.raises(JudgmentError, match="not configured"):
        store.record(click())
    store.close()


# -- recording --------------------------------------------------------------------------------
def test_the_same_click_twice_is_stored_once(store):
    assert store.record(click()) is True
    assert store.record(click()) is False
    assert store.record_many([click(), click("click-0002", value=2)]) == [False, True]
    assert standing(store) == [
        ["click-0001", "ann", "smart", ITEMS[0], ITEMS[1], 1],
        ["click-0002", "ann", "smart", ITEMS[0], ITEMS[1], 2],
    ]


@pytest.mark.parametrize(
    "other",
    [dict(value=2), dict(b=ITEMS[2]), dict(labeller="bo"), dict(attribute="warm")],
)
def test_a_client_id_used_for_another_judgment_is_refused(store, other):
    store.record(click())
    with pytest.raises(JudgmentError, match="already used"):
        store.record(click(**other))
    assert standing(store) == [["click-0001", "ann", "smart", ITEMS[0], ITEMS[1], 1]]


@pytest.mark.parametrize(
    "judgment, message",
    [
        (click(a="nope.jpg"), "nope.jpg"),
        (click(b="../secret.jpg"), "secret.jpg"),
        (click(attribute="tall"), "tall"),
        (click(labeller="eve"), "eve"),
        (click(value=0), "value"),
        (click(value=3), "value"),
        (click(b=ITEMS[0]), "two different images"),
        (click(client_id="short"), "client_id"),
        (click(client_id="x" * 65), "client_id"),
        (click(client_id="bad id with spaces"), "client_id"),
        (click(client_id="click-0001\n"), "client_id"),
        (Judgment("click-0001", "ann", "smart", "rating", ITEMS[0], None, 1), "kind"),
    ],
)
def test_judgments_that_do_not_fit_the_project_are_refused(store, judgment, message):
    with pytest.raises(JudgmentError, match=message):
        store.record(judgment)
    assert len(store.judgments(withdrawn=True)) == 0


def test_record_many_is_all_or_none(store):
    with pytest.raises(JudgmentError, match="eve"):
        store.record_many([click("click-0001"), click("click-0002", labeller="eve")])
    assert len(store.judgments(withdrawn=True)) == 0


def test_rating_values_out_of_range_are_refused(store_url):
    store = LabelStore(store_url)
    try:
        store.configure(attributes=["keep"], kind="rating", levels=3, items=ITEMS)
        store.add_labeller("ann")

        def rating(value, b=None, cid="rate-0001"):
            return Judgment(cid, "ann", "keep", "rating", ITEMS[0], b, value)

        for bad, message in [(rating(0), "1-3"), (rating(4), "1-3"), (rating(2, b=ITEMS[1]), "one image")]:
            with pytest.raises(JudgmentError, match=message):
                store.record(bad)
        assert store.record(rating(3)) and not store.record(rating(3))
        assert store.judgments()[["item_a", "value"]].values.tolist() == [[ITEMS[0], 3]]
        assert store.judgments()["item_b"].isna().all()
    finally:
        store.close()


def test_judgments_filter_by_labeller_and_attribute(store):
    store.record_many(
        [click("c-ann-smart"), click("c-ann-warm", attribute="warm"), click("c-bo-smart", labeller="bo")]
    )
    assert [r[0] for r in standing(store, labeller="ann")] == ["c-ann-smart", "c-ann-warm"]
    assert [r[0] for r in standing(store, attribute="smart")] == ["c-ann-smart", "c-bo-smart"]
    assert [r[0] for r in standing(store, labeller="bo", attribute="warm")] == []
    frame = store.judgments()
    assert list(frame["source"]) == ["app"] * 3 and frame["seq"].is_monotonic_increasing


# -- undo -------------------------------------------------------------------------------------
def test_undo_withdraws_the_latest_and_keeps_the_row(store):
    store.record(click("click-0001"))
    store.record(click("click-0002", a=ITEMS[2], b=ITEMS[3], value=2))
    store.record(click("click-bo-01", labeller="bo"))
    undone = store.undo("ann")
    assert undone["client_id"] == "click-0002" and undone["value"] == 2
    assert [r[0] for r in standing(store)] == ["click-0001", "click-bo-01"]
    history = store.judgments(withdrawn=True)
    assert list(history["client_id"]) == ["click-0001", "click-0002", "click-bo-01"]
    assert history.set_index("client_id")["undone_at"].notna().to_dict() == {
        "click-0001": False,
        "click-0002": True,
        "click-bo-01": False,
    }
    assert store.undo("ann")["client_id"] == "click-0001"
    assert store.undo("ann") is None, "nothing of ann's left to undo"
    assert [r[0] for r in standing(store)] == ["click-bo-01"], "bo's judgment is not ann's to undo"
    assert len(store.judgments(withdrawn=True)) == 3
    assert store.undo("nobody") is None
    # An undone click sent again (a late retry) is not stored a second time.
    assert store.record(click("click-0001")) is False


# -- labellers and tokens ---------------------------------------------------------------------
def test_tokens_name_their_labeller_only(store):
    ann = store.tokens["ann"]
    assert store.labeller_for(ann) == "ann" and store.labeller_for(store.tokens["bo"]) == "bo"
    for wrong in (None, "", "x", ann[:-1], ann + "x", ann.upper(), "a" * 129, ann + "a" * 200):
        assert store.labeller_for(wrong) is None, wrong
    assert store.labeller_for(ann, admin=True) is None, "a labeller's token is no admin token"


def test_admin_tokens_only_count_with_admin_true(store):
    admin = store.add_labeller("admin", admin=True)
    assert store.labeller_for(admin, admin=True) == "admin"
    assert store.labeller_for(admin) is None
    assert store.labellers() == ["ann", "bo"], "admins are not labellers"


def test_add_labeller_again_replaces_the_token(store):
    old = store.tokens["ann"]
    new = store.add_labeller("ann")
    assert new != old
    assert store.labeller_for(old) is None and store.labeller_for(new) == "ann"
    assert store.labellers() == ["ann", "bo"]


@pytest.mark.parametrize("bad", ["", "a b", "x" * 65, "../ann", "ann/", "ann\n", "é", "<script>"])
def test_bad_labeller_ids_are_refused(store, bad):
    with pytest.raises(ValueError, match="labeller id"):
        store.add_labeller(bad)
    assert store.labellers() == ["ann", "bo"]


def test_tokens_are_stored_as_hashes_only(store):
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT token_hash FROM skpercept_labellers")).scalars().all()
    assert store.tokens["ann"] not in rows and len(rows) == 2


# -- durability -------------------------------------------------------------------------------
def test_a_judgment_is_visible_to_another_store_once_record_returns(store, store_url):
    other = LabelStore(store_url)
    try:
        assert len(other.judgments()) == 0
        assert store.record(click())
        assert standing(other) == [["click-0001", "ann", "smart", ITEMS[0], ITEMS[1], 1]]
        assert other.record(click()) is False, "the other store knows the click too"
        store.undo("ann")
        assert len(other.judgments()) == 0 and len(other.judgments(withdrawn=True)) == 1
    finally:
        other.close()


def test_sqlite_file_is_in_wal_mode_and_synced(tmp_path):
    path = tmp_path / "sub" / "labels.sqlite"
    store = LabelStore(path)
    store.configure(attributes=["smart"], kind="pairs", levels=2, items=ITEMS)
    store.add_labeller("ann")
    assert store.record(click())
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    # An independent connection (not SQLAlchemy's) sees the WAL file and the committed row.
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("SELECT client_id, value FROM skpercept_judgments").fetchall() == [
            ("click-0001", 1)
        ]
    finally:
        raw.close()
        store.close()


def test_database_url_of_a_path_is_sqlite(tmp_path):
    from skpercept.label import database_url

    assert database_url(tmp_path / "x.sqlite") == f"sqlite:///{(tmp_path / 'x.sqlite').resolve()}"
    assert database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


# -- a database that cannot be opened ---------------------------------------------------------
def _bad_databases(tmp_path):
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    return {
        "no such dialect": ("nosuchdialect://x", ValueError, "knows no database 'nosuchdialect'"),
        "not a URL": ("://x", ValueError, "is not a database URL"),
        "a port that is no number": (
            "postgresql+psycopg://me:s3cret@localhost:port/x",
            ValueError,
            "is not a database URL",
        ),
        "a driver not installed": (
            "postgresql+nosuchdriver://me:s3cret@localhost/x",
            ValueError,
            "knows no database 'postgresql+nosuchdriver'",
        ),
        "an SQLite file under a file": (
            str(tmp_path / "file.txt" / "labels.sqlite"),
            OSError,
            "cannot create the database's folder",
        ),
        "an SQLite file that is a folder": (str(tmp_path / "folder"), OSError, "cannot open the database"),
    }


BAD_DATABASES = [
    "no such dialect",
    "not a URL",
    "a port that is no number",
    "a driver not installed",
    "an SQLite file under a file",
    "an SQLite file that is a folder",
]


@pytest.mark.parametrize("case", BAD_DATABASES)
def test_a_database_that_cannot_be_opened_is_one_clear_error(tmp_path, case):
    url, error, message = _bad_databases(tmp_path)[case]
    with pytest.raises(error) as info:
        LabelStore(url)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert "s3cret" not in text, "the password is masked"
    assert not isinstance(info.value, sa.exc.SQLAlchemyError), "no SQLAlchemy error escapes"


def test_a_postgresql_server_that_does_not_answer_is_an_oserror_without_the_password():
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install skpercept[postgres]")
    # Nothing listens on port 1: the connection is refused at once (no network needed).
    with pytest.raises(OSError) as info:
        LabelStore("postgresql+psycopg://me:s3cret@127.0.0.1:1/labels")
    text = str(info.value)
    assert text.startswith("postgresql+psycopg://me:***@127.0.0.1:1/labels: cannot open the database")
    assert "s3cret" not in text and "\n" not in text


def test_the_shown_url_masks_the_password(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite")
    try:
        assert store.shown_url == store.url  # nothing to mask
    finally:
        store.close()
    from skpercept.label._store import _masked

    assert _masked("postgresql+psycopg://me:s3cret@host/db") == "postgresql+psycopg://me:***@host/db"
    assert (
        _masked("postgresql+psycopg://me:s3cr@t@host:port/db") == "postgresql+psycopg://me:***@host:port/db"
    )
