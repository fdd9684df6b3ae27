#!/usr/bin/env python3
"""Scores Keyward on the benign-noise benchmark estate and writes docs/detection-quality.md.

    python3 examples/quality/score.py --keyward target/release/keyward --estate target/quality/estate

Ingests the estate into a fresh embedded store (`keyward --data-dir D ingest aws k8s repo
directory`, the approved partner accounts passed as `--allow-account`), then reads
`findings --format json`, `findings risk` and `inventory --format json`, and compares them
with the estate's `truth.json`:

* per planted incident: caught (an *open* threat finding on the incident's identity, within
  its window, from one of the accepted rules) and how many open threat findings it raised;
* open threat findings per planted incident over the whole estate (target <= 1.5), and the
  noise (open threat findings no incident explains) by rule and by identity;
* posture precision and recall per category (admin wildcard, stale, orphaned, escalation);
* identities per risk tier.

Only `open` findings count as alerts; any other status (`expected`, `acknowledged`, ...) is
reported beside them. Python 3.11, stdlib only. Tolerates a keyward without the newer
commands (risk as JSON, ...): what it cannot read is reported as unavailable.
"""
import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))


def rules_of(f):
    """The rule that opened a finding and the rules folded into it (`details.also`)."""
    details = f.get("details") or {}
    also = details.get("also") if isinstance(details, dict) else None
    return {f.get("rule_id")} | set(also or [])


def run(cmd, check=True):
    t0 = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.monotonic() - t0
    if check and p.returncode not in (0, 2):
        sys.stderr.write(p.stderr)
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}")
    return p, dt


def parse_time(s):
    return int(datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp() * 1000)


def norm(i):
    """Identity as compared: service accounts without their cluster (the files' layout decides
    the cluster name), role sessions as their role."""
    if i is None:
        return None
    if i.startswith("k8s:") and "/" in i:
        return "k8s:*/" + i.split("/", 1)[1]
    m = re.match(r"^arn:aws:sts::(\d{12}):assumed-role/([^/]+)/", i)
    if m:
        return f"arn:aws:iam::{m.group(1)}:role/{m.group(2)}"
    return i


def matches(identity, patterns):
    n = norm(identity)
    for p in patterns:
        if p.endswith("*"):
            if identity and (identity.startswith(p[:-1]) or (n or "").startswith(p[:-1])):
                return True
        elif n == norm(p):
            return True
    return False


def short(i):
    if i is None:
        return "(none)"
    if i.startswith("k8s:"):
        return i.split("/", 1)[1].replace("system:serviceaccount:", "sa:")
    m = re.match(r"^arn:aws:(iam|sts)::\d{12}:(.*)$", i)
    return m.group(2) if m else i


def pct(a, b):
    return "n/a" if b == 0 else f"{100.0 * a / b:.0f}%"


def ingest(kw, estate, data, allow):
    cmd = [kw, "--data-dir", data, "ingest"]
    for a in allow:
        cmd += ["--allow-account", a]
    cmd += [os.path.join(estate, x) for x in ("aws", "k8s", "repo", "directory")]
    p, dt = run(cmd)
    return p, dt, cmd


def read_findings(kw, data):
    p, _ = run([kw, "--data-dir", data, "findings", "--format", "json"])
    return json.loads(p.stdout or "[]")


def read_risk(kw, data, allow):
    """Identity -> tier. JSON when the keyward has it, else the table (identity, R, tier, ...)."""
    base = [kw, "--data-dir", data, "findings", "risk", "--top", "1000000"]
    for a in allow:
        base += ["--allow-account", a]
    p, _ = run(base + ["--format", "json"], check=False)
    if p.returncode == 0:
        try:
            doc = json.loads(p.stdout)
            rows = doc if isinstance(doc, list) else doc.get("risks", doc.get("identities", []))
            out = {}
            for r in rows:
                if isinstance(r, dict):
                    ident = r.get("identity") or r.get("id")
                    tier = r.get("tier") or (r.get("risk") or {}).get("tier")
                    if ident and tier:
                        out[ident] = tier
            if out:
                return out, None
        except (json.JSONDecodeError, AttributeError):
            pass
    p, _ = run(base, check=False)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["failed"])[-1]
    out = {}
    for line in p.stdout.splitlines():
        m = re.match(r"^\s*(\S+)\s+(\d+(?:\.\d+)?)\s+(\S+)\s", line)
        if m and m.group(1) != "identity":
            out[m.group(1)] = m.group(3)
    return out, None


