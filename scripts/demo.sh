#!/usr/bin/env bash
# The main job, as far as kubeforge goes today, on a fresh Debian 12 machine (as root): install
# what is needed, boot 3 local test hosts, write their cluster file and validate it, then run
# preflight on them over SSH, generate the cluster's PKI and kubeconfigs on this workstation, and tear
# the hosts down (KEEP=1 keeps them; `npx kubeforge lab down` removes them later). As prepare and
# init/join land, they join the steps below.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends debootstrap systemd-container openssh-client iproute2 iptables >/dev/null
npm ci --no-audit --no-fund >/dev/null

kubeforge=node_modules/.bin/kubeforge
[ "${KEEP:-0}" = 1 ] || trap '$kubeforge lab down' EXIT

$kubeforge lab up --hosts 3 --cluster-file lab-cluster.yaml
$kubeforge config validate -f lab-cluster.yaml

$kubeforge preflight -f lab-cluster.yaml
$kubeforge certs generate -f lab-cluster.yaml
$kubeforge certs check-expiration -f lab-cluster.yaml
