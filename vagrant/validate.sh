#!/usr/bin/env bash
# Checks the Vagrantfile on a machine without a hypervisor; boots nothing. `--ignore-provider` alone
# skips the provider blocks, so they are checked too: libvirt's through the vagrant-libvirt plugin (its
# config class needs no libvirtd), VirtualBox's with a stub VBoxManage that only tells a version, which
# is all Vagrant asks before it validates. Debian: apt-get install vagrant vagrant-libvirt.
set -euo pipefail
VAGRANT_CWD=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# No .vagrant/ in the tree, and no machines from a developer's own `vagrant up` to look at.
export VAGRANT_CWD VAGRANT_DOTFILE_PATH=$tmp/dot

passed=0 failed=0
check() { # description command...
  local description=$1
  shift
  if "$@" >"$tmp/check.log" 2>&1; then
    passed=$((passed + 1)) && echo "ok   $description"
  else
    failed=$((failed + 1)) && echo "FAIL $description" && sed 's/^/     /' "$tmp/check.log"
  fi
}
rejected() { # message env...
  local message=$1
  shift
  ! env "$@" vagrant validate --ignore-provider && grep -qF -- "$message" "$tmp/check.log"
}

check "vagrant validate --ignore-provider" vagrant validate --ignore-provider
check "5 workers" env KUBEFORGE_VAGRANT_WORKERS=5 vagrant validate --ignore-provider
check "a subnet that is no /24 prefix is rejected" \
  rejected "expected the first three octets of a /24" KUBEFORGE_VAGRANT_SUBNET=198.18.0.0
check "a memory size that is no number is rejected" \
  rejected "expected a positive integer" KUBEFORGE_VAGRANT_CP_MEMORY=2G

if vagrant plugin list 2>/dev/null | grep -q '^vagrant-libvirt '; then
  check "libvirt provider blocks" env VAGRANT_DEFAULT_PROVIDER=libvirt vagrant validate
else
  echo "skip libvirt provider blocks: no vagrant-libvirt plugin"
fi

if ! command -v VBoxManage >/dev/null; then
  mkdir "$tmp/bin"
  cat >"$tmp/bin/VBoxManage" <<'STUB'
#!/bin/sh
[ "$1" = --version ] && echo 7.0.20r163906
STUB
  chmod +x "$tmp/bin/VBoxManage"
fi
check "virtualbox provider blocks" env PATH="$tmp/bin:$PATH" VAGRANT_DEFAULT_PROVIDER=virtualbox vagrant validate

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
