#!/usr/bin/env python
"""Check a running gridlake Airflow UI (issue 7): log in, list the DAGs and their last runs, screenshot /dags.

    .venv/bin/python scripts/check_airflow_ui.py [--url http://127.0.0.1:8080] [--user admin]
        [--password PW | --password-file FILE] [--out-dir /tmp/gridlake-shots]

1. Logs in the way the Airflow 3 simple auth manager does: ``POST /auth/token`` with the user and
   password (JSON) returns a JWT (``access_token``). By default the password is read from the file
   ``gridlake airflow-ui`` generates (``<AIRFLOW_HOME>/simple_auth_manager_passwords.json.generated``,
   located through ``gridlake.config.load_settings(--profile, --data)``).
2. Reads the DAGs through the REST API with ``Authorization: Bearer <JWT>``: ``GET /api/v2/dags``
   (paged) and, per DAG, ``GET /api/v2/dags/{dag_id}/dagRuns?order_by=-run_after&limit=1``.
3. Opens ``<url>/dags`` in headless Chromium, driven over the DevTools protocol on a pipe
   (``--remote-debugging-pipe``, no extra package). The UI has no ``?token=`` parameter in Airflow
   3.3: its login page stores the JWT in the ``_token`` cookie (path = the API root, ``/`` by default)
   and every UI/API call is authenticated by that cookie. The script sets the same cookie with
   ``Network.setCookie`` before navigating, waits until every DAG's display name is on the page
   (the UI renders client side), then saves a PNG.
4. Writes a JSON summary: base URL, user, DAG ids with paused flag and last run (id, state,
   run_after, start/end), what the UI showed (final URL, DAGs visible / missing, whether it fell back
   to the login page) and the screenshot path. Neither the password nor the token is written or logged.

Exit status: 0 when the login worked, at least one DAG is listed and every DAG is visible on the
/dags page; 1 when a check failed (details in the summary); 2 when the UI cannot be reached or the
login is refused.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

log = logging.getLogger("check_airflow_ui")

TOKEN_COOKIE = "_token"  # airflow.api_fastapi.auth.managers.base_auth_manager.COOKIE_NAME_JWT_TOKEN
PAGE_SIZE = 100


class CheckError(RuntimeError):
    """The UI cannot be reached or refuses the login (exit status 2)."""


# --- REST --------------------------------------------------------------------------------
def _opener() -> urllib.request.OpenerDirector:
    # Straight to the UI: an http_proxy of the environment must not see the password or token.
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_json(method: str, url: str, *, token: str | None = None, body: Any = None, timeout: float = 30) -> Any:
    """One JSON request; raises CheckError with the status and the server's detail on failure."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with _opener().open(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8") or "null")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:300]
        raise CheckError(f"{method} {urllib.parse.urlsplit(url).path} -> HTTP {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise CheckError(f"{method} {url}: {exc}") from exc


def login(base: str, user: str, password: str) -> str:
    """JWT of ``user`` from the simple auth manager (``POST /auth/token``)."""
    doc = http_json("POST", f"{base}/auth/token", body={"username": user, "password": password})
    token = (doc or {}).get("access_token")
    if not token:
        raise CheckError("POST /auth/token returned no access_token")
    return str(token)


def list_dags(base: str, token: str) -> list[dict[str, Any]]:
    """Every DAG the user can read (``GET /api/v2/dags``, paged), sorted by dag_id."""
    dags: list[dict[str, Any]] = []
    while True:
        query = urllib.parse.urlencode({"limit": PAGE_SIZE, "offset": len(dags), "order_by": "dag_id"})
        page = http_json("GET", f"{base}/api/v2/dags?{query}", token=token)
        batch = page.get("dags") or []
        dags += batch
        if not batch or len(dags) >= int(page.get("total_entries") or 0):
            return dags


def last_run(base: str, token: str, dag_id: str) -> dict[str, Any] | None:
    """The DAG's most recent run (by run_after), or None."""
    query = urllib.parse.urlencode({"order_by": "-run_after", "limit": 1})
    path = urllib.parse.quote(dag_id, safe="")
    runs = http_json("GET", f"{base}/api/v2/dags/{path}/dagRuns?{query}", token=token).get("dag_runs") or []
    if not runs:
        return None
    run = runs[0]
    keys = ("dag_run_id", "state", "run_type", "run_after", "logical_date", "start_date", "end_date")
    return {k: run.get(k) for k in keys}


# --- headless Chromium over the DevTools pipe ------------------------------------------------
def find_chromium() -> str | None:
    """``$GRIDLAKE_CHROMIUM``, ``/usr/bin/chromium`` or one on PATH."""
    env = os.environ.get("GRIDLAKE_CHROMIUM")
    if env:
        return env
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


_TRAMPOLINE = (
    "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
    "[os.close(fd) for fd in (r, w) if fd not in (3, 4)]; os.execv(sys.argv[3], sys.argv[3:])"
)


class DevTools:
    """A headless Chromium driven over ``--remote-debugging-pipe`` (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, chromium: str, window: tuple[int, int], extra: list[str] | None = None) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="gl-airflow-ui-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                "--force-device-scale-factor=1", "--remote-debugging-pipe", "--no-proxy-server",
                f"--user-data-dir={self._profile.name}", f"--window-size={window[0]},{window[1]}",
                *(extra or []), "about:blank"]
        # The pipe ends must be fds 3 and 4 in Chromium: a tiny Python trampoline puts them there.
        self.proc = subprocess.Popen([sys.executable, "-c", _TRAMPOLINE, str(to_chrome_r), str(from_chrome_w), *args],
                                     pass_fds=(to_chrome_r, from_chrome_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._next_id = 0
        self.session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: bool = True,
             timeout: float = 30) -> dict[str, Any]:
        """Send one command and wait for its reply; raise on a protocol error."""
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        try:
            os.write(self._to_chrome, json.dumps(msg).encode("utf-8") + b"\0")
        except BrokenPipeError as exc:
            raise CheckError(f"Chromium is gone: {self._stderr_tail()}") from exc
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise CheckError(f"DevTools {method}: {reply['error']}")
                return reply.get("result") or {}

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise CheckError(f"Chromium closed the DevTools pipe: {self._stderr_tail()}")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def _stderr_tail(self) -> str:
        if self.proc.poll() is None or not self.proc.stderr:
            return "(still running)"
        return self.proc.stderr.read().decode("utf-8", "replace")[-500:]

    def attach_page(self) -> None:
        """Attach to the first page target (flat session)."""
        targets = self.send("Target.getTargets", session=False)["targetInfos"]
        page = next((t for t in targets if t.get("type") == "page"), None)
        if page is None:
            page = {"targetId": self.send("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]}
        self.session = self.send("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True},
                                 session=False)["sessionId"]

    def evaluate(self, expression: str) -> Any:
        """Value of a JavaScript expression in the page."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return (result.get("result") or {}).get("value")

    def close(self) -> None:
        """Close the browser and clean the profile."""
        try:
            if self.proc.poll() is None:
                self.send("Browser.close", session=False, timeout=5)
        except (CheckError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        if self.proc.stderr:
            self.proc.stderr.close()
        self._profile.cleanup()


_PAGE_STATE = "JSON.stringify({href: location.href, text: document.body ? document.body.innerText : ''})"


def screenshot_dags_page(base: str, token: str, names: list[str], png: Path, *, window: tuple[int, int],
                         timeout: float) -> dict[str, Any]:
    """Open ``<base>/dags`` with the JWT cookie, wait for every DAG name, save a PNG; return what it showed."""
    chromium = find_chromium()
    if not chromium:
        raise CheckError("headless Chromium not found (install chromium or set GRIDLAKE_CHROMIUM)")
    parts = urllib.parse.urlsplit(base)
    cookie_path = parts.path.rstrip("/") or "/"
    browser = DevTools(chromium, window)
    try:
        browser.attach_page()
        browser.send("Emulation.setDeviceMetricsOverride",  # the viewport, not the window, is the picture
                     {"width": window[0], "height": window[1], "deviceScaleFactor": 1, "mobile": False})
        browser.send("Network.enable")
        browser.send("Page.enable")
        ok = browser.send("Network.setCookie", {"name": TOKEN_COOKIE, "value": token, "url": base + "/",
                                                "path": cookie_path, "httpOnly": True, "sameSite": "Lax"})
        if not ok.get("success", True):
            raise CheckError("Chromium refused the _token cookie")
        url = f"{base}/dags"
        browser.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {"href": url, "text": ""}
        while time.monotonic() < deadline:
            time.sleep(0.5)
            state = json.loads(browser.evaluate(_PAGE_STATE) or "{}") or state
            text = state.get("text") or ""
            if names and all(n in text for n in names):
                break
        time.sleep(1.0)  # let the last rows and icons paint
        state = json.loads(browser.evaluate(_PAGE_STATE) or "{}") or state
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, timeout=60)
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(base64.b64decode(shot["data"]))
    finally:
        browser.close()
    text = state.get("text") or ""
    href = state.get("href") or ""
    return {
        "url": url,
        "final_url": href,
        "login_page": "/auth/login" in href or "/login" in urllib.parse.urlsplit(href).path,
        "dags_visible": [n for n in names if n in text],
        "dags_missing": [n for n in names if n not in text],
        "text_excerpt": text[:600],
        "screenshot": str(png),
    }


# --- defaults from the deployment -------------------------------------------------------------
def deployment_defaults(profile: str | None, data: str | None) -> tuple[str | None, Path | None]:
    """(UI base URL, generated password file) of the gridlake deployment, when gridlake is importable."""
    try:
        from gridlake.config import load_settings
        from tools.airflow_local import PASSWORDS_FILE

        settings = load_settings(profile, data)
    except Exception as exc:  # noqa: BLE001 - a standalone run only needs --url and --password
        log.warning("gridlake settings not available (%s): pass --url and --password", exc)
        return None, None
    af = settings.airflow
    return f"http://{af.api_host}:{af.api_port}", settings.airflow_home / PASSWORDS_FILE


def read_password(args: argparse.Namespace, default_file: Path | None) -> str:
    """--password, $GRIDLAKE_AIRFLOW_PASSWORD, or the user's entry of the (generated) password file."""
    if args.password:
        return args.password
    if os.environ.get("GRIDLAKE_AIRFLOW_PASSWORD"):
        return os.environ["GRIDLAKE_AIRFLOW_PASSWORD"]
    path = Path(args.password_file) if args.password_file else default_file
    if path is None or not path.exists():
        raise CheckError(f"no password given and no password file at {path}")
    doc = json.loads(path.read_text(encoding="utf-8") or "{}")
    if args.user not in doc:
        raise CheckError(f"user {args.user!r} not in {path}")
    return str(doc[args.user])


def run_check(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """The whole check; returns (exit status, summary)."""
    default_url, default_file = deployment_defaults(args.profile, args.data)
    base = (args.url or default_url or "http://127.0.0.1:8080").rstrip("/")
    out_dir = Path(args.out_dir)
    summary: dict[str, Any] = {"checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                               "base_url": base, "user": args.user, "ok": False, "problems": []}
    token = login(base, args.user, read_password(args, default_file))
    log.info("logged in to %s as %s", base, args.user)
    dags = list_dags(base, token)
    entries = []
    for dag in dags:
        run = last_run(base, token, dag["dag_id"])
        entries.append({"dag_id": dag["dag_id"], "display_name": dag.get("dag_display_name") or dag["dag_id"],
                        "is_paused": dag.get("is_paused"), "has_import_errors": dag.get("has_import_errors"),
                        "last_run": run, "last_run_state": run["state"] if run else None})
        log.info("%-40s last run: %s", dag["dag_id"], f"{run['state']} ({run['run_after']})" if run else "none")
    summary["dags"] = entries
    summary["last_run_state"] = {e["dag_id"]: e["last_run_state"] for e in entries}
    if not entries:
        summary["problems"].append("the API lists no DAG")
    names = [e["display_name"] for e in entries]
    ui = screenshot_dags_page(base, token, names, out_dir / args.png, window=(args.width, args.height),
                              timeout=args.timeout)
    summary["ui"] = ui
    log.info("screenshot of %s -> %s", ui["final_url"], ui["screenshot"])
    if ui["login_page"]:
        summary["problems"].append("the UI showed its login page: the _token cookie was not accepted")
    if ui["dags_missing"]:
        summary["problems"].append(f"DAGs not on the /dags page: {', '.join(ui['dags_missing'])}")
    if args.require_runs:
        never = [e["dag_id"] for e in entries if not e["last_run"]]
        if never:
            summary["problems"].append(f"DAGs without any run: {', '.join(never)}")
    summary["ok"] = not summary["problems"]
    return (0 if summary["ok"] else 1), summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command line."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--url", help="UI base URL (default: the deployment's api_host:api_port)")
    p.add_argument("--user", default="admin")
    p.add_argument("--password", help="password (default: $GRIDLAKE_AIRFLOW_PASSWORD or the password file)")
    p.add_argument("--password-file", help="simple auth manager password file (JSON user -> password)")
    p.add_argument("--profile", help="gridlake profile, to find the default URL and password file")
    p.add_argument("--data", help="gridlake data root, to find the default URL and password file")
    p.add_argument("--out-dir", default="/tmp/gridlake-shots")
    p.add_argument("--json", default="airflow_ui.json", help="summary file name under --out-dir")
    p.add_argument("--png", default="airflow_dags.png", help="screenshot file name under --out-dir")
    p.add_argument("--width", type=int, default=1440)
    p.add_argument("--height", type=int, default=1600)
    p.add_argument("--timeout", type=float, default=60, help="seconds to wait for the DAG list to render")
    p.add_argument("--require-runs", action="store_true", help="fail when a DAG has never run")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the check, write the JSON summary, return the exit status."""
    from rich.logging import RichHandler

    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(show_path=False)])
    args = parse_args(argv)
    out = Path(args.out_dir) / args.json
    try:
        status, summary = run_check(args)
    except CheckError as exc:
        log.error("%s", exc)
        status, summary = 2, {"ok": False, "problems": [str(exc)], "base_url": args.url, "user": args.user}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for problem in summary["problems"]:
        log.error("%s", problem)
    log.info("%s: summary in %s", "OK" if status == 0 else "FAILED", out)
    return status


if __name__ == "__main__":
    sys.exit(main())
