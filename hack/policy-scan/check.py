"""Judges trivy's PSS-restricted compliance report and checkov's report against waivers.yaml.

    check.py trivy REPORT.json LABEL
    check.py checkov REPORT.json LABEL WAIVERS.yaml DOC.md

trivy: every one of the 17 controls must pass (no waivers: restricted is the floor).
checkov: every failed check must be waived for that resource in WAIVERS.yaml, every waiver must
still match a finding (a stale waiver hides nothing and is removed), and every waived check id
must be listed in DOC.md with its reason. Prints a summary line per report; exits 1 on any
unwaived finding.
"""

import json
import sys

import yaml


def trivy(report_path, label):
    report = json.load(open(report_path))
    controls = report["Results"]
    failed = []
    for control in controls:
        misconfigs = [
            m
            for result in control.get("Results") or []
            for m in result.get("Misconfigurations") or []
            if m.get("Status", "FAIL") == "FAIL"
        ]
        if misconfigs:
            failed.append((control["ID"], control["Name"], [m.get("Message", m.get("ID")) for m in misconfigs]))
    passed = len(controls) - len(failed)
    print(f"trivy {report['ID']} on {label}: {passed}/{len(controls)} controls pass")
    for cid, name, messages in failed:
        print(f"  FAIL {cid} {name}: " + "; ".join(messages))
    return 0 if not failed and len(controls) == 17 else 1


def checkov(report_path, label, waivers_path, doc_path):
    report = json.load(open(report_path))
    reports = report if isinstance(report, list) else [report]
    failed, passed = [], 0
    for r in reports:
        if "results" not in r:  # no resources of this framework
            continue
        failed += r["results"]["failed_checks"]
        passed += r["summary"]["passed"]
    if passed + len(failed) == 0:
        print(f"checkov on {label}: no check ran (nothing scanned)")
        return 1
    waivers = yaml.safe_load(open(waivers_path))["checkov"]
    doc = open(doc_path).read()
    status, used = 0, set()
    unwaived = []
    for f in failed:
        match = [i for i, w in enumerate(waivers) if w["check"] == f["check_id"] and f["resource"] in w["resources"]]
        if match:
            used.update(match)
        else:
            unwaived.append(f)
    print(f"checkov on {label}: {passed} passed, {len(failed)} failed, {len(failed) - len(unwaived)} of them waived")
    for f in unwaived:
        status = 1
        print(f"  UNWAIVED {f['check_id']} {f['check_name']}: {f['resource']}")
    for i, w in enumerate(waivers):
        if w.get("scope") == label and i not in used:
            status = 1
            print(f"  STALE WAIVER {w['check']} ({label}): no finding matches it any more; remove it")
        if f"`{w['check']}`" not in doc:
            status = 1
            print(f"  waiver {w['check']} is not listed in {doc_path}")
    return status


if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "trivy":
        sys.exit(trivy(*sys.argv[2:4]))
    sys.exit(checkov(*sys.argv[2:6]))
