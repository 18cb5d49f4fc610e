"""The /audit page in a real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api import audit
from executor.settings import Settings
from tests.audit.conftest import ROOT, Server, mixed_workload

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/bin/chromedriver" if Path("/usr/bin/chromedriver").exists() else None
)
ARTIFACTS = ROOT / "artifacts"

if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(
        "!!! headless Chromium NOT INSTALLED: the audit page browser test is SKIPPED. "
        "Install it with: apt-get install -y chromium chromium-driver !!!",
        allow_module_level=True,
    )
selenium = pytest.importorskip(
    "selenium", reason="!!! pip install selenium to run the audit page browser test !!!"
)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = Settings(
        audit={"dir": str(tmp_path_factory.mktemp("audit-web")), "sample_ok": 1.0},
        sandbox={"lanes": 2},
        limits={"memory_mb": 256},
    )
    with Server(settings) as server:
        mixed_workload(server.url, run="run-web", rounds=2)
        mixed_workload(server.url, run="run-web-b", rounds=1)
        audit.current().flush()
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="azr-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def rows(driver: Any) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, "#records tbody tr.rec")


def test_audit_page_filter_detail_and_screenshot(service: Server, browser: Any) -> None:
    wait = WebDriverWait(browser, 20)
    browser.get(service.url + "/audit?limit=200")
    wait.until(EC.presence_of_element_located((By.ID, "records")))
    assert "AZR audit" in browser.title
    all_rows = rows(browser)
    verdicts = {row.get_attribute("data-verdict") for row in all_rows}
    assert {"forbidden", "timeout", "nondeterministic", "ok"} <= verdicts, verdicts
    # the chart image rendered (an SVG served by the API, no CDN)
    wait.until(
        lambda d: d.execute_script(
            "const i = document.getElementById('chart'); return i.complete && i.naturalWidth > 0"
        )
    )
    assert not browser.find_elements(By.CSS_SELECTOR, "link[href^='http'], script[src^='http']")

    ARTIFACTS.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "audit-page.png"))

    # filtering by verdict narrows the table (the select submits the form on change)
    Select(browser.find_element(By.ID, "f-verdict")).select_by_value("forbidden")
    wait.until(lambda d: "verdict=forbidden" in d.current_url)
    filtered = rows(browser)
    assert filtered and len(filtered) < len(all_rows)
    assert {row.get_attribute("data-verdict") for row in filtered} == {"forbidden"}

    # text search narrows further
    search = browser.find_element(By.ID, "f-q")
    search.clear()
    search.send_keys("eval(")
    browser.find_element(By.ID, "apply").click()
    wait.until(lambda d: "q=eval" in d.current_url)
    evals = rows(browser)
    assert evals and len(evals) < len(filtered)

    # detail view: the program, highlighted, with the offending line marked
    evals[0].find_element(By.CSS_SELECTOR, "a.rid").click()
    wait.until(EC.presence_of_element_located((By.ID, "program")))
    wait.until(lambda d: "highlighted" in d.find_element(By.ID, "program").get_attribute("class"))
    program = browser.find_element(By.ID, "program").text
    assert "def f(a):" in program and "eval('x + 1')" in program
    marked = browser.find_element(By.CSS_SELECTOR, "#program .ln.marked")
    assert marked.get_attribute("data-line") == "3" and "eval" in marked.text
    assert browser.find_elements(By.CSS_SELECTOR, "#program .tok-kw") and browser.find_elements(
        By.CSS_SELECTOR, "#program .tok-str"
    )
    assert "forbidden" in browser.find_element(By.ID, "finding").text
    browser.save_screenshot(str(ARTIFACTS / "audit-detail.png"))

    # a nondeterministic record shows the differing outputs
    browser.get(service.url + "/audit?verdict=nondeterministic")
    rows(browser)[0].find_element(By.CSS_SELECTOR, "a.rid").click()
    wait.until(EC.presence_of_element_located((By.ID, "outputs")))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#outputs li")) >= 2

    # per-run view
    browser.get(service.url + "/audit/runs")
    runs = browser.find_elements(By.CSS_SELECTOR, "#runs tr.run")
    assert {"run-web", "run-web-b"} <= {r.find_element(By.TAG_NAME, "a").text for r in runs}
    next(r for r in runs if r.find_element(By.TAG_NAME, "a").text == "run-web-b").find_element(
        By.TAG_NAME, "a"
    ).click()
    wait.until(lambda d: "run=run-web-b" in d.current_url)
    assert "Run run-web-b" in browser.find_element(By.TAG_NAME, "h1").text
    per_run = rows(browser)
    assert per_run and len(per_run) < len(all_rows)
    browser.save_screenshot(str(ARTIFACTS / "audit-run.png"))


def test_pagination_in_the_browser(service: Server, browser: Any) -> None:
    wait = WebDriverWait(browser, 20)
    browser.get(service.url + "/audit?limit=5")
    first = [r.get_attribute("data-id") for r in rows(browser)]
    assert len(first) == 5
    browser.find_element(By.ID, "older").click()
    wait.until(lambda d: "cursor=" in d.current_url)
    second = [r.get_attribute("data-id") for r in rows(browser)]
    assert second and not set(first) & set(second)
    browser.find_element(By.ID, "newer").click()
    wait.until(lambda d: "cursor=" not in d.current_url)
    assert [r.get_attribute("data-id") for r in rows(browser)] == first
