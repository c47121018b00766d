#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# make demo: two QEMU guests share one ivshmem-doorbell region through our
# host server. Guest a runs ivshmem_receiver, guest b ivshmem_sender: 256 MiB
# cross over AF_IVSHMEM, every byte and the checksum are verified, and both
# print the throughput.
set -euo pipefail
. "$(dirname "$0")/common.sh"

echo "Booting two guests on one ivshmem-doorbell region (QEMU, TCG)..."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rc=0
"$IVSHM_ROOT/selftests/runner/run.sh" --placements demo >"$out" || rc=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$out"
if [ "$rc" = 0 ]; then
	echo "demo: done"
else
	echo "demo: FAILED (status $rc)"
fi
exit "$rc"
