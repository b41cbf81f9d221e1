#!/usr/bin/env bash
# A second upstream gunicorn with the OAuth login methods enabled, sharing the database and Redis of a peer
# that ../shared/peer/upstream.sh already runs (the peer itself enables password login only). It lets the
# differential tool compare the device-flow and authorization-code routes. No OAuth provider is reachable
# here, so only the steps that stop before the provider exchange mean anything.
#
#   PEER_ROOT=/tmp/peer-me PEER_PG_PORT=55632 PEER_REDIS_PORT=56579 tools/differential/upstream-oauth.sh start 58201
#   PEER_ROOT=/tmp/peer-me tools/differential/upstream-oauth.sh stop
#
# PEER_DIR is the directory of upstream.sh (default: ../shared/peer beside the repository).
# Its pid file and logs live in $PEER_ROOT/oauth. It only stops the gunicorn it started.
set -euo pipefail

PEER_ROOT="${PEER_ROOT:?set PEER_ROOT to the root of your own peer (never the default /tmp/peer)}"
ROOT="$PEER_ROOT/oauth"
PID_FILE="$ROOT/gunicorn.pid"
# The peer's directory: ../shared/peer beside the repository unless PEER_DIR says otherwise.
PEER_DIR="${PEER_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/../shared/peer}"
CONF="$PEER_DIR/gunicorn.conf.py"

case "${1:-}" in
    start)
        port="${2:-58201}"
        mkdir -p "$ROOT/log/server"
        [ -f "$CONF" ] || { echo "no $CONF" >&2; exit 1; }
        cd "$ROOT/log"
        env PEER_ROOT="$ROOT" PEER_LOG_DIR="$ROOT/log" PEER_API_HOST=127.0.0.1 PEER_API_PORT="$port" \
            BALSAM_DATABASE_URL="postgresql://postgres@127.0.0.1:${PEER_PG_PORT:-55432}/balsam" \
            BALSAM_REDIS_PARAMS="{\"host\": \"127.0.0.1\", \"port\": ${PEER_REDIS_PORT:-56379}}" \
            BALSAM_LOG_DIR="$ROOT/log/server" \
            BALSAM_AUTH_LOGIN_METHODS='["password", "oauth_device", "oauth_authcode"]' \
            BALSAM_OAUTH_CLIENT_ID=differential-test BALSAM_OAUTH_CLIENT_SECRET=not-a-secret \
            BALSAM_OAUTH_REDIRECT_SCHEME=http \
            "$PEER_ROOT/venv/bin/gunicorn" -c "$CONF" balsam.server.main:app
        for _ in $(seq 1 120); do
            curl -fsS -o /dev/null "http://127.0.0.1:$port/docs" 2>/dev/null && { echo "upstream with OAuth at http://127.0.0.1:$port"; exit 0; }
            sleep 0.5
        done
        echo "no answer on port $port; see $ROOT/log/gunicorn.error" >&2
        exit 1
        ;;
    stop)
        [ -s "$PID_FILE" ] || { echo "not running"; exit 0; }
        kill -TERM "$(cat "$PID_FILE")"
        ;;
    *)
        echo "usage: $0 start [PORT] | stop" >&2
        exit 2
        ;;
esac
