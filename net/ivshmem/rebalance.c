// SPDX-License-Identifier: GPL-2.0
/*
 * Rebalancing: the channels a device sends on follow their traffic.
 *
 * Every rebalance_doorbells doorbells the device receives (notifications it
 * gives itself on loopback connections count too), every rebalance_ms on a
 * device without doorbells, and at least every rebalance_idle_ms on any
 * device, a pass looks at each channel this device sends on, that is, the
 * channels whose blocks it owns:
 *
 *  - A channel whose ring was full since the last pass (a sender found no
 *    room: backpressure) grows by half, as the seed's 1 MB to 1.5 MB, up to
 *    chan_max and to its fair share: the data area, less the eighth kept
 *    free for new connections, divided by the channels of the whole region
 *    that are full too (each sender says so with IVSHM_TXF_FULL).
 *  - A channel that published no record for rebalance_idle_ms (head_touch
 *    did not move; passes that follow each other closely do not make a
 *    busy channel idle) halves, down to chan_min.
 *  - An idle channel at chan_min moves, at the same size, to the lowest
 *    free run it fits in when that is lower than where it is: it may have
 *    landed right after a channel that would grow in place.
 *  - Any other channel keeps its size.
 *
 * Only the owner resizes a channel, under its socket lock, and holds the
 * region's control lock only to take and give back blocks and to rewrite
 * the descriptor (chan.c, ivshm_chan_move()); the data moves with a MOVED
 * record (ring.c), so records are never lost, duplicated or reordered, and
 * channels that are not resized never wait. A socket whose user fixed its
 * ring size with SO_SNDBUF is left alone, as TCP leaves the buffers of such
 * a socket alone.
 *
 * The parameters are the device's (params.c), changed at run time through
 * netlink; a pass copies them once. Turning rebalance off stops resizing.
 *
 * Context: the pass runs in process context on the unbound workqueue, one at
 * a time per device (a single delayed work); ivshm_rebal_doorbell() may be
 * called from any context.
 */

#include <linux/ivshmem.h>
#include <linux/jiffies.h>
#include <linux/sched.h>
#include <linux/workqueue.h>

#include "chan.h"
#include "device.h"
#include "params.h"
#include "rebalance.h"
#include "sock.h"
#include "stats.h"

/* The part of the data area a growth leaves free: 1 / IVSHM_REBAL_KEEP. */
#define IVSHM_REBAL_KEEP	8

/* The size of a new channel whose user did not choose one. */
u32 ivshm_rebal_initial(struct ivshm_dev *idev)
{
	return READ_ONCE(idev->params.chan_initial);
}

/**
 * ivshm_rebal_target() - the size a channel should have after this pass
 * @rb: what the pass allows
 * @size: its size now
 * @full: its ring was full since the last pass
 * @records: records it published since the last pass
 *
 * Return: the new size in bytes, whole blocks; @size to keep it.
 */
static u32 ivshm_rebal_target(const struct ivshm_rebal *rb, u32 size,
			      bool full, u64 records)
{
	u32 want;

	if (full) {
		want = round_up(size + size / 2, IVSHM_BLOCK_SIZE);
		want = min3(want, rb->max, rb->share);
		return want > size ? want : size;
	}
	if (!records && size > rb->min)
		return max_t(u32, rb->min,
			     round_up(size / 2, IVSHM_BLOCK_SIZE));
	return size;
}

/**
 * ivshm_rebal_sock() - resize the channel @isk sends on, if it should
 * @isk: the socket, held by the caller
 * @idev: the device whose pass this is
 * @idx: the channel
 * @rb: what the pass allows
 *
 * Only a channel whose reader attached is moved: a connector that has not
 * attached yet reads the descriptor's run as the start of the ring.
 *
 * Context: process (the device's rebalancing pass); takes the socket lock.
 */
