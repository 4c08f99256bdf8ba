"""The live page in a real browser: Debian's chromium, headless, driven by selenium through
chromium-driver. A redis-py client takes a lock and the page shows it (holder and fencing
token) within a second; a second client waits for it and the page shows the waiter; the
wait times out and the page shows the waiter gone.

Run by tests/metrics.rs with the node's ports in RAFTLOCK_PORT and RAFTLOCK_METRICS_PORT.
There is no skip: without chromium or chromium-driver the test fails.
"""

import os
import shutil
import threading

import pytest
import redis
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

HOST = os.environ.get("RAFTLOCK_HOST", "127.0.0.1")
PORT = int(os.environ["RAFTLOCK_PORT"])
METRICS_PORT = int(os.environ["RAFTLOCK_METRICS_PORT"])

# The page refreshes every 200 ms; a change must show within a second.
SHOWN_WITHIN_S = 1.0


def program(name):
    path = shutil.which(name)
    assert path, f"{name} is not installed: scripts/test.sh installs it (apt-get install chromium chromium-driver)"
    return path


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = program("chromium")
    # As root, chromium runs only without its sandbox.
    for arg in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]:
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=program("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def client():
    con = redis.Redis(host=HOST, port=PORT, decode_responses=True, socket_timeout=30)
    yield con
    con.close()


# Read in one script, so a refresh of the page between two lookups cannot mix two views.
ROWS = """
const row = [...document.querySelectorAll("tr.lock")]
    .find(r => r.dataset.resource === arguments[0]);
if (!row) return null;
return {
    holders: [...row.querySelectorAll("li.holder")].map(li => [li.dataset.owner, li.dataset.token]),
    waiters: [...row.querySelectorAll("li.waiter")].map(li => li.dataset.owner),
};
"""


def holders(driver, resource):
    row = driver.execute_script(ROWS, resource)
    return None if row is None else [tuple(h) for h in row["holders"]]


def waiters(driver, resource):
    row = driver.execute_script(ROWS, resource)
    return [] if row is None else row["waiters"]


def test_the_page_shows_a_lock_its_holder_and_a_waiter_that_leaves(browser, client):
    browser.get(f"http://{HOST}:{METRICS_PORT}/")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "status").text == "live")
    WebDriverWait(browser, 10).until(lambda d: d.find_element(By.ID, "role").text == "leader")
    members = browser.execute_script(
        'return [...document.querySelectorAll("#members tr")].map(tr => tr.textContent)'
    )
    assert len(members) == 1 and "leader" in members[0], members

    token = client.execute_command("LOCK", "page:lock", "holder", 30000)
    WebDriverWait(browser, SHOWN_WITHIN_S, poll_frequency=0.05).until(
        lambda d: holders(d, "page:lock") == [("holder", str(token))]
    )

    waited = {}

    def wait_for_the_lock():
        con = redis.Redis(host=HOST, port=PORT, decode_responses=True, socket_timeout=30)
        waited["reply"] = con.execute_command("LOCK", "page:lock", "waiter", 30000, "WAIT", 2000)
        con.close()

    thread = threading.Thread(target=wait_for_the_lock)
    thread.start()
    WebDriverWait(browser, SHOWN_WITHIN_S, poll_frequency=0.05).until(
        lambda d: waiters(d, "page:lock") == ["waiter"]
    )
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert waited["reply"] is None, "the wait timed out: the lock stayed held"
    WebDriverWait(browser, SHOWN_WITHIN_S, poll_frequency=0.05).until(
        lambda d: waiters(d, "page:lock") == []
    )
    assert holders(browser, "page:lock") == [("holder", str(token))]

    assert client.execute_command("UNLOCK", "page:lock", "holder") == 0
    WebDriverWait(browser, SHOWN_WITHIN_S, poll_frequency=0.05).until(
        lambda d: holders(d, "page:lock") is None
    )
    assert browser.find_element(By.ID, "no-locks").is_displayed()
