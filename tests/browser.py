"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, for browser tests
and screenshots. The flags keep it off the network: this machine has none beyond loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PHONE = (390, 844)  # CSS pixels of a common phone (iPhone 12–14)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
    "--no-default-browser-check", "--metrics-recording-only", "--hide-scrollbars",
    "--force-device-scale-factor=1", "--lang=zh-CN",
)


def have_chromium() -> bool:
    return CHROMIUM.is_file() and CHROMEDRIVER.is_file()


def headless_chromium(profile: Path, size: tuple[int, int] = PHONE) -> Any:
    """A fresh headless Chromium with its own profile folder, at `size` CSS pixels."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={max(size[0], 500)},{size[1]}")  # headless' narrowest window
    options.add_experimental_option("mobileEmulation", {  # the page sees a phone's viewport
        "deviceMetrics": {"width": size[0], "height": size[1], "pixelRatio": 1.0}})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    return driver
