#!/usr/bin/env bash
# N mock workers (default 1,000) registered as Dynamo instances in a local etcd: how long
# registration takes, that every lease stays alive past its TTL, the etcd calls per second
# and the CPU of kvmockd and etcd at idle, and how fast SIGTERM revokes everything.
#
#   tests/bench/dynamo_discovery_scale.sh [WORKERS]     (after cmake --build build)
# Needs etcd (Debian etcd-server), nats-server, curl, bc, python3; uses ports
# 23790, 23800, 14222 and 19090 on 127.0.0.1.
set -u
if [[ ${1:-} == --help || ${1:-} == -h ]]; then sed -n 2,8p "$0"; exit 0; fi
workers=${1:-1000}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
etcd --data-dir "$work/etcd" --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
  --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
  --initial-cluster default=http://127.0.0.1:23800 > "$work/etcd.log" 2>&1 &
etcd_pid=$!
nats-server -p 14222 > "$work/nats.log" 2>&1 &
nats_pid=$!
sleep 2
"$repo/build/daemon/kvmockd" run --set nats.url=nats://127.0.0.1:14222 --set admin.listen=127.0.0.1:19090 \
  --set workers.count="$workers" --set workers.http_base_port=0 --set workers.threads=2 \
  --set workers.model.path="$repo/tests/data/model_dirs/tiny_chat" --set workers.model.name=tiny-chat \
  --set dynamo.discovery=etcd --set dynamo.etcd_endpoints=http://127.0.0.1:23790 > "$work/kvmockd.log" 2>&1 &
pid=$!
start=$(date +%s.%N)
for i in $(seq 1 600); do
  curl -fs 127.0.0.1:19090/ready >/dev/null && break; sleep 0.1
done
ready=$(date +%s.%N)
echo "ready after $(echo "$ready - $start" | bc) s"
# Through etcd's JSON gateway: keys under "v1/" (base64 djEv .. djEw), and the live leases.
count() { curl -s http://127.0.0.1:23790/v3/kv/range -d '{"key":"djEv","range_end":"djEw","count_only":true}' |
  python3 -c 'import json,sys; print(json.load(sys.stdin).get("count", 0))'; }
leases() { curl -s http://127.0.0.1:23790/v3/lease/leases -d '{}' |
  python3 -c 'import json,sys; print(len(json.load(sys.stdin).get("leases", [])))'; }
echo "records: $(count), leases: $(leases)"
reqs() { curl -s 127.0.0.1:19090/metrics | awk '/^kvmock_dynamo_discovery_etcd_requests_total/ {s+=$2} END {print s+0}'; }
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
sleep 5
r0=$(reqs); c0=$(cpu $pid); e0=$(cpu $etcd_pid)
sleep 60
r1=$(reqs); c1=$(cpu $pid); e1=$(cpu $etcd_pid)
hz=$(getconf CLK_TCK)
echo "over 60 s idle: etcd calls $(( r1 - r0 )) ($(echo "scale=1; ($r1 - $r0)/60" | bc)/s), kvmockd CPU $(echo "scale=1; 100*($c1-$c0)/$hz/60" | bc)%, etcd CPU $(echo "scale=1; 100*($e1-$e0)/$hz/60" | bc)%"
echo "records after 65 s (TTL 10 s): $(count), leases: $(leases)"
curl -s 127.0.0.1:19090/metrics | grep -E "^kvmock_dynamo_discovery_(errors|lease_regrants|instances)" | head
kill -TERM $pid; t0=$(date +%s.%N); wait $pid; echo "kvmockd exit $? after $(echo "$(date +%s.%N) - $t0" | bc) s; records: $(count)"
kill $etcd_pid $nats_pid; wait 2>/dev/null; rm -rf "$work"
