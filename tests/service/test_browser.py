"""In a real browser (Debian's Chromium, headless, Selenium): log in, watch the worklist flag the
study live, open it in OHIF and see the SEG overlay on the CT.

A real chest CT (P002) goes into a real Orthanc; `pneumolens serve` watches Orthanc, analyses the
study and stores SEG, SR and secondary captures back. Screenshots are written to the test's
folder, and to docs/img/ when ``PNEUMOLENS_UPDATE_SCREENSHOTS=1``.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.uid import generate_uid
from servicekit import (
    REPO,
    TOKEN,
    require_executable,
    start_orthanc,
    start_server,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

OHIF_DIR = REPO / ".cache" / "ohif"
WAIT_S = 600
SEG_PROMPT_S = 45


def _upload_p002(source: Path, orthanc_url: str) -> None:
    """P002 into Orthanc with valid UIDs (its files carry no SOP Instance UID and UUID-like study
    and series UIDs, which a modality would not send)."""
    for path in sorted(source.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID"):
            setattr(ds, keyword, generate_uid(entropy_srcs=[keyword, str(ds.get(keyword, ""))]))
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[path.name])
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        httpx.post(orthanc_url + "/instances", content=buffer.getvalue(), timeout=60).raise_for_status()


def _browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = require_executable("chromium", why="the browser test drives Debian's Chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'chromium'}",
                "--window-size=1600,1000"):
        options.add_argument(arg)
    driver = require_executable("chromedriver", why="Selenium drives Chromium through it")
    return webdriver.Chrome(service=Service(driver), options=options)


def _until(driver, timeout_s: float, condition, what: str, tmp_path: Path, **kwargs):
    """WebDriverWait.until that, on timeout, fails with what the page showed and the browser's log
    (a CI run leaves no screenshot to look at; it is still written to the test's folder)."""
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=1, **kwargs).until(condition)
    except TimeoutException:
        try:
            (tmp_path / "timeout.png").write_bytes(driver.get_screenshot_as_png())
            url = driver.current_url
            text = driver.execute_script("return document.body ? document.body.innerText : ''")
            logs = [entry.get("message", "")[:300] for entry in driver.get_log("browser")][-15:]
        except WebDriverException as error:  # the tab itself is gone (crashed renderer)
            url, text, logs = "?", f"(page unreadable: {error.msg})", []
        pytest.fail(f"waited {timeout_s:.0f} s for {what}; url {url}\n"
                    f"page text: {text[:1500]!r}\nbrowser log: {logs}")


