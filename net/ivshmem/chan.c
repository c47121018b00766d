// SPDX-License-Identifier: GPL-2.0
/*
 * Channels of one device: taking and freeing them in the region, telling
 * peers about them, and handling what peers tell us.
 *
 * A connection is two channels, one per direction, each owned (allocated,
 * written, freed) by its sender. Everything a peer wants us to look at is
 * announced by setting the channel's bit in our pending set and, if we
 * armed it, ringing our doorbell; ivshm_dev_work() takes the bits and hands
 * each channel to the socket that uses it (socket.c), or, for a channel
 * nobody here uses yet, treats it as a connection request.
 *
 * Notification handshake (protocol.md, N1):
 *
 *   sender                              receiver (ivshm_dev_work)
 *   publish head / state / rx_state     armed = 0
 *   set pending bit (fully ordered) [P1] take pending words     [P1]
 *   if (armed) ring doorbell            handle channels
 *                                       armed = 1
 *                                       smp_mb()                [N1]
 *                                       any pending bit? loop
 *
 * Either the sender's read of armed comes after the receiver set it, and
 * the doorbell rings, or the receiver's re-check after its barrier sees the
 * bit the sender set before reading armed.
 *
 * Locking: idev->lock (spinlock) protects slots[] and dying; it is never
 * held while sleeping or while a socket lock is taken, so socket.c may take
 * it under lock_sock(). Every slot holding a socket holds a reference to
 * it. idev->ctrl_mutex serialises this guest's users of the region's
 * control lock, so that only one of our threads at a time competes for it.
 * idev->users counts the sockets and lookups using the device; unregister
 * waits for it to drain after detaching every socket.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/hrtimer.h>
#include <linux/moduleparam.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <net/sock.h>

#include "chan.h"
#include "device.h"
#include "peer.h"
#include "socket.h"

/* How long we try for the region's control lock before giving up. */
#define IVSHM_CTRL_WAIT_MS	1000
/* An orphan whose receiver never acknowledges is freed after this. */
#define IVSHM_ORPHAN_TIMEOUT	(30 * HZ)
/* Rounds of the pending set per work run before yielding the CPU. */
#define IVSHM_WORK_ROUNDS	16

/* Polling of devices without doorbells (ivshmem-plain): after a poll that
 * found work the next comes after poll_min_us, and every idle poll doubles
 * the interval up to poll_max_us. A smaller minimum lowers the latency of
 * a quiet connection's first record and costs more CPU while idle traffic
 * trickles; the maximum bounds the latency after a long silence.
 */
static unsigned int ivshm_poll_min_us = 50;
module_param_named(poll_min_us, ivshm_poll_min_us, uint, 0644);
MODULE_PARM_DESC(poll_min_us, "polled devices: interval after work, in us (default 50)");
static unsigned int ivshm_poll_max_us = 4000;
module_param_named(poll_max_us, ivshm_poll_max_us, uint, 0644);
MODULE_PARM_DESC(poll_max_us, "polled devices: longest idle interval, in us (default 4000)");

/**
 * ivshm_ctrl_lock() - take the region's control lock for this device
 * @idev: a joined device
 *
 * Context: process; sleeps. Returns with idev->ctrl_mutex held on success.
 * A lock taken from a dead holder is repaired before we rely on it.
 *
 * Return: 0, or -EBUSY when a live peer kept it for IVSHM_CTRL_WAIT_MS.
 */
int ivshm_ctrl_lock(struct ivshm_dev *idev)
{
	unsigned long end = jiffies + msecs_to_jiffies(IVSHM_CTRL_WAIT_MS);
	int ret;

	mutex_lock(&idev->ctrl_mutex);
	for (;;) {
		ret = ivshm_ctrl_trylock(&idev->layout, idev->own_id, idev->inc);
		if (ret == 1) {
			pr_warn("%s: control lock taken from a dead holder; bookkeeping rebuilt\n",
				idev->name);
			ivshm_blocks_rebuild(&idev->layout);
			return 0;
		}
		if (!ret)
			return 0;
		if (time_after(jiffies, end))
			break;
		usleep_range(20, 100);
	}
	mutex_unlock(&idev->ctrl_mutex);
	return -EBUSY;
}

