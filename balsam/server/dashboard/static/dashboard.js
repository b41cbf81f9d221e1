// Balsam dashboard: live refresh of the overview. No framework, no build step.
//
// The overview's live part (#live) is re-fetched as server-rendered HTML whenever something changed.
// "Something changed" comes from the user's /subscribe-user websocket (one message per API write that
// touches the user's sites, batch jobs or job states). The sign-in cookie is HttpOnly, so the socket is
// opened with a short-lived token from /dashboard/live/token, good for the websocket only. Without Redis
// (close code 1011) or while the socket is down, the page polls instead.
(function () {
  "use strict";

  var live = document.getElementById("live");
  if (!live) return;
  var status = document.getElementById("live-status");
  var pollSeconds = Number(live.dataset.pollSeconds) || 15;
  var quietSeconds = Number(live.dataset.quietSeconds) || 60;
  var MIN_GAP_MS = 1000; // at most one refresh a second, however many events arrive
  var CLOSE_NO_PUBSUB = 1011;

  var inFlight = false;
  var again = false;
  var timer = null;
  var lastRefresh = Date.now();
  var socket = null;
  var socketUp = false;
  var retryMs = 2000;
  var fallback = null;

  function setStatus(mode, text) {
    if (!status) return;
    status.dataset.mode = mode;
    status.textContent = text;
  }

  function refresh() {
    if (inFlight) { again = true; return; }
    inFlight = true;
    lastRefresh = Date.now();
    fetch(live.dataset.liveSrc, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }  // signed out: show sign-in
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          live.dataset.refreshedAt = String(Date.now());
        }
      })
      .catch(function () { /* offline for a moment: the next event or poll tries again */ })
      .then(function () {
        inFlight = false;
        if (again) { again = false; schedule(); }
      });
  }

  function schedule() {
    if (timer !== null) return;
    var wait = Math.max(0, MIN_GAP_MS - (Date.now() - lastRefresh));
    timer = window.setTimeout(function () { timer = null; refresh(); }, wait);
  }

  function startPolling(reason) {
    setStatus("polling", "Live updates: " + reason + ", refreshing every " + pollSeconds + " s");
    if (fallback === null) fallback = window.setInterval(refresh, pollSeconds * 1000);
  }

  function stopPolling() {
    if (fallback !== null) { window.clearInterval(fallback); fallback = null; }
  }

  function socketUrl() {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + live.dataset.socketPath;
  }

  function connect() {
    fetch(live.dataset.liveToken, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (response.status === 401) { window.location.reload(); return null; }
        if (!response.ok) throw new Error("token " + response.status);
        return response.json();
      })
      .then(function (body) {
        if (body === null) return;
        socket = new WebSocket(socketUrl());
        socket.onopen = function () { socket.send(body.token); };
        socket.onmessage = function () {
          if (!socketUp) {
            socketUp = true;
            stopPolling();
            setStatus("socket", "Live updates: connected");
          }
          schedule();
        };
        socket.onclose = function (event) {
          socket = null;
          socketUp = false;
          if (event.code === CLOSE_NO_PUBSUB) { startPolling("no event stream on this server"); return; }
          startPolling("event stream reconnecting");
          window.setTimeout(connect, retryMs);
          retryMs = Math.min(retryMs * 2, 60000);
        };
        // The server sends nothing until an event happens; count the socket as up once it stays open.
        window.setTimeout(function () {
          if (socket !== null && socket.readyState === WebSocket.OPEN && !socketUp) {
            socketUp = true;
            retryMs = 2000;
            stopPolling();
            setStatus("socket", "Live updates: connected");
          }
        }, 1500);
      })
      .catch(function () {
        startPolling("event stream unavailable");
        window.setTimeout(connect, retryMs);
        retryMs = Math.min(retryMs * 2, 60000);
      });
  }

  // Ages and site lights change with time alone: refresh now and then even when nothing happens.
  window.setInterval(function () {
    if (Date.now() - lastRefresh >= quietSeconds * 1000) refresh();
  }, 5000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && Date.now() - lastRefresh > pollSeconds * 1000) refresh();
  });

  if (!("WebSocket" in window)) { startPolling("this browser has no websockets"); return; }
  setStatus("connecting", "Live updates: connecting…");
  connect();
})();
