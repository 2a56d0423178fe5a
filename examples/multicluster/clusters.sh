#!/usr/bin/env bash
# Starts real Kubernetes API servers on this machine, one per cluster, for trying federator:
#   clusters.sh up [--controllers] [CLUSTER...]   start (default: config east west) and print
#                                 kubeconfigs; --controllers adds kube-controller-manager,
#                                 kube-scheduler and kwok to each (see demo.sh)
#   clusters.sh env               print `export KUBECONFIG_<CLUSTER>=...` lines (eval them)
#   clusters.sh down              stop them
# They are the end-to-end tests' environment: kube-apiserver and etcd on loopback (no nodes and
# no controllers unless --controllers). State lives in .cache/demo/ and goes with `down`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dir="$root/.cache/demo"
pidfile="$dir/testenv.pid"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  up)
    shift
    if running; then echo "already running (pid $(cat "$pidfile")); 'clusters.sh down' first" >&2; exit 1; fi
    echo "setting up (the first time builds Kubernetes, helm and kwok from their Go modules: minutes)"
    "$root/tests/testenv/setup.sh" | sed 's/^/  /'
    (cd "$root" && cargo build -q -p federator-testenv --bin testenv)
    rm -rf "$dir" && mkdir -p "$dir"
    nohup "$root/target/debug/testenv" up --dir "$dir" "$@" >"$dir/testenv.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 1 600); do
      [ -f "$dir/ready" ] && break
      running || { echo "the clusters failed to start:" >&2; tail -n 20 "$dir/testenv.log" >&2; rm -f "$pidfile"; exit 1; }
      sleep 0.5
    done
    [ -f "$dir/ready" ] || { echo "the clusters did not get ready in 5 minutes; see $dir/testenv.log" >&2; exit 1; }
    echo "clusters are up (name, kubeconfig, server):"
    column -t "$dir/ready" 2>/dev/null || cat "$dir/ready"
    kubectl_bin="$root/.cache/bin/kubectl-$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$root/tests/testenv/kubernetes/go.mod")"
    echo "try: $kubectl_bin --kubeconfig $(awk 'NR==1{print $2}' "$dir/ready") get ns   |   stop: $0 down"
    ;;
  env)
    running || { echo "not running; '$0 up' first" >&2; exit 1; }
    while read -r name kubeconfig _; do
      echo "export KUBECONFIG_$(echo "$name" | tr 'a-z-' 'A-Z_')=$kubeconfig"
    done <"$dir/ready"
    ;;
  down)
    if running; then
      pid="$(cat "$pidfile")"
      kill "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      echo "stopped"
    else
      echo "not running"
    fi
    rm -rf "$dir"
    ;;
  *)
    echo "usage: $0 up [--controllers] [CLUSTER...] | env | down" >&2
    exit 2
    ;;
esac