void ivshm_ctrl_unlock_dev(struct ivshm_dev *idev)
{
	ivshm_ctrl_unlock(&idev->layout, idev->own_id, idev->inc);
	mutex_unlock(&idev->ctrl_mutex);
}

/**
 * ivshm_chan_open() - take a channel and its run, and describe it
 * @idev: a joined device
 * @p: what the channel carries; p->idx, p->gen and p->off are set
 *
 * The descriptor is complete, state last, before the control lock is
 * released; the caller announces it with ivshm_notify().
 *
 * Return: 0, -ENOBUFS when the region has no free slot or run, -EBUSY as
 * for ivshm_ctrl_lock().
 */
int ivshm_chan_open(struct ivshm_dev *idev, struct ivshm_chan_params *p)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_chan *ch;
	int ret;

	ret = ivshm_ctrl_lock(idev);
	if (ret)
		return ret;
	ret = ivshm_chan_alloc(l, &p->idx);
	if (ret)
		goto out_unlock;
	ret = ivshm_blocks_alloc(l, p->size >> IVSHM_BLOCK_SHIFT, &p->off);
	if (ret) {
		ivshm_chan_free(l, p->idx);
		ret = -ENOBUFS;
		goto out_unlock;
	}
	ch = ivshm_chan(l, p->idx);
	/* chan_alloc() zeroed the slot and bumped the generation: ours. */
	p->gen = ivshm_get32(&ch->generation);
	ivshm_put16(&ch->sender_vm, (u16)idev->own_id);
	ivshm_put16(&ch->receiver_vm, (u16)p->receiver_vm);
	ivshm_put32(&ch->sender_pid, p->pid);
	ivshm_put32(&ch->src_port, p->src_port);
	ivshm_put32(&ch->dst_port, p->dst_port);
	ivshm_put64(&ch->buff_offset, p->off);
	ivshm_put32(&ch->buff_size, p->size);
	ivshm_put32(&ch->sender_inc, idev->inc);
	ivshm_put32(&ch->peer_chan, p->peer_chan);
	ivshm_put32(&ch->peer_gen, p->peer_gen);
	ivshm_store_release32(&ch->state, p->state);
out_unlock:
	ivshm_ctrl_unlock_dev(idev);
	return ret;
}

/**
 * ivshm_chan_close() - free a channel we sent on
 * @idev: the device
 * @idx: the channel
 * @off: its run, from our private copy, never from the region
 * @size: its bytes
 *
 * The receiver has acknowledged, is dead, or never will (timeout). If the
 * control lock cannot be had, the run stays allocated until the next
 * rebuild; nothing else depends on it.
 */
void ivshm_chan_close(struct ivshm_dev *idev, u32 idx, u64 off, u32 size)
{
	const struct ivshm_layout *l = &idev->layout;

	if (ivshm_ctrl_lock(idev)) {
		pr_warn_ratelimited("%s: channel %u not freed: control lock busy\n",
				    idev->name, idx);
		return;
	}
	if (ivshm_get16(&ivshm_chan(l, idx)->sender_vm) == idev->own_id) {
		if (ivshm_blocks_free(l, off, size >> IVSHM_BLOCK_SHIFT))
			atomic64_inc(&idev->proto_errors);
		ivshm_chan_free(l, idx);
	}
	ivshm_ctrl_unlock_dev(idev);
}

/**
 * ivshm_notify() - tell a VM that channel @idx has news for it
 * @idev: our device
 * @vm: the VM; an id that cannot exist is ignored
 * @idx: the channel
 *
 * Context: any.
 */
void ivshm_notify(struct ivshm_dev *idev, u32 vm, u32 idx)
{
	const struct ivshm_layout *l = &idev->layout;

	/* Callers pass ids read once from the region: bound them here too. */
	if (vm >= l->max_peers || idx >= l->max_channels)
		return;
	ivshm_pending_set(l, vm, idx);				/* P1 */
	atomic64_inc(&idev->notifies);
	if (vm == idev->own_id) {
		queue_work(system_highpri_wq, &idev->work);
		return;
	}
	/* pending_set() is a fully ordered RMW: armed is read after it. */
	if (ivshm_get32(&ivshm_peer(l, vm)->doorbell_armed))
		ivshm_dev_ring(idev, vm, 0);
	else
		atomic64_inc(&idev->suppressed);
}

