"""`ivr web`: gunicorn serving ``create_app`` on ``[web] bind_address:port``."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from ivr.web import create_app

        return create_app()


def serve() -> int:
    from ivr.config import load_settings

    settings = load_settings()
    web = settings.web
    host = f"[{web.bind_address}]" if ":" in web.bind_address else web.bind_address
    print(f"staff UI: http://{host}:{web.port}/ ({web.workers} workers)", flush=True)
    _Gunicorn(
        {
            "bind": f"{host}:{web.port}",
            "workers": web.workers,
            "worker_class": "sync",
            "timeout": 120,  # contact imports of 100,000 rows
            "graceful_timeout": 10,
            "accesslog": "-",
            "errorlog": "-",
            "loglevel": "info",
            "proc_name": "ivr-web",
            # Each worker builds its own app (and database engine) after the fork.
            "preload_app": False,
        }
    ).run()
    return 0
