"""Where the labelling app keeps its judgments: one database layer for SQLite and PostgreSQL.

Every judgment is one row, committed (and, on SQLite, synced to disk: WAL with
``synchronous=FULL``) before the page is told it was stored. Its ``client_id`` is made by the
page for each click, and is unique: a click sent twice (a retry after a lost answer, a double
submit) is stored once. An undo marks the labeller's latest judgment as withdrawn
(``undone_at``); nothing is ever deleted, so the table is also the history of every click.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

#: The kinds of judgment a labelling project asks for: which of two, or a rating 1–N.
KINDS = ("pairs", "rating")
#: What a labeller id may hold: letters, digits, ``.``, ``_``, ``-`` and ``@``, at most 64.
LABELLER_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
#: What a client id may hold (the page makes a UUID per click).
CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")
#: Judgment table columns, in the order :meth:`LabelStore.judgments` returns them.
JUDGMENT_COLUMNS = (
    "seq",
    "client_id",
    "labeller",
    "attribute",
    "kind",
    "item_a",
    "item_b",
    "value",
    "created_at",
    "undone_at",
    "source",
)

_metadata = sa.MetaData()
_settings = sa.Table(
    "skpercept_settings",
    _metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_labellers = sa.Table(
    "skpercept_labellers",
    _metadata,
    sa.Column("labeller", sa.String(64), primary_key=True),
    sa.Column("token_hash", sa.String(64), nullable=False),
    sa.Column("admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.Float, nullable=False),
)
_judgments = sa.Table(
    "skpercept_judgments",
    _metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("client_id", sa.String(64), nullable=False, unique=True),
    sa.Column("labeller", sa.String(64), sa.ForeignKey("skpercept_labellers.labeller"), nullable=False),
    sa.Column("attribute", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("item_a", sa.Text, nullable=False),
    sa.Column("item_b", sa.Text, nullable=True),
    sa.Column("value", sa.Integer, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("undone_at", sa.Float, nullable=True),
    sa.Column("source", sa.String(16), nullable=False, default="app"),
    sa.Index("skpercept_judgments_by_labeller", "labeller", "seq"),
)


class JudgmentError(ValueError):
    """A judgment the store refuses: unknown labeller, item or attribute, a value out of range,
    or a client id already used for a different judgment.

    Examples
    --------
    >>> from skpercept.label import JudgmentError
    >>> issubclass(JudgmentError, ValueError)
    True
    """


@dataclass(frozen=True)
class Judgment:
    """One click: ``value`` is 1 (``item_a`` chosen) or 2 (``item_b``) for a pair, the level
    1–N for a rating (``item_b`` is None).

    Examples
    --------
    >>> from skpercept.label import Judgment
    >>> Judgment("c-0001-abcd", "ann", "smart", "pairs", "a.jpg", "b.jpg", 1).value
    1
    """

    client_id: str
    labeller: str
    attribute: str
    kind: str
    item_a: str
    item_b: str | None
    value: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a commit is on disk before it returns
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


#: Seconds a PostgreSQL server has to accept a connection before the store gives up on it.
CONNECT_TIMEOUT = 5


def _masked(url: str) -> str:
    """``url`` with its password replaced by ``***`` (also when SQLAlchemy cannot parse it)."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):  # a URL SQLAlchemy cannot read: mask by its shape
        return re.sub(r"(://[^/@:]*:)[^/]*@", r"\1***@", url)


