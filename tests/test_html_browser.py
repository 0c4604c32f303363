"""graphc dump --format html in a real headless Chromium: the page opens, the SVG has one element
per node, clicking a node shows its details, fused nodes unfold, tabs switch stages."""
import json
import os
import shutil
import tempfile

import pytest

from graphc import cli

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _missing() -> str | None:
    if not os.path.exists(CHROMIUM) or not os.path.exists(DRIVER):
        return ("chromium/chromedriver not installed (apt-get install -y chromium chromium-driver; "
                ".ci/run does this)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium not installed (pip install -e '.[test]')"
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix="graphc-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={profile}", "--window-size=1400,900"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield drv
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _dump(tmp_path, *args):
    page, data = tmp_path / "g.html", tmp_path / "g.json"
    assert cli.main(["dump", *args, "--format", "html", "-o", str(page)]) == 0
    assert cli.main(["dump", *args, "--format", "json", "-o", str(data)]) == 0
    return page, json.loads(data.read_text())


def test_page_nodes_click_details_and_fused_expand(browser, tmp_path):
    from selenium.webdriver.common.by import By
    page, data = _dump(tmp_path, "mlp", "--stage", "optimized")
    browser.get(page.as_uri())
    assert browser.title.startswith("graphc")
    svg = browser.find_element(By.CSS_SELECTOR, ".stage.active svg.graph")
    nodes = svg.find_elements(By.CSS_SELECTOR, "g.node")
    assert len(nodes) == len(data["nodes"])          # the JSON dump of a second build of the same model
    data = browser.execute_script("return JSON.parse(document.getElementById('graph-data').textContent)"
                                  ".stages[0]")      # names: the page's own build (layer names differ)
    assert sorted(int(n.get_attribute("data-id")) for n in nodes) == sorted(n["id"] for n in data["nodes"])
    assert not browser.get_log("browser") or all(e["level"] != "SEVERE" for e in browser.get_log("browser"))
    # click a fused node: the side panel shows its name, op, spec and sub-expression
    fused = next(n for n in data["nodes"] if n["op"].startswith("fused"))
    g = svg.find_element(By.CSS_SELECTOR, f'g.node[data-id="{fused["id"]}"] rect')
    g.click()
    details = browser.find_element(By.ID, "details")
    assert fused["name"] in details.find_element(By.CLASS_NAME, "node-name").text
    assert details.find_element(By.CLASS_NAME, "node-op").text == fused["op"]
    assert "matmul" in details.find_element(By.CLASS_NAME, "fused").text
    # the + unfolds the sub-expression in the drawing
    sub = svg.find_element(By.CSS_SELECTOR, f'g.node[data-id="{fused["id"]}"] .sub')
    assert not sub.is_displayed()
    svg.find_element(By.CSS_SELECTOR, f'g.node[data-id="{fused["id"]}"] .toggle').click()
    assert sub.is_displayed()
    # an input link in the panel selects that node
    link = details.find_element(By.CSS_SELECTOR, "a[data-goto]")
    target = link.get_attribute("data-goto")
    link.click()
    assert browser.find_element(By.ID, "details").get_attribute("data-node") == target


def test_stage_tabs(browser, tmp_path):
    from selenium.webdriver.common.by import By
    page, data = _dump(tmp_path, "mlp", "--train", "--stage", "all")
    browser.get(page.as_uri())
    tabs = browser.find_elements(By.CSS_SELECTOR, ".tab")
    assert len(tabs) == len(data["stages"]) and tabs[0].text.startswith("raw")
    last = len(tabs) - 1
    tabs[last].click()
    active = browser.find_element(By.CSS_SELECTOR, ".stage.active")
    assert active.get_attribute("data-stage") == str(last)
    nodes = active.find_elements(By.CSS_SELECTOR, "svg g.node")
    assert len(nodes) == len(data["stages"][last]["nodes"])
    nodes[-1].find_element(By.TAG_NAME, "rect").click()
    assert browser.find_element(By.ID, "details").get_attribute("data-node") == nodes[-1].get_attribute("data-id")
