"""The operator's walk through the admin, measured in a real browser.

``Walk.visit(url)`` opens one page at one width and returns what is wrong with it:

- **overflow**: the document, or a scroll container inside ``#content`` (the change list's
  ``.results``), is wider than its box — the table's last columns are cut off or need a
  sideways scroll; measured in the DOM (``scrollWidth`` against ``clientWidth``);
- **console errors** and **uncaught exceptions** of the page;
- **failed requests**: any request that failed, answered 4xx/5xx, or left the test server
  (every such request is aborted: the pages must work offline);
- **axe-core** violations of impact serious or critical (axe-core from ``tests/node``,
  evaluated in the page, so the page's own Content-Security-Policy stays in force).

Screenshots of every page land in ``test-artifacts/walk/`` (git-ignored; CI keeps the folder).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import REPO

AXE_JS = REPO / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
ARTEFACTS = REPO / "test-artifacts" / "walk"
WIDTHS = (1280, 1440)
HEIGHT = 900
AXE_IMPACTS = ("serious", "critical")

# Scroll containers and the document, as (selector, scrollWidth, clientWidth) when too wide.
OVERFLOW_JS = """
() => {
  const found = [];
  const describe = (el) => {
    if (el === document.documentElement) return "document";
    let name = el.tagName.toLowerCase();
    if (el.id) return name + "#" + el.id;
    if (el.classList.length) name += "." + [...el.classList].join(".");
    const parent = el.parentElement;
    return (parent && parent.id ? "#" + parent.id + " > " : "") + name;
  };
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth + 1) {
    found.push([describe(root), root.scrollWidth, root.clientWidth]);
  }
  const content = document.querySelector("#content") || document.body;
  // Form controls scroll their own text, and visually hidden helpers (1px boxes) or
  // icon buttons whose text is indented away are not content.
  const skip = new Set(["INPUT", "TEXTAREA", "SELECT", "BUTTON", "OPTION"]);
  const clips = (el) => getComputedStyle(el).overflowX !== "visible";
  for (const el of [content, ...content.querySelectorAll("*")]) {
    if (el.scrollWidth <= el.clientWidth + 1 || el.clientWidth <= 2 || skip.has(el.tagName)) {
      continue;
    }
    if (!clips(el)) continue;
    found.push([describe(el), el.scrollWidth, el.clientWidth]);
  }
  // Visible overflow clipped further up: anything poking out of the main area's right edge
  // (inside a scroll container it was reported above; the index page's "Recent actions"
  // column sits outside #content by design, inside #main).
  const main = document.querySelector("#main") || document.body;
  const edge = Math.min(main.getBoundingClientRect().right, root.clientWidth);
  for (const el of content.querySelectorAll("table, form, div, pre, ul, p")) {
    const box = el.getBoundingClientRect();
    let inside = false;
    for (let up = el.parentElement; up && up !== content; up = up.parentElement) {
      if (clips(up)) { inside = true; break; }
    }
    if (!inside && box.width > 2 && box.right > edge + 1) {
      found.push([describe(el), Math.round(box.right), Math.round(edge)]);
      break;
    }
  }
  return found.slice(0, 5);
}
"""

AXE_RUN_JS = """
async (impacts) => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter((v) => impacts.includes(v.impact))
    .map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ") + " :: " + n.failureSummary
        .replace(/\\s+/g, " ").slice(0, 200)),
      count: v.nodes.length,
    }));
}
"""


@dataclass
class PageReport:
    url: str
    width: int
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = "\n    ".join(self.problems)
        return f"{self.url} @{self.width}px:\n    {lines}"


def slug(url: str) -> str:
    return re.sub(r"[^a-zA-Z0-9]+", "-", url).strip("-")[:120] or "root"


class Walk:
    """One browser context per width, each tab recording its errors and requests."""

    def __init__(self, browser, base_url: str, *, sidebar_open: bool = True):
        self.browser = browser
        self.base_url = base_url.rstrip("/")
        self.sidebar_open = sidebar_open
        self.axe_source = AXE_JS.read_text() if AXE_JS.exists() else None
        self.contexts: dict[int, object] = {}
        self.tabs: dict[int, object] = {}
        self.events: list[str] = []
        ARTEFACTS.mkdir(parents=True, exist_ok=True)

    # -- set-up ------------------------------------------------------------------------------

    def tab(self, width: int, cookies: list | None = None):
        if width in self.tabs:
            return self.tabs[width]
        context = self.browser.new_context(
            viewport={"width": width, "height": HEIGHT}, device_scale_factor=1
        )
        context.set_default_timeout(20_000)
        state = "true" if self.sidebar_open else "false"
        context.add_init_script(f"localStorage.setItem('django.admin.navSidebarIsOpen', '{state}')")
        if cookies:
            context.add_cookies(cookies)
        # Offline: every request to anything but the test server is refused (and reported).
        context.route(re.compile(r"^(?!" + re.escape(self.base_url) + r"/).*"), self._abort)
        page = context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.events.append(f"uncaught exception: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)
        self.contexts[width], self.tabs[width] = context, page
        return page

    def _abort(self, route):
        url = route.request.url
        if not url.startswith(("data:", "blob:", "about:")):
            self.events.append(f"request off the test server blocked: {url}")
        route.abort()

    def _console(self, message):
        if message.type == "error":
            self.events.append(f"console error: {message.text[:300]}")

    def _failed(self, request):
        if not request.url.startswith(self.base_url):
            return  # reported by _abort
        if request.failure == "net::ERR_ABORTED":
            return  # cancelled by the next navigation (the dashboard's poll in flight)
        self.events.append(f"request failed: {request.method} {request.url} ({request.failure})")

    def _response(self, response):
        if response.status >= 400:
            self.events.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def close(self):
        for context in self.contexts.values():
            context.close()
        self.contexts.clear()
        self.tabs.clear()

    # -- one page ------------------------------------------------------------------------------

    def visit(
        self,
        path: str,
        width: int,
        *,
        cookies: list | None = None,
        axe: bool = True,
        ready: str | None = None,
        shoot: bool = True,
    ) -> PageReport:
        page = self.tab(width, cookies)
        report = PageReport(path, width)
        self.events.clear()
        response = page.goto(self.base_url + path, wait_until="load")
        if ready:
            page.wait_for_selector(ready)
        # The admin's widgets and Castiel's fixes to them run on window load.
        page.evaluate("() => new Promise((done) => setTimeout(done, 0))")
        if response is None or response.status != 200:
            report.problems.append(f"answered {response.status if response else 'nothing'}")
        if page.url.split("?")[0].endswith("/admin/login/"):
            report.problems.append("redirected to the login page")
        for name, scroll, client in page.evaluate(OVERFLOW_JS):
            report.problems.append(f"overflow: {name} is {scroll}px wide in {client}px")
        if axe:
            report.problems += self.axe(page)
        report.problems += list(dict.fromkeys(self.events))
        if shoot:
            # The whole page at the first width; what the window shows at the others (faster).
            page.screenshot(
                path=str(ARTEFACTS / f"{width}-{slug(path)}.png"), full_page=width == WIDTHS[0]
            )
        return report

    def axe(self, page) -> list[str]:
        if self.axe_source is None:
            return [f"axe-core is missing ({AXE_JS}): run scripts/test once (npm ci)"]
        if not page.evaluate("typeof window.axe !== 'undefined'"):
            page.evaluate(self.axe_source)
        return [
            f"axe {v['impact']} {v['id']} ({v['count']} nodes): {v['help']} — "
            + "; ".join(v["nodes"])
            for v in page.evaluate(AXE_RUN_JS, list(AXE_IMPACTS))
        ]


def write_report(reports: list[PageReport]) -> Path:
    path = ARTEFACTS / "report.json"
    path.write_text(
        json.dumps(
            [{"url": r.url, "width": r.width, "problems": r.problems} for r in reports], indent=2
        )
    )
    return path
