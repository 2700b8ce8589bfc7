#!/usr/bin/env bash
# Prints a kubeforge cluster file for the running VMs of the Vagrantfile here (after `vagrant up`):
#
#   ./cluster-file.sh [--kubernetes-version v1.30.4] [--name vagrant] [--known-hosts FILE] > cluster.yaml
#
# and writes FILE (default ./known_hosts) with the VMs' host keys. kubeforge dials what `vagrant ssh`
# dials (VirtualBox: a NAT port forward on 127.0.0.1; libvirt: the management network) as the vagrant
# user, with each VM's key and passwordless sudo. The node IP (privateAddress) is the private-network
# address: eth0, the NAT or management interface, carries the default route and is no node IP.
# Machines named cp* are control planes, the others workers. No bash 4 features: macOS ships bash 3.2.
set -euo pipefail

usage() { sed -n '2,4s/^# \{0,1\}//p' "$0"; }
value() { [ "$1" -ge 2 ] || { usage >&2; exit 2; }; }

version=v1.30.4
name=vagrant
known_hosts=known_hosts
while [ $# -gt 0 ]; do
  case $1 in
    --kubernetes-version) value $#; version=$2; shift 2 ;;
    --name) value $#; name=$2; shift 2 ;;
    --known-hosts) value $#; known_hosts=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
case $known_hosts in /*) ;; *) known_hosts=$PWD/$known_hosts ;; esac

# A double-quoted YAML string; `$` doubled because kubeforge expands ${VAR} in the cluster file.
quote() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "${s//\$/\$\$}"
}

# One tab-separated line per machine: name, HostName, Port, User, then every IdentityFile.
# Blocks start at `Host`; Vagrant puts blank lines inside them, and quotes paths with spaces.
ssh_config=$(vagrant ssh-config)
machines=$(printf '%s\n' "$ssh_config" | tr -d '\r' | awk '
  function flush() { if (host != "") print host "\t" hostname "\t" port "\t" user ids }
  { key = tolower($1); value = $0; sub(/^[ \t]*[^ \t]+[ \t]+/, "", value); sub(/[ \t]+$/, "", value) }
  key == "host" { flush(); host = value; hostname = ""; port = 22; user = ""; ids = "" }
  key == "hostname" { hostname = value }
  key == "port" { port = value }
  key == "user" { user = value }
  key == "identityfile" { gsub(/^"|"$/, "", value); ids = ids "\t" value }
  END { flush() }')
[ -n "$machines" ] || { echo "cluster-file.sh: vagrant ssh-config listed no machines" >&2; exit 1; }

# Host keys and addresses come over the hypervisor's host-local path and the VM's own login key,
# the channel `vagrant ssh` itself trusts: known_hosts is built from it, not from whatever answers.
remote='cat /etc/ssh/ssh_host_*_key.pub; ip -4 -o route show default; ip -4 -o addr show scope global'

tmp=$(mktemp "$known_hosts.XXXXXX")
trap 'rm -f "$tmp"' EXIT
vms=() addresses=() ports=() privates=() users=() keys=()
while IFS=$'\t' read -r -a fields; do
  vm=${fields[0]} hostname=${fields[1]:-} port=${fields[2]:-} user=${fields[3]:-}
  case $port in
    "" | *[!0-9]*) echo "cluster-file.sh: $vm: bad Port '$port' in vagrant ssh-config" >&2; exit 1 ;;
  esac
  key=
  for candidate in "${fields[@]:4}"; do # newer Vagrants list fallbacks: take the first that exists
    if [ -r "$candidate" ]; then key=$candidate; break; fi
  done
  if [ -z "$hostname" ] || [ -z "$user" ] || [ -z "$key" ]; then
    echo "cluster-file.sh: $vm: vagrant ssh-config lacks HostName, User or a readable IdentityFile" >&2
    exit 1
  fi

  # -T: no tty, which would end every line with \r. </dev/null: ssh would eat the machine list.
  out=$(vagrant ssh "$vm" -c "$remote" -- -T </dev/null | tr -d '\r')
  # OpenSSH's known_hosts name: the bare host for port 22, [host]:port otherwise.
  lower=$(printf '%s' "$hostname" | tr '[:upper:]' '[:lower:]')
  if [ "$port" = 22 ]; then known=$lower; else known="[$lower]:$port"; fi
  host_keys=$(printf '%s\n' "$out" | awk -v n="$known" '$1 ~ /^(ssh-|ecdsa-|sk-)/ && NF >= 2 { print n, $1, $2 }')
  [ -n "$host_keys" ] || { echo "cluster-file.sh: $vm: no host keys in /etc/ssh/ssh_host_*_key.pub" >&2; exit 1; }
  printf '%s\n' "$host_keys" >>"$tmp"
  # Global IPv4 addresses not on the default route's interface: the private network's.
  private=$(printf '%s\n' "$out" | awk '
    $1 == "default" { for (i = 1; i < NF; i++) if ($i == "dev") nat = $(i + 1) }
    $3 == "inet" { sub(/\/.*/, "", $4); dev[NR] = $2; ip[NR] = $4 }
    END { for (n in ip) if (dev[n] != nat) print ip[n] }')
  case $private in
    '' | *[!0-9.]*)
      private=${private//$'\n'/ }
      echo "cluster-file.sh: $vm: expected one private-network IPv4 address, found: ${private:-none}" >&2
      exit 1
      ;;
  esac
  vms+=("$vm") addresses+=("$hostname") ports+=("$port")
  privates+=("$private") users+=("$user") keys+=("$key")
done <<<"$machines"

# Keys and users shared by every VM (one `config.ssh` for all) are said once, in spec.ssh.
shared() { local v; for v in "$@"; do [ "$v" = "$1" ] || return 1; done; }
shared_user=${users[0]} shared_key=
if shared "${keys[@]}"; then shared_key=${keys[0]}; fi

mv "$tmp" "$known_hosts"
trap - EXIT
echo "cluster-file.sh: wrote $known_hosts" >&2

echo "# Written by vagrant/cluster-file.sh for the VMs of $PWD; run it again after each \`vagrant up\`."
echo "apiVersion: kubeforge.dev/v1alpha1"
echo "kind: Cluster"
echo "metadata:"
echo "  name: $(quote "$name")"
echo "spec:"
echo "  ssh:"
echo "    user: $(quote "$shared_user")"
[ -z "$shared_key" ] || echo "    keyPath: $(quote "$shared_key")"
echo "    knownHostsPath: $(quote "$known_hosts")"
echo "    sudo: {enabled: true}"
echo "  kubernetes:"
echo "    version: $(quote "$version")"
echo "  hosts:"
for i in "${!vms[@]}"; do
  case ${vms[i]} in cp*) role=control-plane ;; *) role=worker ;; esac
  echo "    - name: $(quote "${vms[i]}")"
  echo "      address: $(quote "${addresses[i]}")"
  echo "      port: ${ports[i]}"
  echo "      privateAddress: ${privates[i]}"
  echo "      role: $role"
  overrides=
  [ "${users[i]}" = "$shared_user" ] || overrides="user: $(quote "${users[i]}"), "
  [ -n "$shared_key" ] || overrides+="keyPath: $(quote "${keys[i]}"), "
  [ -z "$overrides" ] || echo "      ssh: {${overrides%, }}"
done
