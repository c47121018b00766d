// SPDX-License-Identifier: GPL-2.0
/*
 * Tunables of a device: rebalancing, channel sizes, polling and doorbell
 * moderation.
 *
 * Every device starts with the values of the module parameters below, read
 * when it registers; from then on its own copy is changed through generic
 * netlink (netlink.c, IVSHMEM_CMD_DEV_SET), one device at a time.
 *
 * Locking: idev->params_lock, a seqlock, keeps a whole set consistent.
 * Writers (netlink, process context) hold its write side and store every
 * field with WRITE_ONCE(). Process-context readers that need fields that
 * belong together (chan_min with chan_max, say) copy the set with
 * ivshm_params_read(). Readers in interrupt or softirq context must not
 * spin on the seqlock, since they may have interrupted its writer; they
 * read the single field they use with READ_ONCE(), and each such field is
 * meaningful on its own.
 */

#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>
#include <linux/kernel.h>
#include <linux/moduleparam.h>

#include "core.h"
#include "device.h"
#include "params.h"

static bool ivshm_rebalance = true;
module_param_named(rebalance, ivshm_rebalance, bool, 0444);
MODULE_PARM_DESC(rebalance, "resize channels by their traffic (default Y)");

static unsigned int ivshm_rebal_doorbells = 100;
module_param_named(rebalance_doorbells, ivshm_rebal_doorbells, uint, 0444);
MODULE_PARM_DESC(rebalance_doorbells, "doorbell devices: rebalance every this many doorbells received; 0: by time only (default 100)");

static unsigned int ivshm_rebal_ms = 100;
module_param_named(rebalance_ms, ivshm_rebal_ms, uint, 0444);
MODULE_PARM_DESC(rebalance_ms, "polled devices: rebalance every this many ms (default 100)");

static unsigned int ivshm_rebal_idle_ms = 1000;
module_param_named(rebalance_idle_ms, ivshm_rebal_idle_ms, uint, 0444);
MODULE_PARM_DESC(rebalance_idle_ms, "doorbell devices: rebalance at least every this many ms (default 1000)");

static unsigned int ivshm_chan_initial = IVSHMEM_RING_DEFAULT;
module_param_named(chan_initial, ivshm_chan_initial, uint, 0444);
MODULE_PARM_DESC(chan_initial, "bytes of a new channel, and its largest record plus 8, unless SO_SNDBUF says otherwise (default 131072)");

static unsigned int ivshm_chan_min = IVSHMEM_RING_MIN;
module_param_named(chan_min, ivshm_chan_min, uint, 0444);
MODULE_PARM_DESC(chan_min, "bytes an idle channel shrinks to (default 16384)");

static unsigned int ivshm_chan_max = IVSHMEM_RING_MAX;
module_param_named(chan_max, ivshm_chan_max, uint, 0444);
MODULE_PARM_DESC(chan_max, "bytes a busy channel grows to at most (default 16777216)");

/* Polling of devices without doorbells (ivshmem-plain): after a poll that
 * found work the next comes after poll_min_us, and every idle poll doubles
 * the interval up to poll_max_us. A smaller minimum lowers the latency of
 * a quiet connection's first record and costs more CPU while idle traffic
 * trickles; the maximum bounds the latency after a long silence.
 */
static unsigned int ivshm_poll_min_us = 50;
module_param_named(poll_min_us, ivshm_poll_min_us, uint, 0444);
MODULE_PARM_DESC(poll_min_us, "polled devices: interval after work, in us (default 50)");

static unsigned int ivshm_poll_max_us = 4000;
module_param_named(poll_max_us, ivshm_poll_max_us, uint, 0444);
MODULE_PARM_DESC(poll_max_us, "polled devices: longest idle interval, in us (default 4000)");

/* Moderation of the data doorbell during bulk transfers (napi.c). */
static unsigned int ivshm_coalesce_us = 100;
module_param_named(coalesce_us, ivshm_coalesce_us, uint, 0444);
MODULE_PARM_DESC(coalesce_us, "doorbell devices: poll interval during bulk transfers, in us; 0 disables moderation (default 100)");

static unsigned int ivshm_coalesce_bulk = 16384;
module_param_named(coalesce_bulk, ivshm_coalesce_bulk, uint, 0444);
MODULE_PARM_DESC(coalesce_bulk, "doorbell devices: bytes waiting for readers lagging by more than one record that start a bulk period (default 16384)");

static unsigned int ivshm_coalesce_idle_us = 10000;
module_param_named(coalesce_idle_us, ivshm_coalesce_idle_us, uint, 0444);
MODULE_PARM_DESC(coalesce_idle_us, "doorbell devices: a bulk period ends this long after its last bulk poll, in us (default 10000)");

/* Liveness (peer.c): how long a peer's heartbeat may stand still before it
 * is declared dead. Long enough by default for a VM to be paused (a
 * snapshot, a migration, a debugger) without losing its connections; a VM
 * whose QEMU really went away is reported at once on doorbell regions by
 * the host's server, so this only bounds detection on ivshmem-plain ones.
 */
static unsigned int ivshm_peer_timeout_ms = 10000;
module_param_named(peer_timeout_ms, ivshm_peer_timeout_ms, uint, 0444);
MODULE_PARM_DESC(peer_timeout_ms, "a peer whose heartbeat stands still this many ms is declared dead, 500 to 3600000 (default 10000)");

