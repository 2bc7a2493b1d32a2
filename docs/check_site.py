"""Open the built site in headless Chromium and check that its pages render with their images.

A page passes when the browser has laid it out with its heading, every ``<img>`` on it has
finished loading with a real size (``naturalWidth > 0``: the file was found and decoded), and
the screenshot shows that picture: the pixels inside the page's main image are not one flat
colour. An HTTP 200 alone proves none of that. Screenshots go to ``--screenshots`` (one PNG per
page) and the script prints, per page, its title, heading, images and the colours counted.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (the ``docs``
extra); nothing is downloaded: the driver is the system's, and the site is served from disk by a
local HTTP server on 127.0.0.1.

    python docs/check_site.py docs/_build/html --screenshots docs/_build/screenshots
"""

from __future__ import annotations

import argparse
import functools
import http.server
import io
import shutil
import sys
import threading
from pathlib import Path

import numpy as np
from PIL import Image

#: Page (relative to the site) -> a CSS selector of the picture it must show, and the text its
#: first heading must contain.
PAGES = {
    "index.html": ("article img", "skpercept"),
    "user_guide/pairs_and_heads.html": ("article figure img", "heads"),
    # the thumbnails of the gallery's examples that use the class
    "api/generated/skpercept.heads.PairwiseRanker.html": (
        "article .sphx-glr-thumbcontainer img",
        "PairwiseRanker",
    ),
    "auto_examples/plot_consensus_scatter.html": ("article img.sphx-glr-single-img", "consensus"),
}
#: A rendered picture has at least this many distinct colours; a blank or broken one has a few.
MIN_COLOURS = 200


def _driver(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        raise SystemExit(
            "check_site.py needs headless Chromium and its driver (Debian: apt-get install chromium "
            "chromium-driver); found " + f"browser={browser}, driver={driver}."
        )
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    return webdriver.Chrome(service=Service(driver), options=options)


def _serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=root))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


_IMAGES = """
return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth,
                                              i.naturalHeight]);
"""


def check_page(driver, base: str, page: str, selector: str, heading: str, shots: Path) -> list[str]:
    """Load one page; return what is wrong with it (empty when it renders)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    problems: list[str] = []
    driver.get(base + page)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    WebDriverWait(driver, 30).until(lambda d: all(img[1] for img in d.execute_script(_IMAGES)))
    title = driver.title
    h1 = driver.find_elements(By.CSS_SELECTOR, "article h1")
    h1_text = h1[0].text if h1 else ""
    if heading.lower() not in h1_text.lower():
        problems.append(f"first heading {h1_text!r} does not contain {heading!r}")
    images = driver.execute_script(_IMAGES)
    broken = [src for src, _, width, _ in images if not width]
    if broken:
        problems.append(f"images that did not load: {broken}")
    pictures = driver.find_elements(By.CSS_SELECTOR, selector)
    colours = 0
    if not pictures:
        problems.append(f"no picture matching {selector!r}")
    else:
        picture = pictures[0]
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", picture)
        pixels = np.asarray(Image.open(io.BytesIO(picture.screenshot_as_png)).convert("RGB"))
        colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
        if colours < MIN_COLOURS:
            problems.append(f"its picture shows only {colours} colours: blank or broken")
        driver.execute_script("window.scrollTo(0, 0);")
    shot = shots / (page.replace("/", "__").removesuffix(".html") + ".png")
    driver.save_screenshot(str(shot))
    print(
        f"{page}: title {title!r}; heading {h1_text!r}; {len(images)} image(s), "
        f"{len(images) - len(broken)} loaded; picture {selector!r}: {colours} colours; "
        f"screenshot {shot}" + (f"; PROBLEMS: {problems}" if problems else "")
    )
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path, help="the built HTML folder (docs/_build/html)")
    parser.add_argument("--screenshots", type=Path, default=Path("docs/_build/screenshots"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1000)
    args = parser.parse_args(argv)
    missing = [page for page in PAGES if not (args.site / page).is_file()]
    if missing:
        print(f"{args.site} lacks {missing}: build the site (with the gallery) first.", file=sys.stderr)
        return 1
    args.screenshots.mkdir(parents=True, exist_ok=True)
    server, base = _serve(args.site)
    driver = _driver(args.width, args.height)
    try:
        problems = {
            page: check_page(driver, base, page, *spec, args.screenshots) for page, spec in PAGES.items()
        }
    finally:
        driver.quit()
        server.shutdown()
    failed = {page: p for page, p in problems.items() if p}
    print(f"{len(PAGES) - len(failed)} of {len(PAGES)} pages render with their pictures.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
