"""The Redis job queue's own cases, against a real redis-server (Debian's package): the jobs
are in Redis, and a wrong password or an unreachable server is a clear error that names
jobs.redis_url and never prints the password. (Transcriptions, retries, a killed worker and
`ivr jobs` run on both backends in test_jobs.py.)"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.config import load_settings
from ivr.jobs import JobQueueError, make_queue, safe_redis_url
from ivr.store.migrate import upgrade
from tests.support.cli import run_ivr
from tests.support.ports import free_port
from tests.support.redis import RedisServer, running_redis


@pytest.fixture()
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


def _env(tmp_path: Path, url: str) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    upgrade(f"sqlite:///{data / 'ivr.db'}")
    return {"IVR_DATA_DIR": str(data), "IVR_JOBS_BACKEND": "redis", "IVR_JOBS_REDIS_URL": url}


def test_the_test_server_listens_on_loopback_only_and_wants_its_password(
    redis: RedisServer,
) -> None:
    with socket.create_connection(("127.0.0.1", redis.port), timeout=2) as sock:
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        assert sock.recv(200).startswith(b"-NOAUTH")
    assert redis.command("PING") == "+PONG"
    listening = [
        fields[1]
        for table in ("/proc/net/tcp", "/proc/net/tcp6")
        for fields in (line.split() for line in Path(table).read_text().splitlines()[1:])
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == redis.port
    ]
    assert listening == [f"0100007F:{redis.port:04X}"]  # 127.0.0.1 only, no IPv6


def test_jobs_are_kept_in_redis(redis: RedisServer, tmp_path: Path) -> None:
    env = _env(tmp_path, redis.url)
    queue = make_queue(load_settings(environ=env))
    try:
        queue.check()
        queue.enqueue_transcription(7)
        queue.enqueue_transcription(8)
        assert queue.pending() == 2
        assert queue.queued_recordings() == {7, 8}
    finally:
        queue.close()
    assert redis.command("LLEN", "huey.redis.ivr") == ":2"
    assert not (tmp_path / "data" / "jobs.db").exists()  # not on SQLite as well
    assert queue.where == f"redis redis://:***@127.0.0.1:{redis.port}/0"


def test_a_wrong_password_is_a_clear_error(redis: RedisServer, tmp_path: Path) -> None:
    wrong = f"redis://:not-{redis.password}@127.0.0.1:{redis.port}/0"
    env = _env(tmp_path, wrong)
    for command in (["jobs"], ["worker"]):
        started = time.monotonic()
        proc = run_ivr(env, *command, timeout=30)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr)
        assert time.monotonic() - started < 20  # it says so, rather than waiting forever
        assert proc.stderr.startswith("ivr: error: jobs.redis_url (redis://:***@127.0.0.1:")
        assert "Redis refused the password" in proc.stderr
        assert redis.password not in proc.stderr + proc.stdout
        assert "Traceback" not in proc.stderr

    no_password = _env(tmp_path, f"redis://127.0.0.1:{redis.port}/0")
    proc = run_ivr(no_password, "jobs", timeout=30)
    assert proc.returncode == 2
    assert "jobs.redis_url (redis://127.0.0.1:" in proc.stderr
    assert "Redis wants a password" in proc.stderr


def test_an_unreachable_redis_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port(also_udp=False)  # nothing listens there
    url = f"redis://:s3cret-pw@127.0.0.1:{port}/0"
    env = _env(tmp_path, url)
    proc = run_ivr(env, "jobs", timeout=30)
    assert proc.returncode == 2, proc.stdout
    assert proc.stderr.startswith(
        f"ivr: error: jobs.redis_url (redis://:***@127.0.0.1:{port}/0): cannot reach Redis"
    )
    assert "s3cret-pw" not in proc.stderr

    # A producer (the telephony worker) gets the same error when it queues a job.
    queue = make_queue(load_settings(environ=env))
    try:
        with pytest.raises(JobQueueError) as caught:
            queue.enqueue_transcription(1)
    finally:
        queue.close()
    assert "jobs.redis_url" in str(caught.value) and "s3cret-pw" not in str(caught.value)
    assert "while queueing the transcription of recording 1" in str(caught.value)


def test_a_bad_redis_url_names_the_setting(tmp_path: Path) -> None:
    env = _env(tmp_path, "redis://:pw@127.0.0.1:notaport/0")
    proc = run_ivr(env, "jobs", timeout=30)
    assert proc.returncode == 2
    assert proc.stderr.startswith("ivr: error: jobs.redis_url (redis://:***@127.0.0.1:notaport/0)")
    assert ":pw@" not in proc.stderr


def test_safe_redis_url_hides_only_the_password() -> None:
    assert safe_redis_url("redis://:pw@h:1/0") == "redis://:***@h:1/0"
    assert safe_redis_url("redis://user:pw@h:1/0") == "redis://user:***@h:1/0"
    assert safe_redis_url("redis://h:1/2") == "redis://h:1/2"
    assert safe_redis_url("unix:///run/redis.sock") == "unix:///run/redis.sock"
