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


def _within(browser, css, container=".view", slack=2):
    """Whether the element's drawn box lies inside the container's visible box (client coordinates)."""
    return browser.execute_script(
        "const a = document.querySelector(arguments[0]).getBoundingClientRect(),"
        " v = document.querySelector(arguments[1]).getBoundingClientRect(), s = arguments[2];"
        "return a.width > 0 && a.height > 0 && a.left >= v.left - s && a.top >= v.top - s &&"
        " a.right <= v.left + document.querySelector(arguments[1]).clientWidth + s &&"
        " a.bottom <= v.top + document.querySelector(arguments[1]).clientHeight + s;", css, container, slack)


def test_large_graph_fitted_grouped_and_searchable(browser, tmp_path):
    """A 300-node training graph opens fitted to the window with its name scopes collapsed; a group
    expands and collapses on click; the search box finds a node inside a collapsed group."""
    from selenium.webdriver.common.by import By
    page, data = _dump(tmp_path, "transformer", "--train", "--stage", "optimized")
    assert len(data["nodes"]) >= 300
    browser.get(page.as_uri())
    assert all(e["level"] != "SEVERE" for e in browser.get_log("browser"))
    svg = browser.find_element(By.CSS_SELECTOR, ".stage.active svg.graph")
    # fitted: the whole drawing (nodes, groups and edges) lies within the viewport, no scrolling needed
    assert _within(browser, ".stage.active svg.graph g.nodes")
    assert _within(browser, ".stage.active svg.graph g.edges")
    # collapsed: every node is drawn either itself or as part of exactly one group box with its count
    grp = svg.find_elements(By.CSS_SELECTOR, "g.group")
    drawn = svg.find_elements(By.CSS_SELECTOR, "g.node")
    counts = {g.get_attribute("data-group"): int(g.get_attribute("data-count")) for g in grp}
    assert any(k.startswith("adam") for k in counts) and any(k.startswith("gradients") for k in counts)
    assert len(drawn) + sum(counts.values()) == len(data["nodes"])
    assert len(drawn) + len(grp) < len(data["nodes"]) / 3
    # edges between groups are aggregated into one path per pair, carrying the count
    ecounts = [int(e.get_attribute("data-count")) for e in svg.find_elements(By.CSS_SELECTOR, "path.edge")]
    assert max(ecounts) > 1 and sum(ecounts) < len(data["edges"])
    # click a group: its nodes are drawn (inside a hull); click the hull: collapsed again
    # (layer names carry a counter when other models were built in this process: match the prefix)
    target = next(g for g in grp if g.get_attribute("data-group").startswith("multi_head_attention"))
    name = target.get_attribute("data-group")
    target.click()
    assert len(svg.find_elements(By.CSS_SELECTOR, "g.node")) == len(drawn) + counts[name]
    assert not svg.find_elements(By.CSS_SELECTOR, f'g.group[data-group="{name}"]')
    svg.find_element(By.CSS_SELECTOR, f'g.hull[data-group="{name}"] text').click()
    assert len(svg.find_elements(By.CSS_SELECTOR, "g.node")) == len(drawn)
    # zoom keeps working from the fitted size; fit returns to it
    w0 = float(svg.get_attribute("width"))
    browser.find_element(By.ID, "zin").click()
    assert float(svg.get_attribute("width")) == pytest.approx(w0 * 1.25)
    browser.find_element(By.ID, "zfit").click()
    assert float(svg.get_attribute("width")) == pytest.approx(w0)
    # search: a node hidden in the collapsed "adam" group is found, its group opened, node selected and shown
    wanted = next(n for n in data["nodes"] if "/adam/" in n["name"])
    page_nodes = browser.execute_script("return DATA.stages[0].nodes")
    wanted = next(n for n in page_nodes if n["name"].split("/")[-2:] == wanted["name"].split("/")[-2:])
    box = browser.find_element(By.ID, "search")
    box.send_keys(wanted["name"])
    assert browser.find_element(By.ID, "search-count").text.endswith("found")
    hit = svg.find_element(By.CSS_SELECTOR, f'g.node.match[data-id="{wanted["id"]}"]')
    assert hit.is_displayed() and _within(browser, f'.stage.active g.node[data-id="{wanted["id"]}"]')
    assert svg.find_elements(By.CSS_SELECTOR, 'g.hull[data-group^="adam"]')
    assert browser.find_element(By.ID, "details").get_attribute("data-node") == str(wanted["id"])
    shown = {int(e.get_attribute("data-id")) for e in svg.find_elements(By.CSS_SELECTOR, "g.node.match")}
    assert all(wanted["name"].lower() in n["name"].lower() for n in page_nodes if n["id"] in shown)

def test_all_stages_page_opens_on_the_drawing(browser, tmp_path):
    """The CNN training ``--stage all`` page opens with the raw drawing inside the window (it used to
    open on an empty area of a huge canvas), and every tab is fitted too."""
    from selenium.webdriver.common.by import By
    page, data = _dump(tmp_path, "cnn", "--train", "--stage", "all")
    browser.get(page.as_uri())
    assert _within(browser, ".stage.active svg.graph g.nodes")
    tabs = browser.find_elements(By.CSS_SELECTOR, ".tab")
    tabs[-1].click()
    assert _within(browser, ".stage.active svg.graph g.nodes")
