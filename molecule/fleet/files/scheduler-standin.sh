#!/bin/sh
# A STAND-IN for a cluster scheduler (Slurm's scontrol, kubectl), not a scheduler: the fleet scenario's
# mlhost_drain_command and mlhost_undrain_command call it on the controller, and it only records each call,
# one line each, to the file given first:
#   <epoch seconds.nanoseconds> <drain|undrain> <host argument> <MLHOST_INVENTORY_HOSTNAME>
# verify.yml reads the file to check the order of the calls around the driver phase.
set -eu
log=$1 action=$2 host=$3
case $action in drain | undrain) ;; *) echo "scheduler-standin: unknown action $action" >&2; exit 2 ;; esac
printf '%s %s %s %s\n' "$(date +%s.%N)" "$action" "$host" "${MLHOST_INVENTORY_HOSTNAME:-unset}" >>"$log"
echo "scheduler-standin: $action $host"
