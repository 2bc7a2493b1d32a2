"""The labelling app in a real browser: a whole round in headless Chromium.

The Flask test client proves the API; only a browser proves that the page's script fetches a
question, shows both images, sends each click (buttons and keys) once, undoes, and that the
ranked album and the admin page render. The app is served by werkzeug on 127.0.0.1 (port 0) in
a background thread; Chromium is the system's (Debian: ``apt-get install chromium
chromium-driver``), driven by selenium through the system's chromedriver, so nothing is
downloaded. Screenshots go to ``$SKPERCEPT_SCREENSHOTS`` when set (else the test's tmp_path)
and must show a picture, not a blank page.
"""

from __future__ import annotations

import colorsys
import contextlib
import io
import os
import shutil
import threading
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("flask", reason="the labelling app needs flask (pip install skpercept[label])")
pytest.importorskip("sqlalchemy", reason="the labelling app needs sqlalchemy (pip install skpercept[label])")
pytest.importorskip("selenium", reason="the browser tests need selenium (the docs extra)")

from skpercept.label import LabelProject, create_app

_BROWSER = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
_DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    _BROWSER is None or _DRIVER is None,
    reason="no headless Chromium and chromedriver (Debian: apt-get install chromium chromium-driver; "
    f"found browser={_BROWSER}, driver={_DRIVER})",
)

N_IMAGES = 16
WIDTH, HEIGHT = 1280, 1000
#: A rendered page with its photos has at least this many distinct colours; a blank one a few.
MIN_COLOURS = 200
WAIT = 60  # seconds for any one thing the page does

_IMAGES_LOADED = """
const images = Array.from(document.querySelectorAll(arguments[0]));
return images.length > 0 && images.every((i) => i.complete && i.naturalWidth > 0);
"""


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDTH},{HEIGHT}")
    browser = webdriver.Chrome(service=Service(_DRIVER), options=options)
    browser.set_page_load_timeout(WAIT)
    yield browser
    browser.quit()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SKPERCEPT_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


#: The photos' sizes: camera-sized landscapes and portraits, far larger than the window.
SIZES = [(1600, 1200) if k % 3 else (900, 1350) for k in range(N_IMAGES)]


