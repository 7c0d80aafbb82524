"""The console (GET /) in a real browser: headless Chromium driven by Selenium.

Run by tests/browser/run.sh, which starts a fresh local stack and passes its HTTP API's address in
CONSOLE_URL, its AWS endpoint in STACK_AWS_URL and its WebSocket management API in
STACK_MANAGEMENT_URL (the late-push test pushes through it, as the functions do). Each test class drives one Chromium: Debian's /usr/bin/chromium through Debian's
/usr/bin/chromedriver, both handed to Selenium so that it never downloads a browser or a driver.
What the page shows is checked against what the HTTP API answers (urllib, with tokens from
POST /console/dev-token). With SCREENSHOT_DIR set, the flash sale writes console-desktop.png
(1280x900, mid-sale) and the phone test console-phone.png (390 wide, the whole page) there.
"""

import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
import uuid

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

CONSOLE_URL = os.environ.get("CONSOLE_URL", "http://127.0.0.1:3000").rstrip("/")
STACK_AWS_URL = os.environ.get("STACK_AWS_URL", "").rstrip("/")
STACK_MANAGEMENT_URL = os.environ.get("STACK_MANAGEMENT_URL", "").rstrip("/")
# The stack's connections table (run.sh names it for both).
CONNECTIONS_TABLE = os.environ.get("CONNECTIONS_TABLE", "")
SCREENSHOT_DIR = os.environ.get("SCREENSHOT_DIR") or None
CHROMIUM = "/usr/bin/chromium"
# Given the browser and the driver, Selenium Manager has nothing to fetch; offline, it never tries.
os.environ.setdefault("SE_OFFLINE", "true")
CHROMEDRIVER = "/usr/bin/chromedriver"

DESKTOP = (1280, 900)
PHONE = (390, 844)
# The user the tests read the API as, when the page's user is not the one to ask.
CHECKER = "browser-test-checker"
# The flash sale: 30 units for 6 buyers is over in about a second, too short to photograph in the
# middle, so the screenshot run sells 300 (and waits for half of them sold, charts with some history).
SALE_STOCK = 300 if SCREENSHOT_DIR else 30
SALE_BUYERS = 6


def start_chromium(width, height):
    """A headless Chromium whose page is `width` x `height`, its console log readable."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # Chromium's sandbox refuses root, and wants user namespaces containers lack
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--force-device-scale-factor=1",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    set_viewport(driver, width, height)
    return driver


def set_viewport(driver, width, height):
    """Makes the page's viewport `width` x `height` (the window's frame, if any, added)."""
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if inner != [width, height]:
        driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])


def wait_until(what, condition, timeout, interval=0.1):
    """condition()'s first truthy value within `timeout` seconds; fails the test with `what`."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except (StaleElementReferenceException, WebDriverException) as e:
            last_error = e
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error.msg if hasattr(last_error, 'msg') else last_error})" if last_error else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}{detail}")
        time.sleep(interval)


def api(method, path, token=None, body=None):
    """(status, parsed body) of one HTTP API request. Reads without a token go as CHECKER: the
    stack's rate limit counts anonymous requests per address, the page's products poll's own."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(CONSOLE_URL + path, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is None and not path.startswith("/console/"):
        token = checker_token()
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


_checker_token = []


def checker_token():
    """The development token the tests read the API with, minted once."""
    if not _checker_token:
        _checker_token.append(dev_token(CHECKER))
    return _checker_token[0]


_facts = []


def facts():
    """The domain's facts the console is fed (`GET /console/facts.json`), fetched once."""
    if not _facts:
        status, body = api("GET", "/console/facts.json")
        assert status == 200, f"GET /console/facts.json: {status} {body}"
        _facts.append(body)
    return _facts[0]


def terminal_statuses():
    """The order statuses that never change again, as the server says."""
    return tuple(facts()["terminal_statuses"])


def dev_token(sub, admin=False):
    status, body = api("POST", "/console/dev-token", body={"sub": sub, "admin": admin})
    assert status == 200, f"POST /console/dev-token for {sub}: {status} {body}"
    assert body.get("token") and body.get("expires_at"), body
    return body["token"]


def api_stock(product_id):
    status, body = api("GET", f"/products/{product_id}")
    assert status == 200, f"GET /products/{product_id}: {status} {body}"
    return body["data"]["stock"]


