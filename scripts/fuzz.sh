#!/usr/bin/env bash
# `make fuzz`: runs every Fuzz* target of the module for FUZZTIME (default 30s) each,
# one at a time (go test -fuzz takes one target of one package per run).
# Goes on after a failure so that one run reports them all; exits 1 if any failed.
# A failing input is saved under the package's testdata/fuzz/, where it becomes a
# regression case of `go test`: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."

go=${GO:-go}
fuzztime=${FUZZTIME:-30s}

# `go test -list` prints a package's matching names, then its "ok <package> <time>" line.
targets=$("$go" test -run '^$' -list '^Fuzz' ./... |
  awk '/^Fuzz/ { names = names " " $1; next }
       /^ok/   { n = split(names, a, " "); for (i = 1; i <= n; i++) print $2, a[i]; names = "" }')

if [ -z "$targets" ]; then
  echo "no Fuzz targets found"
  exit 0
fi

failed=()
while read -r pkg name; do
  echo "==> $pkg $name ($fuzztime)"
  if ! "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg" </dev/null; then
    failed+=("$pkg $name")
  fi
done <<<"$targets"

if [ ${#failed[@]} -gt 0 ]; then
  printf 'fuzz failures:\n'
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "fuzz: $(wc -l <<<"$targets") targets ran for $fuzztime each, no failures"