/* A size from a module parameter: whole blocks within the ring limits. */
static u32 ivshm_params_bytes(unsigned int v)
{
	v = clamp_t(unsigned int, v, IVSHMEM_RING_MIN, IVSHMEM_RING_MAX);
	return round_up(v, IVSHM_BLOCK_SIZE);
}

/* The ring of a socket that knows no device yet (IVSHMEM_MAX_RECORD). */
u32 ivshm_params_default_ring(void)
{
	return ivshm_params_bytes(ivshm_chan_initial);
}

/**
 * ivshm_params_check() - is this a set of parameters a device may have?
 * @p: the set
 * @bad: set to the IVSHMEM_PARAM_* attribute at fault
 *
 * Return: NULL, or a message saying what is wrong.
 */
const char *ivshm_params_check(const struct ivshm_params *p, int *bad)
{
	static const struct {
		size_t off;
		int attr;
	} sizes[] = {
		{ offsetof(struct ivshm_params, chan_initial),
		  IVSHMEM_PARAM_CHAN_INITIAL },
		{ offsetof(struct ivshm_params, chan_min),
		  IVSHMEM_PARAM_CHAN_MIN },
		{ offsetof(struct ivshm_params, chan_max),
		  IVSHMEM_PARAM_CHAN_MAX },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		u32 v = *(const u32 *)((const u8 *)p + sizes[i].off);

		*bad = sizes[i].attr;
		if (v < IVSHMEM_RING_MIN || v > IVSHMEM_RING_MAX)
			return "channel size out of range 16384 .. 16777216";
		if (v % IVSHM_BLOCK_SIZE)
			return "channel size must be a multiple of 4096";
	}
	*bad = IVSHMEM_PARAM_CHAN_MIN;
	if (p->chan_min > p->chan_initial)
		return "chan_min is larger than chan_initial";
	*bad = IVSHMEM_PARAM_CHAN_MAX;
	if (p->chan_max < p->chan_initial)
		return "chan_max is smaller than chan_initial";
	*bad = IVSHMEM_PARAM_POLL_MIN_US;
	if (!p->poll_min_us || p->poll_min_us > p->poll_max_us)
		return "poll_min_us is larger than poll_max_us";
	*bad = IVSHMEM_PARAM_UNSPEC;
	return NULL;
}

/* Context: process, before the device's works and NAPI start. */
void ivshm_params_init(struct ivshm_dev *idev)
{
	struct ivshm_params *p = &idev->params;

	seqlock_init(&idev->params_lock);
	p->rebalance = ivshm_rebalance;
	p->rebalance_interval = min(ivshm_rebal_doorbells, IVSHM_P_INTERVAL_MAX);
	p->rebalance_ms = clamp(ivshm_rebal_ms, 1u, IVSHM_P_MS_MAX);
	p->rebalance_idle_ms = clamp(ivshm_rebal_idle_ms, 1u,
				     IVSHM_P_IDLE_MS_MAX);
	p->chan_min = ivshm_params_bytes(ivshm_chan_min);
	p->chan_initial = max(p->chan_min,
			      ivshm_params_bytes(ivshm_chan_initial));
	p->chan_max = max(p->chan_initial, ivshm_params_bytes(ivshm_chan_max));
	p->poll_min_us = clamp(ivshm_poll_min_us, 1u, IVSHM_P_POLL_US_MAX);
	p->poll_max_us = clamp(ivshm_poll_max_us, p->poll_min_us,
			       IVSHM_P_POLL_US_MAX);
	p->coalesce_us = min(ivshm_coalesce_us, IVSHM_P_COALESCE_US_MAX);
	p->coalesce_bulk = clamp(ivshm_coalesce_bulk, 1u, IVSHMEM_RING_MAX);
	p->coalesce_idle_us = clamp(ivshm_coalesce_idle_us, 1u,
				    IVSHM_P_IDLE_US_MAX);
	p->peer_timeout_ms = clamp(ivshm_peer_timeout_ms, IVSHM_P_PEER_MS_MIN,
				   IVSHM_P_PEER_MS_MAX);
}

/* Context: process (see the locking note above). */
void ivshm_params_read(struct ivshm_dev *idev, struct ivshm_params *out)
{
	unsigned int seq;

	do {
		seq = read_seqbegin(&idev->params_lock);
		*out = idev->params;
	} while (read_seqretry(&idev->params_lock, seq));
}

/* Context: process; @p passed ivshm_params_check(). */
void ivshm_params_write(struct ivshm_dev *idev, const struct ivshm_params *p)
{
	struct ivshm_params *d = &idev->params;

	write_seqlock(&idev->params_lock);
	WRITE_ONCE(d->rebalance, p->rebalance);
	WRITE_ONCE(d->rebalance_interval, p->rebalance_interval);
	WRITE_ONCE(d->rebalance_ms, p->rebalance_ms);
	WRITE_ONCE(d->rebalance_idle_ms, p->rebalance_idle_ms);
	WRITE_ONCE(d->chan_initial, p->chan_initial);
	WRITE_ONCE(d->chan_min, p->chan_min);
	WRITE_ONCE(d->chan_max, p->chan_max);
	WRITE_ONCE(d->poll_min_us, p->poll_min_us);
	WRITE_ONCE(d->poll_max_us, p->poll_max_us);
	WRITE_ONCE(d->coalesce_us, p->coalesce_us);
	WRITE_ONCE(d->coalesce_bulk, p->coalesce_bulk);
	WRITE_ONCE(d->coalesce_idle_us, p->coalesce_idle_us);
	WRITE_ONCE(d->peer_timeout_ms, p->peer_timeout_ms);
	write_sequnlock(&idev->params_lock);
}