@pytest.fixture
def browser_photos(tmp_path) -> Path:
    """16 JPEGs, each its own hue, with a gradient, a ring and its number drawn on it."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for k, (width, height) in enumerate(SIZES):
        ramp = np.linspace(0.45, 1.0, width)[None, :, None] * np.linspace(0.7, 1.0, height)[:, None, None]
        colour = np.array(colorsys.hsv_to_rgb(k / N_IMAGES, 0.75, 1.0)) * 255
        image = Image.fromarray((ramp * colour).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        box = (width // 4, height // 4, 3 * width // 4, 3 * height // 4)
        draw.ellipse(box, outline=(255, 255, 255), width=max(6, width // 40))
        draw.text((width // 2, height // 2), f"{k:02d}", fill=(0, 0, 0), font_size=height // 8, anchor="mm")
        image.save(folder / f"photo_{k:02d}.jpg", quality=85)
    return folder


def _check_fits(driver, project: LabelProject, ids: tuple[str, ...]) -> None:
    """Each photo shown has loaded at its real size and is drawn whole inside the window."""
    shown = driver.execute_script(
        "return arguments[0].map((id) => { const i = document.getElementById(id);"
        " const r = i.getBoundingClientRect(); return [i.dataset.item, i.naturalWidth, i.naturalHeight,"
        " r.left, r.top, r.right, r.bottom, window.innerWidth, window.innerHeight]; });",
        list(ids),
    )
    for item, natural_w, natural_h, left, top, right, bottom, inner_w, inner_h in shown:
        assert (natural_w, natural_h) == SIZES[project.items.index(item)]
        assert 0 <= left < right <= inner_w and 0 <= top < bottom <= inner_h, f"{item} overflows the window"


@contextlib.contextmanager
def _served(project: LabelProject):
    from werkzeug.serving import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_request(self, *args) -> None:  # one line per request would bury a failure
            pass

    server = make_server("127.0.0.1", 0, create_app(project), threaded=True, request_handler=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        project.close()


def _wait(driver, condition, what: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT, poll_frequency=0.05).until(condition, message=f"timed out waiting for {what}")


def _wait_ready(driver, total: int) -> None:
    """Wait until the page shows a new question and counts ``total`` judgments stored."""
    script = "return [document.body.dataset.ready, document.body.dataset.total];"
    _wait(
        driver,
        lambda d: d.execute_script(script) == ["1", str(total)],
        f"the page ready at {total} judgments",
    )


def _wait_images(driver, selector: str) -> None:
    _wait(driver, lambda d: d.execute_script(_IMAGES_LOADED, selector), f"images {selector!r} to load")


def _shown(driver) -> tuple[str, str | None]:
    return tuple(
        driver.execute_script(
            "const b = document.getElementById('image-b');"
            "return [document.getElementById('image-a').dataset.item, b ? b.dataset.item : null];"
        )
    )


def _press(driver, key: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def _screenshot(driver, path: Path) -> int:
    """Save a screenshot; return how many colours it shows (asserting it is not blank)."""
    driver.save_screenshot(str(path))
    pixels = np.asarray(Image.open(path).convert("RGB"))
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > MIN_COLOURS, f"{path.name} shows {colours} colours: blank or broken"
    return colours


def test_pairs_round_in_chromium(driver, browser_photos, tmp_path, shots):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    embeddings = np.random.RandomState(0).normal(size=(N_IMAGES, 8))
    project = LabelProject(
        browser_photos,
        ["bright"],
        embeddings=embeddings,
        workspace=tmp_path / "pairs-labels",
        min_judgments=6,
    )
    store = project.store
    token = store.add_labeller("ann")
    admin = store.add_labeller("admin", admin=True)
    with _served(project) as base:
        driver.get(f"{base}/l/{token}/")
        _wait_ready(driver, 0)
        assert driver.find_element(By.ID, "question").text == "Which is more bright?"
        assert driver.find_element(By.ID, "progress").text == "0 judgments (bright: 0)"

        clicks: list[list] = []  # [item_a, item_b, value, withdrawn] in the order sent
        total = 0

        def judge(value: int, act) -> None:
            nonlocal total
            _wait_images(driver, ".pair img")
            item_a, item_b = _shown(driver)
            assert item_a != item_b and {item_a, item_b} <= set(project.items)
            act()
            total += 1
            clicks.append([item_a, item_b, value, False])
            _wait_ready(driver, total)

        def undo(act) -> None:
            nonlocal total
            act()
            total -= 1
            next(c for c in reversed(clicks) if not c[3])[3] = True
            _wait_ready(driver, total)
            assert driver.find_element(By.ID, "status").text.startswith("Undone")

        for k in range(20):  # 20 by the buttons
            value = 1 if k % 3 else 2
            judge(value, driver.find_element(By.ID, "choose-a" if value == 1 else "choose-b").click)
            if k == 11:
                undo(driver.find_element(By.ID, "undo").click)
        keys = [Keys.ARROW_LEFT, Keys.ARROW_RIGHT, "1", "2", Keys.ARROW_RIGHT] * 2
        for k, key in enumerate(keys):  # 10 by the keyboard
            judge(1 if key in (Keys.ARROW_LEFT, "1") else 2, lambda key=key: _press(driver, key))
            if k == 6:
                undo(lambda: _press(driver, Keys.BACKSPACE))
        assert total == 28 and len(clicks) == 30
        assert driver.find_element(By.ID, "progress").text == "28 judgments (bright: 28)"

        # The database holds exactly what was clicked: 28 standing, the 2 undone withdrawn.
        standing = store.judgments()
        assert len(standing) == 28 and set(standing["labeller"]) == {"ann"}
        assert standing[["item_a", "item_b", "value"]].values.tolist() == [c[:3] for c in clicks if not c[3]]
        everything = store.judgments(withdrawn=True)
        assert len(everything) == 30
        assert everything["undone_at"].notna().tolist() == [c[3] for c in clicks]
        assert everything["client_id"].is_unique

        # Reloaded once the model has caught up: the count stands and the model asks.
        project.learner.wait()
        assert project.learner.last_error is None and project.learner.has_model("bright")
        driver.refresh()
        _wait_ready(driver, 28)
        _wait_images(driver, ".pair img")
        assert driver.find_element(By.ID, "progress").text == "28 judgments (bright: 28)"
        assert "chosen by your model" in driver.find_element(By.ID, "model-note").text
        _check_fits(driver, project, ("image-a", "image-b"))
        _screenshot(driver, shots / "label-pairs.png")

        # The ranked album: every image once, ranks 1..16, every thumbnail loaded.
        driver.find_element(By.CSS_SELECTOR, "a.ranked-link").click()
        _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, ".album figure.photo"), "the ranked album")
        figures = driver.find_elements(By.CSS_SELECTOR, ".album figure.photo")
        assert sorted(f.get_attribute("data-item") for f in figures) == project.items
        assert [int(f.get_attribute("data-rank")) for f in figures] == list(range(1, N_IMAGES + 1))
        assert all(f.find_element(By.TAG_NAME, "figcaption").text.startswith("#") for f in figures)
        assert driver.find_element(By.TAG_NAME, "h1").text == "Ranked by bright"
        _wait_images(driver, ".album img")
        _screenshot(driver, shots / "ranked.png")

        # The admin page: ann with her 28; a new labeller's private link made by the form.
        driver.get(f"{base}/admin/{admin}/")
        _wait(driver, lambda d: d.find_elements(By.ID, "progress-table"), "the admin page")
        rows = [
            [td.text for td in row.find_elements(By.TAG_NAME, "td")]
            for row in driver.find_elements(By.CSS_SELECTOR, "#progress-table tbody tr")
        ]
        assert rows == [["ann", "28"]]
        quality = driver.find_elements(By.CSS_SELECTOR, "#quality-table tbody tr[data-labeller='ann']")
        assert len(quality) == 1
        _screenshot(driver, shots / "admin.png")
        driver.find_element(By.ID, "new-labeller").send_keys("bob")
        driver.find_element(By.CSS_SELECTOR, "#add-form button").click()
        _wait(driver, lambda d: "/l/" in d.find_element(By.ID, "new-link").text, "the new labeller's link")
        link = driver.find_element(By.ID, "new-link").text.split(": ", 1)[1].split(" ", 1)[0]
        assert link.startswith(f"{base}/l/") and store.labellers() == ["ann", "bob"]
        assert store.labeller_for(link.rstrip("/").rsplit("/", 1)[1]) == "bob"

        # The export, fetched as the admin would: pairs.csv with the 28 standing judgments.
        with urllib.request.urlopen(f"{base}/admin/{admin}/export.zip", timeout=WAIT) as response:
            assert response.headers["Content-Type"] == "application/zip"
            archive = zipfile.ZipFile(io.BytesIO(response.read()))
        pairs = pd.read_csv(io.BytesIO(archive.read("pairs.csv")))
        assert len(pairs) == 28
        assert set(pairs["user_id"]) == {"ann"} and pairs["judgment_id"].is_unique
        assert pairs["bright"].tolist() == [float(c[2] == 1) for c in clicks if not c[3]]


def test_rating_round_in_chromium(driver, browser_photos, tmp_path, shots):
    from selenium.webdriver.common.by import By

    project = LabelProject(
        browser_photos,
        ["keep"],
        kind="rating",
        levels=2,
        level_names=["delete", "keep"],
        embeddings=np.random.RandomState(0).normal(size=(N_IMAGES, 8)),
        workspace=tmp_path / "rating-labels",
        min_judgments=4,
    )
    store = project.store
    token = store.add_labeller("ann")
    with _served(project) as base:
        driver.get(f"{base}/l/{token}/")
        _wait_ready(driver, 0)
        assert driver.find_element(By.ID, "question").text == "How keep is this?"
        levels = driver.find_elements(By.CSS_SELECTOR, ".levels button.level")
        assert [b.text.split()[0] for b in levels] == ["delete", "keep"]
        rated = []
        for k, key in enumerate("121122"):
            _wait_images(driver, ".single img")
            item, none = _shown(driver)
            assert none is None and item in project.items
            _check_fits(driver, project, ("image-a",))
            if k == 0:
                _screenshot(driver, shots / "label-rating.png")
            _press(driver, key)
            rated.append([item, int(key)])
            _wait_ready(driver, k + 1)
        assert driver.find_element(By.ID, "progress").text == "6 judgments (keep: 6)"
        stored = store.judgments()
        assert stored[["item_a", "value"]].values.tolist() == rated
        assert stored["item_b"].isna().all() and set(stored["kind"]) == {"rating"}
        assert len({item for item, _ in rated}) == 6  # no image asked twice
