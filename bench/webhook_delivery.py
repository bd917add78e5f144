"""Benchmark: webhook delivery latency and throughput to a local receiver (SQLite).

    .venv/bin/python -m bench.webhook_delivery [--rate 100] [--seconds 60] [--backlog 100000]

1. Live: events are committed at ``--rate`` per second for ``--seconds`` (one transaction
   each, as a call's end writes its event), while the delivery worker (`ivr worker`'s
   webhook thread, ivr/webhooks/delivery.py) sends them to the sample receiver
   (webhooks/receiver.py, verifying every signature) on loopback. Latency is from the
   event's commit to the receiver having verified it: p50 / p99 / max, and how many
   arrived (each once).
2. Backlog: ``--backlog`` events are committed while no worker runs (the receiver was
   down), then the worker starts: how long until the receiver has them all, per second.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ivr.accounts.audit import Actor
from ivr.bootstrap import init
from ivr.clock import system_clock
from ivr.config import load_settings
from ivr.webhooks import outbox
from ivr.webhooks.delivery import Deliverer
from tests.webhooks.conftest import load_receiver


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run(rate: int, seconds: int, backlog: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ivr-bench-webhooks-") as tmp:
        env = {
            "IVR_DATA_DIR": tmp,
            "IVR_CACHE_DIR": str(Path(tmp) / "cache"),
            "IVR_WEBHOOKS_ALLOW_PRIVATE": "true",  # the receiver is on loopback
        }
        settings = load_settings(env)
        instance, _ = init(settings, system_clock)
        services = instance.services()
        org = services.accounts.add_org(Actor.cli(), "Bench")
        admin = Actor.cli(org.id)
        committed: dict[str, float] = {}
        arrived: dict[str, float] = {}
        lock = threading.Lock()

        def handle(event: dict[str, Any]) -> None:
            with lock:
                arrived[event["id"]] = time.perf_counter()

        receiver_module = load_receiver()
        receiver = receiver_module.Receiver([], handle)
        server = receiver.serve()
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        _, secret = services.webhooks.create(admin, url, ["call.finished"])
        receiver.secrets.append(secret)

        def emit(n: int) -> None:
            with services.factory.begin() as s:
                msg_id = outbox.emit(
                    s, org.id, "call.finished",
                    {"call_id": f"c{n}", "campaign_id": None, "status": "completed"},
                    at=datetime.now(UTC),
                )  # fmt: skip
            assert msg_id is not None
            with lock:
                committed[msg_id] = time.perf_counter()

        deliverer = Deliverer(services.factory, system_clock, settings.webhooks, settings.smtp)
        stop = threading.Event()
        worker = threading.Thread(target=deliverer.run, args=(stop,), daemon=True)
        worker.start()
        print(f"live: {rate} events/s for {seconds} s", flush=True)
        start = time.perf_counter()
        for n in range(rate * seconds):
            due = start + n / rate
            pause = due - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            emit(n)
        sent = time.perf_counter() - start
        receiver.wait_for(lambda: len(receiver.seen) >= len(committed), 120)
        latencies = [(arrived[m] - committed[m]) * 1000 for m in committed if m in arrived]
        print(
            f"  committed {len(committed):,} in {sent:.1f} s ({len(committed) / sent:.0f}/s); "
            f"received {len(arrived):,} (repeats {receiver.repeats}, rejected "
            f"{receiver.rejected}); latency p50 {statistics.median(latencies):.0f} ms, "
            f"p99 {_quantile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms",
            flush=True,
        )
        stop.set()
        worker.join()

        print(f"backlog: {backlog:,} events while the worker is down", flush=True)
        committed.clear()
        arrived.clear()
        receiver.seen.clear()
        filled = time.perf_counter()
        for n in range(backlog):
            emit(rate * seconds + n)
        print(f"  committed in {time.perf_counter() - filled:.0f} s", flush=True)
        stop = threading.Event()
        began = time.perf_counter()
        worker = threading.Thread(target=deliverer.run, args=(stop,), daemon=True)
        worker.start()
        done = receiver.wait_for(lambda: len(receiver.seen) >= backlog, 3600)
        drained = time.perf_counter() - began
        stop.set()
        worker.join()
        print(
            f"  drained {len(receiver.seen):,} in {drained:.0f} s "
            f"({len(receiver.seen) / drained:.0f} events/s){'' if done else ' (INCOMPLETE)'}",
            flush=True,
        )
        server.shutdown()
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--backlog", type=int, default=100_000)
    args = parser.parse_args()
    run(args.rate, args.seconds, args.backlog)


if __name__ == "__main__":
    main()
