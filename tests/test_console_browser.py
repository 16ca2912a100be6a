"""The console in a real headless browser (Debian's chromium + chromium-driver, via selenium):
log in, find a person, open their page, provision them now, look at the failures, and resume a
halted source after confirming — with a screenshot of each page under the test's tmp dir."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from provisioner.engine.store import Store
from tests.ops_harness import TOKEN, engine, refusing_scim, write_config
from tests.processes import wait_for

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium'}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    try:
        yield driver
    finally:
        driver.quit()


def shoot(driver: WebDriver, shots: Path, name: str) -> None:
    shots.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(shots / f"{name}.png"))


def test_console_in_a_real_browser(tmp_path: Path, browser: WebDriver):
    shots = tmp_path / "screenshots"
    with refusing_scim() as scim, engine(tmp_path, write_config(tmp_path, scim.url)) as eng:
        api = eng.api()
        wait_for(lambda: len(api.get("/log").json()) >= 3, 60, "first sync applied")
        wait_for(lambda: api.get("/status").json()["unapplied_events"] == 0, 30, "outbox drained")

        browser.get(eng.url + "/")
        assert "/login" in browser.current_url
        shoot(browser, shots, "01-login")
        token = browser.find_element(By.ID, "token")
        token.send_keys(TOKEN, Keys.ENTER)  # keyboard only
        wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "section.tiles"), 10, "overview")
        assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
        tiles = browser.find_element(By.CSS_SELECTOR, "section.tiles").text
        assert "0 pending events" in tiles.replace("\n", " ") and "0 halted" in tiles.replace("\n", " ")
        targets = browser.find_elements(By.CSS_SELECTOR, "table")[1].text
        assert "app" in targets and "scim" in targets
        shoot(browser, shots, "02-overview")

        browser.find_element(By.LINK_TEXT, "People").click()
        search = browser.find_element(By.ID, "q")
        search.send_keys("hopper", Keys.ENTER)
        wait_for(lambda: "q=hopper" in browser.current_url, 10, "search results")
        rows = browser.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert len(rows) == 1 and "grace.hopper@example.com" in rows[0].text
        shoot(browser, shots, "03-search")

        browser.find_element(By.LINK_TEXT, "hr:1002").click()
        assert browser.find_element(By.TAG_NAME, "h1").text == "Grace Hopper"
        assert "in scope" in browser.page_source and "everyone" in browser.page_source
        shoot(browser, shots, "04-person")
        browser.find_element(By.XPATH, "//button[normalize-space()='Provision now']").click()
        notice = browser.find_element(By.CSS_SELECTOR, ".notice").text
        assert notice.startswith("queued: event ")
        event_id = notice.rsplit(" ", 1)[1]
        wait_for(
            lambda: (
                any(e["event_id"] == event_id for e in api.get("/log", params={"worker": "hr:1002"}).json())
                or api.get("/status").json()["unapplied_events"] == 0
            ),
            30,
            "the re-plan applied",
        )
        shoot(browser, shots, "05-provisioned")

        browser.find_element(By.LINK_TEXT, "Failures").click()
        assert browser.find_element(By.TAG_NAME, "h1").text == "Failures"
        shoot(browser, shots, "06-failures")

        browser.get(eng.url + "/log?result=failure")
        assert "hr:1003" in browser.find_element(By.CSS_SELECTOR, "tbody").text
        shoot(browser, shots, "07-log")

        Store(eng.store_url).sources.halt("hr", "would disable 3 of 3 workers (limit 1)")
        browser.get(eng.url + "/")
        assert "1 halted" in browser.find_element(By.CSS_SELECTOR, "section.tiles").text.replace("\n", " ")
        shoot(browser, shots, "08-overview-halted")
        browser.find_element(By.PARTIAL_LINK_TEXT, "halted").click()
        assert "would disable 3 of 3 workers" in browser.page_source
        shoot(browser, shots, "09-halted-source")
        browser.find_element(By.ID, "resume").click()
        assert "Resume hr?" in browser.find_element(By.ID, "confirm").text
        assert Store(eng.store_url).sources.states()["hr"].halted  # nothing happens before the confirmation
        shoot(browser, shots, "10-confirm-resume")
        browser.find_element(By.ID, "confirm-resume").click()
        assert browser.find_element(By.CSS_SELECTOR, ".notice").text.startswith("resumed")
        assert not Store(eng.store_url).sources.states()["hr"].halted
        shoot(browser, shots, "11-resumed")

        browser.set_window_size(390, 844)  # phone width: the tables scroll, the page does not
        browser.get(eng.url + "/")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400, width
        shoot(browser, shots, "12-overview-phone")

    assert len(list(shots.glob("*.png"))) == 12
