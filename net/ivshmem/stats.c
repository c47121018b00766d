// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU counters of a device (see stats.h).
 */

#include <linux/errno.h>
#include <linux/string.h>

#include "device.h"
#include "stats.h"

static const char *const ivshm_stat_names[IVSHM_STAT_NR] = {
	[IVSHM_STAT_TX_RECORDS] = "tx_records",
	[IVSHM_STAT_TX_BYTES] = "tx_bytes",
	[IVSHM_STAT_RX_RECORDS] = "rx_records",
	[IVSHM_STAT_RX_BYTES] = "rx_bytes",
	[IVSHM_STAT_NOTIFIES] = "notifies",
	[IVSHM_STAT_SUPPRESSED] = "suppressed",
	[IVSHM_STAT_RINGS] = "rings_sent",
	[IVSHM_STAT_RING_ERRORS] = "ring_errors",
	[IVSHM_STAT_NAPI_POLLS] = "napi_polls",
	[IVSHM_STAT_DATA_EVENTS] = "data_events",
	[IVSHM_STAT_MODERATED] = "moderated_polls",
	[IVSHM_STAT_CTRL_POLLS] = "ctrl_polls",
	[IVSHM_STAT_CTRL_EVENTS] = "ctrl_events",
	[IVSHM_STAT_CTRL_FLOODS] = "ctrl_floods",
	[IVSHM_STAT_PROTO_ERRORS] = "proto_errors",
	[IVSHM_STAT_PEERS_LOST] = "peers_lost",
	[IVSHM_STAT_REBALANCES] = "rebalances",
	[IVSHM_STAT_GROWN] = "grown",
	[IVSHM_STAT_SHRUNK] = "shrunk",
	[IVSHM_STAT_GROW_FAILED] = "grow_failed",
	[IVSHM_STAT_LOCK_BREAKS] = "lock_breaks",
	[IVSHM_STAT_LOCK_LOST] = "lock_lost",
};

const char *ivshm_stat_name(enum ivshm_stat s)
{
	return ivshm_stat_names[s];
}

int ivshm_stats_init(struct ivshm_dev *idev)
{
	int cpu;

	idev->stats = alloc_percpu(struct ivshm_stats);
	if (!idev->stats)
		return -ENOMEM;
	for_each_possible_cpu(cpu)
		u64_stats_init(&per_cpu_ptr(idev->stats, cpu)->syncp);
	return 0;
}

void ivshm_stats_exit(struct ivshm_dev *idev)
{
	free_percpu(idev->stats);
	idev->stats = NULL;
}

void ivshm_stat_add(struct ivshm_dev *idev, enum ivshm_stat s, u64 n)
{
	struct ivshm_stats *st = get_cpu_ptr(idev->stats);
	unsigned long flags;

	flags = u64_stats_update_begin_irqsave(&st->syncp);
	u64_stats_add(&st->v[s], n);
	u64_stats_update_end_irqrestore(&st->syncp, flags);
	put_cpu_ptr(idev->stats);
}

/* Every counter, added up over the CPUs. */
void ivshm_stats_read(struct ivshm_dev *idev, u64 out[IVSHM_STAT_NR])
{
	int cpu, i;

	memset(out, 0, sizeof(u64) * IVSHM_STAT_NR);
	for_each_possible_cpu(cpu) {
		const struct ivshm_stats *st = per_cpu_ptr(idev->stats, cpu);
		u64 v[IVSHM_STAT_NR];
		unsigned int start;

		do {
			start = u64_stats_fetch_begin(&st->syncp);
			for (i = 0; i < IVSHM_STAT_NR; i++)
				v[i] = u64_stats_read(&st->v[i]);
		} while (u64_stats_fetch_retry(&st->syncp, start));
		for (i = 0; i < IVSHM_STAT_NR; i++)
			out[i] += v[i];
	}
}