def _overlay_pixels(png: bytes, box: tuple[int, int, int, int]) -> int:
    """Strongly coloured pixels inside ``box`` (the CT is grey; the SEG overlay is coloured)."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB").crop(box)).astype(int)
    chroma = rgb.max(axis=2) - rgb.min(axis=2)
    return int((chroma > 60).sum())


def _keep(png: bytes, tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(png)
    if os.environ.get("PNEUMOLENS_UPDATE_SCREENSHOTS") == "1":
        shutil.copy(tmp_path / name, REPO / "docs" / "img" / name)


def test_worklist_alert_and_ohif_with_the_seg(shared_data, tmp_path):
    require_executable("Orthanc", why="the viewer reads the study from a real Orthanc")
    if not (OHIF_DIR / "index.html").is_file():
        message = "the OHIF viewer is not installed (make ohif / scripts/setup_ohif.sh)"
        if os.environ.get("PNEUMOLENS_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    (tmp_path / "orthanc").mkdir()
    orthanc = start_orthanc(tmp_path / "orthanc")
    server = driver = None
    try:
        server = start_server(write_config(tmp_path, orthanc=orthanc, method="model", lesion_percent=5.0,
                                           orthanc_extra="watch = true\npoll_s = 0.5",
                                           extra=f'ohif_dir = "{OHIF_DIR}"'))
        driver = _browser(tmp_path)

        def wait(condition, what: str):
            return _until(driver, WAIT_S, condition, what, tmp_path)

        driver.get(server.url + "/worklist")  # not logged in: sent to the log-in page
        assert "/login" in driver.current_url
        driver.find_element(By.ID, "token").send_keys(TOKEN)
        driver.find_element(By.ID, "login").click()
        wait(lambda d: d.find_element(By.ID, "live").text == "live", "the worklist's event stream")

        _upload_p002(shared_data / "covid_ct_md_P002" / "dicom", orthanc.url)  # Orthanc -> serve
        banner = wait(lambda d: d.find_element(By.ID, "banner") if d.find_element(
            By.ID, "banner").is_displayed() else None, "the alert banner")
        assert "Suspected pneumonia" in banner.text
        row = wait(lambda d: d.find_element(By.CSS_SELECTOR, "tr.alert[data-status=done]"), "the finished alert row")
        wait(lambda d: d.execute_script(
            "const i = document.querySelector('tr.alert img.key'); return i && i.complete && i.naturalWidth > 0"),
             "the key image in the row")
        study_id = int(row.get_attribute("data-study"))
        data = server.get(f"/api/studies/{study_id}").json()["analysis"]
        assert row.find_element(By.CSS_SELECTOR, ".lesion-percent").text == f"{data['lesions']['percent_of_lungs']:.1f}"
        _keep(driver.get_screenshot_as_png(), tmp_path, "service-worklist.png")

        row.find_element(By.CSS_SELECTOR, "a.open-viewer").click()  # same tab: OHIF, same origin
        wait(lambda d: d.find_element(By.XPATH, "//*[contains(text(), 'pneumolens segmentati')]"), "the SEG in OHIF's list")

        clicked_at = [-1e9]

        def open_seg(d) -> bool:
            """Dismiss OHIF's first-visit tour and notice when they show, open the SEG, answer Yes.

            The SEG is double-clicked again only when no prompt came within SEG_PROMPT_S: on a slow
            machine loading the CT takes seconds, and a second double-click restarts the load."""
            for element in d.find_elements(By.XPATH, "//*[text()='Skip all']") + d.find_elements(
                    By.CSS_SELECTOR, "[data-cy=confirm-and-hide-button]"):
                if element.is_displayed():
                    element.click()
            yes = [b for b in d.find_elements(By.XPATH, "//button[normalize-space(.)='Yes']") if b.is_displayed()]
            if yes:
                yes[0].click()
                return True
            if time.monotonic() - clicked_at[0] > SEG_PROMPT_S:
                seg = d.find_element(By.XPATH, "//*[contains(text(), 'pneumolens segmentati')]")
                ActionChains(d).double_click(seg).perform()
                clicked_at[0] = time.monotonic()
            return False

        _until(driver, WAIT_S, open_seg, "the SEG's open prompt (Yes) in OHIF", tmp_path,
               ignored_exceptions=(WebDriverException,))

        # go to the slice with the most lesion: OHIF counts images from the top (superior)
        n = len(data["slices"])
        target = n - int(np.argmax([s["lesion_voxels"] for s in data["slices"]]))
        viewport = driver.find_element(By.CSS_SELECTOR, "[data-cy=viewport-pane]")
        ActionChains(driver).move_to_element(viewport).perform()

        def current() -> int:
            text = driver.find_element(By.CSS_SELECTOR, "[data-cy=viewport-overlay-bottom-right]").text
            return int(text.split("(")[1].split("/")[0]) if "(" in text else -1  # "I:10 (10/133)"

        wait(lambda d: current() > 0, "the image number in the viewport")
        for _ in range(3 * n):  # arrow keys (one image each) in small batches, then check where we are
            step = target - current()
            if step == 0:
                break
            key = Keys.ARROW_DOWN if step > 0 else Keys.ARROW_UP
            ActionChains(driver).send_keys(key * min(abs(step), 8)).perform()
        assert current() == target
        r = viewport.rect
        box = (int(r["x"]) + 40, int(r["y"]) + 60, int(r["x"] + r["width"]) - 40, int(r["y"] + r["height"]) - 60)
        wait(lambda d: _overlay_pixels(d.get_screenshot_as_png(), box) > 2000, "the coloured SEG overlay")
        _keep(driver.get_screenshot_as_png(), tmp_path, "service-ohif-seg.png")
        logs = json.dumps(driver.get_log("browser"))
        assert "RetrieveMetadataLoader failed" not in logs
    finally:
        if driver is not None:
            driver.quit()
        if server is not None:
            server.stop()
        orthanc.stop()
