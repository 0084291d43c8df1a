#!/usr/bin/env bash
# The one list of system packages kvmock needs, by Debian 12 (bookworm) name.
# Used by README.md, .ci/run and the Dockerfile. Idempotent and non-interactive.
#
#   deploy/install-deps.sh            build + test dependencies (default)
#   deploy/install-deps.sh --build    only what building kvmockd needs (the Dockerfile)
#   deploy/install-deps.sh --runtime  only the shared libraries kvmockd links at run time
set -euo pipefail

compile_packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  # libraries kvmockd is built on
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libnats-dev libboost-dev
  libyaml-cpp-dev libxxhash-dev nlohmann-json3-dev libssl-dev
  # Unicode for real tokenizers: PCRE2 runs the tokenizer.json split regexes (\p{L}, lookahead),
  # utf8proc does NFC/NFKC normalization
  libpcre2-dev libutf8proc-dev
)
test_packages=(
  # tests, benchmarks, fuzzing, formatting; prometheus for `promtool check metrics`
  googletest libgtest-dev libgmock-dev libbenchmark-dev nats-server prometheus
  clang-14 libclang-rt-14-dev clang-format clang-tidy python3 curl
  # b3sum: the reference BLAKE3 implementation the checksum tests compare against
  b3sum
  # etcd-server: the real etcd (3.4, JSON gateway on /v3) the discovery tests start
  etcd-server
)
runtime_packages=(
  libzmq5 libnats3.4 libyaml-cpp0.7 libxxhash0 libssl3 libpcre2-8-0 libutf8proc2 ca-certificates curl
)

case "${1:-}" in
  "") packages=("${compile_packages[@]}" "${test_packages[@]}") ;;
  --build) packages=("${compile_packages[@]}") ;;
  --runtime) packages=("${runtime_packages[@]}") ;;
  *) echo "usage: $0 [--build | --runtime]" >&2; exit 2 ;;
esac

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if (( ${#missing[@]} == 0 )); then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Only promtool is wanted from the prometheus package. On a machine with systemd the package
# also starts a Prometheus server on port 9090, the admin port kvmockd (and the README demo)
# uses by default: stop it and keep it from starting again.
if [[ " ${missing[*]} " == *" prometheus "* ]] && command -v systemctl >/dev/null &&
  systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
  echo "install-deps: stopped the prometheus service (only promtool is used)"
fi
