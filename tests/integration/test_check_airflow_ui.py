"""scripts/check_airflow_ui.py against a fake Airflow 3 (stdlib HTTP server) and the real headless Chromium.

The fake speaks the parts of the API the script uses, the way Airflow 3.3's simple auth manager does:
``POST /auth/token`` (JSON user/password -> ``access_token``), ``/api/v2/dags`` (paged) and
``/api/v2/dags/{id}/dagRuns`` with ``Authorization: Bearer``; its ``/dags`` page needs the ``_token``
cookie (else it redirects to ``/auth/login``) and renders the list client side, from ``/api/v2/dags``
fetched with that cookie, after a delay. No Airflow is started.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import urllib.parse
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.support import browser

pytestmark = [pytest.mark.browser, pytest.mark.skipif(browser.find_chromium() is None, reason=browser.SKIP_REASON)]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_airflow_ui.py"
PASSWORD = "pw-not-a-secret"
TOKEN = "jwt.for.tests.only"
DAGS = ["gridlake_ingest_housing", "gridlake_ingest_rentals", "gridlake_nightly"]
RUNS = {
    "gridlake_nightly": {"dag_run_id": "scheduled__2024-05-01T18:00:00+00:00", "state": "success",
                         "run_type": "scheduled", "run_after": "2024-05-02T18:00:00Z"},
    "gridlake_ingest_housing": {"dag_run_id": "manual__2024-05-02", "state": "failed", "run_type": "manual",
                                "run_after": "2024-05-02T17:00:00Z"},
}
PAGE = """<!DOCTYPE html><html><head><title>Airflow</title><style>
td.success{background:#00aa00;color:#fff} td.failed{background:#dd0000;color:#fff} td{padding:8px 40px}
</style></head><body><h1>DAGs</h1><table id=t></table><script>
setTimeout(async () => {
  const r = await fetch('/api/v2/dags?limit=100', {credentials: 'same-origin'});
  const doc = await r.json();
  document.getElementById('t').innerHTML = doc.dags.map(d =>
    `<tr><td>${d.dag_display_name}</td><td class="${d.last}">${d.last || 'no run'}</td></tr>`).join('');
}, 700);
</script></body></html>"""


def load_script():
    spec = importlib.util.spec_from_file_location("check_airflow_ui", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeAirflow(BaseHTTPRequestHandler):
    accept_cookie = True

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: str | dict, ctype: str = "application/json", headers=()) -> None:
        data = (json.dumps(body) if isinstance(body, dict) else body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        cookie = SimpleCookie(self.headers.get("Cookie") or "")
        return self.accept_cookie and "_token" in cookie and cookie["_token"].value == TOKEN

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        if self.path == "/auth/token" and body == {"username": "admin", "password": PASSWORD}:
            return self._send(201, {"access_token": TOKEN})
        return self._send(401, {"detail": "Invalid credentials"})

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/auth/login":
            return self._send(200, "<html><body><h1>Sign in</h1></body></html>", "text/html")
        if url.path == "/dags":
            if not self._authorised():
                return self._send(302, "", "text/plain", [("Location", "/auth/login?next=/dags")])
            return self._send(200, PAGE, "text/html")
        if not self._authorised():
            return self._send(401, {"detail": "Not authenticated"})
        if url.path == "/api/v2/dags":
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 50))
            dags = [{"dag_id": d, "dag_display_name": d, "is_paused": False, "has_import_errors": False,
                     "last": (RUNS.get(d) or {}).get("state")} for d in DAGS]
            return self._send(200, {"dags": dags[offset:offset + limit], "total_entries": len(dags)})
        parts = url.path.split("/")
        if url.path.startswith("/api/v2/dags/") and parts[-1] == "dagRuns":
            assert query == {"order_by": "-run_after", "limit": "1"}
            run = RUNS.get(urllib.parse.unquote(parts[-2]))
            return self._send(200, {"dag_runs": [run] if run else [], "total_entries": int(bool(run))})
        return self._send(404, {"detail": "Not Found"})


@pytest.fixture
def fake_airflow():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeAirflow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    FakeAirflow.accept_cookie = True


def test_summary_and_screenshot_of_the_dags_page(fake_airflow, tmp_path, monkeypatch):
    script = load_script()
    monkeypatch.setattr(script, "PAGE_SIZE", 2)  # the DAG list is read page by page
    pw_file = tmp_path / "passwords.json"
    pw_file.write_text(json.dumps({"admin": PASSWORD}), encoding="utf-8")
    status = script.main(["--url", fake_airflow, "--password-file", str(pw_file), "--out-dir", str(tmp_path),
                          "--width", "1000", "--height", "700", "--timeout", "20"])
    raw = (tmp_path / "airflow_ui.json").read_text(encoding="utf-8")
    summary = json.loads(raw)
    assert status == 0, summary["problems"]
    assert summary["ok"] is True and summary["problems"] == []
    assert [d["dag_id"] for d in summary["dags"]] == DAGS
    assert summary["last_run_state"] == {"gridlake_ingest_housing": "failed", "gridlake_ingest_rentals": None,
                                         "gridlake_nightly": "success"}
    assert summary["dags"][2]["last_run"]["dag_run_id"] == RUNS["gridlake_nightly"]["dag_run_id"]
    ui = summary["ui"]
    assert ui["final_url"] == f"{fake_airflow}/dags" and ui["login_page"] is False
    assert ui["dags_visible"] == DAGS and ui["dags_missing"] == []
    assert TOKEN not in raw and PASSWORD not in raw
    shot = browser.read_png(Path(ui["screenshot"]))
    assert (shot.width, shot.height) == (1000, 700)
    # the client-side rendered rows are in the picture: the state cells' colours
    assert shot.colours.get(bytes.fromhex("00aa00"), 0) > 1000
    assert shot.colours.get(bytes.fromhex("dd0000"), 0) > 1000


def test_wrong_password_is_a_login_failure(fake_airflow, tmp_path):
    status = load_script().main(["--url", fake_airflow, "--password", "wrong", "--out-dir", str(tmp_path)])
    summary = json.loads((tmp_path / "airflow_ui.json").read_text(encoding="utf-8"))
    assert status == 2
    assert "HTTP 401" in summary["problems"][0]
    assert not (tmp_path / "airflow_dags.png").exists()


def test_ui_refusing_the_cookie_is_reported(fake_airflow, tmp_path):
    FakeAirflow.accept_cookie = False  # the API takes the bearer token, the UI does not see a session
    status = load_script().main(["--url", fake_airflow, "--password", PASSWORD, "--out-dir", str(tmp_path),
                                 "--timeout", "3"])
    summary = json.loads((tmp_path / "airflow_ui.json").read_text(encoding="utf-8"))
    assert status == 1
    assert summary["ui"]["login_page"] is True and summary["ui"]["dags_missing"] == DAGS
    assert any("login page" in p for p in summary["problems"])
    assert (tmp_path / "airflow_dags.png").exists()  # the screenshot shows what went wrong
