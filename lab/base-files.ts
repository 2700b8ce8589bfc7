// Files written into the base rootfs. Every host boots from it (read-only overlay lower layer).

export const SSHD_CONFIG = `PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 64
`;

export const JOURNALD_CONFIG = "[Journal]\nStorage=volatile\nRuntimeMaxUse=16M\n";

// nspawn mounts the cgroup v1 controllers read-only on a hybrid machine; runc inside the host must
// create cgroups there, and they are namespaced, so remounting them rw is safe. /proc/sys is made
// writable only on request, after systemd-sysctl, so the host's own sysctl.d defaults never reach
// the shared kernel.
export const SETUP_UNIT = `[Unit]
Description=kubeforge lab: writable cgroup controllers (and optionally /proc/sys)
DefaultDependencies=no
After=systemd-sysctl.service
Before=sysinit.target containerd.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for d in /sys/fs/cgroup /sys/fs/cgroup/*; do mountpoint -q "$d" && mount -o remount,bind,rw "$d" || true; done'
ExecStart=/bin/sh -c 'if [ -e /etc/kubeforge-lab/writable-proc-sys ]; then mount -o remount,bind,rw /proc/sys; fi'
[Install]
WantedBy=sysinit.target
`;

// A kernel without loadable modules has no /lib/modules, so `modprobe br_netfilter` fails even
// when the feature is built in. Declare the built-in ones (=y in /proc/config.gz) so modprobe works.
export const BUILTIN_MODULES = `# module  CONFIG_ symbol
overlay OVERLAY_FS
br_netfilter BRIDGE_NETFILTER
bridge BRIDGE
veth VETH
vxlan VXLAN
macvlan MACVLAN
ipvlan IPVLAN
tun TUN
dummy DUMMY
ip_tables IP_NF_IPTABLES
iptable_filter IP_NF_FILTER
iptable_nat IP_NF_NAT
iptable_mangle IP_NF_MANGLE
iptable_raw IP_NF_RAW
ip6_tables IP6_NF_IPTABLES
ip6table_filter IP6_NF_FILTER
ip6table_nat IP6_NF_NAT
ip6table_mangle IP6_NF_MANGLE
nf_conntrack NF_CONNTRACK
nf_nat NF_NAT
nf_tables NF_TABLES
nft_compat NFT_COMPAT
nft_chain_nat NFT_NAT
nft_masq NFT_MASQ
nft_ct NFT_CT
xt_conntrack NETFILTER_XT_MATCH_CONNTRACK
xt_MASQUERADE NETFILTER_XT_TARGET_MASQUERADE
xt_addrtype NETFILTER_XT_MATCH_ADDRTYPE
xt_comment NETFILTER_XT_MATCH_COMMENT
xt_mark NETFILTER_XT_MARK
xt_multiport NETFILTER_XT_MATCH_MULTIPORT
xt_statistic NETFILTER_XT_MATCH_STATISTIC
xt_set NETFILTER_XT_SET
ip_set IP_SET
ipt_REJECT IP_NF_TARGET_REJECT
nf_reject_ipv4 NF_REJECT_IPV4
ip_vs IP_VS
ip_vs_rr IP_VS_RR
ip_vs_wrr IP_VS_WRR
ip_vs_sh IP_VS_SH
`;

export const BUILTIN_MODULES_SCRIPT = `#!/bin/sh
k=$(uname -r); d=/lib/modules/$k
mkdir -p "$d"; : > "$d/modules.builtin"; : > "$d/modules.order"
zcat /proc/config.gz > /run/kubeforge-lab-kconfig 2>/dev/null || exit 0
while read -r mod sym; do
  case "$mod" in ''|'#'*) continue ;; esac
  grep -qx "CONFIG_$sym=y" /run/kubeforge-lab-kconfig && echo "kernel/builtin/$mod.ko" >> "$d/modules.builtin"
done < /etc/kubeforge-lab/builtin-modules
rm -f /run/kubeforge-lab-kconfig
depmod -a "$k" 2>/dev/null || true
`;

export const BUILTIN_MODULES_UNIT = `[Unit]
Description=kubeforge lab: declare built-in kernel modules for modprobe
DefaultDependencies=no
Before=sysinit.target systemd-modules-load.service
ConditionPathExists=!/lib/modules/%v/modules.dep
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/local/sbin/kubeforge-lab-builtin-modules
[Install]
WantedBy=sysinit.target
`;