/**
 * ivshm_slot_set() - record that socket @isk uses channel @idx
 * @idev: the device
 * @idx: the channel
 * @rx: true if @isk reads the channel, false if it sends on it
 * @isk: the socket; the slot takes a reference
 *
 * Return: 0, -EBUSY when the slot is in use, -ENODEV when the device goes.
 */
int ivshm_slot_set(struct ivshm_dev *idev, u32 idx, bool rx,
		   struct ivshm_sock *isk)
{
	struct ivshm_slot *s = &idev->slots[idx];
	struct ivshm_sock **p = rx ? &s->rx : &s->tx;
	int ret = 0;

	spin_lock_bh(&idev->lock);
	if (idev->dying)
		ret = -ENODEV;
	else if (*p || s->orphan)
		ret = -EBUSY;
	if (!ret) {
		sock_hold(ivshm_sk(isk));
		*p = isk;
	}
	spin_unlock_bh(&idev->lock);
	return ret;
}

/* Forget that @isk uses channel @idx, dropping the slot's reference. */
void ivshm_slot_clear(struct ivshm_dev *idev, u32 idx, bool rx,
		      struct ivshm_sock *isk)
{
	struct ivshm_slot *s = &idev->slots[idx];
	struct ivshm_sock **p = rx ? &s->rx : &s->tx;
	bool put = false;

	spin_lock_bh(&idev->lock);
	if (*p == isk) {
		*p = NULL;
		put = true;
	}
	spin_unlock_bh(&idev->lock);
	if (put)
		sock_put(ivshm_sk(isk));
}

/**
 * ivshm_slot_get() - the sockets using channel @idx, held
 * @idev: the device
 * @idx: the channel
 * @isk: [0] the socket sending on it, [1] the one reading it, or NULL;
 *	each holds a reference that ivshm_slot_put() drops
 */
void ivshm_slot_get(struct ivshm_dev *idev, u32 idx,
		    struct ivshm_sock *isk[2])
{
	struct ivshm_slot *s = &idev->slots[idx];
	int k;

	spin_lock_bh(&idev->lock);
	isk[0] = s->tx;
	isk[1] = s->rx;
	for (k = 0; k < 2; k++)
		if (isk[k])
			sock_hold(ivshm_sk(isk[k]));
	spin_unlock_bh(&idev->lock);
}

void ivshm_slot_put(struct ivshm_sock *isk[2])
{
	int k;

	for (k = 0; k < 2; k++)
		if (isk[k])
			sock_put(ivshm_sk(isk[k]));
}

/**
 * ivshm_slot_orphan() - hand a channel we sent on to the device
 * @idev: the device
 * @idx: the channel, whose state is already CLOSED
 * @off: its run (private copy)
 * @size: its bytes
 * @isk: the socket giving it up, whose reference the slot drops
 *
 * The channel is freed once the receiver acknowledges, or after
 * IVSHM_ORPHAN_TIMEOUT. If the device is going away it is freed now.
 */
void ivshm_slot_orphan(struct ivshm_dev *idev, u32 idx, u64 off, u32 size,
		       struct ivshm_sock *isk)
{
	struct ivshm_slot *s = &idev->slots[idx];
	bool put = false, now = false;

	spin_lock_bh(&idev->lock);
	if (s->tx == isk) {
		s->tx = NULL;
		put = true;
	}
	if (idev->dying) {
		now = true;
	} else {
		s->orphan = true;
		s->off = off;
		s->size = size;
		s->since = jiffies;
	}
	spin_unlock_bh(&idev->lock);
	if (put)
		sock_put(ivshm_sk(isk));
	if (now)
		ivshm_chan_close(idev, idx, off, size);
	else
		/* The acknowledgment may have come already. */
		ivshm_notify(idev, idev->own_id, idx);
}

/* An orphan's receiver answered, or it is time to give up. The answers that
 * end it: CLOSED, RESET or REFUSED. ACCEPTED means the receiver accepted a
 * connection we had withdrawn: its channel to us is then closed from our
 * side (we are its reader), and we wait for it to acknowledge ours.
 */
