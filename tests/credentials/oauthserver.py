"""Run the django-oauth-toolkit test server (tests/credentials/oauth_server) in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.services import free_port

SERVER_DIR = Path(__file__).resolve().parent / "oauth_server"
CALLBACK = "http://testserver/oauth/callback/"
USERNAME = "alice"
PASSWORD = "alice-password"


@dataclass
class OAuthServer:
    url: str
    client_id: str
    client_secret: str
    process: subprocess.Popen
    log_path: Path

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/o/authorize/"

    @property
    def token_url(self) -> str:
        return f"{self.url}/o/token/"

    @property
    def revoke_url(self) -> str:
        return f"{self.url}/o/revoke_token/"

    def oauth_config(self, **overrides) -> dict:
        return {
            "client_id": self.client_id,
            "authorize_url": self.authorize_url,
            "token_url": self.token_url,
            "revoke_url": self.revoke_url,
            "scopes": ["read"],
            **overrides,
        }

    def browser(self) -> requests.Session:
        """A browser session logged in to the authorization server as the resource owner."""
        session = requests.Session()
        response = session.post(
            f"{self.url}/test/login/", data={"username": USERNAME, "password": PASSWORD}
        )
        response.raise_for_status()
        return session

    def seed(self, n: int = 1, *, expired: bool = False) -> list[dict]:
        response = requests.post(
            f"{self.url}/test/seed/", params={"n": n, "expired": "1" if expired else "0"}
        )
        response.raise_for_status()
        return response.json()["tokens"]

    def expire(self, access_token: str) -> None:
        requests.post(f"{self.url}/test/expire/", data={"token": access_token}).raise_for_status()

    def revoke(self, token: str) -> None:
        """What a user withdrawing access at the provider does (RFC 7009 revocation)."""
        response = requests.post(
            self.revoke_url,
            data={"token": token, "token_type_hint": "refresh_token"},
            auth=(self.client_id, self.client_secret),
        )
        response.raise_for_status()

    def stats(self) -> dict[str, int]:
        return requests.get(f"{self.url}/test/stats/").json()

    def reset_stats(self) -> None:
        requests.post(f"{self.url}/test/stats/").raise_for_status()

    def refreshes(self) -> dict[str, int]:
        return {k: v for k, v in self.stats().items() if k.startswith("refresh_token:")}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_oauth_server(
    workdir: Path,
    *,
    client_secret: str = "castiel-oauth-client-secret-value",
    redirect_uris: str = CALLBACK,
    access_token_seconds: int = 60,
    gunicorn_workers: int = 0,
) -> OAuthServer:
    workdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "OAUTH_SERVER_DB": str(workdir / "oauth.sqlite3"),
        "OAUTH_ACCESS_TOKEN_SECONDS": str(access_token_seconds),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    boot = subprocess.run(
        [
            sys.executable,
            "bootstrap.py",
            json.dumps(
                {
                    "redirect_uris": redirect_uris,
                    "client_secret": client_secret,
                    "password": PASSWORD,
                }
            ),
        ],
        cwd=SERVER_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if boot.returncode != 0:
        raise RuntimeError(f"oauth server bootstrap failed:\n{boot.stderr[-3000:]}")
    client_id = json.loads(boot.stdout.strip().splitlines()[-1])["client_id"]
    port = free_port()
    if gunicorn_workers:
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "oauth_settings_wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(gunicorn_workers),
            "--log-level",
            "warning",
        ]
    else:
        args = [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    log_path = workdir / "oauth-server.log"
    process = subprocess.Popen(
        args,
        cwd=SERVER_DIR,
        env=env,
        stdout=open(log_path, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"oauth server exited:\n{log_path.read_text()[-3000:]}")
        try:
            requests.get(f"{url}/test/stats/", timeout=5)
            break
        except requests.RequestException:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError(f"oauth server did not start:\n{log_path.read_text()[-3000:]}")
    return OAuthServer(
        url=url,
        client_id=client_id,
        client_secret=client_secret,
        process=process,
        log_path=log_path,
    )
