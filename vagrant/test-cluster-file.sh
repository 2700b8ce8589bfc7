#!/usr/bin/env bash
# Tests cluster-file.sh without VMs: a fake `vagrant`, first on PATH, answers `ssh-config` as Vagrant
# 2.3 prints it and runs the `vagrant ssh -c` command against per-VM directories holding real host keys
# (ssh-keygen) and canned `ip` output. kubeforge validates each cluster file; ssh-keygen -F reads the
# known_hosts. Needs bash, ssh-keygen and a built kubeforge (npm run build), or KUBEFORGE=command.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
read -r -a kubeforge <<<"${KUBEFORGE:-node $here/../bin/kubeforge.js}"
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
export FAKE_VAGRANT=$tmp/fake
mkdir -p "$tmp/bin" "$FAKE_VAGRANT/guest-bin"

cat >"$tmp/bin/vagrant" <<'FAKE'
#!/usr/bin/env bash
# `ssh VM -c CMD [-- ARGS]` runs CMD locally, with /etc/ssh/ and `ip` swapped for the VM's.
set -euo pipefail
case $1 in
  ssh-config)
    if [ ! -f "$FAKE_VAGRANT/ssh-config" ]; then
      echo "The provider for this Vagrant-managed machine is reporting that it is not yet ready for SSH." >&2
      exit 1
    fi
    cat "$FAKE_VAGRANT/ssh-config" ;;
  ssh)
    vm=$2 cmd= tty=yes
    shift 2
    while [ $# -gt 0 ]; do
      case $1 in -c) cmd=$2; shift 2 ;; --) shift; [[ " $* " != *" -T "* ]] || tty=no; break ;; *) shift ;; esac
    done
    root=$FAKE_VAGRANT/vms/$vm
    out=$(FAKE_VM=$root PATH="$FAKE_VAGRANT/guest-bin:$PATH" bash -c "${cmd//\/etc\/ssh\//$root/etc/ssh/}")
    if [ $tty = yes ]; then printf '%s\n' "$out" | sed 's/$/\r/'; else printf '%s\n' "$out"; fi ;;
  *) echo "fake vagrant: unexpected $*" >&2; exit 1 ;;
esac
FAKE
cat >"$FAKE_VAGRANT/guest-bin/ip" <<'FAKE'
#!/bin/sh
case "$*" in
  "-4 -o route show default") cat "$FAKE_VM/route" ;;
  "-4 -o addr show scope global") cat "$FAKE_VM/addr" ;;
  *) echo "fake ip: unexpected $*" >&2; exit 1 ;;
esac
FAKE
chmod +x "$tmp/bin/vagrant" "$FAKE_VAGRANT/guest-bin/ip"
export PATH=$tmp/bin:$PATH

# A VM: host keys as Debian makes them, eth0 on the NAT or management network (the default route;
# 198.18.2.0/24 stands in for VirtualBox's NAT, the project tests only in 198.18.0.0/15), eth1 private.
vm() { # name nat-ip private-ip...
  local root=$FAKE_VAGRANT/vms/$1 nat=$2 type n=3
  shift 2
  mkdir -p "$root/etc/ssh"
  for type in ed25519 ecdsa rsa; do
    ssh-keygen -q -t $type -N '' -C root@bookworm -f "$root/etc/ssh/ssh_host_${type}_key"
  done
  echo "default via ${nat%.*}.1 dev eth0 proto dhcp src $nat metric 1024 " >"$root/route"
  addr 2 "$nat" "dynamic eth0" 86313sec >"$root/addr"
  for ip in "$@"; do
    addr "$n" "$ip" "eth$((n - 2))" forever >>"$root/addr"
    n=$((n + 1))
  done
}
addr() { # index ip scope-tail lifetime: a line of `ip -4 -o addr show`
  local dev=${3##* }
  printf '%s: %s    inet %s/24 brd %s.255 scope global %s\\       valid_lft %s preferred_lft %s\n' \
    "$1" "$dev" "$2" "${2%.*}" "$3" "$4" "$4"
}

# A Host block of `vagrant ssh-config`, blank lines and all. Paths with spaces come quoted.
ssh_config() { # name hostname port identityfile...
  local name=$1 host=$2 port=$3 id
  shift 3
  printf 'Host %s\n  HostName %s\n  User vagrant\n  Port %s\n' "$name" "$host" "$port"
  printf '  UserKnownHostsFile /dev/null\n  StrictHostKeyChecking no\n  PasswordAuthentication no\n'
  for id in "$@"; do
    case $id in *" "*) printf '\n  IdentityFile "%s"\n' "$id" ;; *) printf '\n  IdentityFile %s\n' "$id" ;; esac
  done
  printf '  IdentitiesOnly yes\n  LogLevel FATAL\n  PubkeyAcceptedKeyTypes +ssh-rsa\n  HostKeyAlgorithms +ssh-rsa\n\n'
}