static void ivshm_orphan_event(struct ivshm_dev *idev, u32 idx, bool expire)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_slot *s = &idev->slots[idx];
	struct ivshm_chan *ch = ivshm_chan(l, idx);
	u32 rx, receiver, peer, pgen;
	u64 off;
	u32 size;
	bool done;

	rx = ivshm_load_acquire32(&ch->rx_state);
	receiver = ivshm_get16(&ch->receiver_vm);
	done = expire || rx == IVSHM_RX_CLOSED || rx == IVSHM_RX_RESET ||
	       rx == IVSHM_RX_REFUSED;
	if (!done && rx == IVSHM_RX_ACCEPTED && receiver < l->max_peers) {
		peer = ivshm_get32(&ch->rx_peer_chan);
		pgen = ivshm_get32(&ch->rx_peer_gen);
		if (peer < l->max_channels) {
			struct ivshm_chan *pc = ivshm_chan(l, peer);

			if (ivshm_get32(&pc->generation) == pgen &&
			    ivshm_get16(&pc->sender_vm) == receiver &&
			    ivshm_get16(&pc->receiver_vm) == idev->own_id &&
			    ivshm_get32(&pc->peer_chan) == idx &&
			    ivshm_get32(&pc->rx_state) == IVSHM_RX_NONE) {
				ivshm_store_release32(&pc->rx_state,
						      IVSHM_RX_CLOSED);
				ivshm_notify(idev, receiver, peer);
			}
		}
	}
	if (!done)
		return;

	spin_lock_bh(&idev->lock);
	done = s->orphan;
	s->orphan = false;
	off = s->off;
	size = s->size;
	spin_unlock_bh(&idev->lock);
	if (done)
		ivshm_chan_close(idev, idx, off, size);
}

/* An orphan whose receiver is gone: free it without waiting. */
void ivshm_orphan_expire(struct ivshm_dev *idev, u32 idx)
{
	ivshm_orphan_event(idev, idx, true);
}

/* A channel addressed to us that no socket here reads. If it asks for a
 * connection, socket.c looks for a listener. If its sender closed it (a
 * connect it withdrew, or one we refused), acknowledge so it is freed.
 */
static void ivshm_stray_event(struct ivshm_dev *idev, u32 idx)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_chan *ch = ivshm_chan(l, idx);
	u32 state = ivshm_load_acquire32(&ch->state);
	u32 sender = ivshm_get16(&ch->sender_vm);

	if (ivshm_get16(&ch->receiver_vm) != idev->own_id ||
	    sender >= l->max_peers ||
	    ivshm_get32(&ch->rx_state) != IVSHM_RX_NONE)
		return;
	if (state == IVSHM_CHAN_CONNECT) {
		ivshm_sock_request(idev, idx);
	} else if (state == IVSHM_CHAN_CLOSED) {
		ivshm_store_release32(&ch->rx_state, IVSHM_RX_CLOSED);
		ivshm_notify(idev, sender, idx);
	}
}

static void ivshm_chan_event(struct ivshm_dev *idev, u32 idx)
{
	struct ivshm_sock *isk[2];

	atomic64_inc(&idev->events);
	ivshm_slot_get(idev, idx, isk);
	/* Both are set only on a loopback connection. */
	if (isk[0])
		ivshm_sock_event(isk[0], idev, idx, false);
	if (isk[1])
		ivshm_sock_event(isk[1], idev, idx, true);
	else
		ivshm_stray_event(idev, idx);
	ivshm_slot_put(isk);
	if (READ_ONCE(idev->slots[idx].orphan))
		ivshm_orphan_event(idev, idx, false);
}

static bool ivshm_pending_any(const struct ivshm_layout *l, u32 vm)
{
	__le64 *p = ivshm_pending(l, vm);
	u32 w;

	for (w = 0; w < l->pending_words; w++)
		if (ivshm_get64(p + w))
			return true;
	return false;
}

/* A device without doorbells: poll again soon after work, later when idle. */
static void ivshm_poll_rearm(struct ivshm_dev *idev, bool found)
{
	u32 us = found ? READ_ONCE(ivshm_poll_min_us) :
		 min(idev->poll_us * 2, READ_ONCE(ivshm_poll_max_us));

	idev->poll_us = max(us, 1u);
	if (!READ_ONCE(idev->dying))
		hrtimer_start(&idev->poll_timer, ns_to_ktime(idev->poll_us * 1000ull),
			      HRTIMER_MODE_REL);
}

