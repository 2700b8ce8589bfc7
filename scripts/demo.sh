#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine (as root): install what is needed, boot 3 local test
# hosts, write their cluster file and validate it, run preflight on them over SSH, generate the
# cluster's PKI and kubeconfigs on this workstation, pack an offline bundle and prepare the hosts
# from it, then `kubeforge apply` (init, join, pod network, validation), `kubectl get nodes`, apply
# again (nothing changes), and tear the hosts down (KEEP=1 keeps them; `npx kubeforge lab down`
# removes them later). The Kubernetes server binaries cannot be downloaded here: the bundle's
# kubelet and images (scripts/demo-bundle-dir.mjs) and the API server and controllers
# (scripts/demo-cluster.mjs) are stand-ins named as such; everything kubeforge does is real.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends debootstrap systemd-container openssh-client iproute2 iptables >/dev/null
npm ci --no-audit --no-fund >/dev/null

kubeforge=node_modules/.bin/kubeforge
[ "${KEEP:-0}" = 1 ] || trap '$kubeforge lab down' EXIT

version=v1.30.4
$kubeforge lab up --hosts 3 --cluster-file lab-cluster.yaml --kubernetes-version $version
$kubeforge config validate -f lab-cluster.yaml

$kubeforge preflight -f lab-cluster.yaml
$kubeforge certs generate -f lab-cluster.yaml
$kubeforge certs check-expiration -f lab-cluster.yaml

# shellcheck disable=SC2046 # one argument per image ref
node scripts/demo-bundle-dir.mjs demo-bundle $version $($kubeforge images list -f lab-cluster.yaml)
$kubeforge bundle create --from-dir demo-bundle -o demo.bundle
$kubeforge bundle verify demo.bundle -f lab-cluster.yaml --distro debian-12-amd64
# The kubelet's kernel settings belong to the machine under the lab hosts: prepare names them and
# the fix (sysctl -w … on this machine); the demo goes on without changing this machine.
$kubeforge prepare -f lab-cluster.yaml --bundle demo.bundle --ignore-preflight-errors KubeletKernelSettings
$kubeforge prepare -f lab-cluster.yaml --bundle demo.bundle --ignore-preflight-errors KubeletKernelSettings  # again: nothing to change

# The cluster: init, join, pod network, validation; kubectl with the merged kubeconfig; again.
rm -f demo.kubeconfig
node scripts/demo-cluster.mjs lab-cluster.yaml demo.bundle "$PWD/demo.kubeconfig"