def read_inventory(kw, data):
    p, _ = run([kw, "--data-dir", data, "inventory", "--format", "json"], check=False)
    if p.returncode != 0:
        return None
    try:
        return json.loads(p.stdout)
    except json.JSONDecodeError:
        return None


def score(truth, findings):
    threats = [f for f in findings if f.get("kind") == "threat"]
    posture = [f for f in findings if f.get("kind") == "posture"]
    status_counts = collections.Counter((f.get("kind"), f.get("status")) for f in findings)
    open_threats = [f for f in threats if f.get("status") == "open"]

    incidents = []
    explained = set()
    for inc in truth["incidents"]:
        lo, hi = parse_time(inc["window"]["start"]), parse_time(inc["window"]["end"])
        mine = [f for f in threats if matches(f.get("identity"), inc["identities"])
                and f.get("first_seen", 0) <= hi and f.get("last_seen", 0) >= lo]
        mine_open = [f for f in mine if f.get("status") == "open"]
        hits = [f for f in mine_open if rules_of(f) & set(inc["rules"])]
        other = [f for f in mine if f.get("status") != "open" and rules_of(f) & set(inc["rules"])]
        for f in mine_open:
            explained.add(f["id"])
        incidents.append({"id": inc["id"], "description": inc["description"], "caught": bool(hits),
                          "open": len(mine_open), "rules_fired": sorted(set().union(*map(rules_of, mine_open))),
                          "accepted": inc["rules"], "caught_other_status": sorted({f["status"] for f in other})})
    noise = [f for f in open_threats if f["id"] not in explained]
    by_rule = collections.Counter(f.get("rule_id") for f in noise)
    by_ident = collections.Counter(f.get("identity") for f in noise)
    ident_rules = collections.defaultdict(collections.Counter)
    for f in noise:
        ident_rules[f.get("identity")][f.get("rule_id")] += 1
    inc_idents = [p for inc in truth["incidents"] for p in inc["identities"]]
    on_incident_idents = sum(1 for f in noise if matches(f.get("identity"), inc_idents))

    cats = []
    for cat, spec in truth["posture"].items():
        rule = truth["posture_rules"][cat]
        # Findings about a group ("every member can …") name no identity: listed apart.
        groups = sorted({(f.get("path") or ["?"])[0] for f in posture if f.get("rule_id") == rule
                         and f.get("status") == "open" and not f.get("identity")})
        found = {norm(f.get("identity")) for f in posture if f.get("rule_id") == rule and f.get("status") == "open"
                 and f.get("identity")}
        other = {norm(f.get("identity")) for f in posture if f.get("rule_id") == rule and f.get("status") != "open"}
        want = {norm(i) for i in spec["identities"]}
        neutral = {norm(i) for i in spec["neutral"]}
        tp = found & want
        fp = found - want - neutral
        fn = want - found
        cats.append({"category": cat, "rule": rule, "truth": len(want), "reported": len(found - neutral),
                     "tp": len(tp), "fp": sorted(fp), "fn": sorted(fn), "other_status": len(other),
                     "groups": groups,
                     "precision": (len(tp) / (len(tp) + len(fp))) if (tp or fp) else None,
                     "recall": (len(tp) / len(want)) if want else None})
    other_posture = collections.Counter(f.get("rule_id") for f in posture if f.get("status") == "open"
                                        and f.get("rule_id") not in truth["posture_rules"].values())
    return {"incidents": incidents, "open_threats": len(open_threats), "noise": noise, "noise_by_rule": by_rule,
            "noise_by_identity": by_ident, "noise_identity_rules": ident_rules,
            "noise_on_incident_identities": on_incident_idents, "status_counts": status_counts,
            "posture": cats, "other_posture": other_posture}


def fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}"


def render(truth, s, risk, risk_err, inventory, meta):
    n_inc = len(s["incidents"])
    caught = sum(1 for i in s["incidents"] if i["caught"])
    per_inc = s["open_threats"] / n_inc if n_inc else 0
    e = truth["estate"]
    L = []
    L.append("# Detection quality: the benign-noise benchmark")
    L.append("")
    L.append("Generated by `examples/quality/score.py`; do not edit by hand. Regenerate with:")
    L.append("")
    L.append("```sh")
    L.append(meta["command"])
    L.append("```")
    L.append("")
    L.append(f"Run on {meta['date']} with `{meta['version']}`" + (f" (commit `{meta['commit']}`)" if meta["commit"] else "")
             + f"; ingest took {meta['ingest_s']:.0f} s.")
    L.append("")
    L.append("## The estate")
    L.append("")
    L.append(f"`examples/quality/generate.py` (seed {truth['seed']}, scale {truth['scale']}): a fictitious company's "
             f"AWS account and EKS cluster over {e['start'][:10]} .. {e['end'][:10]} "
             f"({e['training_days']} clean training days, then a week with the planted incidents), laid out the way a "
             "user drops exports into a directory (`aws/…`, `k8s/rbac.json`, `k8s/audit/audit.log`, `repo/…`, "
             "`directory/people.csv`).")
    L.append("")
    L.append("| | |")
    L.append("|---|---:|")
    L.append(f"| machine identities (IAM roles, users, access keys, service accounts) | {e['machine_identities']} |")
    L.append(f"| CloudTrail records | {e['cloudtrail_records']:,} |")
    L.append(f"| Kubernetes audit events | {e['audit_events']:,} |")
    L.append(f"| people in the directory (leavers absent; {len(e['on_leave'])} `on_leave`) | {e['people']} |")
    L.append(f"| planted incidents | {n_inc} |")
    L.append("")
    L.append("Routine workloads: EKS node groups and message brokers whose instance credentials call EC2 describe "
             "APIs from public addresses; cluster add-ons that list and watch secrets cluster-wide (cert-manager, "
             "ingress-nginx, kube-state-metrics, kubernetes-dashboard, velero); an Airflow scheduler that execs into "
             "its workers; CI (GitHub Actions OIDC roles with tagged releases, a Jenkins key shared by runners behind "
             "two NATs, Terraform plan and apply); monitoring; nightly batches reading the same buckets; a team that "
             "deploys on weekends; approved partner accounts assuming roles (passed as `--allow-account`).")
    L.append("")
    L.append("## Headline")
    L.append("")
    L.append("| measure | value | target |")
    L.append("|---|---:|---:|")
    L.append(f"| incidents caught | {caught} / {n_inc} | {n_inc} / {n_inc} |")
    L.append(f"| open threat findings | {s['open_threats']:,} | ≤ {int(1.5 * n_inc)} |")
    L.append(f"| open threat findings per planted incident | {per_inc:.1f} | ≤ 1.5 |")
    L.append(f"| open threat findings no incident explains (noise) | {len(s['noise']):,} | |")
    for c in s["posture"]:
        L.append(f"| posture `{c['category']}`: precision / recall | {fmt_ratio(c['precision'])} / "
                 f"{fmt_ratio(c['recall'])} | |")
    L.append("")
    other = {f"{k[0]} {k[1]}": v for k, v in sorted(s["status_counts"].items(), key=lambda kv: str(kv[0]))
             if k[1] != "open"}
    if other:
        L.append("Findings in another status than `open` (not counted as alerts): "
                 + ", ".join(f"{k}: {v}" for k, v in other.items()) + ".")
    else:
        L.append("Every finding is `open` (this keyward records no `expected` status).")
    L.append("")
    L.append("## Planted incidents")
    L.append("")
    L.append("Caught: an open threat finding on the incident's identity, within its window, from one of the accepted "
             "rules. Findings: every open threat finding on that identity within the window.")
    L.append("")
    L.append("| incident | caught | findings | rules that fired | accepted |")
    L.append("|---|:---:|---:|---|---|")
    for i in s["incidents"]:
        mark = "yes" if i["caught"] else ("no" + (f" ({', '.join(i['caught_other_status'])})"
                                                   if i["caught_other_status"] else ""))
        L.append(f"| **{i['id']}**: {i['description']} | {mark} | {i['open']} | "
                 f"{', '.join('`%s`' % r for r in i['rules_fired']) or '—'} | "
                 f"{', '.join('`%s`' % r for r in i['accepted'])} |")
    L.append("")
    L.append("## Noise")
    L.append("")
    L.append(f"{len(s['noise']):,} open threat findings are explained by no incident "
             f"({s['noise_on_incident_identities']} of them on an incident's identity outside its window).")
    L.append("")
    L.append("| rule | open findings |")
    L.append("|---|---:|")
    for r, n in s["noise_by_rule"].most_common(10):
        L.append(f"| `{r}` | {n:,} |")
    L.append("")
    L.append("| identity (top 10) | open findings | by rule |")
    L.append("|---|---:|---|")
    for ident, n in s["noise_by_identity"].most_common(10):
        rules = ", ".join(f"`{r}` {c}" for r, c in s["noise_identity_rules"][ident].most_common(3))
        L.append(f"| `{short(ident)}` | {n:,} | {rules} |")
    L.append("")
    L.append("## Posture")
    L.append("")
    L.append("Truth per category is in `truth.json`: `admin_wildcard` is `Allow *` on `*` (inline, managed or "
             "through a group); `stale`, no activity for 30 days or more, where a record covers them (service-linked "
             "roles never stale; service accounts unused through the 21 days of audit log are unknown, so neutral); "
             "`orphaned`, no owner or only owners absent from the directory (leavers); "
             "`escalation`, a non-admin identity with a grant that makes it admin-equivalent. Access keys (credentials "
             "of the users the findings are about) and namespaces' `default` service accounts are neutral.")
    L.append("")
    L.append("| category | rule | truth | reported | right | precision | recall |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for c in s["posture"]:
        L.append(f"| {c['category']} | `{c['rule']}` | {c['truth']} | {c['reported']} | {c['tp']} | "
                 f"{fmt_ratio(c['precision'])} | {fmt_ratio(c['recall'])} |")
    L.append("")
    for c in s["posture"]:
        if c["fp"] or c["fn"] or c.get("groups"):
            L.append(f"- **{c['category']}**")
            if c.get("groups"):
                L.append(f"  - groups reported, every member of which can escalate (not scored): "
                         + ", ".join(f"`{short(x)}`" for x in c["groups"]))
            if c["fp"]:
                L.append(f"  - reported wrongly ({len(c['fp'])}): " + ", ".join(f"`{short(x)}`" for x in c["fp"][:20])
                         + (" …" if len(c["fp"]) > 20 else ""))
            if c["fn"]:
                L.append(f"  - missed ({len(c['fn'])}): " + ", ".join(f"`{short(x)}`" for x in c["fn"][:20])
                         + (" …" if len(c["fn"]) > 20 else ""))
    L.append("")
    if s["other_posture"]:
        L.append("Other open posture findings (not scored): "
                 + ", ".join(f"`{r}` {n}" for r, n in s["other_posture"].most_common()) + ".")
        L.append("")
    L.append("## Risk tiers")
    L.append("")
    if risk is None:
        L.append(f"`findings risk` unavailable: {risk_err}")
    else:
        tiers = collections.Counter(risk.values())
        L.append("| tier | identities |")
        L.append("|---|---:|")
        for t, n in sorted(tiers.items(), key=lambda kv: -kv[1]):
            L.append(f"| {t} | {n} |")
        inc_idents = {norm(p): inc["id"] for inc in truth["incidents"] for p in inc["identities"]}
        above = sorted(i for i, t in risk.items() if t != "log")
        if above:
            L.append("")
            L.append("Above the `log` tier (R ≥ 1.0), and the planted incident each one is part of:")
            L.append("")
            for i in above:
                L.append(f"- `{i}` ({risk[i]}): {inc_idents.get(norm(i), 'no incident')}")
    L.append("")
    if inventory is not None:
        clusters = collections.Counter(i.get("cluster") for i in inventory if i.get("kind") == "service_account")
        kinds = collections.Counter(i.get("kind") for i in inventory)
        L.append("## Inventory as ingested")
        L.append("")
        L.append(f"{len(inventory):,} identities: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()) + ".")
        L.append("Service accounts per cluster name: " + ", ".join(f"`{k}` {n}" for k, n in clusters.most_common())
                 + " (the estate has one cluster; the scorer compares service accounts without the cluster part).")
        L.append("")
    if meta.get("ingest_tail"):
        L.append("Ingest summary:")
        L.append("")
        L.append("```")
        L += meta["ingest_tail"]
        L.append("```")
        L.append("")
    return "\n".join(L)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Score keyward on the benign-noise benchmark estate.")
    ap.add_argument("--keyward", default=os.path.join(ROOT, "target", "release", "keyward"))
    ap.add_argument("--estate", default=os.path.join(ROOT, "target", "quality", "estate"))
    ap.add_argument("--data-dir", help="store to use (default: a fresh temporary directory, removed after)")
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "detection-quality.md"))
    ap.add_argument("--json", help="also write the scores as JSON here")
    ap.add_argument("--no-allow-accounts", action="store_true",
                    help="do not pass the approved partner accounts as --allow-account")
    ap.add_argument("--command", default="python3 examples/quality/run.py",
                    help="the command shown in the document as the one that regenerates it")
    a = ap.parse_args(argv)
    truth = json.load(open(os.path.join(a.estate, "truth.json"), encoding="utf-8"))
    allow = [] if a.no_allow_accounts else truth["config"]["allow_accounts"] + truth["estate"]["accounts"]["own"]
    allow = list(dict.fromkeys(allow))
    tmp = None
    data = a.data_dir
    if not data:
        tmp = tempfile.mkdtemp(prefix="keyward-quality-")
        data = tmp
    try:
        print(f"ingesting {a.estate} into {data} ...", file=sys.stderr)
        p, ingest_s, _cmd = ingest(a.keyward, a.estate, data, allow)
        print(f"  {ingest_s:.0f} s", file=sys.stderr)
        findings = read_findings(a.keyward, data)
        risk, risk_err = read_risk(a.keyward, data, allow)
        inventory = read_inventory(a.keyward, data)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    s = score(truth, findings)
    version = subprocess.run([a.keyward, "--version"], capture_output=True, text=True).stdout.strip() or "keyward"
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    tail = [ln.rstrip() for ln in p.stdout.splitlines() if ln.strip()][-12:]
    meta = {"command": a.command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"), "version": version,
            "commit": commit, "ingest_s": ingest_s, "ingest_tail": tail}
    text = render(truth, s, risk, risk_err, inventory, meta)
    os.makedirs(os.path.dirname(os.path.abspath(a.doc)), exist_ok=True)
    with open(a.doc, "w", encoding="utf-8", newline="\n") as f:
        f.write(text + "\n")
    n = len(s["incidents"])
    caught = sum(1 for i in s["incidents"] if i["caught"])
    print(f"incidents caught {caught}/{n}; open threat findings {s['open_threats']} "
          f"({s['open_threats'] / n:.1f} per incident); noise {len(s['noise'])}", file=sys.stderr)
    for c in s["posture"]:
        print(f"  posture {c['category']}: precision {fmt_ratio(c['precision'])} recall {fmt_ratio(c['recall'])}",
              file=sys.stderr)
    print(f"wrote {a.doc}", file=sys.stderr)
    if a.json:
        out = dict(s)
        out["noise"] = len(s["noise"])
        out["status_counts"] = {f"{k[0]}/{k[1]}": v for k, v in s["status_counts"].items()}
        out["noise_identity_rules"] = {k or "": dict(v) for k, v in s["noise_identity_rules"].items()}
        out["noise_by_identity"] = {k or "": v for k, v in s["noise_by_identity"].items()}
        out["risk_tiers"] = dict(collections.Counter(risk.values())) if risk else None
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2, default=list)


if __name__ == "__main__":
    main()