static enum hrtimer_restart ivshm_poll_timer(struct hrtimer *t)
{
	struct ivshm_dev *idev = container_of(t, struct ivshm_dev, poll_timer);

	queue_work(system_highpri_wq, &idev->work);
	return HRTIMER_NORESTART;
}

static void ivshm_dev_work(struct work_struct *work)
{
	struct ivshm_dev *idev = container_of(work, struct ivshm_dev, work);
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_peer *me = ivshm_peer(l, idev->own_id);
	bool doorbells = idev->nr_vectors, found = false;
	unsigned int round;
	u32 w;

	if (READ_ONCE(idev->frozen))
		return;		/* a stopped VM: the bits wait */
	atomic64_inc(&idev->polls);
	for (round = 0; round < IVSHM_WORK_ROUNDS; round++) {
		if (doorbells)
			ivshm_put32(&me->doorbell_armed, 0);
		for (w = 0; w < l->pending_words; w++) {
			u64 bits = ivshm_pending_take(l, idev->own_id, w);

			found |= bits != 0;
			while (bits) {
				u32 b = __ffs64(bits);

				bits &= bits - 1;
				ivshm_chan_event(idev, w * 64 + b);
			}
		}
		if (doorbells) {
			ivshm_put32(&me->doorbell_armed, 1);
			ivshm_mb();					/* N1 */
		}
		if (!ivshm_pending_any(l, idev->own_id))
			goto done;
		cond_resched();
	}
	/* A flood: yield, and come back for the rest. */
	queue_work(system_highpri_wq, &idev->work);
	return;
done:
	if (!doorbells)
		ivshm_poll_rearm(idev, found);
}

/* Orphans whose receivers never answered are freed after a while. */
static void ivshm_dev_reap(struct work_struct *work)
{
	struct ivshm_dev *idev = container_of(to_delayed_work(work),
					      struct ivshm_dev, reaper);
	u32 i;

	for (i = 0; i < idev->layout.max_channels; i++) {
		struct ivshm_slot *s = &idev->slots[i];
		bool expired;

		spin_lock_bh(&idev->lock);
		expired = s->orphan &&
			  time_after(jiffies, s->since + IVSHM_ORPHAN_TIMEOUT);
		spin_unlock_bh(&idev->lock);
		if (expired)
			ivshm_orphan_event(idev, i, true);
	}
	schedule_delayed_work(&idev->reaper, HZ);
}

/* The doorbell rang: look at our pending set, and at the peer table,
 * since the host's server rings when it marks a departed VM dead.
 */
void ivshm_conn_kick(struct ivshm_dev *idev)
{
	if (!idev->joined)
		return;
	queue_work(system_highpri_wq, &idev->work);
	mod_delayed_work(system_wq, &idev->liveness, 0);
}

/**
 * ivshm_dev_freeze() - make a device act as a VM that stopped (test hook)
 * @idev: the device
 * @frozen: stop (true) or go on (false)
 *
 * A frozen device neither beats its heartbeat nor handles what peers
 * announce, as a VM whose QEMU was stopped; the others declare it dead.
 * Thawed, it finds its slot taken and joins again. Used by dev_shm.
 */
void ivshm_dev_freeze(struct ivshm_dev *idev, bool frozen)
{
	WRITE_ONCE(idev->frozen, frozen);
	if (!frozen)
		ivshm_conn_kick(idev);
}
EXPORT_SYMBOL_GPL(ivshm_dev_freeze);

/**
 * ivshm_conn_init() - join the region and get ready for connections
 * @idev: a device whose region is open
 *
 * A device without a VM id (ivshmem-plain) cannot carry connections yet and
 * is left unjoined. Channels an earlier incarnation of ours left behind are
 * reclaimed: their sockets are gone.
 *
 * Return: 0 or -ENOMEM.
 */