def connection_ids(sub):
    """The ids of `sub`'s open WebSocket connections: a Scan of the connections table through the
    stack's AWS endpoint, in DynamoDB's JSON protocol. The endpoint wants a SigV4-shaped
    Authorization header and its date, but checks no signature."""
    request = urllib.request.Request(
        STACK_AWS_URL + "/",
        data=json.dumps({"TableName": CONNECTIONS_TABLE, "ConsistentRead": True}).encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.Scan",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=0",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        items = json.loads(response.read())["Items"]
    return [item["connection_id"]["S"] for item in items if item.get("user_id", {}).get("S") == sub]


def push_to_connection(connection_id, event):
    """PostToConnection through the management API, as the functions' pusher does; the status."""
    request = urllib.request.Request(
        f"{STACK_MANAGEMENT_URL}/@connections/{urllib.parse.quote(connection_id, safe='')}",
        data=json.dumps(event).encode(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def api_orders(token):
    """Every order of the token's user (all pages)."""
    orders, cursor = [], None
    while True:
        path = "/orders?limit=50" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
        status, body = api("GET", path, token)
        assert status == 200, f"GET {path}: {status} {body}"
        orders += body["data"]
        cursor = body.get("next_cursor")
        if not cursor:
            return orders


class ConsoleTestCase(unittest.TestCase):
    """One Chromium for the class, at WINDOW size."""

    WINDOW = DESKTOP

    @classmethod
    def setUpClass(cls):
        cls.driver = start_chromium(*cls.WINDOW)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()

    def setUp(self):
        self.driver.get_log("browser")  # drops what earlier tests left
        # Answers the test expects the API to give (Chromium logs every 4xx/5xx as SEVERE).
        self.expected_refusals = set()
        self.addCleanup(self.report_console_problems)

    def expect_refusals(self, path, status):
        """Lets `status` answers of `path` (e.g. 409 from /orders in a sale) pass the console check."""
        self.expected_refusals.add(f"{CONSOLE_URL}{path} - Failed to load resource: the server responded with a status of {status} ")

    def report_console_problems(self):
        """The browser console's warnings, printed; its errors fail the test."""
        entries = self.driver.get_log("browser")
        for entry in entries:
            if entry["level"] == "WARNING":
                print(f"\n  console warning: {entry['message']}", file=sys.stderr)
        severe = [
            entry["message"]
            for entry in entries
            if entry["level"] == "SEVERE"
            and not (entry["source"] == "network" and any(entry["message"].startswith(r) for r in self.expected_refusals))
        ]
        self.maxDiff = None
        self.assertEqual(severe, [], "the browser console logged errors")

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def open_console(self):
        self.driver.get(CONSOLE_URL + "/")
        return wait_until(
            "the products to render in #products",
            lambda: self.find_all("#products tr[data-product-id]"),
            30,
        )

    def sign_in(self, sub="dev-user"):
        """Signs in as `sub` with a development token (#user-sub, #sign-in-user)."""
        field = self.find("#user-sub")
        field.clear()
        field.send_keys(sub)
        self.find("#sign-in-user").click()
        wait_until(f"#signed-in-as to say {sub}", lambda: self.find("#signed-in-as").text.strip() == sub, 15)
        # Pushes reach only an open socket: as a user would, wait for "connected" before ordering.
        wait_until("#ws-status to be open", lambda: self.find("#ws-status").get_attribute("data-state") == "open", 15)

    def sign_in_as_admin(self):
        """Signs in with the page's admin development token (#sign-in-admin)."""
        self.find("#sign-in-admin").click()
        wait_until("#signed-in-as to say (admin)", lambda: "(admin)" in self.find("#signed-in-as").text, 15)

    def order_ids(self):
        return [row.get_attribute("data-order-id") for row in self.find_all("#orders [data-order-id]")]

    def choose_product(self, select_css):
        """Selects, in `select_css`, a product the API says has plenty of stock (not one a flash
        sale left a unit or two of); returns its id."""
        select = Select(self.find(select_css))
        for option in select.options:
            product_id = option.get_attribute("value")
            if product_id and api_stock(product_id) >= 10:
                select.select_by_value(product_id)
                return product_id
        self.fail(f"no product in {select_css} has stock")

    def new_order_id(self, before, timeout=15):
        """The id of the order that appears in #orders and was not among `before`."""
        try:
            return wait_until(
                "a new order in #orders",
                lambda: next((i for i in self.order_ids() if i not in before), None),
                timeout,
            )
        except AssertionError as e:
            raise AssertionError(f"{e}; #order-error says {self.find('#order-error').text!r}") from None

    def assert_no_horizontal_scroll(self, when):
        """The page is no wider than the window."""
        problem = self.horizontal_scroll(when)
        self.assertIsNone(problem, problem)

    def horizontal_scroll(self, when):
        """None when the page is no wider than the window; else what sticks out."""
        scroll_width, width, wide = self.driver.execute_script(
            """
            const wide = [];
            for (const e of document.body.querySelectorAll("*")) {
              const r = e.getBoundingClientRect();
              if (r.right > window.innerWidth + 0.5 && wide.length < 8)
                wide.push(`${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}${e.className && typeof e.className === "string" ? "." + e.className.trim().replace(/ +/g, ".") : ""} (right edge ${Math.round(r.right)})`);
            }
            return [document.scrollingElement.scrollWidth, window.innerWidth, wide];
            """
        )
        if scroll_width <= width:
            return None
        return f"the page is {scroll_width} px wide in a {width} px window {when}: {', '.join(wide)}"

    def save_screenshot(self, name):
        if SCREENSHOT_DIR:
            os.makedirs(SCREENSHOT_DIR, exist_ok=True)
            path = os.path.join(SCREENSHOT_DIR, name)
            self.assertTrue(self.driver.save_screenshot(path), f"screenshot {path}")
            print(f"\n  screenshot: {path} ({os.path.getsize(path)} bytes)", file=sys.stderr)


class DesktopTest(ConsoleTestCase):
    """The page at 1280x900: loading, one order, a flash sale."""

    def test_1_page_loads_without_console_errors(self):
        rows = self.open_console()
        for row in rows:
            self.assertTrue(row.find_element(By.CSS_SELECTOR, "td.name").text.strip())
            int(row.find_element(By.CSS_SELECTOR, "td.stock").text.strip())
        # The API's products are the page's.
        status, body = api("GET", "/products?limit=50")
        self.assertEqual(status, 200)
        shown = {row.get_attribute("data-product-id") for row in rows}
        self.assertEqual(shown, {p["id"] for p in body["data"]})
        # The API reference renders from GET /console/openapi.json.
        wait_until(
            "#api-docs to render the API reference",
            lambda: "/orders" in self.find("#api-docs").text and "Loading" not in self.find("#api-docs").text,
            15,
        )
        # report_console_problems (cleanup) fails the test on any SEVERE entry.

    def test_2_order_placed_in_the_page_shows_its_terminal_event(self):
        self.open_console()
        self.sign_in("dev-user")
        before = set(self.order_ids())
        product_id = self.choose_product("#order-product")
        quantity = self.find("#order-quantity")
        quantity.clear()
        quantity.send_keys("1")
        self.find("#order-submit").click()
        order_id = self.new_order_id(before)

        terminal = " , ".join(
            f'#event-log li[data-order-id="{order_id}"][data-status="{s}"]' for s in terminal_statuses()
        )
        event = wait_until(f"a PAID or FAILED event for order {order_id} in #event-log", lambda: self.find_all(terminal), 30)[0]
        status = event.get_attribute("data-status")
        self.assertTrue(event.get_attribute("data-event"))
        wait_until(
            f"#orders to show order {order_id} as {status}",
            lambda: self.find(f'#orders [data-order-id="{order_id}"] .status').text.strip().upper() == status,
            10,
        )

        http_status, body = api("GET", f"/orders/{order_id}", dev_token("dev-user"))
        self.assertEqual(http_status, 200, body)
        self.assertEqual(body["data"]["status"], status)
        self.assertEqual(body["data"]["items"][0]["product_id"], product_id)
        self.assertEqual(body["data"]["items"][0]["quantity"], 1)

    def test_3_small_flash_sale_ends_with_the_numbers_the_api_reports(self):
        self.open_console()
        self.sign_in_as_admin()
        Select(self.find("#sale-product")).select_by_value("__new__")
        for field, value in (("#sale-stock", str(SALE_STOCK)), ("#sale-buyers", str(SALE_BUYERS))):
            element = self.find(field)
            element.clear()
            element.send_keys(value)
        # The buyers order until refused: 409 INSUFFICIENT_STOCK (and LOCK_CONFLICT, retried).
        self.expect_refusals("/orders", 409)
        self.find("#sale-start").click()

        state = lambda: self.find("#sale-state").get_attribute("data-state")  # noqa: E731
        wait_until("#sale-state to leave idle", lambda: state() != "idle", 15)
        screenshot_taken = False
        deadline = time.monotonic() + 90
        while state() != "done":
            if SCREENSHOT_DIR and not screenshot_taken and self.sale_is_mid_way():
                self.driver.execute_script("document.querySelector('#sale-title').scrollIntoView({block: 'start'})")
                self.save_screenshot("console-desktop.png")
                screenshot_taken = True
            self.assertLess(time.monotonic(), deadline, f"the sale is still {state()} after 90 s")
            time.sleep(0.05)
        if SCREENSHOT_DIR:
            self.assertTrue(screenshot_taken, "the sale ended before a mid-sale screenshot")

        conservation = wait_until(
            "#sale-conservation to have a result",
            lambda: (lambda e: e if e.get_attribute("data-result") else None)(self.find("#sale-conservation")),
            15,
        )
        self.assertEqual(conservation.get_attribute("data-result"), "passed", conservation.text)
        product_id = conservation.get_attribute("data-product-id")
        stock_before = int(conservation.get_attribute("data-stock-before"))
        stock_now = int(conservation.get_attribute("data-stock-now"))
        live_units = int(conservation.get_attribute("data-live-units"))
        sold = int(self.find("#sale-sold").text.strip())
        shown_stock_now = int(self.find("#sale-stock-now").text.strip())
        message = self.find("#sale-message").text
        self.assertNotIn("stopped", message)
        self.assertNotIn("errors:", message)

        api_stock_now = api_stock(product_id)
        self.assertEqual(stock_before, SALE_STOCK)
        self.assertEqual(shown_stock_now, stock_now)
        self.assertEqual(api_stock_now, stock_now)
        self.assertGreaterEqual(api_stock_now, 0)
        self.assertEqual(live_units + stock_now, stock_before)

        # The buyers are users sale-<run>-<i>, the run id is in the product's name ("Flash sale <run>"):
        # their orders, read through the API, are the page's figures.
        status, body = api("GET", f"/products/{product_id}")
        self.assertEqual(status, 200, body)
        name = body["data"]["name"]
        self.assertTrue(name.startswith("Flash sale "), f"sale product named {name!r}")
        run_id = name.removeprefix("Flash sale ")
        orders = [
            order
            for i in range(SALE_BUYERS)
            for order in api_orders(dev_token(f"sale-{run_id}-{i}"))
        ]
        units = {}
        for order in orders:
            self.assertIn(order["status"], terminal_statuses(), f"sale order {order['id']} unsettled after done")
            for item in order["items"]:
                self.assertEqual(item["product_id"], product_id)
                units[order["status"]] = units.get(order["status"], 0) + item["quantity"]
        self.assertEqual(units.get("PAID", 0), live_units)
        self.assertEqual(sum(units.values()), sold, "#sale-sold is not the units of the buyers' orders")
        # A declined payment gives its unit back (PAYMENT_SUCCESS_RATE < 1) and a buyer may order it
        # again before every buyer is refused; what is back after that stays unsold. So the stock
        # left is at most the units of FAILED orders, and none when every payment went through.
        failed_units = units.get("FAILED", 0)
        self.assertLessEqual(stock_now, failed_units)
        if failed_units == 0:
            self.assertEqual(stock_now, 0)
            self.assertEqual(sold, SALE_STOCK)
        print(
            f"\n  sale {run_id}: {sold} units sold in {len(orders)} orders ({units}), stock {stock_before} -> {stock_now}",
            file=sys.stderr,
        )

        # The business metrics panel shows what GET /_local/metrics (the sums of the functions' EMF
        # lines) says: every sale order is in OrdersPlaced (with the orders of earlier tests).
        def panel_matches_endpoint():
            status, body = api("GET", "/_local/metrics")
            self.assertEqual(status, 200, body)
            served = int(body["metrics"]["OrdersPlaced"]["sum"])
            shown = int(self.find("#metrics-orders-placed").text.strip())
            return (shown, served) if shown == served else None

        shown, served = wait_until("#metrics-orders-placed to equal /_local/metrics' OrdersPlaced", panel_matches_endpoint, 10)
        self.assertGreaterEqual(shown, len(orders))
        self.assertGreater(shown, 0)
        refusals = self.find("#metrics-refusals").text
        self.assertIn("INSUFFICIENT_STOCK", refusals)

    def test_5_a_late_push_never_takes_an_order_back_in_time(self):
        self.assertTrue(STACK_AWS_URL and STACK_MANAGEMENT_URL and CONNECTIONS_TABLE, "run through tests/browser/run.sh")
        sub = "late-push-user"
        self.open_console()
        self.sign_in(sub)
        before = set(self.order_ids())
        self.choose_product("#order-product")
        quantity = self.find("#order-quantity")
        quantity.clear()
        quantity.send_keys("1")
        self.find("#order-submit").click()
        order_id = self.new_order_id(before)
        log_entries = lambda status: self.find_all(f'#event-log li[data-order-id="{order_id}"][data-status="{status}"]')  # noqa: E731
        terminal = wait_until(
            f"a terminal event for order {order_id} in #event-log",
            lambda: next((e[0] for e in map(log_entries, terminal_statuses()) if e), None),
            30,
        )
        status = terminal.get_attribute("data-status")
        row_status = f'#orders [data-order-id="{order_id}"] .status'
        wait_until(f"#orders to show order {order_id} as {status}", lambda: self.find(row_status).text.strip() == status, 10)
        http_status, body = api("GET", f"/orders/{order_id}", dev_token(sub))
        self.assertEqual(http_status, 200, body)
        self.assertEqual((body["data"]["status"], body["data"]["version"]), (status, int(terminal.get_attribute("data-version"))))
        # Every status the row shows from now on, however briefly (the page re-reads its orders
        # 250 ms after each event, which would hide a flip back from a sampling test).
        self.driver.execute_script(
            """
            const selector = arguments[0];
            window.shownStatuses = [];
            new MutationObserver(() => {
              const cell = document.querySelector(selector);
              window.shownStatuses.push(cell ? cell.textContent : null);
            }).observe(document.querySelector("#orders"), { childList: true, subtree: true, characterData: true });
            """,
            row_status,
        )

        # The consumer's OrderProcessing, late: pushed after the terminal event to the page's
        # connections through the management API, as the functions push.
        late = {
            "event": "OrderProcessing",
            "order_id": order_id,
            "status": "PROCESSING",
            "version": body["data"]["version"] - 1,  # PROCESSING's, one before the terminal status's
            "total_amount": body["data"]["total_amount"],
            "trace_id": "late-push-test",
            "timestamp": body["data"]["created_at"],
        }
        processing_before = len(log_entries("PROCESSING"))
        connections = wait_until(f"a connection record of {sub}", lambda: connection_ids(sub), 10)
        pushed = [push_to_connection(c, late) for c in connections]
        self.assertIn(200, pushed, f"no connection of {sub} took the late push: {pushed}")
        wait_until("the late OrderProcessing in #event-log", lambda: len(log_entries("PROCESSING")) > processing_before, 10)
        time.sleep(1)  # past the page's re-read of the orders

        shown = self.driver.execute_script("return window.shownStatuses")
        self.assertEqual([s for s in shown if s != status], [], f"order {order_id} went back from {status}: {shown}")
        self.assertEqual(self.find(row_status).text.strip(), status)
        late_entry = log_entries("PROCESSING")[0]  # the newest entry comes first
        self.assertEqual(late_entry.get_attribute("data-stale"), "true", "the late event is not marked stale")

    def sale_is_mid_way(self):
        """Running, half the units sold, every chart drawn: the moment for the desktop screenshot."""
        return self.driver.execute_script(
            """
            if (document.querySelector("#sale-state").dataset.state !== "running") return false;
            if (!(Number(document.querySelector("#sale-sold").textContent) >= arguments[0] / 2)) return false;
            return ["rate", "stock", "lag", "refusals"].every((chart) => {
              const svg = document.querySelector(`#sale-chart-${chart}`);
              return !!svg && svg.querySelector("path, polyline, rect, circle, line") !== null;
            });
            """,
            SALE_STOCK,
        )


class PhoneTest(ConsoleTestCase):
    """The page at 390x844."""

    WINDOW = PHONE

    def test_4_phone_width_has_no_horizontal_scroll_and_orders_by_keyboard(self):
        # No sideways scroll: on load, through an order's life, with an ACTIVE hold listed.
        self.open_console()
        width = self.driver.execute_script("return window.innerWidth")
        self.assertEqual(width, PHONE[0])
        self.assert_no_horizontal_scroll("at phone width")

        self.sign_in("phone-user")
        before = set(self.order_ids())
        self.choose_product("#order-product")
        quantity = self.find("#order-quantity")
        self.driver.execute_script("arguments[0].focus()", quantity)
        self.assertEqual(self.driver.switch_to.active_element, quantity)
        quantity.send_keys(Keys.CONTROL, "a")
        quantity.send_keys("1", Keys.ENTER)
        order_id = self.new_order_id(before)
        self.assertEqual(len(order_id), 32)
        # And Tab from the quantity reaches the button, whose Enter places a second order.
        quantity = self.find("#order-quantity")
        self.driver.execute_script("arguments[0].focus()", quantity)
        quantity.send_keys(Keys.CONTROL, "a")
        quantity.send_keys("1")
        before = set(self.order_ids())
        active = self.driver.switch_to.active_element
        for _ in range(5):  # whatever sits between the field and the button
            active.send_keys(Keys.TAB)
            active = self.driver.switch_to.active_element
            if active.get_attribute("id") == "order-submit":
                break
        self.assertEqual(active.get_attribute("id"), "order-submit", "Tab from #order-quantity never reached #order-submit")
        active.send_keys(Keys.ENTER)
        order_id = self.new_order_id(before)

        # Rows change width as the order goes PENDING -> PROCESSING -> PAID/FAILED: no sideways
        # scroll at any point of that (sampled; a transient one is caught when a sample hits it).
        sideways = set()
        status = f'#orders [data-order-id="{order_id}"] .status'
        deadline = time.monotonic() + 30
        while True:
            shown = self.find(status).text.strip()
            sideways.add(self.horizontal_scroll(f"with order {order_id} {shown} in #orders"))
            if shown in terminal_statuses():
                break
            self.assertLess(time.monotonic(), deadline, f"order {order_id} unsettled in #orders after 30 s")
            time.sleep(0.05)

        # An ACTIVE hold's row carries its Check out button for HOLD_TTL_SECONDS: a wide row that stays.
        self.choose_product("#hold-product")
        self.find("#hold-submit").click()
        wait_until("an ACTIVE hold in #holds", lambda: self.find_all("#holds [data-hold-id] button.checkout"), 15)
        sideways.add(self.horizontal_scroll("with an ACTIVE hold in #holds"))
        # The picture first: it shows the page whatever the checks found.
        self.save_phone_screenshot()
        sideways.discard(None)
        self.assertEqual(sideways, set(), "the page scrolls sideways at phone width")

    def save_phone_screenshot(self):
        """The page from the top to the end of the flash sale, in one image (the API reference
        below it would double the file for a list of links)."""
        if not SCREENSHOT_DIR:
            return
        height = self.driver.execute_script(
            "return Math.ceil(document.querySelector('#sale-conservation').closest('section')"
            ".getBoundingClientRect().bottom + window.scrollY) + 16"
        )
        set_viewport(self.driver, PHONE[0], max(PHONE[1], height))
        self.driver.execute_script("window.scrollTo(0, 0)")
        self.save_screenshot("console-phone.png")
        set_viewport(self.driver, *PHONE)


class Result(unittest.TextTestResult):
    """Times each test, for the summary."""

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        self.stream.writeln(f"  ({time.monotonic() - self._started:.1f} s)")
        super().stopTest(test)


def main():
    loader = unittest.TestLoader()
    names = sys.argv[1:]
    module = sys.modules[__name__]
    suite = loader.loadTestsFromNames(names, module) if names else loader.loadTestsFromModule(module)
    ids = test_ids(suite)  # before the run, which empties the suite
    result = unittest.TextTestRunner(verbosity=2, resultclass=Result, stream=sys.stdout).run(suite)
    # A test can fail twice (its body, then its console check): count tests, not failures.
    failed = {test.id() for test, _ in result.failures + result.errors}
    failed |= {test.id() for test in result.unexpectedSuccesses}
    passed = result.testsRun - len(result.skipped) - len(failed & ids)
    print(f"browser: {passed} passed, {len(failed)} failed")
    return 0 if not failed and result.testsRun > 0 else 1


def test_ids(suite):
    """The ids of the tests in `suite` (not of set-up errors, which unittest reports apart)."""
    ids = set()
    for test in suite:
        ids |= test_ids(test) if isinstance(test, unittest.TestSuite) else {test.id()}
    return ids


if __name__ == "__main__":
    sys.exit(main())
