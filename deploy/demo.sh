#!/usr/bin/env bash
# The README demo: a local nats-server (JetStream in a temporary directory) and kvmockd
# with four mock workers under the built-in load driver, printing one line per second.
# Ctrl-C stops both. Extra arguments go to kvmockd (e.g. --set workers.count=8).
set -euo pipefail
cd "$(dirname "$0")/.."
kvmockd=${KVMOCKD:-build/daemon/kvmockd}
[[ -x $kvmockd ]] || { echo "demo: $kvmockd not built; run the README command" >&2; exit 1; }

store=$(mktemp -d /tmp/kvmock-demo-XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Its own session, so Ctrl-C reaches kvmockd (which then flushes to NATS) but not the server.
setsid nats-server -a 127.0.0.1 -p "$port" -js -sd "$store" >"$store/nats.log" 2>&1 &
nats_pid=$!
cleanup() {
  kill "$nats_pid" 2>/dev/null || true
  wait "$nats_pid" 2>/dev/null || true
  rm -rf "$store"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.05
done

echo "demo: nats-server on 127.0.0.1:$port (JetStream in $store); admin on http://127.0.0.1:9090/metrics"
echo "demo: workers answer OpenAI requests on ports 8100-8103; Ctrl-C stops everything"
set +e
"$kvmockd" run --config config/examples/demo.yaml --set "nats.url=nats://127.0.0.1:$port" "$@"
status=$?
exit $status