int ivshm_conn_init(struct ivshm_dev *idev)
{
	const struct ivshm_layout *l = &idev->layout;
	u32 n;

	mutex_init(&idev->ctrl_mutex);
	spin_lock_init(&idev->lock);
	INIT_WORK(&idev->work, ivshm_dev_work);
	INIT_DELAYED_WORK(&idev->reaper, ivshm_dev_reap);
	hrtimer_init(&idev->poll_timer, CLOCK_MONOTONIC, HRTIMER_MODE_REL);
	idev->poll_timer.function = ivshm_poll_timer;
	idev->poll_us = ivshm_poll_min_us;
	atomic_set(&idev->users, 1);
	atomic64_set(&idev->events, 0);
	atomic64_set(&idev->proto_errors, 0);
	atomic64_set(&idev->notifies, 0);
	atomic64_set(&idev->suppressed, 0);
	atomic64_set(&idev->polls, 0);
	atomic64_set(&idev->tx_records, 0);
	atomic64_set(&idev->tx_bytes, 0);
	atomic64_set(&idev->rx_records, 0);
	atomic64_set(&idev->rx_bytes, 0);
	idev->joined = false;
	idev->dying = false;
	idev->frozen = false;
	if (idev->own_id != IVSHM_ID_NONE && idev->own_id >= l->max_peers)
		return 0;

	idev->slots = kvcalloc(l->max_channels, sizeof(*idev->slots),
			       GFP_KERNEL);
	if (!idev->slots)
		return -ENOMEM;
	if (idev->own_id == IVSHM_ID_NONE) {
		/* No id from outside (ivshmem-plain): take a free slot. */
		if (ivshm_peer_claim(l, idev->nr_vectors, &idev->own_id,
				     &idev->inc)) {
			pr_warn("%s: every peer slot of the region is taken; device left without connections\n",
				idev->name);
			kvfree(idev->slots);
			idev->slots = NULL;
			return 0;
		}
		pr_info("%s: took VM id %u in the region\n", idev->name,
			idev->own_id);
	} else {
		idev->inc = ivshm_peer_join(l, idev->own_id, idev->nr_vectors);
	}
	if (!ivshm_ctrl_lock(idev)) {
		n = ivshm_chan_reclaim(l, idev->own_id);
		ivshm_ctrl_unlock_dev(idev);
		if (n)
			pr_info("%s: reclaimed %u channels of an earlier incarnation\n",
				idev->name, n);
	}
	idev->joined = true;
	schedule_delayed_work(&idev->reaper, HZ);
	ivshm_liveness_start(idev);
	/* Catch whatever was announced before we armed the doorbell; a
	 * polled device starts polling from there.
	 */
	queue_work(system_highpri_wq, &idev->work);
	return 0;
}

/**
 * ivshm_conn_exit() - leave the region
 * @idev: the device
 *
 * Every socket using the device is reset (ECONNRESET) and detached, our
 * channels are freed, and we wait until no socket operation still uses the
 * device before leaving our peer slot.
 */
void ivshm_conn_exit(struct ivshm_dev *idev)
{
	const struct ivshm_layout *l = &idev->layout;
	u32 i;

	if (!idev->joined)
		return;
	spin_lock_bh(&idev->lock);
	WRITE_ONCE(idev->dying, true);
	spin_unlock_bh(&idev->lock);
	ivshm_liveness_stop(idev);
	cancel_delayed_work_sync(&idev->reaper);
	hrtimer_cancel(&idev->poll_timer);
	cancel_work_sync(&idev->work);
	hrtimer_cancel(&idev->poll_timer);

	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_slot *s = &idev->slots[i];
		struct ivshm_sock *isk[2];
		bool orphan;
		int k;

		ivshm_slot_get(idev, i, isk);
		for (k = 0; k < 2; k++)
			if (isk[k])
				ivshm_sock_detach(isk[k], idev);
		ivshm_slot_put(isk);
		spin_lock_bh(&idev->lock);
		orphan = s->orphan;
		s->orphan = false;
		spin_unlock_bh(&idev->lock);
		if (orphan)
			ivshm_chan_close(idev, i, s->off, s->size);
	}
	/* Sockets between a lookup and their first slot see dying. */
	atomic_dec(&idev->users);
	wait_var_event(&idev->users, !atomic_read(&idev->users));
	cancel_work_sync(&idev->work);

	ivshm_peer_leave(l, idev->own_id, idev->inc);
	idev->joined = false;
	kvfree(idev->slots);
	idev->slots = NULL;
}
