#!/usr/bin/env python3
"""Makes a keyring for an AuthPolicy until the AuthPolicy controller does: one fresh API key per
`spec.apiKeys` client and one HS256 JWT key, in the contract's keyring.json format
(crds/src/contract.rs `Keyring`, schema 1: API keys stored as SHA-256 only).

Usage: kubectl get authpolicy NAME -o json | hack/keyring.py KEYS_DIR > keyring.json
The keys themselves go to KEYS_DIR/<client> and KEYS_DIR/jwt-hs256 (mode 0600, never printed);
stderr names them by fingerprint only.
"""
import base64
import hashlib
import json
import os
import secrets
import sys


def fingerprint(secret: bytes) -> str:
    return "sha256:" + hashlib.sha256(secret).hexdigest()[:12]


def private_write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def main() -> None:
    keys_dir = sys.argv[1]
    os.makedirs(keys_dir, mode=0o700, exist_ok=True)
    policy = json.load(sys.stdin)
    spec = policy["spec"]
    api_keys = []
    for client in spec.get("apiKeys", []):
        key = secrets.token_urlsafe(32).encode()
        private_write(os.path.join(keys_dir, client["name"]), key)
        api_keys.append({
            "kid": f"{client['name']}-local-1",
            "client": client["name"],
            "sha256": hashlib.sha256(key).hexdigest(),
            "scopes": client.get("scopes", []),
            "state": "Active",
        })
        print(f"api key for {client['name']}: {fingerprint(key)}", file=sys.stderr)
    jwt_keys = []
    if spec.get("jwt"):
        secret = secrets.token_bytes(32)
        private_write(os.path.join(keys_dir, "jwt-hs256"), base64.b64encode(secret))
        jwt_keys.append({"kid": "hs256-local-1", "alg": "HS256", "secret": base64.b64encode(secret).decode(), "state": "Active"})
        print(f"jwt HS256 key: {fingerprint(secret)}", file=sys.stderr)
    json.dump({"schema": 1, "revision": 1, "apiKeys": api_keys, "jwtKeys": jwt_keys}, sys.stdout)


if __name__ == "__main__":
    main()