static void ivshm_rebal_sock(struct ivshm_sock *isk, struct ivshm_dev *idev,
			     u32 idx, const struct ivshm_rebal *rb)
{
	struct sock *sk = &isk->sk;
	struct ivshm_ring *r = &isk->tx;
	struct ivshm_hs_reply reply;
	u32 target, size;
	u64 records;
	bool full;
	int ret;

	lock_sock(sk);
	if (isk->idev != idev || !isk->has_tx || isk->tx_idx != idx ||
	    sk->sk_state != TCP_ESTABLISHED || isk->tx_fixed ||
	    (sk->sk_shutdown & SEND_SHUTDOWN))
		goto out;
	/* Declared dead: reset, as our liveness work will. */
	ret = -ENOLINK;
	if (ivshm_sock_fenced(isk))
		goto fail;
	ret = ivshm_chan_move_done(idev, idx, isk->tx_gen, isk->tx_inc, r,
				   MAX_SCHEDULE_TIMEOUT);
	/* (-EINTR is a signalled task's: not this worker's.) */
	if (ret == -EPROTO || ret == -ENOLINK)
		goto fail;
	/* It may have waited for the lock a while. */
	ret = -ENOLINK;
	if (ivshm_sock_fenced(isk))
		goto fail;
	full = isk->tx_full;
	isk->tx_full = 0;
	records = r->touch - isk->rebal_touch;	/* what head_touch says */
	isk->rebal_touch = r->touch;
	/* Idle means quiet for rb->idle, not between two close passes. */
	if (records)
		isk->rebal_busy = jiffies;
	else if (time_before(jiffies, isk->rebal_busy + rb->idle))
		records = 1;
	ivshm_event_tx_flags(&isk->tx, full ? IVSHM_TXF_FULL : 0,
			     full ? 0 : IVSHM_TXF_FULL);
	ivshm_hs_reply(&idev->layout, isk->tx_idx, &reply);
	if (r->old_size || reply.rx_state != IVSHM_RX_ACCEPTED)
		goto out;
	size = r->size;
	target = ivshm_rebal_target(rb, size, full, records);
	/* An idle channel at its smallest may sit right after a busy one that
	 * would grow in place: it moves as low as it fits, once.
	 */
	if (target == size &&
	    (records || full || size > rb->min ||
	     !ivshm_blocks_fit_below(&idev->layout, size >> IVSHM_BLOCK_SHIFT,
				     ivshm_ring_run(r))))
		goto out;
	ret = ivshm_chan_move(idev, idx, isk->tx_gen, isk->tx_inc, r, target,
			      target > size ? rb->keep : 0, MAX_SCHEDULE_TIMEOUT);
	/* No run of half the size free: the smallest one surely is. */
	if (ret == -ENOBUFS && target < size && target > rb->min) {
		target = rb->min;
		ret = ivshm_chan_move(idev, idx, isk->tx_gen, isk->tx_inc, r,
				      target, 0, MAX_SCHEDULE_TIMEOUT);
	}
	if (ret > 0) {
		if ((u32)ret != size)
			ivshm_stat_inc(idev, (u32)ret > size ?
				       IVSHM_STAT_GROWN : IVSHM_STAT_SHRUNK);
		ivshm_data_moved(isk);
	} else if (ret == -ENOBUFS && target > size) {
		ivshm_stat_inc(idev, IVSHM_STAT_GROW_FAILED);
	} else if (ret == -EPROTO || ret == -ENOLINK) {
		goto fail;
	}
out:
	release_sock(sk);
	return;
fail:
	if (ret == -ENOLINK)
		ivshm_sock_fail(isk, ECONNRESET);
	else
		ivshm_sock_proto_error(isk, isk->tx_idx, "tail invalid");
	release_sock(sk);
}

static void ivshm_rebal_pass(struct ivshm_dev *idev)
{
	const struct ivshm_layout *l = &idev->layout;
	u32 keep = l->nr_blocks / IVSHM_REBAL_KEEP;
	u32 full = ivshm_chan_count_full(l), i;
	struct ivshm_params p;
	struct ivshm_rebal rb;
	u64 share;

	ivshm_params_read(idev, &p);
	if (!p.rebalance)
		return;
	rb.min = p.chan_min;
	rb.max = p.chan_max;
	rb.idle = msecs_to_jiffies(p.rebalance_idle_ms);
	share = ((u64)(l->nr_blocks - keep) << IVSHM_BLOCK_SHIFT) /
		max(full, 1u);
	rb.share = (u32)min_t(u64, rounddown(share, IVSHM_BLOCK_SIZE),
			      IVSHMEM_RING_MAX);
	rb.keep = keep;

	ivshm_stat_inc(idev, IVSHM_STAT_REBALANCES);
	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_sock *isk[2];

		if (!READ_ONCE(idev->slots[i].tx))
			continue;
		ivshm_slot_get(idev, i, isk);
		if (isk[0])
			ivshm_rebal_sock(isk[0], idev, i, &rb);
		ivshm_slot_put(isk);
		cond_resched();
	}
}

static void ivshm_rebal_work(struct work_struct *work)
{
	struct ivshm_dev *idev = container_of(to_delayed_work(work),
					      struct ivshm_dev, rebal_work);
	unsigned int ms;

	if (READ_ONCE(idev->dying))
		return;
	if (!ivshm_dev_frozen(idev))
		ivshm_rebal_pass(idev);
	ms = idev->nr_vectors ? READ_ONCE(idev->params.rebalance_idle_ms) :
				READ_ONCE(idev->params.rebalance_ms);
	/* A doorbell that asked for a pass meanwhile queued it already. */
	queue_delayed_work(system_unbound_wq, &idev->rebal_work,
			   msecs_to_jiffies(max(ms, 1u)));
}

/**
 * ivshm_rebal_doorbell() - count a doorbell towards the next pass
 * @idev: the device that received it
 *
 * Context: any, typically hard interrupt.
 */
void ivshm_rebal_doorbell(struct ivshm_dev *idev)
{
	unsigned int n = READ_ONCE(idev->params.rebalance_interval);

	if (!n || READ_ONCE(idev->dying) || !READ_ONCE(idev->joined))
		return;
	if ((unsigned int)atomic_inc_return(&idev->rebal_count) < n)
		return;
	atomic_set(&idev->rebal_count, 0);
	mod_delayed_work(system_unbound_wq, &idev->rebal_work, 0);
}

void ivshm_rebal_start(struct ivshm_dev *idev)
{
	atomic_set(&idev->rebal_count, 0);
	INIT_DELAYED_WORK(&idev->rebal_work, ivshm_rebal_work);
	queue_delayed_work(system_unbound_wq, &idev->rebal_work,
			   msecs_to_jiffies(READ_ONCE(idev->params.rebalance_ms)));
}

/* Context: process; @idev->dying is set, so the pass no longer requeues. */
void ivshm_rebal_stop(struct ivshm_dev *idev)
{
	cancel_delayed_work_sync(&idev->rebal_work);
}

/**
 * ivshm_rebal_params_changed() - take new parameters into account now
 * @idev: the device; the caller keeps it registered (ivshm_dev_walk())
 *
 * A pass runs at once, and the next one comes after the new interval.
 */
void ivshm_rebal_params_changed(struct ivshm_dev *idev)
{
	if (READ_ONCE(idev->joined) && !READ_ONCE(idev->dying))
		mod_delayed_work(system_unbound_wq, &idev->rebal_work, 0);
}
