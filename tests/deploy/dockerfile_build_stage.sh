#!/usr/bin/env bash
# Runs the Dockerfile's build stage without a container engine, so the image recipe cannot
# rot unnoticed: takes the RUN lines of the stage named `build`, exactly as written, and
# runs them with /bin/sh -c (as `docker build` does) in a scratch copy of the source tree
# standing in for the stage's WORKDIR, with the stage's ENV. Then checks that the file the
# runtime stage copies out of the build stage (COPY --from=build) exists and answers
# --version.
#
#   tests/deploy/dockerfile_build_stage.sh [DOCKERFILE]
#
# Needs the packages `deploy/install-deps.sh --build` installs (root installs the missing
# ones, as in the image). Run by .ci/run; not part of ctest (it builds kvmockd once more).
set -euo pipefail
cd "$(dirname "$0")/../.."
source_root=$PWD
dockerfile=${1:-Dockerfile}
stage=build

fail() { echo "dockerfile_build_stage: $*" >&2; exit 1; }

# One logical instruction per output line: continuation lines joined (Docker drops the
# backslash-newline and skips comment lines inside a continuation), comments dropped.
logical_lines() {
  awk '
    function flush() { if (line != "") print line; line = "" }
    {
      sub(/\r$/, "")
      if (line == "" && ($0 ~ /^[ \t]*#/ || $0 ~ /^[ \t]*$/)) next
      if (line != "" && $0 ~ /^[ \t]*#/) next
      text = $0
      if (text ~ /\\[ \t]*$/) { sub(/\\[ \t]*$/, "", text); line = line text; next }
      line = line text
      flush()
    }
    END { flush() }
  ' "$1"
}

[[ -f $dockerfile ]] || fail "no $dockerfile"
mapfile -t instructions < <(logical_lines "$dockerfile")

in_stage=0
found_stage=0
workdir=""
runs=()
envs=()
artifact=""
for instruction in "${instructions[@]}"; do
  keyword=$(printf '%s' "$instruction" | awk '{print toupper($1)}')
  args=$(printf '%s' "$instruction" | sed -E 's/^[ \t]*[A-Za-z]+[ \t]+//')
  if [[ $keyword == FROM ]]; then
    in_stage=0
    if printf '%s' "$args" | grep -qiE "[ \t]as[ \t]+$stage[ \t]*$"; then
      in_stage=1
      found_stage=1
    fi
    continue
  fi
  if (( ! in_stage )); then
    # The runtime stage names the artifact: COPY --from=build /src/... /usr/local/bin/...
    if [[ $keyword == COPY && $args =~ ^--from=$stage[[:space:]]+([^[:space:]]+) ]]; then
      artifact=${BASH_REMATCH[1]}
    fi
    continue
  fi
  case $keyword in
    WORKDIR)
      [[ -z $workdir || $args == "$workdir" ]] || fail "a second WORKDIR ($args) is not supported"
      workdir=$args ;;
    RUN)
      [[ $args != \[* ]] || fail "exec-form RUN is not supported: $args"
      runs+=("$args") ;;
    ENV)
      [[ $args =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] || fail "only ENV KEY=VALUE is supported: $args"
      envs+=("$args") ;;
    COPY)
      # The scratch copy already holds the whole tree; check the sources exist.
      read -r -a parts <<<"$args"
      for source in "${parts[@]:0:${#parts[@]}-1}"; do
        [[ $source == --* || -e $source_root/$source ]] || fail "COPY source $source does not exist"
      done ;;
    *) fail "instruction $keyword in the $stage stage is not supported by this check" ;;
  esac
done
(( found_stage )) || fail "no stage named '$stage' in $dockerfile"
[[ -n $workdir ]] || fail "the $stage stage has no WORKDIR"
(( ${#runs[@]} > 0 )) || fail "the $stage stage has no RUN"
[[ -n $artifact ]] || fail "no COPY --from=$stage in a later stage"
[[ $artifact == "$workdir"/* ]] || fail "the artifact $artifact is outside WORKDIR $workdir"

scratch=$(mktemp -d /tmp/kvmock-dockerfile-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# The build context: the source tree without what .dockerignore keeps out.
if git -C "$source_root" rev-parse --git-dir >/dev/null 2>&1; then
  git -C "$source_root" ls-files -z --cached --others --exclude-standard \
    | (cd "$source_root" && xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) \
    | tar -C "$source_root" --null -T - -cf - | tar -C "$scratch" -xf -
else
  tar -C "$source_root" --exclude='./.git' --exclude='./build*' -cf - . | tar -C "$scratch" -xf -
fi

echo "dockerfile_build_stage: running ${#runs[@]} RUN line(s) of stage '$stage' in $scratch"
for line in "${envs[@]}"; do export "${line?}"; done
cd "$scratch"
for command in "${runs[@]}"; do
  echo "+ RUN $command"
  /bin/sh -c "$command"
done

binary=$scratch/${artifact#"$workdir"/}
[[ -x $binary ]] || fail "the build stage did not produce $artifact"
version=$("$binary" --version)
[[ $version == kvmockd* ]] || fail "$artifact --version printed '$version'"
echo "dockerfile_build_stage: ok ($version)"
