#!/usr/bin/env bash
# `make conformance`: checks bin/kite against the Kestra conformance corpus: validates
# every flow, then runs the core flows with `kite flow test` and compares the executions
# (report in bin/conformance.json), then (with -server auto, as make passes it) runs them
# again through the gRPC API of a standalone server and reports the cases whose verdicts
# differ (bin/conformance-server.json). Skips itself (exit 0) when the corpus is absent, so
# a clone of the project alone still passes CI. Arguments go to the checker, e.g.
# `scripts/conformance.sh -strict-exec` or `-exec=false`; the checking itself is
# scripts/conformance/ (main.go).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${CONFORMANCE_DIR:-../shared/conformance/kestra}
if [ ! -f "$dir/expectations.yaml" ]; then
  echo "skipped: $dir not found"
  exit 0
fi

"${MAKE:-make}" --no-print-directory build
exec "${GO:-go}" run ./scripts/conformance -dir "$dir" -kite bin/kite "$@"
