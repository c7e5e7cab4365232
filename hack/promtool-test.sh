#!/usr/bin/env bash
# `promtool check rules` and `promtool test rules` on the alerting rules the chart ships
# (charts/mailagent-operator/files/prometheus-rules.yaml) with the recorded series of
# hack/promtool/rules-test.yaml: each runbook threshold crossed, and not crossed.
#
# promtool is built once per machine from the Go module github.com/prometheus/prometheus (pinned
# below; cold: a few minutes) and cached outside the work tree the way hack/node-build.sh caches
# its parts: one directory per version, a `stamp` file marking a finished build.
set -euo pipefail

PROMETHEUS_MODULE_VERSION="${PROMETHEUS_MODULE_VERSION:-v0.316.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_root="${MAILAGENT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/mailagent}"
out="$cache_root/promtool-$PROMETHEUS_MODULE_VERSION-$(go env GOVERSION)"
if [[ ! -f "$out/stamp" ]]; then
  rm -rf "$out.partial" && mkdir -p "$out.partial"
  echo "promtool-test: building promtool $PROMETHEUS_MODULE_VERSION into $out (once per machine)" >&2
  start=$SECONDS
  GOTOOLCHAIN=local GOBIN="$out.partial" CGO_ENABLED=0 GOFLAGS= go install -trimpath -ldflags "-s -w" \
    "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE_VERSION"
  echo "promtool-test: built in $((SECONDS - start))s" >&2
  date -u +%FT%TZ >"$out.partial/stamp"
  rm -rf "$out" && mv "$out.partial" "$out"
fi
promtool="$out/promtool"
"$promtool" --version 2>&1 | head -1
"$promtool" check rules "$root/charts/mailagent-operator/files/prometheus-rules.yaml"
"$promtool" test rules "$root/hack/promtool/rules-test.yaml"