def _reason(exc: BaseException, password: str | None) -> str:
    """The first line of a driver's error, without the password should it quote it."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    reason = text[0].strip() if text else type(exc).__name__
    return reason.replace(password, "***") if password else reason


def _engine(url: str, shown: str) -> sa.Engine:
    """An engine for ``url``; a URL SQLAlchemy cannot read or has no driver for is a ValueError."""
    try:
        parsed = sa.engine.make_url(url)
    except (sa.exc.ArgumentError, ValueError) as exc:
        raise ValueError(
            f"{shown} is not a database URL ({_reason(exc, None)}); give an SQLite file or a URL such as "
            "postgresql+psycopg://user@host/database."
        ) from None
    options = {}
    # The driver as named (``get_driver_name`` would load the dialect, maybe an unknown one).
    if parsed.drivername in ("postgresql+psycopg", "postgresql+psycopg2", "postgresql") and (
        "connect_timeout" not in parsed.query
    ):
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT}
    try:
        return sa.create_engine(parsed, future=True, **options)
    except sa.exc.NoSuchModuleError:
        raise ValueError(
            f"{shown}: SQLAlchemy knows no database {parsed.drivername!r}; give an SQLite file or a URL "
            "such as postgresql+psycopg://user@host/database."
        ) from None
    except ModuleNotFoundError as exc:
        raise ValueError(
            f"{shown}: the database driver {exc.name!r} is not installed (for PostgreSQL: pip install "
            "'skpercept[postgres]')."
        ) from None
    except sa.exc.ArgumentError as exc:
        raise ValueError(f"{shown}: {_reason(exc, parsed.password)}.") from None


def database_url(path_or_url: str | Path) -> str:
    """A SQLAlchemy URL: a URL as given, a file path as an SQLite URL.

    Examples
    --------
    >>> from skpercept.label import database_url
    >>> database_url("/tmp/labels.sqlite")
    'sqlite:////tmp/labels.sqlite'
    >>> database_url("postgresql+psycopg://me@localhost/labels")
    'postgresql+psycopg://me@localhost/labels'
    """
    text = str(path_or_url)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


class LabelStore:
    """The labelling project's database: its settings, labellers and judgments.

    Parameters
    ----------
    url : str or path
        A SQLAlchemy URL (``sqlite:///path``, ``postgresql+psycopg://user@host/db``) or the path
        of an SQLite file (created with its folder when missing). A URL that is not one, or
        names a database SQLAlchemy has no driver for, is a ValueError; a database that cannot
        be opened (a server that does not answer within ``CONNECT_TIMEOUT`` = 5 seconds, a
        file that cannot be created) an OSError. Their messages, like ``shown_url``, never
        show the URL's password.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from skpercept.label import Judgment, LabelStore
    >>> store = LabelStore(Path(tempfile.mkdtemp()) / "labels.sqlite")
    >>> store.configure(attributes=["smart"], kind="pairs", levels=2, items=["a.jpg", "b.jpg"])
    >>> token = store.add_labeller("ann")
    >>> store.labeller_for(token)
    'ann'
    >>> click = Judgment("c-0001-abcd", "ann", "smart", "pairs", "a.jpg", "b.jpg", 2)
    >>> store.record(click), store.record(click)  # the second is the same click again
    (True, False)
    >>> store.judgments()[["labeller", "item_a", "item_b", "value"]].values.tolist()
    [['ann', 'a.jpg', 'b.jpg', 2]]
    """

    def __init__(self, url: str | Path) -> None:
        self.url = database_url(url)
        #: The URL to show (in messages, on the console): its password masked.
        self.shown_url = _masked(self.url)
        if self.url.startswith("sqlite:///"):
            folder = Path(self.url[len("sqlite:///") :]).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                why = "a file is in the way" if isinstance(exc, FileExistsError) else exc.strerror or exc
                raise OSError(
                    f"{self.shown_url}: cannot create the database's folder {folder}: {why}."
                ) from None
        self.engine = _engine(self.url, self.shown_url)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        try:
            _metadata.create_all(self.engine)
        except sa.exc.OperationalError as exc:
            self.engine.dispose()
            raise OSError(
                f"{self.shown_url}: cannot open the database: {_reason(exc, self.engine.url.password)}."
            ) from None

    def close(self) -> None:
        """Close the database connections."""
        self.engine.dispose()

    # -- settings ---------------------------------------------------------------------------
    def configure(self, *, attributes: Sequence[str], kind: str, levels: int, items: Sequence[str]) -> None:
        """Store the project's attributes, kind, levels and items; a second call must agree.

        A project is fixed when first configured, so that judgments never change meaning:
        asking for other attributes, another kind or other levels on an existing database is
        an error naming both. New items (photos added to the folder) are welcome.
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}.")
        if not attributes:
            raise ValueError("attributes: name at least one attribute to ask about.")
        bad = [a for a in attributes if not LABELLER_ID.fullmatch(a)]
        if bad:
            raise ValueError(f"attributes {bad}: use letters, digits, '.', '_', '-' (at most 64).")
        if kind == "rating" and not 2 <= int(levels) <= 10:
            raise ValueError(f"levels must be between 2 and 10 for ratings, got {levels}.")
        wanted = {
            "attributes": list(attributes),
            "kind": kind,
            "levels": int(levels) if kind == "rating" else 2,
        }
        current = self.settings()
        for key, value in wanted.items():
            if key in current and current[key] != value:
                raise ValueError(
                    f"{self.shown_url}: this project was started with {key}={current[key]!r}; "
                    f"got {key}={value!r}. Use another --db for a new project."
                )
        wanted["items"] = sorted(set(current.get("items", [])) | set(items))
        if "secret" not in current:
            wanted["secret"] = secrets.token_hex(32)
        with self.engine.begin() as conn:
            for key, value in wanted.items():
                conn.execute(sa.delete(_settings).where(_settings.c.key == key))
                conn.execute(sa.insert(_settings).values(key=key, value=json.dumps(value)))

    def settings(self) -> dict:
        """The stored settings (empty before :meth:`configure`)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_settings.c.key, _settings.c.value)).all()
        return {key: json.loads(value) for key, value in rows}

    # -- labellers --------------------------------------------------------------------------
    def add_labeller(self, labeller: str, *, admin: bool = False) -> str:
        """Add a labeller (or give a known one a new token) and return their secret token.

        Only a hash of the token is stored: a lost token cannot be read back, only replaced.
        """
        if not LABELLER_ID.fullmatch(str(labeller)):
            raise ValueError(f"labeller id {labeller!r}: use 1-64 letters, digits, '.', '_', '-' or '@'.")
        token = secrets.token_urlsafe(24)
        now = time.time()
        with self.engine.begin() as conn:
            known = conn.execute(
                sa.select(_labellers.c.labeller).where(_labellers.c.labeller == labeller)
            ).first()
            if known:
                conn.execute(
                    sa.update(_labellers)
                    .where(_labellers.c.labeller == labeller)
                    .values(token_hash=_hash(token), admin=admin)
                )
            else:
                conn.execute(
                    sa.insert(_labellers).values(
                        labeller=labeller, token_hash=_hash(token), admin=admin, created_at=now
                    )
                )
        return token

    def labellers(self) -> list[str]:
        """The labellers (admins excluded), in the order they were added."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_labellers.c.labeller)
                .where(_labellers.c.admin.is_(False))
                .order_by(_labellers.c.created_at, _labellers.c.labeller)
            ).all()
        return [row[0] for row in rows]

    def labeller_for(self, token: str | None, *, admin: bool = False) -> str | None:
        """The labeller (or admin, with ``admin=True``) whose token this is, else None.

        The token's hash is compared with every stored hash in constant time, so the answer's
        timing says nothing about how close a guess was.
        """
        if not token or len(token) > 128:
            return None
        digest = _hash(token)
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_labellers.c.labeller, _labellers.c.token_hash, _labellers.c.admin)
            ).all()
        found = None
        for labeller, stored, is_admin in rows:
            if hmac.compare_digest(stored, digest) and bool(is_admin) == admin:
                found = labeller
        return found

    # -- judgments --------------------------------------------------------------------------
    def _check(self, j: Judgment, settings: dict, items: set[str]) -> None:
        if not CLIENT_ID.fullmatch(str(j.client_id)):
            raise JudgmentError(f"client_id {j.client_id!r}: 8-64 letters, digits, '.', '_', ':' or '-'.")
        if j.attribute not in settings["attributes"]:
            raise JudgmentError(
                f"attribute {j.attribute!r}: this project asks about {settings['attributes']}."
            )
        if j.kind != settings["kind"]:
            raise JudgmentError(f"kind {j.kind!r}: this project asks for {settings['kind']}.")
        for item in (j.item_a,) + ((j.item_b,) if j.kind == "pairs" else ()):
            if item not in items:
                raise JudgmentError(f"item {item!r} is not one of this project's images.")
        if j.kind == "pairs":
            if j.item_a == j.item_b:
                raise JudgmentError("a pair needs two different images.")
            if j.value not in (1, 2):
                raise JudgmentError(f"a pair's value is 1 (first image) or 2 (second), got {j.value!r}.")
        elif j.item_b is not None:
            raise JudgmentError("a rating names one image.")
        elif not 1 <= j.value <= settings["levels"]:
            raise JudgmentError(f"a rating is 1-{settings['levels']}, got {j.value!r}.")

    def record(self, judgment: Judgment, *, source: str = "app", created_at: float | None = None) -> bool:
        """Commit one judgment; True when stored, False when this click was already stored.

        Raises :class:`JudgmentError` for a judgment that does not fit the project, or a
        ``client_id`` already used for a different judgment.
        """
        return self.record_many([judgment], source=source, created_at=created_at)[0]

    def record_many(
        self, judgments: Iterable[Judgment], *, source: str = "app", created_at=None
    ) -> list[bool]:
        """Commit several judgments in one transaction (all or none); see :meth:`record`."""
        judgments = list(judgments)
        settings = self.settings()
        if not settings:
            raise JudgmentError(f"{self.shown_url}: the project is not configured yet.")
        items = set(settings["items"])
        for j in judgments:
            self._check(j, settings, items)
        times = created_at if isinstance(created_at, Sequence) else [created_at] * len(judgments)
        stored = []
        with self.engine.begin() as conn:
            known = set(conn.execute(sa.select(_labellers.c.labeller)).scalars())
            for j, when in zip(judgments, times):
                if j.labeller not in known:
                    raise JudgmentError(f"labeller {j.labeller!r} is not in this project.")
                old = conn.execute(sa.select(_judgments).where(_judgments.c.client_id == j.client_id)).first()
                if old is not None:
                    same = (old.labeller, old.attribute, old.kind, old.item_a, old.item_b, old.value) == (
                        j.labeller,
                        j.attribute,
                        j.kind,
                        j.item_a,
                        j.item_b,
                        j.value,
                    )
                    if not same:
                        raise JudgmentError(
                            f"client_id {j.client_id!r} was already used for another judgment."
                        )
                    stored.append(False)
                    continue
                conn.execute(
                    sa.insert(_judgments).values(
                        client_id=j.client_id,
                        labeller=j.labeller,
                        attribute=j.attribute,
                        kind=j.kind,
                        item_a=j.item_a,
                        item_b=j.item_b,
                        value=int(j.value),
                        created_at=time.time() if when is None else float(when),
                        source=source,
                    )
                )
                stored.append(True)
        return stored

    def undo(self, labeller: str) -> dict | None:
        """Withdraw the labeller's latest judgment still standing; return it (None: none left)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(_judgments)
                .where(_judgments.c.labeller == labeller, _judgments.c.undone_at.is_(None))
                .order_by(_judgments.c.seq.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            conn.execute(
                sa.update(_judgments).where(_judgments.c.seq == row.seq).values(undone_at=time.time())
            )
        return dict(row._mapping)

    def judgments(
        self, labeller: str | None = None, attribute: str | None = None, *, withdrawn: bool = False
    ) -> pd.DataFrame:
        """The judgments standing (and, with ``withdrawn=True``, the undone ones too), oldest first."""
        query = sa.select(_judgments).order_by(_judgments.c.seq)
        if labeller is not None:
            query = query.where(_judgments.c.labeller == labeller)
        if attribute is not None:
            query = query.where(_judgments.c.attribute == attribute)
        if not withdrawn:
            query = query.where(_judgments.c.undone_at.is_(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame([tuple(r) for r in rows], columns=list(JUDGMENT_COLUMNS))
        return frame.astype({"seq": "int64", "value": "int64"}) if len(frame) else frame
