// SPDX-License-Identifier: GPL-2.0
/*
 * The data path's notifications: a NAPI context per device, on a dummy
 * net_device of its own that no one sees.
 *
 * A peer that published records for a reader of ours that sleeps, or freed
 * room for a writer of ours that waits, sets the channel's bit in our data
 * pending set and rings our data vector if we armed it (protocol.md,
 * Notification). The interrupt only schedules NAPI. The poll takes the data
 * set a word at a time, up to its budget of channels, and wakes the sockets
 * of each channel (sk_data_ready for a reader, sk_write_space for a writer);
 * records never pass through it, and it never takes a socket lock, so it
 * runs in softirq context without sleeping. Everything that needs a socket
 * lock or the control lock (connections, closes, resets) travels in the
 * control set and is handled by the control work (chan.c).
 *
 * Arming (N1 in protocol.md; both halves in core/notify.c): the poll
 * disarms the data set, takes its words and wakes sockets, and after
 * napi_complete_done() rearms it; a bit that a sender set while it read the
 * flag as 0 is found by the rearm's second look, and the poll is scheduled
 * again.
 *
 * Budget: a poll handles at most @budget channels. Bits of a word taken but
 * not yet handled wait in a private carry for the next poll, and the next
 * poll starts at the word where this one stopped, so a flood of bits from a
 * peer is worked off in fair, bounded slices, as NAPI bounds any device.
 *
 * Moderation (devices with doorbells): a reader of a bulk stream sleeps
 * between records, and each sleep would cost a doorbell. A poll that woke
 * readers lagging behind their senders by more than one record, with at
 * least coalesce_bulk bytes waiting between them, starts (or extends) a
 * bulk period: the data doorbell stays disarmed, senders only set bits,
 * and an hrtimer polls every coalesce_us until coalesce_idle_us pass
 * without another such poll; then the doorbell is armed again. A single
 * record waiting, however long, is a request or an answer (ping-pong):
 * it never starts a bulk period, since its answer would then wait for the
 * timer instead of the doorbell, each way. The counts are read from the
 * channel (ivshm_sock_wake()), a hint that only decides how we are woken:
 * a peer that forges them keeps us in bulk periods, in which every peer's
 * records, not only its own, reach us by the timer's poll, at most
 * coalesce_us late, instead of by a doorbell.
 *
 * Devices without doorbells (ivshmem-plain) are polled: an hrtimer
 * schedules NAPI, again after poll_min_us when the last poll found work and
 * after twice the last interval, up to poll_max_us, when it found none. The
 * same poll looks at the control set and queues the control work when it
 * has bits.
 *
 * The net_device exists only to host NAPI, as for any device that polls
 * without carrying packets: it is not registered, so no network manager
 * sees an interface that carries nothing and that "ip link set down"
 * could not stop. The device's counters are in netlink ("ivshm -s dev").
 *
 * Context: the poll runs in softirq context, once at a time per device. It
 * alone writes carry[], next_word, bulk_until and, on a device with
 * doorbells, data_armed; the poll timer is started only by the poll and by
 * ivshm_napi_start(), and cancelled by ivshm_napi_stop() after napi_disable()
 * has waited for the last poll.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/netdevice.h>
#include <linux/slab.h>
#include <linux/workqueue.h>

#include "chan.h"
#include "device.h"
#include "napi.h"
#include "socket.h"
#include "stats.h"
#include "trace.h"

/* A net_device for NAPI only, never registered: alloc_netdev_dummy() in
 * 6.10 and later (see Kbuild), one initialised in place before.
 */
static struct net_device *ivshm_napi_netdev_alloc(void)
{
#ifdef IVSHM_HAVE_NETDEV_DUMMY
	return alloc_netdev_dummy(0);
#else
	struct net_device *dev = kzalloc(sizeof(*dev), GFP_KERNEL);

	if (dev)
		init_dummy_netdev(dev);
	return dev;
#endif
}

