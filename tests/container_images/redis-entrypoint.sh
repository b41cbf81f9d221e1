#!/bin/sh
# `redis-server [config file] [options]` runs as the redis user, listening on every interface with protected
# mode off (the network is the compose project's own, as with the official image); the caller's options come
# last, so they win. Any other command is exec'd as it is.
set -e
if [ "${1#-}" != "$1" ]; then
    set -- redis-server "$@"
fi
if [ "$1" != redis-server ]; then
    exec "$@"
fi
shift
conf=
case "${1:-}" in
    -v | --version | -h | --help) exec redis-server "$@" ;;
    -* | "") ;;
    *) conf=$1 && shift ;;
esac
exec setpriv --reuid=redis --regid=redis --init-groups redis-server ${conf:+"$conf"} \
    --bind 0.0.0.0 --protected-mode no "$@"