user_key() { mkdir -p "$(dirname "$1")" && ssh-keygen -q -t rsa -m PEM -N '' -f "$1"; }

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

# The key lines ssh-keygen -F finds for NAME in FILE equal the VM's /etc/ssh/ssh_host_*_key.pub.
known_as() { # known_hosts name vm
  diff <(ssh-keygen -F "$2" -f "$1" | grep -v '^#' | cut -d' ' -f2,3 | sort) \
    <(cut -d' ' -f1,2 "$FAKE_VAGRANT/vms/$3"/etc/ssh/ssh_host_*_key.pub | sort)
}
# A line of the cluster file as kubeforge reads it (after ${VAR} substitution and defaults); run()
# drops the cached copy.
field() { # file line
  [ -f "$1.read" ] || "${kubeforge[@]}" config print-defaults -f "$1" >"$1.read"
  grep -qxF -- "$2" "$1.read" || { echo "no line '$2' in:" && cat "$1.read" && return 1; }
}
# Runs cluster-file.sh in a project directory: stdout to cluster.yaml, stderr to stderr.log.
run() { # dir args...
  local dir=$1
  shift
  rm -f "$dir/cluster.yaml.read"
  (cd "$dir" && "$here/cluster-file.sh" "$@" >cluster.yaml 2>stderr.log)
}
fails_with() { # dir message args...
  local dir=$1 message=$2
  shift 2
  ! run "$dir" "$@" && grep -qF -- "$message" "$dir/stderr.log" && [ ! -s "$dir/cluster.yaml" ]
}

# VirtualBox: NAT forwards on 127.0.0.1, one key per VM, a project path with a space and a `$`.
vbox="$tmp/my \$vms"
: >"$FAKE_VAGRANT/ssh-config"
i=11
for vm_port in cp1:2222 w1:2200 w2:2201; do
  name=${vm_port%:*}
  vm "$name" 198.18.2.15 "198.18.56.$i"
  user_key "$vbox/.vagrant/machines/$name/virtualbox/private_key"
  ssh_config "$name" 127.0.0.1 "${vm_port#*:}" \
    "$vbox/.vagrant/machines/$name/virtualbox/private_key" >>"$FAKE_VAGRANT/ssh-config"
  i=$((i + 1))
done
check "virtualbox: cluster-file.sh succeeds" run "$vbox"
check "virtualbox: kubeforge config validate" "${kubeforge[@]}" config validate -f "$vbox/cluster.yaml"
check "virtualbox: [127.0.0.1]:2222 has cp1's host keys" known_as "$vbox/known_hosts" '[127.0.0.1]:2222' cp1
check "virtualbox: [127.0.0.1]:2200 has w1's host keys" known_as "$vbox/known_hosts" '[127.0.0.1]:2200' w1
check "virtualbox: [127.0.0.1]:2201 has w2's host keys" known_as "$vbox/known_hosts" '[127.0.0.1]:2201' w2
check "virtualbox: no entry for port 22" bash -c "! ssh-keygen -F 127.0.0.1 -f '$vbox/known_hosts'"
check "virtualbox: 9 key lines" test "$(wc -l <"$vbox/known_hosts")" -eq 9
check "virtualbox: cp1's SSH port" field "$vbox/cluster.yaml" "      port: 2222"
check "virtualbox: node IPs are the private ones" \
  bash -c "grep -c '^      privateAddress: 198\.18\.56\.1[123]$' '$vbox/cluster.yaml' | grep -qx 3"
check "virtualbox: cp1 the control plane, w1 and w2 workers" \
  bash -c "[ \"\$(grep -o 'role: .*' '$vbox/cluster.yaml' | paste -sd ' ' -)\" = 'role: control-plane role: worker role: worker' ]"