static void ivshm_napi_netdev_free(struct net_device *dev)
{
#ifdef IVSHM_HAVE_NETDEV_DUMMY
	free_netdev(dev);
#else
	kfree(dev);
#endif
}

/* Wake the sockets of channel @idx: records for its reader, room for its
 * writer. Both only on a loopback connection. Returns the bytes waiting
 * for a reader that lags behind a stream, a moderation hint.
 */
static u64 ivshm_napi_event(struct ivshm_dev *idev, u32 idx)
{
	struct ivshm_sock *isk[2];
	u64 waiting = 0;

	ivshm_slot_get(idev, idx, isk);
	if (isk[0])
		ivshm_sock_wake(isk[0], idev, idx, false);
	if (isk[1])
		waiting = ivshm_sock_wake(isk[1], idev, idx, true);
	ivshm_slot_put(isk);
	return waiting;
}

/* Handle up to @budget channels of our data set; returns how many, and in
 * *@waiting the bytes waiting for the readers woken.
 */
static int ivshm_napi_drain(struct ivshm_dev *idev, int budget, u64 *waiting)
{
	const struct ivshm_layout *l = &idev->layout;
	u32 words = l->pending_words, n, w;
	int done = 0;

	for (n = 0; n < words && done < budget; n++) {
		u64 bits;

		w = idev->next_word;
		bits = idev->carry[w] |
		       ivshm_notify_take(l, idev->own_id, IVSHM_PEND_DATA, w);
		while (bits && done < budget) {
			u32 b = __ffs64(bits);

			bits &= bits - 1;
			*waiting += ivshm_napi_event(idev, w * 64 + b);
			done++;
		}
		idev->carry[w] = bits;
		/* Stop on an unfinished word, so it comes first next time. */
		if (!bits)
			idev->next_word = (w + 1) % words;
	}
	return done;
}

/* A device without doorbells: poll again soon after work, later when idle. */
static void ivshm_poll_rearm(struct ivshm_dev *idev, bool found)
{
	u32 us = found ? READ_ONCE(idev->params.poll_min_us) :
		 min(idev->poll_us * 2, READ_ONCE(idev->params.poll_max_us));

	us = max(us, 1u);
	WRITE_ONCE(idev->poll_us, us);
	if (!READ_ONCE(idev->dying))
		hrtimer_start(&idev->poll_timer, ns_to_ktime(us * 1000ull),
			      HRTIMER_MODE_REL);
}

/* A device with doorbells after a poll: stay polled while a bulk period
 * lasts. Returns false when the doorbell should be armed.
 */
static bool ivshm_moderate(struct ivshm_dev *idev, u64 waiting)
{
	u32 us = READ_ONCE(idev->params.coalesce_us);
	ktime_t now;

	if (!us || READ_ONCE(idev->dying))
		return false;
	now = ktime_get();
	if (waiting >= READ_ONCE(idev->params.coalesce_bulk))
		idev->bulk_until = ktime_add_us(now,
						READ_ONCE(idev->params.coalesce_idle_us));
	if (ktime_after(now, idev->bulk_until))
		return false;
	hrtimer_start(&idev->poll_timer, ns_to_ktime(us * 1000ull),
		      HRTIMER_MODE_REL);
	return true;
}

static enum hrtimer_restart ivshm_poll_timer(struct hrtimer *t)
{
	struct ivshm_dev *idev = container_of(t, struct ivshm_dev, poll_timer);

	napi_schedule(&idev->napi);
	return HRTIMER_NORESTART;
}

