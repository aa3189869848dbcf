#!/bin/sh
# scripts/slurm-local.sh — a single-node Slurm on localhost for tests
# (../shared/slurm-notes.md records why each setting is there).
#
#   sh scripts/slurm-local.sh start DIR   install when missing, start munged
#                                         (unless running), slurmctld, slurmd;
#                                         writes DIR/slurm.conf and DIR/env
#   sh scripts/slurm-local.sh stop DIR    cancel the jobs, then stop the daemons
#                                         started by `start` by their PIDs
#                                         (SIGTERM, SIGKILL after 15 s)
#
# Clients need SLURM_CONF=DIR/slurm.conf (`. DIR/env`). No systemd: the
# daemons are started directly. Needs root and, the first time, apt-get.
set -eu

die() { echo "slurm-local: $*" >&2; exit 1; }

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop DIR"

# alive PID: the process exists and is not a zombie (killed daemons stay
# zombies for a second or two here before they are reaped).
alive() {
	st=$(ps -o stat= -p "$1" 2>/dev/null || true)
	[ -n "$st" ] && [ "${st#Z}" = "$st" ]
}

# stop_pid NAME PIDFILE: SIGTERM, wait up to 15 s, then SIGKILL.
stop_pid() {
	[ -f "$2" ] || return 0
	pid=$(cat "$2")
	[ -n "$pid" ] || return 0
	if alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null || true
		i=0
		while alive "$pid" && [ $i -lt 150 ]; do sleep 0.1; i=$((i + 1)); done
		if alive "$pid"; then
			echo "slurm-local: $1 (pid $pid) ignored SIGTERM for 15 s; SIGKILL" >&2
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	rm -f "$2"
}

case $cmd in
start)
	[ "$(id -u)" = 0 ] || die "must run as root (slurmd runs jobs as any user)"
	if ! command -v slurmctld >/dev/null 2>&1 || ! command -v slurmd >/dev/null 2>&1 ||
		! command -v sbatch >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
		command -v apt-get >/dev/null 2>&1 || die "slurmctld/slurmd/sbatch/munged missing and no apt-get to install them"
		echo "slurm-local: installing slurmctld slurmd slurm-client munge" >&2
		apt-get update -qq >/dev/null 2>&1 || true
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null ||
			die "apt-get install slurmctld slurmd slurm-client munge failed"
	fi
	mkdir -p "$dir/state/ctld" "$dir/state/d" "$dir/run" "$dir/log"
	dir=$(cd "$dir" && pwd)

	# munge: the key the package made, a runtime folder, the daemon.
	[ -f /etc/munge/munge.key ] || die "/etc/munge/munge.key missing (reinstall munge: apt-get install --reinstall munge)"
	chown munge:munge /etc/munge/munge.key
	chmod 400 /etc/munge/munge.key
	install -d -o munge -g munge -m 0755 /run/munge
	if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
		runuser -u munge -- /usr/sbin/munged </dev/null >/dev/null 2>&1 || die "munged did not start"
		cp /run/munge/munged.pid "$dir/run/munged.pid.ours"
		i=0
		until munge -n 2>/dev/null | unmunge >/dev/null 2>&1; do
			i=$((i + 1)); [ $i -lt 100 ] || die "munged started but munge -n | unmunge fails"
			sleep 0.1
		done
	fi

	# The node line from what slurmd sees; RealMemory at 90% (above what
	# slurmd sees drains the node).
	node=$(slurmd -C | head -n 1)
	host=$(echo "$node" | sed 's/^NodeName=\([^ ]*\).*/\1/')
	mem=$(echo "$node" | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p')
	topo=$(echo "$node" | sed 's/^NodeName=[^ ]* //; s/ RealMemory=.*//')
	cat > "$dir/slurm.conf" <<EOF
ClusterName=rljobtest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$dir/state/ctld
SlurmdSpoolDir=$dir/state/d
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
DependencyParameters=kill_invalid_depend
SchedulerParameters=batch_sched_delay=0
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
NodeName=$host NodeAddr=127.0.0.1 $topo RealMemory=$((mem * 9 / 10)) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
	echo "SLURM_CONF=$dir/slurm.conf; export SLURM_CONF" > "$dir/env"
	export SLURM_CONF="$dir/slurm.conf"

	slurmctld -f "$SLURM_CONF" </dev/null >/dev/null 2>&1 || die "slurmctld did not start; see $dir/log/slurmctld.log"
	slurmd -f "$SLURM_CONF" </dev/null >/dev/null 2>&1 || die "slurmd did not start; see $dir/log/slurmd.log"
	i=0
	until scontrol ping 2>/dev/null | grep -q UP; do
		i=$((i + 1)); [ $i -lt 300 ] || die "slurmctld not UP after 30 s; see $dir/log/slurmctld.log"
		sleep 0.1
	done
	i=0
	until [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; do
		i=$((i + 1)); [ $i -lt 300 ] || die "node not idle after 30 s (sinfo: $(sinfo -h 2>&1)); see $dir/log/slurmd.log"
		sleep 0.1
	done
	echo "slurm-local: up (slurmctld pid $(cat "$dir/run/slurmctld.pid"), slurmd pid $(cat "$dir/run/slurmd.pid"); SLURM_CONF=$SLURM_CONF)" >&2
	;;
stop)
	dir=$(cd "$dir" && pwd)
	export SLURM_CONF="$dir/slurm.conf"
	if [ -f "$dir/run/slurmctld.pid" ] && alive "$(cat "$dir/run/slurmctld.pid")"; then
		scancel --full --quiet --partition=debug 2>/dev/null || true
		i=0
		while [ -n "$(squeue -h 2>/dev/null)" ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i + 1)); done
	fi
	stop_pid slurmd "$dir/run/slurmd.pid"
	stop_pid slurmctld "$dir/run/slurmctld.pid"
	stop_pid munged "$dir/run/munged.pid.ours"
	;;
*)
	die "usage: $0 start|stop DIR"
	;;
esac
