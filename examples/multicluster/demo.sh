#!/usr/bin/env bash
# The federator demo, in one command, on this machine (no containers, no cloud):
#
#   examples/multicluster/demo.sh            # runs, then keeps everything up until Ctrl-C
#   examples/multicluster/demo.sh --no-wait  # runs and cleans up (what .ci/run does)
#
# 1. starts three clusters (config, east, west): real kube-apiservers on one etcd, each with
#    the real kube-controller-manager and kube-scheduler, and kwok playing its Nodes (Pods
#    become Running with addresses from their Node's podCIDR);
# 2. installs federator's CRDs and, from the Helm chart, its ServiceAccount and Role in config;
# 3. registers east and west with `federator cluster add --create-service-account`;
# 4. applies the workloads of examples/multicluster/workloads/ with kubectl;
# 5. runs federator with the chart's ServiceAccount token, and shows the ServiceEntries each
#    cluster got and the DNS answers; then a failover: greeting scaled to zero in east.
#
# Ctrl-C at any time stops every process and removes the demo's folder.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
wait_at_end=1
[ "${1:-}" = "--no-wait" ] && wait_at_end=0
dir="$(mktemp -d "${TMPDIR:-/tmp}/federator-demo.XXXXXX")"
pids=()

cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
trap 'echo; echo "stopping (Ctrl-C)"; exit 130' INT TERM

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
step() { printf '\n%s==> %s%s\n' "$bold" "$*" "$plain"; }
fail() { echo "demo: $*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

step "setting up (first run: builds Kubernetes, helm and kwok from their Go modules; minutes)"
"$root/tests/testenv/setup.sh" | sed 's/^/    /'
(cd "$root" && cargo build -q -p federator --bin federator -p federator-testenv --bin testenv)
bin="$root/.cache/bin"
pinned() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$2"; }
kubectl_bin="$bin/kubectl-$(pinned k8s.io/kubernetes "$root/tests/testenv/kubernetes/go.mod")"
helm_bin="$bin/helm-$(pinned helm.sh/helm/v3 "$root/tests/testenv/tools/go.mod")"
federator="$root/target/debug/federator"
k() { local cluster="$1"; shift; "$kubectl_bin" --kubeconfig "$dir/$cluster.kubeconfig" "$@"; }

step "starting three clusters: config, east, west (kube-apiserver, kube-controller-manager, kube-scheduler, kwok)"
"$root/target/debug/testenv" up --dir "$dir" --controllers config east west >"$dir/testenv.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 600); do
  [ -f "$dir/ready" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { tail -n 20 "$dir/testenv.log" >&2; fail "the clusters failed to start"; }
  sleep 0.5
done
[ -f "$dir/ready" ] || fail "the clusters did not get ready in 5 minutes; see $dir/testenv.log"
sed 's/^/    /' "$dir/ready"

step "config: federator's CRDs, and its ServiceAccount and Role from the Helm chart"
k config apply --server-side -f "$root/crds/" | sed 's/^/    /'
k config create namespace federator | sed 's/^/    /'
"$helm_bin" template federator "$root/helm/federator" --namespace federator \
  --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml | k config apply -f - | sed 's/^/    /'

declare -A gateway=([east]=203.0.113.10 [west]=203.0.113.20)
declare -A network=([east]=network-east [west]=network-west)
for cluster in east west; do
  step "$cluster: Istio's namespace, the east-west gateway (${gateway[$cluster]}) and two kwok Nodes"
  k "$cluster" apply -f "$root/examples/multicluster/clusters/$cluster.yaml" | sed 's/^/    /'
  k "$cluster" -n istio-system patch service istio-eastwestgateway --subresource=status --type=merge \
    -p "{\"status\":{\"loadBalancer\":{\"ingress\":[{\"ip\":\"${gateway[$cluster]}\"}]}}}" | sed 's/^/    /'
  step "$cluster: federator cluster add --context $cluster --create-service-account | kubectl --context config apply -f -"
  "$federator" cluster add --kubeconfig "$dir/$cluster.kubeconfig" --context "$cluster" \
    --namespace federator --network "${network[$cluster]}" --create-service-account 2>&1 >"$dir/$cluster-secret.yaml" \
    | sed 's/^/    /'
  k config apply -f "$dir/$cluster-secret.yaml" | sed 's/^/    /'
  step "$cluster: kubectl apply -f examples/multicluster/workloads/$cluster.yaml"
  k "$cluster" apply -f "$root/examples/multicluster/workloads/$cluster.yaml" | sed 's/^/    /'
done
for cluster in east west; do
  k "$cluster" -n shop wait --for=condition=Available deployment --all --timeout=120s >/dev/null
  echo "    $cluster: pods (scheduled by kube-scheduler, Running by kwok):"
  k "$cluster" -n shop get pods -o wide --no-headers | awk '{printf "      %-32s %-8s %-10s %s\n", $1, $3, $6, $7}'
done

step "running federator as the chart's ServiceAccount (a token from the TokenRequest API)"
token="$(k config -n federator create token federator --duration=24h)"
admin_token="$(awk '$1 == "token:" { print $2; exit }' "$dir/config.kubeconfig")"
sed "s|token: $admin_token|token: $token|" "$dir/config.kubeconfig" >"$dir/federator.kubeconfig"
grep -q "token: $token" "$dir/federator.kubeconfig" && ! grep -q "$admin_token" "$dir/federator.kubeconfig" \
  || fail "could not put the ServiceAccount's token into federator's kubeconfig"
dns_port="$(free_port)"
http_port="$(free_port)"
started="$(date +%s.%N)"
"$federator" run --kubeconfig "$dir/federator.kubeconfig" --namespace federator \
  --dns-listen "127.0.0.1:$dns_port" --metrics-addr "127.0.0.1:$http_port" \
  --probe-interval 1s >"$dir/federator.log" 2>&1 &
pids+=($!)
ready=0
for _ in $(seq 1 300); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$http_port/readyz")" = 200 ] && { ready=1; break; }
  kill -0 "${pids[1]}" 2>/dev/null || { tail -n 20 "$dir/federator.log" >&2; fail "federator exited"; }
  sleep 0.2
done
[ "$ready" = 1 ] || { tail -n 20 "$dir/federator.log" >&2; fail "federator was not ready within 60 s"; }
echo "    ready in $(python3 -c "import time; print(f'{time.time() - $started:.1f}')") s (DNS on 127.0.0.1:$dns_port, /metrics on 127.0.0.1:$http_port)"

service_entries() {
  k "$1" -n federator-sync get serviceentries \
    -o custom-columns='HOST:.spec.hosts[0],VIP:.spec.addresses[0],ENDPOINTS:.spec.endpoints[*].address' \
    | sed 's/^/    /'
}
# Waits until `$2` (a host) has exactly the endpoint list `$3` in cluster `$1`.
wait_endpoints() {
  for _ in $(seq 1 600); do
    got="$(k "$1" -n federator-sync get serviceentries -o json \
      | python3 -c "import json,sys
for se in json.load(sys.stdin)['items']:
    if se['spec']['hosts'][0] == '$2':
        print(' '.join(sorted(e['address'] for e in se['spec'].get('endpoints', []))))" 2>/dev/null || true)"
    [ "$got" = "$3" ] && return 0
    sleep 0.1
  done
  fail "$1: $2 has endpoints [$got], expected [$3]"
}
pods_of() { k "$1" -n shop get pods -l "app=$2" -o jsonpath='{.items[*].status.podIP}' | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//'; }
east_greeting="$(pods_of east greeting)"
west_greeting="$(pods_of west greeting)"
wait_endpoints east prod.greeting.global "$east_greeting ${gateway[west]}"
wait_endpoints west prod.greeting.global "$west_greeting ${gateway[east]}"

for cluster in east west; do
  step "$cluster: the ServiceEntries federator wrote (local pods first-hand, the other cluster through its gateway)"
  service_entries "$cluster"
done

step "DNS: dig @127.0.0.1 -p $dns_port <host> (the VIP every cluster routes)"
for host in prod.greeting.global prod.catalog.global prod.payments.global; do
  answer="$(dig +short +time=2 +tries=3 @127.0.0.1 -p "$dns_port" "$host" A)" || fail "dig $host failed"
  [ -n "$answer" ] || fail "no DNS answer for $host"
  printf '    %-24s %s\n' "$host" "$answer"
done

step "failover: kubectl --context east -n shop scale deployment greeting --replicas=0"
started="$(date +%s.%N)"
k east -n shop scale deployment greeting --replicas=0 | sed 's/^/    /'
wait_endpoints east prod.greeting.global "${gateway[west]}"
wait_endpoints west prod.greeting.global "$west_greeting"
elapsed="$(python3 -c "import time; print(f'{time.time() - $started:.1f}')")"
echo "    both clusters updated ${elapsed} s after the scale (pods terminating, EndpointSlice controller, federator):"
for cluster in east west; do
  k "$cluster" -n federator-sync get serviceentries \
    -o custom-columns='HOST:.spec.hosts[0],ENDPOINTS:.spec.endpoints[*].address' | grep -E 'HOST|greeting' \
    | sed "s/^/    $cluster  /"
done

if [ "$wait_at_end" = 1 ]; then
  step "everything stays up: try it (Ctrl-C stops and cleans up)"
  for cluster in config east west; do echo "    $kubectl_bin --kubeconfig $dir/$cluster.kubeconfig get ns"; done
  echo "    $federator --help"
  echo "    dig @127.0.0.1 -p $dns_port prod.greeting.global"
  echo "    curl -s 127.0.0.1:$http_port/metrics | grep federator_"
  echo "    federator log: $dir/federator.log"
  wait "${pids[1]}"
fi
step "done: stopping every process and removing $dir"