check "virtualbox: w1's own key, path with \$ kept" \
  field "$vbox/cluster.yaml" "        keyPath: $vbox/.vagrant/machines/w1/virtualbox/private_key"
check "virtualbox: passwordless sudo as vagrant" \
  bash -c "grep -qx '    user: \"vagrant\"' '$vbox/cluster.yaml' && grep -qx '    sudo: {enabled: true}' '$vbox/cluster.yaml'"
check "virtualbox: default version v1.30.4" field "$vbox/cluster.yaml" "    version: v1.30.4"
check "virtualbox: knownHostsPath is absolute" field "$vbox/cluster.yaml" "    knownHostsPath: $vbox/known_hosts"

check "flags: a missing --known-hosts directory fails" fails_with "$vbox" "keys/kh" --known-hosts keys/kh
mkdir -p "$vbox/keys"
check "flags: cluster-file.sh --kubernetes-version --name --known-hosts" \
  run "$vbox" --kubernetes-version v1.34.1 --name vms2 --known-hosts keys/kh
check "flags: kubeforge config validate" "${kubeforge[@]}" config validate -f "$vbox/cluster.yaml"
check "flags: version" field "$vbox/cluster.yaml" "    version: v1.34.1"
check "flags: name" field "$vbox/cluster.yaml" "  name: vms2"
check "flags: known_hosts" known_as "$vbox/keys/kh" '[127.0.0.1]:2201' w2

# libvirt: the management network on port 22; one key for all (insert_key = false) listed after a
# missing fallback, as newer Vagrants print it.
virt=$tmp/libvirt
user_key "$virt/home/.vagrant.d/insecure_private_key"
: >"$FAKE_VAGRANT/ssh-config"
rm -rf "$FAKE_VAGRANT/vms"
i=1
for name in cp1 w1 w2; do
  vm "$name" "198.18.121.1$i" "198.18.56.1$i"
  ssh_config "$name" "198.18.121.1$i" 22 "$virt/.vagrant/machines/$name/libvirt/private_key" \
    "$virt/home/.vagrant.d/insecure_private_key" >>"$FAKE_VAGRANT/ssh-config"
  i=$((i + 1))
done
check "libvirt: cluster-file.sh succeeds" run "$virt"
check "libvirt: kubeforge config validate" "${kubeforge[@]}" config validate -f "$virt/cluster.yaml"
check "libvirt: port-22 names are bare" known_as "$virt/known_hosts" 198.18.121.12 w1
check "libvirt: one keyPath" bash -c "grep -c keyPath '$virt/cluster.yaml' | grep -qx 1"
check "libvirt: the shared key, in spec.ssh" field "$virt/cluster.yaml" "    keyPath: $virt/home/.vagrant.d/insecure_private_key"
check "libvirt: node IP not the management address" field "$virt/cluster.yaml" "      privateAddress: 198.18.56.13"

# Failures leave known_hosts as it was and print no cluster file.
cp "$virt/known_hosts" "$tmp/known_hosts.before"
vm w3 198.18.121.14 198.18.56.14 198.18.57.14
ssh_config w3 198.18.121.14 22 "$virt/home/.vagrant.d/insecure_private_key" >>"$FAKE_VAGRANT/ssh-config"
check "two private addresses: fails and says so" fails_with "$virt" "w3: expected one private-network IPv4 address"
check "two private addresses: known_hosts untouched" cmp "$virt/known_hosts" "$tmp/known_hosts.before"
sed -i '/^Host w3/,$d' "$FAKE_VAGRANT/ssh-config"
: >"$FAKE_VAGRANT/vms/cp1/etc/ssh/ssh_host_ed25519_key.pub" && rm "$FAKE_VAGRANT"/vms/cp1/etc/ssh/ssh_host_{ecdsa,rsa}_key.pub
check "no host keys: fails and says so" fails_with "$virt" "cp1: no host keys"
rm "$FAKE_VAGRANT/ssh-config"
check "VMs not up: fails" fails_with "$virt" "not yet ready for SSH"
check "no leftover temporary files" bash -c "! ls -A '$virt' | grep -q 'known_hosts\\.'"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
