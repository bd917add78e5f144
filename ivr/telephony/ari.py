"""A small typed ARI client: events and REST requests over one websocket (websockets).

Asterisk 22 (and 20.13/21.8 on) answers REST requests sent over the events websocket
("ARI REST over WebSocket": RESTRequest/RESTResponse messages). That costs a fraction of an
HTTP request in both processes, which matters at hundreds of concurrent calls, so requests
go over the websocket whenever it is up and Asterisk answered the probe sent when it
connected; otherwise (an older Asterisk, or while reconnecting) over HTTP with httpx.

One task reads the websocket: it hands REST responses to their waiting requests at once and
queues events for a second task that calls the listeners in order, so a listener may await
a request without blocking the reading of its response.

The websocket reconnects with exponential backoff whenever Asterisk goes away; listeners are
told with the synthetic events ``IvrAriConnected`` (``{"reconnect": bool}``) and
``IvrAriDisconnected``. Nothing is created at import time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import websockets

from ivr.config import Settings
from ivr.credentials import Credentials

log = logging.getLogger(__name__)

CONNECTED = "IvrAriConnected"
DISCONNECTED = "IvrAriDisconnected"

# The events the telephony service and its sessions act on. Asterisk is asked to send only
# these (an application event filter): a survey call otherwise brings ~23 events, half of
# them variable changes, dial progress and playback starts that nothing reads.
SERVICE_EVENTS = (
    "StasisStart",
    "StasisEnd",
    "ChannelDestroyed",
    "ChannelHangupRequest",
    "ChannelDtmfReceived",
    "ChannelEnteredBridge",
    "ChannelLeftBridge",
    "PlaybackFinished",
    "PlaybackFailed",
    "RecordingFinished",
    "RecordingFailed",
    "ApplicationReplaced",
)


MAX_EVENTS = 10_000  # events waiting for the dispatcher at most


class _WebsocketLost(Exception):
    """The events websocket closed while a REST request on it awaited its answer."""


class AriError(Exception):
    def __init__(self, status: int, method: str, path: str, message: str) -> None:
        super().__init__(f"ARI {method} {path}: {status} {message}")
        self.status = status
        self.path = path


@dataclass(frozen=True)
class AriEvent:
    type: str
    data: dict[str, Any]

    @property
    def channel_id(self) -> str | None:
        channel = self.data.get("channel")
        return channel.get("id") if isinstance(channel, dict) else None

    @property
    def digit(self) -> str | None:
        return self.data.get("digit")

    @property
    def args(self) -> list[str]:
        return list(self.data.get("args", []))


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    state: str
    caller_number: str
    exten: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Channel:
        return cls(
            id=data["id"],
            name=data.get("name", ""),
            state=data.get("state", ""),
            caller_number=data.get("caller", {}).get("number", ""),
            exten=data.get("dialplan", {}).get("exten", ""),
        )


@dataclass(frozen=True)
class Playback:
    id: str
    state: str


@dataclass(frozen=True)
class LiveRecording:
    name: str
    state: str
    duration: int | None = None


Listener = Callable[[AriEvent], Awaitable[None] | None]


class AriClient:
    """One ARI application's REST calls and event stream."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        app: str,
        *,
        reconnect_min: float = 0.2,
        reconnect_max: float = 5.0,
        rest_over_websocket: bool = True,
        timeout: float = 10.0,
        event_filter: tuple[str, ...] | None = None,
    ) -> None:
        self.base = f"http://{host}:{port}/ari"
        self.ws_url = f"ws://{host}:{port}/ari/events?app={quote(app)}&subscribeAll=false"
        # The credentials go in a header, never in the URL (URLs end up in logs).
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._ws_headers = {"Authorization": f"Basic {token}"}
        self.app = app
        self._auth = (username, password)
        self._reconnect = (reconnect_min, reconnect_max)
        self._listeners: list[Listener] = []
        self._http: httpx.AsyncClient | None = None
        self._ws_task: asyncio.Task[None] | None = None
        self._dispatch_task: asyncio.Task[None] | None = None
        # Events wait here for the dispatcher; when MAX_EVENTS wait, the reader stops
        # reading the websocket until there is room (Asterisk buffers; nothing is dropped).
        self._queue: asyncio.Queue[AriEvent] = asyncio.Queue(MAX_EVENTS)
        self._ws: Any = None  # the websocket while REST requests may go over it
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._request_ids = itertools.count(1)
        self.rest_over_websocket = rest_over_websocket
        # None: every event of the application; else only these types (set at each connect).
        self.event_filter = event_filter
        self.timeout = timeout
        self.ws_requests = 0  # requests answered over the websocket (tests, benchmarks)
        self.http_requests = 0
        self._closing = False
        self.connected = asyncio.Event()
        self.connections = 0  # how many times the websocket has connected

    # ------------------------------------------------------------------ lifecycle
    async def start(self, wait: float | None = 10.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=self.base,
            auth=self._auth,
            timeout=httpx.Timeout(self.timeout),
            # Under load (hundreds of calls) connections are reused, not reopened per request;
            # http.conf allows this many sessions.
            limits=httpx.Limits(max_connections=150, max_keepalive_connections=150),
        )
        self._dispatch_task = asyncio.create_task(self._run_dispatch(), name="ari-dispatch")
        self._ws_task = asyncio.create_task(self._run_events(), name="ari-events")
        if wait is not None:
            await asyncio.wait_for(self.connected.wait(), wait)

    async def close(self) -> None:
        self._closing = True
        for task in (self._ws_task, self._dispatch_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._http is not None:
            await self._http.aclose()

    async def __aenter__(self) -> AriClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ events
    def add_listener(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def _dispatch(self, event: AriEvent) -> None:
        for listener in list(self._listeners):
            try:
                result = listener(event)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:  # a broken listener must not stop the event stream
                log.exception("ARI listener failed on %s", event.type)

    def expect(self, predicate: Callable[[AriEvent], bool]) -> asyncio.Future[AriEvent]:
        """A future for the next event matching ``predicate``, listening from now on.

        Call it *before* the request that causes the event, so no event is missed.
        """
        found: asyncio.Future[AriEvent] = asyncio.get_running_loop().create_future()

        def check(event: AriEvent) -> None:
            if not found.done() and predicate(event):
                found.set_result(event)

        remove = self.add_listener(check)
        found.add_done_callback(lambda _: remove())
        return found

    async def wait_for(self, predicate: Callable[[AriEvent], bool], timeout: float) -> AriEvent:
        """Wait for the next event matching ``predicate`` (from now on)."""
        return await asyncio.wait_for(self.expect(predicate), timeout)

    async def _run_dispatch(self) -> None:
        while True:
            event = await self._queue.get()
            await self._dispatch(event)

    async def _run_events(self) -> None:
        delay, ceiling = self._reconnect
        while not self._closing:
            try:
                async with websockets.connect(
                    self.ws_url,
                    additional_headers=self._ws_headers,
                    open_timeout=5,
                    ping_interval=5,
                    ping_timeout=5,
                    max_size=None,
                ) as ws:
                    reconnect = self.connections > 0
                    self.connections += 1
                    delay = self._reconnect[0]
                    rest = self.rest_over_websocket and await self._probe_rest(ws)
                    self._ws = ws if rest else None
                    await self._set_event_filter(self.event_filter)
                    self.connected.set()
                    log.info(
                        "ARI events connected (%s; REST over %s)",
                        "reconnect" if reconnect else "first",
                        "the websocket" if rest else "HTTP",
                    )
                    await self._queue.put(AriEvent(CONNECTED, {"reconnect": reconnect}))
                    async for message in ws:
                        event = self._received(message)
                        if event is not None:
                            await self._queue.put(event)
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.WebSocketException) as exc:
                log.debug("ARI events connection failed: %s", exc)
            finally:
                self._ws = None
                self._fail_pending("the connection to Asterisk was lost")
            if self.connected.is_set():
                self.connected.clear()
                log.warning("ARI events disconnected; reconnecting")
                await self._queue.put(AriEvent(DISCONNECTED, {}))
            if self._closing:
                return
            await asyncio.sleep(delay * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, ceiling)

    def _received(self, message: str | bytes) -> AriEvent | None:
        """A REST response goes to its request; an event is returned for the queue."""
        try:
            data = json.loads(message)
        except ValueError:
            log.warning("ARI sent a non-JSON message: %.200r", message)
            return None
        kind = str(data.get("type", ""))
        if kind == "RESTResponse":
            future = self._pending.pop(str(data.get("request_id", "")), None)
            if future is not None and not future.done():
                future.set_result(data)
            return None
        return AriEvent(kind, data)

    async def _probe_rest(self, ws: Any) -> bool:
        """Whether this Asterisk answers REST requests on the websocket (events that arrive
        meanwhile are queued as usual)."""
        probe = f"probe-{uuid.uuid4().hex[:8]}"
        await ws.send(json.dumps(_rest_request(probe, "GET", "/asterisk/ping")))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.0
        while (remaining := deadline - loop.time()) > 0:
            try:
                message = await asyncio.wait_for(ws.recv(), remaining)
            except TimeoutError:
                break
            try:
                data = json.loads(message)
            except ValueError:
                continue
            if data.get("type") == "RESTResponse" and data.get("request_id") == probe:
                return int(data.get("status_code", 0)) == 200
            event = self._received(message)
            if event is not None:
                await self._queue.put(event)
        log.info("Asterisk does not answer REST requests on the websocket: using HTTP")
        return False

    async def _set_event_filter(self, types: tuple[str, ...] | None) -> None:
        """Ask Asterisk for these event types only (None: all; the filter belongs to the
        application in Asterisk, so an unfiltered client clears what another one set). The
        reader task is not running yet, so this goes over HTTP."""
        if self._http is None:
            return
        self.http_requests += 1
        path = f"/applications/{quote(self.app)}/eventFilter"
        try:
            # Responses to REST requests on the websocket pass the same filter.
            allowed = [*types, "RESTResponse"] if types else []
            body = {"allowed": [{"type": t} for t in allowed], "disallowed": []}
            resp = await self._http.put(path, json=body)
        except httpx.HTTPError as exc:
            raise OSError(f"ARI PUT {path}: no answer from Asterisk: {exc}") from None
        if resp.status_code >= 400:
            log.warning("ARI event filter not set (%s): all events will come", resp.status_code)

    def _fail_pending(self, reason: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionError(reason))

    # ------------------------------------------------------------------ REST
    async def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> Any:
        if self._http is None:
            raise RuntimeError("AriClient.start() was not called")
        clean = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        ws = self._ws
        if ws is not None:
            try:
                return await self._ws_request(ws, method, path, clean, body)
            except _WebsocketLost:
                # The websocket closed under the request (a reconnect): Asterisk may still
                # be there, so the request goes once more over HTTP.
                log.info("ARI %s %s: the websocket closed; retrying over HTTP", method, path)
        self.http_requests += 1
        try:
            resp = await self._http.request(method, path, params=clean, json=body)
        except httpx.HTTPError as exc:
            raise AriError(0, method, path, f"no answer from Asterisk: {exc}") from None
        return _reply(method, path, resp.status_code, resp.text, resp.reason_phrase)

    async def _ws_request(
        self,
        ws: Any,
        method: str,
        path: str,
        params: dict[str, str],
        body: dict[str, Any] | None,
    ) -> Any:
        request_id = str(next(self._request_ids))
        message = _rest_request(request_id, method, path, params, body)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await ws.send(json.dumps(message))
            reply = await asyncio.wait_for(future, self.timeout)
        except (ConnectionError, websockets.WebSocketException) as exc:
            raise _WebsocketLost(str(exc)) from None
        except TimeoutError as exc:
            raise AriError(0, method, path, f"no answer from Asterisk: {exc}") from None
        finally:
            self._pending.pop(request_id, None)
        self.ws_requests += 1
        status = int(reply.get("status_code", 0))
        return _reply(
            method, path, status, reply.get("message_body") or "", reply.get("reason_phrase")
        )

    async def info(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", "/asterisk/info")
        return result

    async def originate(
        self,
        endpoint: str,
        *,
        app_args: list[str] | None = None,
        caller_id: str | None = None,
        timeout: int = 30,
        channel_id: str | None = None,
        variables: dict[str, str] | None = None,
    ) -> Channel:
        data = await self.request(
            "POST",
            "/channels",
            params={
                "endpoint": endpoint,
                "app": self.app,
                "appArgs": ",".join(app_args or []),
                "callerId": caller_id,
                "timeout": timeout,
                "channelId": channel_id or uuid.uuid4().hex,
            },
            body={"variables": variables or {}},
        )
        return Channel.from_json(data)

    async def channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self.request("GET", "/channels")]

    async def channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self.request("GET", f"/channels/{channel_id}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/ring")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def continue_in_dialplan(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/continue")

    async def play(
        self,
        channel_id: str,
        media: list[str],
        *,
        playback_id: str | None = None,
        lang: str | None = None,
    ) -> Playback:
        for item in media:
            if "," in item:
                raise ValueError(
                    f"media {item!r} contains a comma: ARI splits media lists on commas "
                    "(give a tone by its indications name, e.g. tone:ring)"
                )
        pid = playback_id or uuid.uuid4().hex
        data = await self.request(
            "POST",
            f"/channels/{channel_id}/play/{pid}",
            params={"media": ",".join(media), "lang": lang},
        )
        return Playback(id=data["id"], state=data.get("state", ""))

    async def stop_playback(self, playback_id: str) -> None:
        with contextlib.suppress(AriError):  # it may have finished already
            await self.request("DELETE", f"/playbacks/{playback_id}")

    async def record(
        self,
        channel_id: str,
        name: str,
        *,
        fmt: str = "wav",
        max_duration: int = 0,
        max_silence: int = 0,
        beep: bool = False,
        terminate_on: str = "none",
        if_exists: str = "overwrite",
    ) -> LiveRecording:
        data = await self.request(
            "POST",
            f"/channels/{channel_id}/record",
            params={
                "name": name,
                "format": fmt,
                "maxDurationSeconds": max_duration,
                "maxSilenceSeconds": max_silence,
                "beep": beep,
                "terminateOn": terminate_on,
                "ifExists": if_exists,
            },
        )
        return LiveRecording(name=data["name"], state=data.get("state", ""))

    async def stop_recording(self, name: str) -> None:
        await self.request("POST", f"/recordings/live/{quote(name)}/stop")

    async def get_variable(self, channel_id: str, name: str) -> str | None:
        try:
            data = await self.request(
                "GET", f"/channels/{channel_id}/variable", params={"variable": name}
            )
        except AriError as exc:
            if exc.status == 404:
                return None
            raise
        return str(data.get("value")) if data else None

    async def set_variable(self, channel_id: str, name: str, value: str) -> None:
        await self.request(
            "POST", f"/channels/{channel_id}/variable", params={"variable": name, "value": value}
        )

    async def create_bridge(self, bridge_type: str = "mixing", bridge_id: str | None = None) -> str:
        data = await self.request(
            "POST", "/bridges", params={"type": bridge_type, "bridgeId": bridge_id}
        )
        return str(data["id"])

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        await self.request(
            "POST", f"/bridges/{bridge_id}/addChannel", params={"channel": ",".join(channel_ids)}
        )

    async def remove_from_bridge(self, bridge_id: str, channel_ids: list[str]) -> None:
        await self.request(
            "POST",
            f"/bridges/{bridge_id}/removeChannel",
            params={"channel": ",".join(channel_ids)},
        )

    async def destroy_bridge(self, bridge_id: str) -> None:
        with contextlib.suppress(AriError):
            await self.request("DELETE", f"/bridges/{bridge_id}")


def _rest_request(
    request_id: str,
    method: str,
    path: str,
    params: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A RESTRequest message for the events websocket (ARI REST over WebSocket)."""
    message: dict[str, Any] = {
        "type": "RESTRequest",
        "request_id": request_id,
        "method": method,
        "uri": path.lstrip("/"),
    }
    if params:
        message["query_strings"] = [{"name": k, "value": v} for k, v in params.items()]
    if body is not None:
        message["content_type"] = "application/json"
        message["message_body"] = json.dumps(body)
    return message


def _reply(method: str, path: str, status: int, text: str, reason: str | None) -> Any:
    """A REST answer (over HTTP or the websocket): its JSON, None when empty, or AriError
    with Asterisk's message."""
    if status >= 400:
        try:
            parsed = json.loads(text) if text else {}
            message = parsed.get("message") or parsed.get("error") or text
        except (ValueError, AttributeError):
            message = text
        raise AriError(status, method, path, str(message or reason))
    if status == 204 or not text:
        return None
    return json.loads(text)


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ari_client(settings: Settings, creds: Credentials) -> AriClient:
    return AriClient(
        settings.pbx.bind_address,
        settings.pbx.ari_port,
        creds.ari_username,
        creds.ari_password,
        settings.pbx.stasis_app,
        reconnect_min=settings.telephony.ari_reconnect_min,
        reconnect_max=settings.telephony.ari_reconnect_max,
    )


async def ari_ping(settings: Settings, creds: Credentials) -> str:
    """Asterisk's version as ARI reports it (raises when ARI does not answer)."""
    pbx = settings.pbx
    async with httpx.AsyncClient(
        auth=(creds.ari_username, creds.ari_password), timeout=5.0
    ) as http:
        resp = await http.get(f"http://{pbx.bind_address}:{pbx.ari_port}/ari/asterisk/info")
        resp.raise_for_status()
        return str(resp.json().get("system", {}).get("version", "?"))
