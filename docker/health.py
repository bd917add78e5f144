"""The compose health checks of the application image (run through docker/entrypoint.sh).

telephony: Asterisk lists the telephony worker's ARI application (its websocket is up).
worker:    the job queue (Redis) answers.
web:       the staff UI answers GET /login with 200.
Exit 0 when healthy; otherwise 1 and one line saying why (no secret in it).
"""

from __future__ import annotations

import sys

import httpx


def main(what: str) -> str | None:
    from ivr.config import load_settings

    settings = load_settings()
    if what == "telephony":
        from ivr.credentials import load_credentials

        creds = load_credentials(settings)
        pbx = settings.pbx
        url = f"http://{pbx.bind_address}:{pbx.ari_port}/ari/applications/{pbx.stasis_app}"
        answer = httpx.get(url, auth=(creds.ari_username, creds.ari_password), timeout=4)
        if answer.status_code != 200:
            return f"ARI application {pbx.stasis_app}: HTTP {answer.status_code}"
        return None
    if what == "worker":
        import redis

        client = redis.Redis.from_url(settings.jobs.redis_url, socket_timeout=4)
        return None if client.ping() else "Redis did not answer PING"
    if what == "web":
        web = settings.web
        host = "127.0.0.1" if web.bind_address in ("0.0.0.0", "::") else web.bind_address
        host = f"[{host}]" if ":" in host else host
        answer = httpx.get(f"http://{host}:{web.port}/login", timeout=4)
        return None if answer.status_code == 200 else f"GET /login: HTTP {answer.status_code}"
    return f"unknown health check {what!r} (telephony, worker, web)"


if __name__ == "__main__":
    try:
        problem = main(sys.argv[1] if len(sys.argv) > 1 else "")
    except Exception as exc:  # noqa: BLE001 - any failure is "unhealthy", said in one line
        problem = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if problem:
        print(problem)
        sys.exit(1)
