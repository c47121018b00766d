/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Counters of a device, per CPU: the data path bumps them on every record,
 * and sockets on different CPUs must not share a cache line for it.
 *
 * Writers may run in any context (system calls, the NAPI poll, the control
 * work, interrupts), so an update keeps preemption off and, where 64-bit
 * counters need it (32-bit kernels), interrupts too; on 64-bit kernels the
 * sequence count compiles away. Readers add up every CPU's counters under
 * the sequence count, so they never see half of a 64-bit value.
 */
#ifndef _IVSHM_STATS_H
#define _IVSHM_STATS_H

#include <linux/percpu.h>
#include <linux/u64_stats_sync.h>

struct ivshm_dev;

enum ivshm_stat {
	IVSHM_STAT_TX_RECORDS,		/* records our sockets sent */
	IVSHM_STAT_TX_BYTES,
	IVSHM_STAT_RX_RECORDS,		/* records our sockets received */
	IVSHM_STAT_RX_BYTES,
	IVSHM_STAT_NOTIFIES,		/* pending bits we set for peers */
	IVSHM_STAT_SUPPRESSED,		/* notifications and doorbells spared */
	IVSHM_STAT_RINGS,		/* doorbells we rang */
	IVSHM_STAT_RING_ERRORS,		/* doorbells the transport refused */
	IVSHM_STAT_NAPI_POLLS,		/* runs of the NAPI poll */
	IVSHM_STAT_DATA_EVENTS,		/* data bits it handled */
	IVSHM_STAT_MODERATED,		/* polls that left the doorbell disarmed */
	IVSHM_STAT_CTRL_POLLS,		/* runs of the control work */
	IVSHM_STAT_CTRL_EVENTS,		/* control bits it handled */
	IVSHM_STAT_CTRL_FLOODS,		/* runs cut short by too many bits */
	IVSHM_STAT_PROTO_ERRORS,	/* peers' values that failed a check */
	IVSHM_STAT_PEERS_LOST,		/* peers found dead or gone */
	IVSHM_STAT_REBALANCES,		/* rebalancing passes */
	IVSHM_STAT_GROWN,		/* channels of ours grown */
	IVSHM_STAT_SHRUNK,		/* ... and shrunk */
	IVSHM_STAT_GROW_FAILED,		/* growths the region had no room for */
	IVSHM_STAT_LOCK_BREAKS,		/* control locks we took over */
	IVSHM_STAT_LOCK_LOST,		/* ... and others took from us */
	IVSHM_STAT_NR,
};

struct ivshm_stats {
	u64_stats_t v[IVSHM_STAT_NR];
	struct u64_stats_sync syncp;
};

int ivshm_stats_init(struct ivshm_dev *idev);
void ivshm_stats_exit(struct ivshm_dev *idev);
void ivshm_stat_add(struct ivshm_dev *idev, enum ivshm_stat s, u64 n);
void ivshm_stats_read(struct ivshm_dev *idev, u64 out[IVSHM_STAT_NR]);
const char *ivshm_stat_name(enum ivshm_stat s);

static inline void ivshm_stat_inc(struct ivshm_dev *idev, enum ivshm_stat s)
{
	ivshm_stat_add(idev, s, 1);
}

#endif /* _IVSHM_STATS_H */
