"""The labelling app's web side: Flask, server-rendered pages and a small JSON API.

Flask because the app is a handful of server-rendered pages over a synchronous database layer
and a model that lives in the same process: a WSGI app with Jinja templates and no build step
fits, runs under the development server on one machine or any WSGI server for a team, and
its test client drives every request in the tests without a network.

Who may do what: a labeller's private link carries their token (``/l/<token>/``), an admin's
carries the admin token (``/admin/<token>/``). Tokens are compared in constant time against
stored hashes. Every state-changing request is a JSON ``POST`` carrying the page's CSRF token in
``X-CSRF-Token`` (an HMAC of the project secret and the person, compared in constant time);
a browser cannot send that header cross-site without a CORS grant, which the app never gives.
A request's body is limited to 16 KiB; nothing from a request is ever unpickled or loaded as a
model; images are served only if they are one of the project's images, checked again at the
moment they are served (``resolve_image``). Pages are sent with
``Referrer-Policy: no-referrer`` (the token is in the URL), a content security policy allowing
only the app's own scripts and images, and ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import time
import zipfile
from pathlib import Path

from flask import Flask, abort, jsonify, render_template, request, send_file, url_for

from skpercept.label._export import export_reference, export_tables
from skpercept.label._project import LabelProject, UnsafePathError
from skpercept.label._store import Judgment, JudgmentError

#: Largest request body the app accepts (bytes).
MAX_REQUEST_BYTES = 16 * 1024
_CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"


def _csrf(secret: str, who: str) -> str:
    return hmac.new(secret.encode(), f"csrf:{who}".encode(), hashlib.sha256).hexdigest()


def create_app(project: LabelProject) -> Flask:
    """The Flask app of a labelling project.

    Parameters
    ----------
    project : LabelProject

    Returns
    -------
    app : flask.Flask
        Serve it with ``app.run(host='127.0.0.1')`` or any WSGI server; ``skpercept label``
        does that for you.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> from skpercept.label import LabelProject, create_app
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "photos").mkdir()
    >>> for k in range(3):
    ...     Image.new("RGB", (8, 8), (80 * k, 0, 0)).save(root / "photos" / f"{k}.jpg")
    >>> project = LabelProject(root / "photos", ["warm"], background=False)
    >>> token = project.store.add_labeller("ann")
    >>> client = create_app(project).test_client()
    >>> client.get(f"/l/{token}/").status_code, client.get("/l/not-a-token/").status_code
    (200, 404)
    >>> question = client.get(f"/l/{token}/api/next").get_json()
    >>> question["kind"], question["attribute"]
    ('pairs', 'warm')
    >>> project.close()
    """
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.config["skpercept_project"] = project
    store, learner = project.store, project.learner
    secret = store.settings()["secret"]

    def labeller_of(token: str) -> str:
        who = store.labeller_for(token)
        if who is None:
            abort(404)
        return who

    def admin_of(token: str) -> str:
        who = store.labeller_for(token, admin=True)
        if who is None:
            abort(404)
        return who

    def check_post(who: str) -> dict:
        sent = request.headers.get("X-CSRF-Token", "")
        if not hmac.compare_digest(sent.encode(), _csrf(secret, who).encode()):
            abort(403, "missing or wrong CSRF token")
        if not request.is_json:
            abort(415, "send JSON")
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            abort(400, "the body must be a JSON object")
        return body

    @app.after_request
    def headers(response):
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = _CSP
        if not request.path.startswith("/static/") and "/image/" not in request.path:
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(JudgmentError)
    def bad_judgment(exc):
        return jsonify(error=str(exc)), 400

    @app.get("/")
    def home():
        return render_template("home.html"), 200

    # -- a labeller -----------------------------------------------------------------------------
    @app.get("/l/<token>/")
    def label_page(token: str):
        who = labeller_of(token)
        return render_template(
            "label.html",
            who=who,
            token=token,
            csrf=_csrf(secret, who),
            project=project,
        )

    def question_json(token: str, who: str) -> dict:
        attribute = request.args.get("attribute") or learner.next_attribute(who)
        if attribute not in project.attributes:
            abort(400, f"unknown attribute {attribute!r}")
        item_a, item_b = learner.next_question(who, attribute)
        counts = store_counts(who)
        answer = {
            "kind": project.kind,
            "attribute": attribute,
            "item_a": item_a,
            "image_a": url_for("image", token=token, name=item_a),
            "counts": counts,
            "total": sum(counts.values()),
            "model": learner.has_model(attribute),
            "min_judgments": learner.min_judgments,
        }
        if item_b is not None:
            answer.update(item_b=item_b, image_b=url_for("image", token=token, name=item_b))
        else:
            answer.update(levels=project.level_names)
        return answer

    def store_counts(who: str) -> dict:
        frame = store.judgments(labeller=who)
        counts = frame["attribute"].value_counts() if len(frame) else {}
        return {a: int(counts.get(a, 0)) for a in project.attributes}

    @app.get("/l/<token>/api/next")
    def next_question(token: str):
        who = labeller_of(token)
        return jsonify(question_json(token, who))

    @app.post("/l/<token>/api/judge")
    def judge(token: str):
        who = labeller_of(token)
        body = check_post(who)
        try:
            value = int(body["value"])
            judgment = Judgment(
                client_id=str(body["client_id"]),
                labeller=who,
                attribute=str(body["attribute"]),
                kind=project.kind,
                item_a=str(body["item_a"]),
                item_b=None if body.get("item_b") is None else str(body["item_b"]),
                value=value,
            )
        except (KeyError, TypeError, ValueError):
            abort(400, "a judgment needs client_id, attribute, item_a, [item_b,] and an integer value")
        stored = store.record(judgment)  # committed before we answer
        if stored:
            learner.judged(who, judgment.attribute, judgment.item_a, judgment.item_b)
        return jsonify(stored=stored, counts=store_counts(who))

    @app.post("/l/<token>/api/undo")
    def undo(token: str):
        who = labeller_of(token)
        check_post(who)
        row = store.undo(who)
        if row is None:
            return jsonify(undone=None, counts=store_counts(who))
        learner.withdrawn(who, row["attribute"], row["item_a"], row["item_b"])
        undone = {k: row[k] for k in ("client_id", "attribute", "item_a", "item_b", "value")}
        return jsonify(undone=undone, counts=store_counts(who))

    @app.get("/l/<token>/ranked")
    def ranked(token: str):
        who = labeller_of(token)
        attribute = request.args.get("attribute") or project.attributes[0]
        if attribute not in project.attributes:
            abort(400, f"unknown attribute {attribute!r}")
        table = learner.ranking(who, attribute)
        rows = table.to_dict("records")
        for row in rows:
            row["url"] = url_for("image", token=token, name=row["item"])
            if "predicted" in row:
                row["level_name"] = project.level_names[int(row["predicted"]) - 1]
        return render_template(
            "ranked.html",
            who=who,
            token=token,
            attribute=attribute,
            rows=rows,
            project=project,
            n_judgments=store_counts(who)[attribute],
        )

    @app.get("/l/<token>/ranked.csv")
    def ranked_csv(token: str):
        who = labeller_of(token)
        attribute = request.args.get("attribute") or project.attributes[0]
        if attribute not in project.attributes:
            abort(400, f"unknown attribute {attribute!r}")
        text = learner.ranking(who, attribute).to_csv(index=False)
        return app.response_class(
            text,
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{who}-{attribute}.csv"'},
        )

    @app.get("/l/<token>/image/<path:name>")
    def image(token: str, name: str):
        labeller_of(token)
        try:
            path = project.image_path(name)
        except UnsafePathError:
            abort(404)
        return send_file(path, max_age=3600)

    # -- the admin ------------------------------------------------------------------------------
    @app.get("/admin/<token>/")
    def admin_page(token: str):
        who = admin_of(token)
        from skpercept.label._quality import labeller_quality

        return render_template(
            "admin.html",
            token=token,
            csrf=_csrf(secret, "admin:" + who),
            project=project,
            progress=project.progress().to_dict("records"),
            quality=labeller_quality(project),
            learner=learner,
        )

    @app.post("/admin/<token>/api/labellers")
    def add_labeller(token: str):
        who = admin_of(token)
        body = check_post("admin:" + who)
        name = str(body.get("labeller", ""))
        try:
            new_token = store.add_labeller(name)
        except ValueError as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(labeller=name, link=url_for("label_page", token=new_token, _external=True))

    @app.get("/admin/<token>/export.zip")
    def export_zip(token: str):
        admin_of(token)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        (project.workspace / "exports").mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):  # two exports in one second: a folder each
            out = project.workspace / "exports" / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                out.mkdir()
                break
            except FileExistsError:
                continue
        # Both exports name a table "pairs": keep the paths, not one dict of both.
        files = [
            *export_tables(store, project.folder, out).values(),
            *export_reference(store, project.folder, out / "reference").values(),
        ]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in files:
                archive.write(path, Path(path).relative_to(out).as_posix())
        buffer.seek(0)
        return send_file(
            buffer, mimetype="application/zip", as_attachment=True, download_name=f"labels-{stamp}.zip"
        )

    return app