static int ivshm_napi_poll(struct napi_struct *napi, int budget)
{
	struct ivshm_dev *idev = container_of(napi, struct ivshm_dev, napi);
	const struct ivshm_layout *l = &idev->layout;
	bool doorbells = idev->nr_vectors, ctrl = false;
	u64 waiting = 0;
	int done;

	if (ivshm_dev_frozen(idev)) {
		/* A stopped VM: the bits wait; thawing kicks us. */
		napi_complete(napi);
		return 0;
	}
	trace_ivshm_poll(idev->index);
	ivshm_stat_inc(idev, IVSHM_STAT_NAPI_POLLS);
	if (doorbells)
		ivshm_notify_disarm(l, idev->own_id, IVSHM_PEND_DATA);
	done = ivshm_napi_drain(idev, budget, &waiting);
	ivshm_stat_add(idev, IVSHM_STAT_DATA_EVENTS, done);
	/* Declared dead, the control work leaves its bits for after the
	 * rejoin (ivshm_ctrl_work()): no reason to poll sooner meanwhile.
	 */
	if (!doorbells &&
	    ivshm_notify_any(l, idev->own_id, IVSHM_PEND_CTRL) &&
	    ivshm_peer_still_me(l, idev->own_id, READ_ONCE(idev->inc))) {
		ivshm_ctrl_kick(idev);
		ctrl = true;
	}
	if (done >= budget)
		return budget;		/* more: NAPI polls us again */
	if (!napi_complete_done(napi, done))
		return done;
	if (!doorbells) {
		ivshm_poll_rearm(idev, done || ctrl);
		return done;
	}
	if (ivshm_moderate(idev, waiting)) {
		trace_ivshm_poll_done(idev->index, done, waiting, true);
		ivshm_stat_inc(idev, IVSHM_STAT_MODERATED);
		return done;
	}
	trace_ivshm_poll_done(idev->index, done, waiting, false);
	if (ivshm_notify_rearm(l, idev->own_id, IVSHM_PEND_DATA))
		napi_schedule(napi);
	return done;
}

/**
 * ivshm_napi_kick() - poll the data set soon
 * @idev: the device
 *
 * Context: any. From process context the softirq runs before we return.
 */
void ivshm_napi_kick(struct ivshm_dev *idev)
{
	if (in_hardirq() || in_serving_softirq() || irqs_disabled()) {
		napi_schedule(&idev->napi);
		return;
	}
	local_bh_disable();
	napi_schedule(&idev->napi);
	local_bh_enable();
}

/**
 * ivshm_napi_init() - create the device's NAPI context
 * @idev: a device being registered, its name set
 *
 * NAPI is created disabled; ivshm_napi_start() enables it once the device
 * has joined the region.
 *
 * Return: 0 or a negative errno.
 */
int ivshm_napi_init(struct ivshm_dev *idev)
{
	struct net_device *dev;

	idev->carry = kcalloc(idev->layout.pending_words, sizeof(u64),
			      GFP_KERNEL);
	if (!idev->carry)
		return -ENOMEM;
	idev->next_word = 0;
	idev->bulk_until = 0;
	hrtimer_init(&idev->poll_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	idev->poll_timer.function = ivshm_poll_timer;
	idev->poll_us = READ_ONCE(idev->params.poll_min_us);

	dev = ivshm_napi_netdev_alloc();
	if (!dev) {
		kfree(idev->carry);
		idev->carry = NULL;
		return -ENOMEM;
	}
	netif_napi_add(dev, &idev->napi, ivshm_napi_poll);
	idev->napi_dev = dev;
	return 0;
}

/* The device joined the region: take notifications from now on. */
void ivshm_napi_start(struct ivshm_dev *idev)
{
	napi_enable(&idev->napi);
	/* Catch what was announced before we armed; start polling. */
	ivshm_napi_kick(idev);
}

/* The device is leaving: no poll runs after this returns. */
void ivshm_napi_stop(struct ivshm_dev *idev)
{
	napi_disable(&idev->napi);
	hrtimer_cancel(&idev->poll_timer);
}

void ivshm_napi_exit(struct ivshm_dev *idev)
{
	netif_napi_del(&idev->napi);
	ivshm_napi_netdev_free(idev->napi_dev);
	idev->napi_dev = NULL;
	kfree(idev->carry);
	idev->carry = NULL;
}
