"""The Flask app through its test client: private links, CSRF, request limits, each click stored
once, undo, images served only if they are the project's, security headers, questions that
never repeat and come from the model once it exists, rating projects, the admin page, export.

Images are tiny real JPEGs and embeddings random, so no model weights are needed; the learner
updates in the request (``background=False``).
"""

from __future__ import annotations

import io
import os
import re
import zipfile

import pandas as pd
import pytest

from skpercept import cli
from skpercept.label import LabelProject
from tests.label.conftest import embeddings_for, make_images


@pytest.fixture
def site(make_site):
    site = make_site(10, min_judgments=8)
    site.add("ann")
    site.add("bo")
    return site


def routes(token: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/l/{token}/"),
        ("GET", f"/l/{token}/api/next"),
        ("POST", f"/l/{token}/api/judge"),
        ("POST", f"/l/{token}/api/undo"),
        ("GET", f"/l/{token}/ranked"),
        ("GET", f"/l/{token}/ranked.csv"),
        ("GET", f"/l/{token}/image/im00.jpg"),
        ("GET", f"/admin/{token}/"),
        ("POST", f"/admin/{token}/api/labellers"),
        ("GET", f"/admin/{token}/export.zip"),
    ]


# -- links ------------------------------------------------------------------------------------
def test_private_link_works(site):
    page = site.client.get(f"/l/{site.tokens['ann']}/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "ann" in text and "data-csrf=" in text
    image = site.client.get(f"/l/{site.tokens['ann']}/image/im03.jpg")
    assert image.status_code == 200
    assert image.data == (site.project.folder / "im03.jpg").read_bytes()
    assert site.client.get("/").status_code == 200


@pytest.mark.parametrize("token", ["not-a-token", "x" * 200, "%00", "admin"])
def test_unknown_token_is_404_on_every_route(site, token):
    csrf = site.csrf("ann")
    for method, url in routes(token):
        response = site.client.open(url, method=method, json={}, headers={"X-CSRF-Token": csrf})
        assert response.status_code == 404, (method, url)


def test_labeller_and_admin_tokens_do_not_open_each_others_pages(site):
    admin = site.project.store.add_labeller("admin", admin=True)
    for method, url in routes(site.tokens["ann"]):
        if url.startswith("/admin/"):
            assert site.client.open(url, method=method, json={}).status_code == 404, url
    assert site.client.get(f"/l/{admin}/").status_code == 404
    assert site.client.get(f"/l/{admin}/api/next").status_code == 404
    assert site.client.get(f"/admin/{admin}/").status_code == 200


def test_a_replaced_token_stops_working(site):
    old = site.tokens["ann"]
    site.add("ann")
    assert site.client.get(f"/l/{old}/").status_code == 404
    assert site.client.get(f"/l/{site.tokens['ann']}/").status_code == 200


# -- posts ------------------------------------------------------------------------------------
def test_posts_need_the_labellers_csrf_token_and_json(site):
    question = site.next("ann")
    body = {
        "client_id": "click-00000001",
        "attribute": "warm",
        "item_a": question["item_a"],
        "item_b": question["item_b"],
        "value": 1,
    }
    url = f"/l/{site.tokens['ann']}/api/judge"
    assert site.client.post(url, json=body).status_code == 403
    assert site.client.post(url, json=body, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    assert site.client.post(url, json=body, headers={"X-CSRF-Token": ""}).status_code == 403
    bo_csrf = site.csrf("bo")
    assert bo_csrf != site.csrf("ann")
    assert site.client.post(url, json=body, headers={"X-CSRF-Token": bo_csrf}).status_code == 403
    undo = f"/l/{site.tokens['ann']}/api/undo"
    assert site.client.post(undo, json={}, headers={"X-CSRF-Token": bo_csrf}).status_code == 403
    csrf = site.csrf("ann")
    form = site.client.post(url, data=body, headers={"X-CSRF-Token": csrf})
    assert form.status_code == 415
    text = site.client.post(
        url, data="client_id=x", headers={"X-CSRF-Token": csrf, "Content-Type": "text/plain"}
    )
    assert text.status_code == 415
    assert site.client.get(url).status_code == 405, "GET changes nothing"
    assert len(site.project.store.judgments(withdrawn=True)) == 0
    assert site.client.post(url, json=body, headers={"X-CSRF-Token": csrf}).status_code == 200
    assert len(site.project.store.judgments()) == 1


def test_a_body_over_16_kib_is_refused(site):
    csrf = site.csrf("ann")
    big = {
        "client_id": "click-00000001",
        "attribute": "warm",
        "item_a": "im00.jpg",
        "item_b": "im01.jpg",
        "value": 1,
        "padding": "x" * (17 * 1024),
    }
    response = site.post("ann", "judge", big, csrf=csrf)
    assert response.status_code == 413
    assert len(site.project.store.judgments(withdrawn=True)) == 0


@pytest.mark.parametrize(
    "body",
    [
        [1, 2],
        {"client_id": "click-00000001"},
        {
            "client_id": "click-00000001",
            "attribute": "warm",
            "item_a": "im00.jpg",
            "item_b": "im01.jpg",
            "value": "one",
        },
        {
            "client_id": "click-00000001",
            "attribute": "warm",
            "item_a": "im00.jpg",
            "item_b": "im00.jpg",
            "value": 1,
        },
        {
            "client_id": "click-00000001",
            "attribute": "warm",
            "item_a": "../im00.jpg",
            "item_b": "im01.jpg",
            "value": 1,
        },
        {
            "client_id": "click-00000001",
            "attribute": "tall",
            "item_a": "im00.jpg",
            "item_b": "im01.jpg",
            "value": 1,
        },
        {
            "client_id": "click-00000001",
            "attribute": "warm",
            "item_a": "im00.jpg",
            "item_b": "im01.jpg",
            "value": 5,
        },
    ],
)
def test_bad_judgments_are_400_and_not_stored(site, body):
    assert site.post("ann", "judge", body).status_code == 400
    assert len(site.project.store.judgments(withdrawn=True)) == 0


def test_the_same_click_posted_twice_is_stored_once(site):
    question = site.next("ann")
    first = site.answer("ann", question, 1, "click-00000001")
    again = site.answer("ann", question, 1, "click-00000001")
    assert first.status_code == again.status_code == 200
    assert first.get_json()["stored"] is True and again.get_json()["stored"] is False
    assert first.get_json()["counts"] == again.get_json()["counts"] == {"warm": 1}
    assert len(site.project.store.judgments(withdrawn=True)) == 1
    assert site.next("ann")["counts"] == {"warm": 1}
    changed = site.answer("ann", question, 2, "click-00000001")
    assert changed.status_code == 400 and "already used" in changed.get_json()["error"]


def test_undo_withdraws_the_latest_judgment(site):
    q1 = site.next("ann")
    site.answer("ann", q1, 1, "click-00000001")
    q2 = site.next("ann")
    site.answer("ann", q2, 2, "click-00000002")
    response = site.post("ann", "undo", {})
    assert response.status_code == 200
    undone = response.get_json()["undone"]
    assert undone["client_id"] == "click-00000002" and undone["value"] == 2
    assert (undone["item_a"], undone["item_b"]) == (q2["item_a"], q2["item_b"])
    assert response.get_json()["counts"] == {"warm": 1}
    # The undone question is asked again next.
    again = site.next("ann")
    assert {again["item_a"], again["item_b"]} == {q2["item_a"], q2["item_b"]}
    assert site.post("ann", "undo", {}).get_json()["undone"]["client_id"] == "click-00000001"
    nothing = site.post("ann", "undo", {}).get_json()
    assert nothing["undone"] is None and nothing["counts"] == {"warm": 0}
    assert len(site.project.store.judgments(withdrawn=True)) == 2


def test_a_labeller_sees_only_their_own_counts(site):
    for k in range(3):
        site.answer("ann", site.next("ann"), 1, f"ann-click-{k:04d}")
    site.answer("bo", site.next("bo"), 2, "bo-click-0000")
    assert site.next("ann")["counts"] == {"warm": 3} and site.next("ann")["total"] == 3
    assert site.next("bo")["counts"] == {"warm": 1}
    # bo's undo withdraws bo's judgment, not ann's later ones
    assert site.post("bo", "undo", {}).get_json()["undone"]["client_id"] == "bo-click-0000"
    assert site.next("ann")["counts"] == {"warm": 3}


# -- images -----------------------------------------------------------------------------------
@pytest.fixture
def secret(tmp_path):
    """An image outside the photo folder, which must never be served."""
    make_images(tmp_path / "outside", 1)
    path = tmp_path / "outside" / "im00.jpg"
    path.write_bytes(path.read_bytes() + b"SECRET")
    return path


def refused(site, who: str, name: str) -> None:
    response = site.client.get(f"/l/{site.tokens[who]}/image/{name}", follow_redirects=True)
    assert response.status_code == 404, (name, response.status_code)
    assert b"SECRET" not in response.data


@pytest.mark.parametrize(
    "name",
    [
        "../outside/im00.jpg",
        "../../outside/im00.jpg",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "%2e%2e/outside/im00.jpg",
        "%2e%2e%2foutside%2fim00.jpg",
        "..%2foutside%2fim00.jpg",
        "..%5coutside%5cim00.jpg",
        "im00.jpg/../../outside/im00.jpg",
        "./im00.jpg",
        "notes.txt",
        "missing.jpg",
        "IM00.JPG",
        ".hidden.jpg",
        "im00.jpg%00",
    ],
)
def test_image_route_serves_only_the_projects_images(make_site, tmp_path, secret, name):
    folder = tmp_path / "photos"
    make_images(folder, 4)
    (folder / "notes.txt").write_text("SECRET")
    (folder / ".hidden.jpg").write_bytes((folder / "im00.jpg").read_bytes() + b"SECRET")
    site = make_site(folder=folder)
    site.add("ann")
    assert ".hidden.jpg" not in site.project.items and "notes.txt" not in site.project.items
    refused(site, "ann", name)


def test_a_link_to_a_file_outside_is_not_served(make_site, tmp_path, secret):
    folder = tmp_path / "photos"
    make_images(folder, 4)
    os.symlink(secret, folder / "link.jpg")
    os.symlink(secret.parent, folder / "linkdir")
    site = make_site(folder=folder)
    site.add("ann")
    assert "link.jpg" not in site.project.items
    refused(site, "ann", "link.jpg")
    refused(site, "ann", "linkdir/im00.jpg")


def test_a_link_swapped_in_after_the_start_is_not_served(make_site, tmp_path, secret):
    folder = tmp_path / "photos"
    make_images(folder, 4)
    site = make_site(folder=folder)
    site.add("ann")
    assert site.client.get(f"/l/{site.tokens['ann']}/image/im01.jpg").status_code == 200
    (folder / "im01.jpg").unlink()
    os.symlink(secret, folder / "im01.jpg")
    refused(site, "ann", "im01.jpg")
    (folder / "im02.jpg").unlink()  # a file gone since the start
    refused(site, "ann", "im02.jpg")


def test_images_in_subfolders_are_served(make_site, tmp_path):
    folder = tmp_path / "photos"
    make_images(folder / "trip", 3)
    site = make_site(folder=folder)
    site.add("ann")
    assert site.project.items == ["trip/im00.jpg", "trip/im01.jpg", "trip/im02.jpg"]
    assert site.client.get(f"/l/{site.tokens['ann']}/image/trip/im01.jpg").status_code == 200
    refused(site, "ann", "trip/../trip/im01.jpg")


# -- headers ----------------------------------------------------------------------------------
def test_security_headers_on_pages_json_images_and_errors(site):
    token = site.tokens["ann"]
    for url in (
        f"/l/{token}/",
        f"/l/{token}/api/next",
        f"/l/{token}/image/im00.jpg",
        "/l/nope/",
        f"/l/{token}/ranked",
    ):
        response = site.client.get(url)
        assert response.headers["Referrer-Policy"] == "no-referrer", url
        assert response.headers["X-Content-Type-Options"] == "nosniff", url
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
        assert "unsafe-inline" not in csp
        assert "Access-Control-Allow-Origin" not in response.headers
    assert site.client.get(f"/l/{token}/").headers["Cache-Control"] == "no-store"
    assert site.client.get(f"/l/{token}/api/next").headers["Cache-Control"] == "no-store"


# -- questions --------------------------------------------------------------------------------
def test_questions_never_repeat_a_judged_pair_and_come_from_the_model(make_site):
    site = make_site(explore=0.0)  # every question the model's once it exists
    site.add("ann")
    learner = site.project.learner
    seen = set()
    for k in range(30):
        question = site.next("ann")
        pair = frozenset((question["item_a"], question["item_b"]))
        assert len(pair) == 2 and pair not in seen, f"question {k} repeats {sorted(pair)}"
        seen.add(pair)
        value = 1 if question["item_a"] > question["item_b"] else 2  # a consistent taste
        assert site.answer("ann", question, value, f"click-{k:08d}").get_json()["stored"]
        if k + 1 == 7:
            assert not learner.has_model("warm") and not question["model"]
        if k + 1 == 8:
            assert learner.has_model("warm") and learner.updates > 0
            # From now on every question is the model's: random questions would fail.
            learner._random_question = lambda *_: pytest.fail("a random question after the model exists")
    assert site.next("ann")["model"] is True
    assert len(site.project.store.judgments()) == 30
    ranking = site.client.get(f"/l/{site.tokens['ann']}/ranked.csv")
    table = pd.read_csv(io.StringIO(ranking.get_data(as_text=True)))
    assert sorted(table["item"]) == site.project.items and list(table["rank"]) == list(range(1, 11))


@pytest.mark.parametrize("kind", ["pairs", "rating"])
def test_random_questions_before_the_model_never_repeat(make_site, kind):
    options = dict(kind="rating", levels=3) if kind == "rating" else {}
    site = make_site(4, min_judgments=100, **options)
    site.add("ann")
    asked = []
    for k in range(6 if kind == "pairs" else 4):
        question = site.next("ann")
        asked.append(frozenset((question["item_a"], question.get("item_b"))))
        site.answer("ann", question, 1, f"click-{k:08d}")
    assert len(set(asked)) == len(asked), "every pair (image) asked once before any is asked again"
    assert not site.project.learner.has_model("warm")


def test_questions_do_not_repeat_a_pair_judged_before_a_restart(make_site, tmp_path):
    site = make_site(4, min_judgments=100)
    site.add("ann")
    for k in range(5):
        site.answer("ann", site.next("ann"), 1, f"click-{k:08d}")
    judged = {frozenset(p) for p in site.project.store.judgments()[["item_a", "item_b"]].values.tolist()}
    site.project.close()
    again = LabelProject(
        tmp_path / "photos",
        ["warm"],
        workspace=tmp_path / "workspace",
        embeddings=embeddings_for(4),
        background=False,
        min_judgments=100,
    )
    try:
        left = again.learner.next_question("ann", "warm")
        assert frozenset(left) not in judged, "6 pairs of 4 images, 5 judged: the one left is asked"
    finally:
        again.close()


def test_next_question_for_an_unknown_attribute_is_400(site):
    assert site.client.get(f"/l/{site.tokens['ann']}/api/next?attribute=tall").status_code == 400
    assert site.client.get(f"/l/{site.tokens['ann']}/ranked?attribute=tall").status_code == 400


def test_ranked_page_without_a_model_says_so(site):
    page = site.client.get(f"/l/{site.tokens['ann']}/ranked").get_data(as_text=True)
    assert 'id="no-model"' in page


def test_background_updates_reach_the_model(make_site):
    site = make_site(10, min_judgments=8, background=True)
    site.add("ann")
    for k in range(10):
        site.answer("ann", site.next("ann"), 1, f"click-{k:08d}")
    site.project.learner.wait()
    assert site.project.learner.has_model("warm") and site.project.learner.last_error is None


def test_the_pair_model_holds_out_judgments_not_images(make_site):
    # an image hold-out of a few dozen pairs would keep one or two and drop those straddling it
    site = make_site(10, min_judgments=8)
    site.add("ann")
    for k in range(30):
        site.answer("ann", site.next("ann"), 1 + k % 2, f"click-{k:08d}")
    head = site.project.learner.models["warm"][-1]
    assert head.validation_split == "rows" and head.n_straddling_ == 0


# -- ratings ----------------------------------------------------------------------------------
@pytest.fixture
def rating_site(make_site):
    site = make_site(10, ["keep"], kind="rating", levels=2, level_names=["delete", "keep"], min_judgments=8)
    site.add("ann")
    return site


def test_rating_project_asks_one_image_with_its_levels(rating_site):
    question = rating_site.next("ann")
    assert question["kind"] == "rating" and "item_b" not in question
    assert question["levels"] == ["delete", "keep"]
    assert question["image_a"].endswith(f"/image/{question['item_a']}")
    page = rating_site.client.get(f"/l/{rating_site.tokens['ann']}/").get_data(as_text=True)
    assert "delete" in page and "keep" in page
    bad = rating_site.answer("ann", question, 3, "rate-00000001")
    assert bad.status_code == 400


def test_rating_project_ranks_with_predicted_keep_or_delete(rating_site):
    seen = []
    for k in range(10):
        question = rating_site.next("ann")
        assert question["item_a"] not in seen, "an image is rated once until all are"
        seen.append(question["item_a"])
        value = 2 if int(question["item_a"][2:4]) >= 5 else 1
        assert rating_site.answer("ann", question, value, f"rate-{k:08d}").get_json()["stored"]
    assert rating_site.project.learner.has_model("keep")
    page = rating_site.client.get(f"/l/{rating_site.tokens['ann']}/ranked").get_data(as_text=True)
    assert page.count('class="photo"') == 10
    predictions = re.findall(r'class="prediction level-(\d)">(\w+)</span>', page)
    assert len(predictions) == 10
    assert all({"1": "delete", "2": "keep"}[level] == name for level, name in predictions)
    assert "% sure" in page
    csv = rating_site.client.get(f"/l/{rating_site.tokens['ann']}/ranked.csv")
    assert csv.mimetype == "text/csv" and "attachment" in csv.headers["Content-Disposition"]
    table = pd.read_csv(io.StringIO(csv.get_data(as_text=True)))
    assert list(table.columns) == ["item", "rank", "score", "predicted", "confidence", "p_1", "p_2"]
    assert table["predicted"].isin([1, 2]).all() and table["confidence"].between(0.5, 1).all()
    assert ((table["p_1"] + table["p_2"]) - 1).abs().max() < 1e-6
    assert table["score"].is_monotonic_decreasing


# -- admin ------------------------------------------------------------------------------------
@pytest.fixture
def admin(site):
    token = site.project.store.add_labeller("admin", admin=True)
    page = site.client.get(f"/admin/{token}/")
    assert page.status_code == 200
    csrf = re.search(r'data-csrf="([0-9a-f]+)"', page.get_data(as_text=True)).group(1)
    return token, csrf


def test_admin_page_lists_labellers_and_quality(site, admin):
    token, _ = admin
    for k in range(3):
        site.answer("ann", site.next("ann"), 1, f"ann-click-{k:04d}")
    page = site.client.get(f"/admin/{token}/").get_data(as_text=True)
    progress = page.split('id="progress-table"')[1].split("</table>")[0]
    assert "<td>ann</td><td>3</td>" in progress and "<td>bo</td><td>0</td>" in progress
    quality = page.split('id="quality-table"')[1].split("</table>")[0]
    assert 'data-labeller="ann"' in quality and 'data-labeller="bo"' in quality
    assert 'data-labeller="admin"' not in quality


def test_admin_adds_a_labeller_with_its_csrf_token_only(site, admin):
    token, csrf = admin
    url = f"/admin/{token}/api/labellers"
    assert site.client.post(url, json={"labeller": "cy"}).status_code == 403
    assert (
        site.client.post(url, json={"labeller": "cy"}, headers={"X-CSRF-Token": site.csrf("ann")}).status_code
        == 403
    )
    assert site.client.post(url, data="labeller=cy", headers={"X-CSRF-Token": csrf}).status_code == 415
    assert "cy" not in site.project.store.labellers()
    bad = site.client.post(url, json={"labeller": "c y"}, headers={"X-CSRF-Token": csrf})
    assert bad.status_code == 400 and "labeller id" in bad.get_json()["error"]
    response = site.client.post(url, json={"labeller": "cy"}, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    link = response.get_json()["link"]
    assert response.get_json()["labeller"] == "cy" and "/l/" in link
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    page = site.client.get(path)
    assert page.status_code == 200 and "cy" in page.get_data(as_text=True)
    assert site.project.store.labellers() == ["ann", "bo", "cy"]
    # The admin token itself is no labeller's link, and the admin's CSRF token no labeller's.
    assert (
        site.client.post(
            f"/l/{site.tokens['ann']}/api/undo", json={}, headers={"X-CSRF-Token": csrf}
        ).status_code
        == 403
    )


def test_export_zip_holds_the_tables(site, admin):
    token, _ = admin
    for k in range(3):
        site.answer("ann", site.next("ann"), 1, f"ann-click-{k:04d}")
    site.post("ann", "undo", {})
    response = site.client.get(f"/admin/{token}/export.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = set(archive.namelist())
    assert {
        "pairs.csv",
        "reference/big_data.xlsx",
        "reference/big_compares.xlsx",
        "reference/big_label.xlsx",
        "reference/big_compare_label.xlsx",
    } <= names
    pairs = pd.read_csv(archive.open("pairs.csv"))
    assert list(pairs["judgment_id"]) == ["ann-click-0000", "ann-click-0001"], "the undone click is left out"
    assert not any((site.project.folder / n).exists() for n in ("pairs.csv", "reference")), (
        "nothing in the folder"
    )


# -- listening --------------------------------------------------------------------------------
def test_the_command_listens_on_127_0_0_1_by_default(capsys):
    assert cli.main(["label", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "127.0.0.1" in text and "--host" in text
    options = cli.build_parser().parse_args(["label", "photos", "--attributes", "warm"])
    assert options.host == "127.0.0.1"


def test_creating_the_app_opens_no_socket(site, monkeypatch):
    import socket

    def no(*args, **kwargs):
        raise AssertionError("the app opened a socket")

    monkeypatch.setattr(socket.socket, "bind", no)
    monkeypatch.setattr(socket.socket, "listen", no)
    from skpercept.label import create_app

    create_app(site.project).test_client().get(f"/l/{site.tokens['ann']}/")


def test_export_zip_of_a_rating_project_holds_ratings_csv(rating_site):
    token = rating_site.project.store.add_labeller("admin", admin=True)
    rating_site.answer("ann", rating_site.next("ann"), 2, "rate-00000001")
    archive = zipfile.ZipFile(io.BytesIO(rating_site.client.get(f"/admin/{token}/export.zip").data))
    assert {"ratings.csv", "reference/big_label.xlsx", "reference/big_data.xlsx"} <= set(archive.namelist())
    ratings = pd.read_csv(archive.open("ratings.csv"))
    assert ratings[["user_id", "keep"]].values.tolist() == [["ann", 2.0]]
