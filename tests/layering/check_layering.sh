#!/usr/bin/env bash
# The layering rule, enforced: dependencies point inward (docs/ARCHITECTURE.md#layering).
#
#   core/       includes only core/, and no header that brings threads, sockets, files or
#               a clock reading into it (time enters core as an argument or a Clock&)
#   config/     includes only core/ and config/
#   transport/  includes only core/ and transport/
#   daemon/     the composition root: may include everything
#
# Usage: check_layering.sh [REPOSITORY_ROOT] (default: two levels above this script).
# Prints every offending line as file:line: text and exits 1; exits 0 when clean.
set -euo pipefail
root=${1:-"$(dirname "$0")/../.."}
cd "$root"

# layer|extended regex its .h/.cc files must not match
rules=(
  'core|#include "(transport|config|daemon)/'
  'core|#include <(thread|mutex|shared_mutex|condition_variable|future|semaphore|stop_token|fstream|iostream)>'
  'core|#include <(zmq|nats|boost/|yaml-cpp/|sys/|unistd|pthread)'
  'core|_clock::now\('
  'config|#include "(transport|daemon)/'
  'transport|#include "(config|daemon)/'
)

violations=0
for rule in "${rules[@]}"; do
  layer=${rule%%|*}
  pattern=${rule#*|}
  [[ -d $layer ]] || { echo "check_layering: no $layer/ under $(pwd)" >&2; exit 2; }
  if hits=$(grep -rnE --include='*.h' --include='*.cc' -- "$pattern" "$layer/"); then
    echo "$layer/ must not match: $pattern"
    echo "$hits" | sed 's/^/  /'
    violations=$((violations + $(echo "$hits" | wc -l)))
  fi
done

if ((violations > 0)); then
  echo "check_layering: $violations line(s) point outward; see docs/ARCHITECTURE.md#layering" >&2
  exit 1
fi
echo "check_layering: core, config and transport point inward"
