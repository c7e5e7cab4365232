"""Runs the GitOps health checks of docs/gitops/ on status objects the operator wrote.

    gitops-test.py CASES_DIR

CASES_DIR holds `<case>.json` files, each a MailAgent or AuthPolicy as `kubectl get -o json`
returned it from a real API server after the operator reconciled it (hack/manifests-test.sh
records them; docs/gitops/testdata/ keeps a recorded set), plus `expected.json`:
{"<case>": {"argocd": "<Argo CD health>", "flux": "<kstatus>"}}.

- Argo CD: the Lua scripts in docs/gitops/argocd/ under Lua 5.1 (lupa's lua51 module: the
  dialect of gopher-lua, which Argo CD embeds), with `obj` set the way Argo CD sets it; the copies
  in argocd-cm-patch.yaml must be byte-identical to the files.
- Flux: the healthCheckExprs of docs/gitops/example/clusters/prod/flux/mail.yaml with cel-python,
  evaluated as kustomize-controller does: inProgress, then failed, then current; none true means
  InProgress.
Exits 1 on any mismatch; prints one line per case.
"""

import json
import pathlib
import sys

import celpy
import lupa.lua51 as lua51
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
GITOPS = ROOT / "docs" / "gitops"


def lua_scripts():
    scripts = {
        "MailAgent": (GITOPS / "argocd" / "mailagent-health.lua").read_text(),
        "AuthPolicy": (GITOPS / "argocd" / "authpolicy-health.lua").read_text(),
    }
    patch = yaml.safe_load((GITOPS / "argocd" / "argocd-cm-patch.yaml").read_text())["data"]
    for kind, script in scripts.items():
        key = f"resource.customizations.health.mailagent.dev_{kind}"
        if patch.get(key) != script:
            sys.exit(f"{key} in argocd-cm-patch.yaml differs from the .lua file")
    return scripts


def argocd_health(script, obj):
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return result["status"], result["message"]


def flux_exprs():
    kustomization = yaml.safe_load((GITOPS / "example" / "clusters" / "prod" / "flux" / "mail.yaml").read_text())
    env = celpy.Environment()
    exprs = {}
    for check in kustomization["spec"]["healthCheckExprs"]:
        exprs[check["kind"]] = [
            (name, env.program(env.compile(check[name])))
            for name in ("inProgress", "failed", "current")
            if name in check
        ]
    return exprs


def flux_status(programs, obj):
    # kustomize-controller hands the expressions the object's top-level fields.
    activation = {k: celpy.json_to_cel(obj.get(k, {})) for k in ("apiVersion", "kind", "metadata", "spec", "status")}
    for name, program in programs:
        value = program.evaluate(activation)
        if isinstance(value, Exception):
            raise value
        if bool(value):
            return {"inProgress": "InProgress", "failed": "Failed", "current": "Current"}[name]
    return "InProgress"


def main(cases_dir):
    cases_dir = pathlib.Path(cases_dir)
    expected = json.loads((cases_dir / "expected.json").read_text())
    scripts, exprs = lua_scripts(), flux_exprs()
    failures = 0
    for case, want in sorted(expected.items()):
        obj = json.loads((cases_dir / f"{case}.json").read_text())
        kind = obj["kind"]
        argo, message = argocd_health(scripts[kind], obj)
        flux = flux_status(exprs[kind], obj)
        ok = argo == want["argocd"] and flux == want["flux"]
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {case}: Argo CD {argo} ({message}); Flux {flux}"
              + ("" if ok else f"; expected Argo CD {want['argocd']}, Flux {want['flux']}"))
    print(f"gitops health: {len(expected) - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
