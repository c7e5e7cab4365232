#!/usr/bin/env bash
# Draws the module graph of a crate from its `crate::` paths and fails on a cycle.
#
#   hack/modgraph.sh service/src mail/src      # edges, then "no cycle" or the modules in one
#
# A node is a top-level module (`src/auth/jwks.rs` and `src/auth/mod.rs` are both `auth`); an
# edge A -> B is any `crate::B` path written in A's files (`use` lines and inline paths alike).
# Edges inside one module and paths to the crate root (`lib.rs`, `main.rs`) are left out.
set -euo pipefail

status=0
for src in "$@"; do
  src=${src%/}
  edges=$(
    find "$src" -name '*.rs' | sort | while read -r file; do
      rel=${file#"$src"/}
      from=${rel%%/*}
      from=${from%.rs}
      case $from in lib | main) continue ;; esac
      # `use crate::{a, b::c}` names several modules; every identifier right after `crate::` or
      # after `{`/`,` inside a `use crate::{...}` group is a target.
      # Comments (doc links included) are not dependencies.
      code=$(grep -vE '^[[:space:]]*//' "$file" || true)
      { grep -oE 'crate::[a-z_][a-z0-9_]*' <<<"$code" | sed 's/^crate:://' || true
        grep -ozE 'crate::\{[^}]*' <<<"$code" | tr '\0' '\n' | sed 's/^crate::{//' | tr ',' '\n' |
          sed -E 's/^[[:space:]]*//; s/[^a-z0-9_].*$//' || true; } |
        { grep -E '^[a-z_][a-z0-9_]*$' || true; } | while read -r to; do
          [ "$to" = "$from" ] && continue
          [ -e "$src/$to.rs" ] || [ -d "$src/$to" ] || continue
          echo "$from $to"
        done
    done | sort -u
  )
  echo "== $src"
  echo "$edges" | awk 'NF { print "  " $1 " -> " $2 }'
  # tsort prints the members of any loop on stderr.
  if loops=$(echo "$edges" | tsort 2>&1 >/dev/null) && [ -z "$loops" ]; then
    echo "  no cycle"
  else
    echo "$loops" | sed 's/^/  /'
    status=1
  fi
done
exit $status
