#!/usr/bin/env bash
# Waits until the AuthPolicy controller has published a policy's keys, then copies each API key
# client's key from its `<policy>-client-<name>` Secret into KEYS_DIR/<name> (mode 0600, never
# printed): what that client's own workload would mount. Usage: client-keys.sh NAMESPACE POLICY KEYS_DIR
set -euo pipefail
ns="$1" policy="$2" keys="$3"
kubectl -n "$ns" wait "authpolicy/$policy" --for=condition=Ready=True --timeout=120s >/dev/null
mkdir -p "$keys" && chmod 700 "$keys"
for client in $(kubectl -n "$ns" get authpolicy "$policy" -o jsonpath='{.spec.apiKeys[*].name}'); do
  (umask 077; kubectl -n "$ns" get secret "$policy-client-$client" -o jsonpath='{.data.api-key}' | base64 -d >"$keys/$client")
done
