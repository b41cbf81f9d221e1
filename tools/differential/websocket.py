"""The `/subscribe-user` websocket as a step (spec §10).

The exchange connects, sends `ws_first_frame` (the bare token), waits a moment for the server to subscribe,
sends the `ws_trigger` HTTP step (which should publish a message) and waits for one frame. Its outcome is
given a synthetic HTTP status so that it compares like any other step:
- 200: a frame arrived; its JSON payload is the body;
- 408: the connection stayed open but no frame arrived within FRAME_TIMEOUT;
- 403: the server closed the connection with code 1008 (policy violation: a bad token);
- 400 + close code in the body: the server closed it with another code;
- the handshake's own status when the upgrade was refused.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import connect

from tools.differential.steps import MissingValue, substitute

if TYPE_CHECKING:
    from tools.differential.runner import Exchange, Target
    from tools.differential.steps import Step

FRAME_TIMEOUT = 3.0
SUBSCRIBE_GRACE = 0.5  # the server subscribes to Redis after reading the token


def exchange(target: Target, step: Step) -> Exchange:
    from tools.differential.runner import Exchange

    record = Exchange(method="WS")
    try:
        path = substitute(step.path, target.values)
        first = substitute(step.ws_first_frame, target.values) if step.ws_first_frame is not None else None
    except MissingValue as exc:
        record.skipped = f"no value for {{{exc.args[0]}}} on {target.label}"
        return record
    record.url = target.base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + path
    record.request_body = "(token frame)" if first else ""
    started = time.monotonic()
    try:
        with connect(record.url, open_timeout=10, close_timeout=2) as ws:
            if first is not None:
                ws.send(first)
            time.sleep(SUBSCRIBE_GRACE)
            if step.ws_trigger is not None:
                trigger = target.send(step.ws_trigger)
                record.request_body += f" then {step.ws_trigger.method} {trigger.url} -> {trigger.status}"
            try:
                frame = ws.recv(timeout=FRAME_TIMEOUT)
            except TimeoutError:
                record.status, record.body = 408, "no frame"
            else:
                record.status = 200
                raw = frame.decode() if isinstance(frame, bytes) else frame
                record.text = raw
                record.headers = {"x-frame": "binary" if isinstance(frame, bytes) else "text"}
                try:
                    record.body = json.loads(raw)
                except ValueError:
                    record.body = raw
    except InvalidStatus as exc:
        record.status = exc.response.status_code
        record.body = exc.response.body.decode(errors="replace") if exc.response.body else None
    except ConnectionClosed as exc:
        code = exc.rcvd.code if exc.rcvd is not None else None
        record.status = 403 if code == 1008 else 400
        record.body = {"close_code": code}
    except (WebSocketException, OSError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"
    record.seconds = time.monotonic() - started
    record.text = record.text or json.dumps(record.body)
    target.capture(step, record)
    return record
