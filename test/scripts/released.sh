#!/usr/bin/env bash
# Released scripts are frozen. Every script of a release is listed with its SHA-256 in
# extension/released.sha256 (written when the release is tagged, never edited after); each must
# still have that hash. Where the git history is at hand, each release tag v* must hold exactly
# the scripts of the working tree, and each of them must be in the list.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/lib.sh

manifest=extension/released.sha256
while read -r hash file; do
  if [ ! -f "$file" ]; then
    fail "released script $file is missing"
  elif [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$hash" ]; then
    pass "released script $file is unchanged"
  else
    fail "released script $file was edited after its release (sha256 differs from $manifest)"
  fi
done <"$manifest"

if ! tags=$(git tag -l 'v*' 2>/dev/null) || [ -z "$tags" ]; then
  echo "  (no git history with release tags here: checked against $manifest only)"
  exit 0
fi
for tag in $tags; do
  for file in $(git ls-tree -r --name-only "$tag" -- extension | grep -E -- '--[0-9.]+\.sql$'); do
    if git diff --quiet "$tag" -- "$file" 2>/dev/null && [ -f "$file" ]; then
      pass "$file is as released in $tag"
    else
      fail "$file differs from release $tag"
    fi
    grep -q "  $file\$" "$manifest" || fail "$file of $tag is not listed in $manifest"
  done
done
