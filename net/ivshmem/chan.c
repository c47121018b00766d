// SPDX-License-Identifier: GPL-2.0
/*
 * Channels of one device: taking and freeing them in the region, telling
 * peers about them, and handling the control events peers send us.
 *
 * A connection is two channels, one per direction, each owned (allocated,
 * written, freed) by its sender. A peer announces news about a channel by
 * setting the channel's bit in one of our two pending sets and, if we armed
 * that set's doorbell, ringing the matching vector (protocol.md,
 * Notification): the data set (records published, room freed) is drained
 * by NAPI (napi.c); the control set (connection requests, answers, closes,
 * resets) by the control work here, which runs in process context because
 * it takes socket locks and the region's control lock. It hands each
 * channel to the socket that uses it (socket.c), or, for a channel nobody
 * here uses yet, treats it as a connection request.
 *
 * Notification of the control set (protocol.md, N1): ivshm_notify() posts
 * a bit through the core's sender half (core/notify.c) and rings when the
 * receiver armed the set; ivshm_ctrl_work() disarms the set, drains it, and
 * loops as long as the core's rearm finds a bit that came meanwhile.
 *
 * The reaper, once a second, frees the orphans whose time is up, and every
 * IVSHM_AUDIT_PERIOD, when the control lock is free, audits our own name:
 * it frees the channels a peer wrote there that we never took
 * (ivshm_chan_audit()), as an open that finds no room does first.
 *
 * Locking: idev->lock (spinlock, taken with bottom halves off because the
 * NAPI poll takes it too) protects slots[] and dying; it is never held
 * while sleeping or while a socket lock is taken, so socket.c may take it
 * under lock_sock(). Every slot holding a socket holds a reference to it.
 * idev->ctrl_mutex serialises this guest's users of the region's control
 * lock, so that only one of our threads at a time competes for it; it also
 * guards idev->inc, which changes only with it held (peer.c, rejoining),
 * so that whoever holds it sees our channels under one incarnation, the
 * record of the channels we took (held), and the staleness record of the
 * lock word (ctrl_seen, ctrl_seen_at).
 * idev->users counts the sockets and lookups using the device; unregister
 * waits for it to drain after detaching every socket.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/delay.h>
#include <linux/moduleparam.h>
#include <linux/jiffies.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <net/sock.h>

#include "chan.h"
#include "device.h"
#include "napi.h"
#include "netlink.h"
#include "peer.h"
#include "rebalance.h"
#include "socket.h"
#include "stats.h"
#include "trace.h"

/* How long a caller waits for the region's control lock before giving up,
 * ctrl_mutex included: the deadline is set before the mutex is asked for,
 * so callers queued behind one that waits add nothing to it.
 */
#define IVSHM_CTRL_WAIT_MS	1000
/* Honest holders keep the lock for microseconds of bookkeeping. A lock word
 * naming a live VM that stays the same this long is a stalled holder or a
 * forgery: it is broken, and the bookkeeping rebuilt.
 */
#define IVSHM_CTRL_STALE_MS	500
#define IVSHM_CTRL_GAP_MS	10
/* An orphan whose receiver never attached is freed after this. */
#define IVSHM_ORPHAN_TIMEOUT	(30 * HZ)
/* How often the reaper looks for channels forged in our name. */
#define IVSHM_AUDIT_PERIOD	(30 * HZ)

/* Why an orphan is looked at. */
enum ivshm_orphan_why {
	IVSHM_ORPHAN_NEWS,		/* its receiver may have answered */
	IVSHM_ORPHAN_TIMED_OUT,		/* IVSHM_ORPHAN_TIMEOUT is up */
	IVSHM_ORPHAN_NOW,		/* its receiver is gone, or we are */
};

/* Channels the control work handles per run, at most (plus the rest of
 * the word it is in), and times it looks at the whole set; a peer that
 * keeps setting bits past that (a flood), or setting and clearing them,
 * gets the rest handled a jiffy later, so that it cannot keep a CPU busy
 * with our control work.
 */
#define IVSHM_CTRL_BUDGET	256
#define IVSHM_CTRL_ROUNDS	4
/* A doorbell also triggers a liveness check, at most this often. */
#define IVSHM_LIVENESS_KICK_GAP	(HZ / 100 ? : 1)

/* Whether a waiter for the control lock stops: a task being killed
 * always; with @intr, any signal (a sender, whose caller restarts the call
 * or sees EINTR, as in any wait for room).
 */
static bool ivshm_ctrl_signalled(bool intr)
{
	return intr ? signal_pending(current) : fatal_signal_pending(current);
}

/* Our users of the control lock, one at a time, until @end (jiffies): one
 * attempt when @end is now.
 * Return: 0 with ctrl_mutex held; -EBUSY at @end; -EINTR for a signal
 * (ivshm_ctrl_signalled()).
 */
static int ivshm_ctrl_mutex_lock(struct ivshm_dev *idev, unsigned long end,
				 bool intr)
{
	while (!mutex_trylock(&idev->ctrl_mutex)) {
		if (ivshm_ctrl_signalled(intr))
			return -EINTR;
		if (!time_before(jiffies, end))
			return -EBUSY;
		usleep_range(50, 200);
	}
	return 0;
}

/* One attempt at the region's lock, ctrl_mutex held. A lock word that a
 * live VM keeps unchanged for IVSHM_CTRL_STALE_MS, seen at every attempt
 * of ours without a gap of IVSHM_CTRL_GAP_MS between two (so that an
 * honest holder that let go and took the lock again in between is not
 * mistaken for a stalled one), is broken. Taken from a dead holder, a
 * stale one or a word naming us, the bookkeeping is repaired before we
 * rely on it. Not while we are declared dead: a word in our name is then
 * anybody's to break at once, and our repair would race theirs.
 * Return: 0, -EBUSY, or -ENOLINK while our slot says we are dead.
 */
static int ivshm_ctrl_try(struct ivshm_dev *idev)
{
	const struct ivshm_layout *l = &idev->layout;
	u64 holder = 0;
	u32 swept;
	int ret;

	lockdep_assert_held(&idev->ctrl_mutex);
	if (!ivshm_peer_still_me(l, idev->own_id, idev->inc))
		return -ENOLINK;
	ret = ivshm_ctrl_trylock(l, idev->own_id, idev->inc, &holder);
	if (ret == -EBUSY) {
		unsigned long last = idev->ctrl_seen_last;

		idev->ctrl_seen_last = jiffies;
		if (holder != idev->ctrl_seen ||
		    time_after(jiffies, last + msecs_to_jiffies(IVSHM_CTRL_GAP_MS))) {
			idev->ctrl_seen = holder;
			idev->ctrl_seen_at = jiffies;
			return -EBUSY;
		}
		if (time_before(jiffies, idev->ctrl_seen_at +
				msecs_to_jiffies(IVSHM_CTRL_STALE_MS)))
			return -EBUSY;
		ret = ivshm_ctrl_break(l, idev->own_id, idev->inc, holder);
		if (ret < 0)
			return ret;
	}
	idev->ctrl_seen = 0;
	if (!ret)
		return 0;
	swept = ivshm_chan_sweep(l);
	ivshm_blocks_rebuild(l);
	ivshm_stat_inc(idev, IVSHM_STAT_LOCK_BREAKS);
	/* A hostile peer can make this happen at will. */
	pr_warn_ratelimited("%s: control lock taken from a dead, stalled or forged holder; bookkeeping rebuilt, %u orphaned channels freed\n",
			    idev->name, swept);
	return 0;
}

/* A VM declared dead takes neither the lock nor channels until it rejoins:
 * a survivor may be reaping its channels, and a lock word in a dead name
 * is anybody's to break. Asked once the region's lock is ours, since the
 * wait for it may outlast our liveness. Both locks held; both dropped when
 * the answer is no.
 * Return: 0 or -ENOLINK.
 */
static int ivshm_ctrl_still_me(struct ivshm_dev *idev)
{
	lockdep_assert_held(&idev->ctrl_mutex);
	if (ivshm_peer_still_me(&idev->layout, idev->own_id, idev->inc))
		return 0;
	ivshm_ctrl_unlock(&idev->layout, idev->own_id, idev->inc);
	mutex_unlock(&idev->ctrl_mutex);
	return -ENOLINK;
}

/* Take the region's control lock, waiting @timeo jiffies at most (capped
 * at IVSHM_CTRL_WAIT_MS in all, ctrl_mutex included; 0 for one attempt,
 * which no signal fails). A lock word is found stale over attempts that
 * follow each other closely (ivshm_ctrl_try()): a short wait seldom sees
 * it, and the second-long ones of the rebalancing pass, connects and
 * closes break it.
 * Return: as ivshm_ctrl_lock(); -EINTR also for any signal with @intr.
 */
static int ivshm_ctrl_lock_timeo(struct ivshm_dev *idev, long timeo,
				 bool intr)
{
	long wait = min_t(long, timeo, msecs_to_jiffies(IVSHM_CTRL_WAIT_MS));
	unsigned long end = jiffies + max(wait, 0L);
	int ret;

	intr = intr && wait > 0;

	ret = ivshm_ctrl_mutex_lock(idev, end, intr);
	if (ret)
		return ret;
	for (;;) {
		ret = ivshm_ctrl_try(idev);
		if (!ret)
			return ivshm_ctrl_still_me(idev);
		if (ret == -ENOLINK || !time_before(jiffies, end) ||
		    ivshm_ctrl_signalled(intr))
			break;
		usleep_range(20, 100);
	}
	mutex_unlock(&idev->ctrl_mutex);
	if (ret == -ENOLINK)
		return ret;
	return ivshm_ctrl_signalled(intr) ? -EINTR : -EBUSY;
}

/**
 * ivshm_ctrl_lock() - take the region's control lock for this device
 * @idev: a joined device
 *
 * Context: process; sleeps, at most IVSHM_CTRL_WAIT_MS in all, and a task
 * that is being killed stops waiting. Returns with idev->ctrl_mutex held on
 * success.
 *
 * Return: 0; -EBUSY when the lock (or our mutex) stayed busy until the
 * deadline; -EINTR for a task being killed; -ENOLINK while our slot says we
 * are dead.
 */
int ivshm_ctrl_lock(struct ivshm_dev *idev)
{
	return ivshm_ctrl_lock_timeo(idev, MAX_SCHEDULE_TIMEOUT, false);
}

/**
 * ivshm_ctrl_lock_nowait() - take the control lock if it is free now
 * @idev: a joined device
 *
 * For the liveness work: it never waits for the region's lock, and comes
 * back a period later. Its attempts are too far apart to find a lock word
 * stale; whoever waits for the lock (ivshm_ctrl_lock()) does that.
 *
 * Return: 0 with ctrl_mutex held, -EBUSY, or -ENOLINK while our slot says
 * we are dead.
 */
int ivshm_ctrl_lock_nowait(struct ivshm_dev *idev)
{
	int ret;

	if (!mutex_trylock(&idev->ctrl_mutex))
		return -EBUSY;
	ret = ivshm_ctrl_try(idev);
	if (!ret)
		return ivshm_ctrl_still_me(idev);
	mutex_unlock(&idev->ctrl_mutex);
	return ret == -ENOLINK ? ret : -EBUSY;
}

void ivshm_ctrl_unlock_dev(struct ivshm_dev *idev)
{
	if (!ivshm_ctrl_unlock(&idev->layout, idev->own_id, idev->inc)) {
		ivshm_stat_inc(idev, IVSHM_STAT_LOCK_LOST);
		pr_warn_ratelimited("%s: our control lock was broken while we held it\n",
				    idev->name);
	}
	mutex_unlock(&idev->ctrl_mutex);
}

/* Free the channels in our name that we never took (ivshm_desc_audit()):
 * a peer's forgeries, which no sweep frees while we live. idev->held says
 * which are ours. It changes only under ctrl_mutex: when we take a channel
 * (control lock held too), when we let it go (ivshm_chan_unhold()), and
 * when our incarnation changes (cleared). Control lock held.
 * Return: the number freed.
 */
static u32 ivshm_chan_audit(struct ivshm_dev *idev)
{
	u32 n;

	lockdep_assert_held(&idev->ctrl_mutex);
	n = ivshm_desc_audit(&idev->layout, idev->own_id, idev->inc,
			     idev->held);
	if (n) {
		ivshm_stat_add(idev, IVSHM_STAT_PROTO_ERRORS, n);
		pr_warn_ratelimited("%s: freed %u channels a peer wrote in our name\n",
				    idev->name, n);
	}
	return n;
}

/* We no longer hold channel @idx with @runs: freed, no longer ours, or
 * left to others because we were declared dead. In the last case, a peer
 * that wrote our state DEAD and then ALIVE again spared us a rejoin, and
 * the channel is still in our name: the next audit frees it. The record
 * is of our current incarnation only; a channel of an earlier one was
 * never in it.
 */
static void ivshm_chan_unhold(struct ivshm_dev *idev, u32 idx,
			      const struct ivshm_runs *runs)
{
	lockdep_assert_held(&idev->ctrl_mutex);
	if (runs->inc == idev->inc && idev->held[idx] == runs->gen)
		idev->held[idx] = 0;
}

/**
 * ivshm_chan_open() - take a channel and its run, and describe it
 * @idev: a joined device
 * @p: what the channel carries; p->idx, p->gen and p->off are set
 *
 * The descriptor is complete, state last, before the control lock is
 * released; the caller announces it with ivshm_notify(). A connector asks
 * for ALLOC and publishes CONNECT itself, once its socket is in the slot
 * where the answer will look for it.
 *
 * Return: 0, -ENOBUFS when the region has no free slot or run, even once
 * the channels forged in our name are freed; -EBUSY as for
 * ivshm_ctrl_lock().
 */
int ivshm_chan_open(struct ivshm_dev *idev, struct ivshm_chan_params *p)
{
	struct ivshm_desc *d = &p->d;
	struct ivshm_nl_chan c = {
		.sender = idev->own_id, .receiver = d->receiver_vm,
		.size = d->size, .sport = d->src_port, .dport = d->dst_port,
		.ports = true,
	};
	int ret;

	ret = ivshm_ctrl_lock(idev);
	if (ret)
		return ret;
	d->sender_vm = idev->own_id;
	d->sender_inc = idev->inc;
	ret = ivshm_desc_open(&idev->layout, d, &p->idx, &p->gen, &p->off);
	/* A full region may be one a peer filled in our name. */
	if (ret == -ENOBUFS && ivshm_chan_audit(idev))
		ret = ivshm_desc_open(&idev->layout, d, &p->idx, &p->gen,
				      &p->off);
	if (!ret)
		idev->held[p->idx] = p->gen;
	ivshm_ctrl_unlock_dev(idev);
	if (ret)
		return ret;
	c.idx = p->idx;
	ivshm_nl_chan_event(idev, IVSHMEM_CMD_CHAN_NEW, &c);
	return 0;
}

/* The control lock was busy: keep channel @idx as an orphan whose time is
 * up, for the reaper (ivshm_dev_reap()) to free next time round. A device
 * that is going away frees nothing more: once it left its peer slot, the
 * others' sweep reclaims what it held.
 */
static void ivshm_chan_close_later(struct ivshm_dev *idev, u32 idx,
				   const struct ivshm_runs *runs)
{
	struct ivshm_slot *s = &idev->slots[idx];

	spin_lock_bh(&idev->lock);
	if (!idev->dying) {
		s->orphan = true;
		s->free_now = true;
		s->runs = *runs;
		s->since = jiffies - IVSHM_ORPHAN_TIMEOUT - 1;
	}
	spin_unlock_bh(&idev->lock);
	pr_warn_ratelimited("%s: channel %u not freed yet: control lock busy; trying again\n",
			    idev->name, idx);
}

/* Is slot @idx still the channel of generation @gen that our current
 * incarnation took, as @inc? A device that was declared dead while it
 * stood still may find its channels reaped and taken by others meanwhile,
 * or, once it joined again, by a channel of its new incarnation with the
 * same generation; what it frees or rewrites then is no longer its own.
 * ctrl_mutex held: it keeps idev->inc, and our reclaim of an old
 * incarnation's slots, from changing under the answer.
 */
static bool ivshm_chan_ours(struct ivshm_dev *idev, u32 idx, u32 gen,
			    u32 inc)
{
	lockdep_assert_held(&idev->ctrl_mutex);
	return inc == idev->inc &&
	       ivshm_desc_ours(&idev->layout, idx, gen, idev->own_id, inc);
}

/**
 * ivshm_chan_close() - free a channel we sent on
 * @idev: the device
 * @idx: the channel
 * @runs: its generation and runs, from our private copy, never from the
 *	region; a run left by a pending move is freed too
 *
 * The receiver has acknowledged, is dead, or never will (timeout). If the
 * control lock cannot be had now (another VM holds it, or a forged word
 * that is not stale yet), the channel stays with the device as an orphan
 * due at once, and the reaper tries again every second until it is freed.
 */
void ivshm_chan_close(struct ivshm_dev *idev, u32 idx,
		      const struct ivshm_runs *runs)
{
	struct ivshm_nl_chan c = {
		.idx = idx, .sender = idev->own_id, .size = runs->size,
	};
	int ret;

	ret = ivshm_ctrl_lock(idev);
	/* Declared dead: our channels are the reapers' (or our tidy's, once
	 * we rejoin), and nothing of ours may wait for them. A peer that
	 * wrote our state DEAD and back leaves it in our name: the audit
	 * frees it once we no longer hold it.
	 */
	if (ret == -ENOLINK) {
		mutex_lock(&idev->ctrl_mutex);
		ivshm_chan_unhold(idev, idx, runs);
		mutex_unlock(&idev->ctrl_mutex);
		return;
	}
	if (ret) {
		ivshm_chan_close_later(idev, idx, runs);
		return;
	}
	/* Ours only as the incarnation that took it: after a rejoin, the
	 * slot may hold a channel of the new one with the same generation.
	 * The receiver comes from our own identity line, for the event only.
	 */
	ret = ivshm_desc_close(&idev->layout, idx, runs, idev->own_id,
			       runs->inc, &c.receiver);
	/* Freed, or no longer ours (-ENOLINK): either way not held. */
	ivshm_chan_unhold(idev, idx, runs);
	ivshm_ctrl_unlock_dev(idev);
	if (ret == -ENOLINK)
		return;
	if (ret) {
		ivshm_stat_inc(idev, IVSHM_STAT_PROTO_ERRORS);
		ivshm_nl_proto_error(idev, idx, "blocks of a channel not held");
	}
	ivshm_nl_chan_event(idev, IVSHMEM_CMD_CHAN_DEL, &c);
}

/* Give back a channel ivshm_chan_open() just took, before any use. */
void ivshm_chan_drop(struct ivshm_dev *idev,
		     const struct ivshm_chan_params *p)
{
	struct ivshm_runs runs = {
		.gen = p->gen, .inc = p->d.sender_inc,
		.receiver = p->d.receiver_vm, .off = p->off, .size = p->d.size,
	};

	ivshm_chan_close(idev, p->idx, &runs);
}

/**
 * ivshm_chan_publish() - write the state of a channel we just opened
 * @idev: the device
 * @idx: the channel
 * @gen: its generation
 * @inc: the incarnation of ours that took it (p->d.sender_inc)
 * @state: IVSHM_CHAN_CONNECT
 *
 * Only if the channel is still ours: a rejoin (which changes our
 * incarnation and reclaims every channel of the old one, both under
 * ctrl_mutex) may have come between ivshm_chan_open() and here, and the
 * slot may be someone else's by now.
 *
 * Context: process; sleeps for ctrl_mutex, as ivshm_ctrl_lock() bounds it.
 * Return: 0, -ENOLINK if the channel is no longer ours, or as for
 * ivshm_ctrl_lock() when ctrl_mutex cannot be had.
 */
int ivshm_chan_publish(struct ivshm_dev *idev, u32 idx, u32 gen, u32 inc,
		       u32 state)
{
	unsigned long end = jiffies + msecs_to_jiffies(IVSHM_CTRL_WAIT_MS);
	int ret;

	ret = ivshm_ctrl_mutex_lock(idev, end, false);
	if (ret)
		return ret;
	/* Not in the name of an incarnation declared dead either. */
	ret = -ENOLINK;
	if (inc == idev->inc &&
	    ivshm_peer_still_me(&idev->layout, idev->own_id, inc))
		ret = ivshm_desc_publish(&idev->layout, idx, gen,
					 idev->own_id, inc, state);
	mutex_unlock(&idev->ctrl_mutex);
	return ret;
}

/* The runs of the channel that producer ring @r writes to VM @receiver,
 * generation @gen, taken by our incarnation @inc.
 */
void ivshm_chan_runs(const struct ivshm_ring *r, u32 gen, u32 inc,
		     u32 receiver, struct ivshm_runs *runs)
{
	runs->gen = gen;
	runs->inc = inc;
	runs->receiver = receiver;
	runs->off = ivshm_ring_run(r);
	runs->size = r->size;
	runs->old_off = r->old_off;
	runs->old_size = r->old_size;
}

/**
 * ivshm_chan_move() - give a channel we send on a run of @size bytes
 * @idev: the device
 * @idx: the channel
 * @gen: its generation
 * @inc: the incarnation of ours that took it
 * @r: its producer ring; the caller holds the socket lock
 * @size: the new size, whole blocks
 * @keep: blocks the region must keep free after a growth, for others
 * @timeo: how long the caller may wait for the control lock, in jiffies
 *	(capped at IVSHM_CTRL_WAIT_MS; 0 for one attempt); a signal ends
 *	the wait
 *
 * A larger run extends the current one in place when the blocks after it
 * are free and the MOVED record fits before the end of the run; otherwise
 * it starts where it has the most room to grow in place later
 * (ivshm_blocks_alloc_grow()), and may be shorter than asked if that
 * extent is.
 * A smaller run is taken as low in the data area as it fits, away from the
 * long free extents; a run of the same size only moves lower, out of the
 * way of a channel that would grow in place where it is. The ring then
 * moves at its current record boundary (ivshm_tx_move()), and the reader
 * is told on the control set, so that it passes the MOVED record even
 * while its user reads nothing.
 *
 * Return: the new size (> 0), -ENOBUFS without room, -EAGAIN when the ring
 * has no room for the MOVED record yet, -EBUSY while a move is pending or
 * the control lock is busy, -ENOLINK if the channel is no longer ours (or
 * we are declared dead), -EINTR for a signal, -EPROTO for an impossible
 * tail.
 */
int ivshm_chan_move(struct ivshm_dev *idev, u32 idx, u32 gen, u32 inc,
		    struct ivshm_ring *r, u32 size, u32 keep, long timeo)
{
	const struct ivshm_layout *l = &idev->layout;
	u32 cur = r->size >> IVSHM_BLOCK_SHIFT, want = size >> IVSHM_BLOCK_SHIFT;
	u32 free_blocks, got;
	u64 off = ivshm_ring_run(r);
	int ret;

	ret = ivshm_tx_can_move(r);
	if (ret <= 0)
		return ret ? ret : -EBUSY;
	ret = ivshm_ctrl_lock_timeo(idev, timeo, true);
	if (ret)
		return ret;
	ret = -ENOLINK;
	if (!ivshm_chan_ours(idev, idx, gen, inc))
		goto out_unlock;
	ret = -ENOBUFS;
	free_blocks = ivshm_blocks_hint_free(l);
	if (want > cur) {
		if (free_blocks < keep || free_blocks - keep < want - cur)
			goto out_unlock;
		if (!ivshm_blocks_extend(l, off, cur, want - cur)) {
			ret = ivshm_tx_extend(r, want << IVSHM_BLOCK_SHIFT);
			if (!ret)
				goto out_unlock;
			ivshm_blocks_free(l, off + r->size, want - cur);
			/* A MOVED record that would wrap (the ring has room
			 * for one: ivshm_tx_can_move() said so) moves the
			 * channel elsewhere. Giving up instead would leave a
			 * sender that must grow asking again without end.
			 */
			if (ret != -EAGAIN)
				goto out_unlock;
			ret = -ENOBUFS;
		}
		/* Elsewhere, the old run stays until the reader leaves it. */
		if (free_blocks - keep < want)
			want = free_blocks - keep;
		if (want <= cur)
			goto out_unlock;
		got = ivshm_blocks_alloc_grow(l, want, off, cur, &off);
		if (!got)
			goto out_unlock;
		want = got;
	} else if ((want == cur && !ivshm_blocks_fit_below(l, want, off)) ||
		   ivshm_blocks_alloc_low(l, want, &off)) {
		goto out_unlock;
	}
	ret = ivshm_tx_move(r, off, want << IVSHM_BLOCK_SHIFT);
	if (ret)
		ivshm_blocks_free(l, off, want);
out_unlock:
	ivshm_ctrl_unlock_dev(idev);
	return ret ? ret : (int)(want << IVSHM_BLOCK_SHIFT);
}

/**
 * ivshm_chan_move_done() - free the run a move left, once the reader has
 * @idev: the device
 * @idx: the channel
 * @gen: its generation
 * @inc: the incarnation of ours that took it
 * @r: its producer ring; the caller holds the socket lock
 * @timeo: how long the caller may wait for the control lock, as for
 *	ivshm_chan_move()
 *
 * Return: 1 when a run was freed, 0 when none is pending or the reader is
 * still in it (or the lock is busy: later), -ENOLINK while our slot says we
 * are dead, -EINTR for a signal, -EPROTO for an impossible tail.
 */
int ivshm_chan_move_done(struct ivshm_dev *idev, u32 idx, u32 gen, u32 inc,
			 struct ivshm_ring *r, long timeo)
{
	bool bad = false;
	u64 off;
	u32 size;
	int ret;

	if (!r->old_size)
		return 0;
	ret = ivshm_tx_can_move(r);	/* refreshes the tail */
	if (ret < 0)
		return ret;
	if (r->cap_until)
		return 0;
	ret = ivshm_ctrl_lock_timeo(idev, timeo, true);
	if (ret)
		return ret == -EBUSY ? 0 : ret;
	if (!ivshm_chan_ours(idev, idx, gen, inc)) {
		/* Reaped: the old run is nobody's to free now. */
		r->old_size = 0;
		ret = 0;
		goto out_unlock;
	}
	ret = ivshm_tx_move_done(r, &off, &size);
	if (ret == 1 && ivshm_blocks_free(&idev->layout, off,
					  size >> IVSHM_BLOCK_SHIFT))
		bad = true;
out_unlock:
	ivshm_ctrl_unlock_dev(idev);
	if (bad) {
		ivshm_stat_inc(idev, IVSHM_STAT_PROTO_ERRORS);
		ivshm_nl_proto_error(idev, idx, "blocks of a moved run not held");
	}
	return ret;
}

/**
 * ivshm_notify() - tell a VM that channel @idx has news for it
 * @idev: our device
 * @vm: the VM; an id that cannot exist is ignored
 * @idx: the channel
 * @set: IVSHM_PEND_CTRL for states and acknowledgments, IVSHM_PEND_DATA
 *	for records published or room freed
 *
 * Sets the channel's bit in the VM's pending set and rings the VM's vector
 * for that set if the VM armed it.
 *
 * Context: any.
 * Return: IVSHM_NOTIFY_RANG when a doorbell rang (or, for ourselves, our
 * handler was scheduled), IVSHM_NOTIFY_SET when the bit was set but the VM
 * is polling already, IVSHM_NOTIFY_NONE for an id that cannot exist.
 */
int ivshm_notify(struct ivshm_dev *idev, u32 vm, u32 idx, u32 set)
{
	const struct ivshm_layout *l = &idev->layout;
	u32 vector;

	if (vm == idev->own_id) {
		if (!ivshm_notify_mark(l, vm, set, idx))
			return IVSHM_NOTIFY_NONE;
		ivshm_stat_inc(idev, IVSHM_STAT_NOTIFIES);
		/* A doorbell to ourselves, as far as rebalancing goes. */
		trace_ivshm_notify(idev->index, vm, idx, set, true);
		ivshm_rebal_doorbell(idev);
		if (set == IVSHM_PEND_DATA)
			ivshm_napi_kick(idev);
		else
			ivshm_ctrl_kick(idev);
		return IVSHM_NOTIFY_RANG;
	}
	/* Callers pass ids read once from the region: the core bounds them. */
	switch (ivshm_notify_post(l, vm, set, idx, &vector)) {
	case IVSHM_POST_RING:
		ivshm_stat_inc(idev, IVSHM_STAT_NOTIFIES);
		trace_ivshm_notify(idev->index, vm, idx, set, true);
		ivshm_dev_ring(idev, vm, vector);
		return IVSHM_NOTIFY_RANG;
	case IVSHM_POST_QUIET:
		ivshm_stat_inc(idev, IVSHM_STAT_NOTIFIES);
		trace_ivshm_notify(idev->index, vm, idx, set, false);
		ivshm_stat_inc(idev, IVSHM_STAT_SUPPRESSED);
		return IVSHM_NOTIFY_SET;
	default:
		return IVSHM_NOTIFY_NONE;
	}
}

/**
 * ivshm_slot_set() - record that socket @isk uses channel @idx
 * @idev: the device
 * @idx: the channel
 * @rx: true if @isk reads the channel, false if it sends on it
 * @isk: the socket; the slot takes a reference
 *
 * An orphan is a channel we sent on: it keeps a new sender out, not a
 * reader, which on a loopback connection may attach after our acceptor
 * gave up its side.
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
	else if (*p || (!rx && s->orphan))
		ret = -EBUSY;
	if (!ret) {
		sock_hold(ivshm_sk(isk));
		*p = isk;
	}
	spin_unlock_bh(&idev->lock);
	return ret;
}

/* Forget that @isk sends on channel @idx, dropping the slot's reference.
 * A reader leaves with ivshm_slot_leave_rx().
 */
void ivshm_slot_leave_tx(struct ivshm_dev *idev, u32 idx,
			 struct ivshm_sock *isk)
{
	struct ivshm_slot *s = &idev->slots[idx];
	bool put = false;

	spin_lock_bh(&idev->lock);
	if (s->tx == isk) {
		s->tx = NULL;
		put = true;
	}
	spin_unlock_bh(&idev->lock);
	if (put)
		sock_put(ivshm_sk(isk));
}

/**
 * ivshm_slot_leave_rx() - stop reading channel @idx and acknowledge it
 * @idev: the device
 * @idx: the channel
 * @gen: the generation we attached to; a later channel is not acknowledged
 * @ack: IVSHM_RX_CLOSED or IVSHM_RX_RESET
 * @isk: the socket letting go, whose reference the slot drops
 *
 * The acknowledgment lets the sender free the channel and take the slot
 * for another connection, whose answer may reach a socket of ours at once
 * (ivshm_slot_set(), after an acquire load of that answer): the slot must
 * be empty before anyone can see the acknowledgment, so both happen under
 * idev->lock.
 *
 * Return: whether the acknowledgment was written; the caller notifies.
 */
bool ivshm_slot_leave_rx(struct ivshm_dev *idev, u32 idx, u32 gen, u32 ack,
			 struct ivshm_sock *isk)
{
	struct ivshm_slot *s = &idev->slots[idx];
	bool put = false, acked;

	spin_lock_bh(&idev->lock);
	acked = ivshm_hs_answer(&idev->layout, idx, gen, ack);
	if (s->rx == isk) {
		s->rx = NULL;
		put = true;
	}
	spin_unlock_bh(&idev->lock);
	if (put)
		sock_put(ivshm_sk(isk));
	return acked;
}

/**
 * ivshm_slot_answer() - answer on channel @idx, addressed to us
 * @idev: the device
 * @idx: the channel
 * @gen: the generation the answer is for
 * @answer: IVSHM_RX_REFUSED, NOBUFS or CLOSED
 *
 * idev->lock serialises every answer of ours, so that none is written on
 * a slot that another of ours already let its sender free and take again
 * (handshake.c).
 *
 * Return: whether it was written; the caller notifies.
 */
bool ivshm_slot_answer(struct ivshm_dev *idev, u32 idx, u32 gen, u32 answer)
{
	bool done;

	spin_lock_bh(&idev->lock);
	done = ivshm_hs_answer(&idev->layout, idx, gen, answer);
	spin_unlock_bh(&idev->lock);
	return done;
}

/**
 * ivshm_slot_accept() - tell the sender of channel @idx that we read it
 * @idev: the device
 * @idx: the channel, which a socket of ours now reads
 * @gen: its generation, as read
 * @back: as for ivshm_hs_accept()
 *
 * Under idev->lock as every answer of ours (handshake.c).
 *
 * Return: whether ACCEPTED was written.
 */
bool ivshm_slot_accept(struct ivshm_dev *idev, u32 idx, u32 gen,
		       const struct ivshm_hs_reply *back)
{
	bool done;

	spin_lock_bh(&idev->lock);
	done = ivshm_hs_accept(&idev->layout, idx, gen, READ_ONCE(idev->inc),
			       back);
	spin_unlock_bh(&idev->lock);
	return done;
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
 * @runs: what it holds (private copy)
 * @isk: the socket giving it up, whose reference the slot drops
 *
 * The channel is freed once the receiver acknowledges, once it is gone,
 * or after IVSHM_ORPHAN_TIMEOUT if it never attached (ivshm_hs_may_free()).
 * If the device is going away it is freed now.
 */
void ivshm_slot_orphan(struct ivshm_dev *idev, u32 idx,
		       const struct ivshm_runs *runs, struct ivshm_sock *isk)
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
		s->free_now = false;
		s->runs = *runs;
		s->since = jiffies;
	}
	spin_unlock_bh(&idev->lock);
	if (put)
		sock_put(ivshm_sk(isk));
	if (now)
		ivshm_chan_close(idev, idx, runs);
	else
		/* The acknowledgment may have come already. */
		ivshm_notify(idev, idev->own_id, idx, IVSHM_PEND_CTRL);
}

/* A connection we withdrew (orphan @idx, of @runs) was accepted: close the
 * acceptor's channel to us from our side, as its reader. Only the channel
 * @r names, read once, that is the reverse of ours: addressed to us by the
 * VM we asked, naming our channel and generation, with no answer yet. The
 * answer is written under idev->lock, as every answer of ours.
 */
static void ivshm_orphan_close_reverse(struct ivshm_dev *idev, u32 idx,
				       const struct ivshm_runs *runs,
				       const struct ivshm_hs_reply *r)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_hs_line v;
	bool ack;

	if (r->peer_chan >= l->max_channels || r->peer_chan == idx ||
	    ivshm_hs_read(l, r->peer_chan, &v) || v.gen != r->peer_gen ||
	    v.d.sender_vm != runs->receiver ||
	    v.d.receiver_vm != idev->own_id || v.d.peer_chan != idx ||
	    v.d.peer_gen != runs->gen || v.rx_state != IVSHM_RX_NONE)
		return;
	spin_lock_bh(&idev->lock);
	ack = !idev->slots[r->peer_chan].rx &&
	      ivshm_hs_answer(l, r->peer_chan, v.gen, IVSHM_RX_CLOSED);
	spin_unlock_bh(&idev->lock);
	if (ack)
		ivshm_notify(idev, runs->receiver, r->peer_chan,
			     IVSHM_PEND_CTRL);
}

/* Does slot @s still hold the orphan of @runs? A thread may have freed it
 * meanwhile, and the slot may hold a newer one. idev->lock held.
 */
static bool ivshm_orphan_same(struct ivshm_dev *idev, struct ivshm_slot *s,
			      const struct ivshm_runs *runs)
{
	lockdep_assert_held(&idev->lock);
	return s->orphan && s->runs.gen == runs->gen &&
	       s->runs.inc == runs->inc;
}

/* An orphan's receiver answered, its time is up (@why), or it must go now.
 * The answers that end it: CLOSED, RESET, REFUSED or NOBUFS. ACCEPTED means
 * the receiver accepted a connection we had withdrawn: its channel to us is
 * then closed from our side (we are its reader), and we wait for it to
 * acknowledge ours; so is it if the receiver accepted and acknowledged ours
 * before we looked. Time frees only what no reader holds
 * (ivshm_hs_may_free()).
 */
static void ivshm_orphan_event(struct ivshm_dev *idev, u32 idx,
			       enum ivshm_orphan_why why)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_slot *s = &idev->slots[idx];
	struct ivshm_hs_reply r;
	struct ivshm_runs runs;
	bool done;

	spin_lock_bh(&idev->lock);
	done = s->orphan;
	if (s->free_now)
		why = IVSHM_ORPHAN_NOW;
	runs = s->runs;
	spin_unlock_bh(&idev->lock);
	if (!done)
		return;
	ivshm_hs_reply(l, idx, &r);
	done = why == IVSHM_ORPHAN_NOW ||
	       ivshm_hs_may_free(&r, why == IVSHM_ORPHAN_TIMED_OUT,
				 ivshm_peer_alive(l, runs.receiver, NULL));
	/* Time is up, but it says a reader of the receiver's is there: ask
	 * the receiver again, every IVSHM_ORPHAN_TIMEOUT. If none of its
	 * readers holds the channel, the ACCEPTED is stale and it answers
	 * (ivshm_stray_event()).
	 */
	if (!done && why == IVSHM_ORPHAN_TIMED_OUT &&
	    ivshm_peer_still_me(l, idev->own_id, runs.inc)) {
		spin_lock_bh(&idev->lock);
		if (ivshm_orphan_same(idev, s, &runs))
			s->since = jiffies;
		spin_unlock_bh(&idev->lock);
		ivshm_notify(idev, runs.receiver, idx, IVSHM_PEND_CTRL);
	}
	/* Also when the acceptor already acknowledged ours: the notification
	 * of its own channel's close was left for us (ivshm_stray_is_reverse()).
	 */
	if ((r.rx_state == IVSHM_RX_ACCEPTED || r.rx_state == IVSHM_RX_CLOSED ||
	     r.rx_state == IVSHM_RX_RESET) &&
	    ivshm_peer_still_me(l, idev->own_id, runs.inc))
		ivshm_orphan_close_reverse(idev, idx, &runs, &r);
	if (!done)
		return;

	/* Only the orphan decided about. */
	spin_lock_bh(&idev->lock);
	done = ivshm_orphan_same(idev, s, &runs);
	if (done)
		s->orphan = false;
	spin_unlock_bh(&idev->lock);
	if (done)
		ivshm_chan_close(idev, idx, &runs);
}

/* An orphan whose receiver is gone: free it without waiting. */
void ivshm_orphan_expire(struct ivshm_dev *idev, u32 idx)
{
	ivshm_orphan_event(idev, idx, IVSHM_ORPHAN_NOW);
}

/* Is channel @idx, of generation @gen, the one an acceptor named in its
 * answer on channel @peer of ours, which a socket of ours still sends on?
 * Then that socket's connector attaches to it when it reads the answer,
 * or, if it gave up meanwhile, closes it as an orphan's (ivshm_orphan_event()):
 * the acceptor may have closed it already, and the notification of that
 * can be handled before the one of the answer. idev->lock held.
 */
static bool ivshm_stray_is_reverse(struct ivshm_dev *idev, u32 idx, u32 gen,
				   u32 peer)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_hs_reply r;

	lockdep_assert_held(&idev->lock);
	if (peer >= l->max_channels || peer == idx ||
	    !(idev->slots[peer].tx || idev->slots[peer].orphan))
		return false;
	ivshm_hs_reply(l, peer, &r);
	return r.peer_chan == idx && r.peer_gen == gen;
}

/* A channel addressed to us that no socket here reads. If it asks for a
 * connection, socket.c looks for a listener. If its sender closed it (a
 * connect it withdrew, one we refused, or an accepted connection whose
 * connector is gone), acknowledge so it is freed.
 *
 * The channel is read once, consistently (ivshm_hs_read()); a slot that
 * changed hands meanwhile has a new channel, of which its sender notifies
 * us. The acknowledgment is written under idev->lock, where every answer
 * of ours is, and only if the slot still holds that generation with no
 * answer on it: a reader of ours that let go of it meanwhile answered
 * already, and its sender may have taken the slot again.
 */
static void ivshm_stray_event(struct ivshm_dev *idev, u32 idx)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_hs_line v;
	bool ack;

	/* Not once declared dead: the work may have slept on a socket lock
	 * since it looked (ivshm_ctrl_work()).
	 */
	if (!ivshm_peer_still_me(l, idev->own_id, READ_ONCE(idev->inc)) ||
	    ivshm_hs_read(l, idx, &v) || v.d.receiver_vm != idev->own_id ||
	    v.d.sender_vm >= l->max_peers)
		return;
	if (v.d.state == IVSHM_CHAN_CONNECT && v.rx_state == IVSHM_RX_NONE) {
		ivshm_sock_request(idev, idx, &v);
		return;
	}
	/* ACCEPTED too: a reader of ours writes it only once it is in the
	 * slot, and leaves the slot with its final answer, both under
	 * idev->lock; so ACCEPTED on a channel none of ours reads is stale
	 * (an earlier incarnation's, or forged over our answer), and its
	 * sender, which asks again after IVSHM_ORPHAN_TIMEOUT, waits for us.
	 */
	if (v.d.state != IVSHM_CHAN_CLOSED ||
	    (v.rx_state != IVSHM_RX_NONE && v.rx_state != IVSHM_RX_ACCEPTED))
		return;
	spin_lock_bh(&idev->lock);
	ack = !idev->slots[idx].rx &&
	      !ivshm_stray_is_reverse(idev, idx, v.gen, v.d.peer_chan) &&
	      ivshm_hs_answer(l, idx, v.gen, IVSHM_RX_CLOSED);
	spin_unlock_bh(&idev->lock);
	if (ack)
		ivshm_notify(idev, v.d.sender_vm, idx, IVSHM_PEND_CTRL);
}

static void ivshm_chan_event(struct ivshm_dev *idev, u32 idx)
{
	struct ivshm_sock *isk[2];

	ivshm_slot_get(idev, idx, isk);
	/* Both are set only on a loopback connection. */
	if (isk[0])
		ivshm_sock_event(isk[0], idev, idx, false);
	/* A reader that let go of the channel after we looked at the slot
	 * acknowledged first: its sender may have freed the channel and a
	 * new one asked for a connection on it already. That is news for
	 * nobody here yet, like a channel no socket reads.
	 */
	if (!isk[1] || !ivshm_sock_event(isk[1], idev, idx, true))
		ivshm_stray_event(idev, idx);
	ivshm_slot_put(isk);
	if (READ_ONCE(idev->slots[idx].orphan))
		ivshm_orphan_event(idev, idx, IVSHM_ORPHAN_NEWS);
}

static void ivshm_ctrl_work(struct work_struct *work)
{
	struct ivshm_dev *idev = container_of(to_delayed_work(work),
					      struct ivshm_dev, ctrl_work);
	const struct ivshm_layout *l = &idev->layout;
	bool doorbells = idev->nr_vectors;
	u64 events = 0;
	u32 w;

	u32 round;

	if (ivshm_dev_frozen(idev))
		return;		/* a stopped VM: the bits wait */
	/* Declared dead: what the bits are about is the reapers' now, and
	 * answering it would write into slots that may be others' (as
	 * ivshm_sock_fenced() says for sockets). The liveness work finds
	 * out within a period, joins again and kicks us; the bits wait.
	 */
	if (!ivshm_peer_still_me(l, idev->own_id, READ_ONCE(idev->inc)))
		return;
	ivshm_stat_inc(idev, IVSHM_STAT_CTRL_POLLS);
	for (round = 0; round < IVSHM_CTRL_ROUNDS &&
	     events < IVSHM_CTRL_BUDGET; round++) {
		if (doorbells)
			ivshm_notify_disarm(l, idev->own_id, IVSHM_PEND_CTRL);
		for (w = 0; w < l->pending_words &&
		     events < IVSHM_CTRL_BUDGET; w++) {
			u64 bits = ivshm_notify_take(l, idev->own_id,
						     IVSHM_PEND_CTRL, w);

			while (bits) {
				u32 b = __ffs64(bits);

				bits &= bits - 1;
				ivshm_chan_event(idev, w * 64 + b);
				events++;
			}
			cond_resched();
		}
		/* Polled devices have no flag to arm, only bits to look at. */
		if (doorbells ?
		    !ivshm_notify_rearm(l, idev->own_id, IVSHM_PEND_CTRL) :
		    !ivshm_notify_any(l, idev->own_id, IVSHM_PEND_CTRL))
			goto out;
	}
	/* A flood: the rest waits a jiffy, and the CPU goes to others. */
	ivshm_stat_inc(idev, IVSHM_STAT_CTRL_FLOODS);
	queue_delayed_work(system_highpri_wq, &idev->ctrl_work, 1);
out:
	ivshm_stat_add(idev, IVSHM_STAT_CTRL_EVENTS, events);
}

/* Look at our control set soon. Context: any. */
void ivshm_ctrl_kick(struct ivshm_dev *idev)
{
	/* Already queued, or held back after a flood: nothing to add. */
	queue_delayed_work(system_highpri_wq, &idev->ctrl_work, 0);
}

/* Orphans whose receivers never attached are freed after a while, and
 * now and then, when the control lock is free, channels forged in our name
 * (ivshm_chan_audit()): a peer that fills the region in our name keeps
 * the others out too, and they cannot tell.
 */
static void ivshm_dev_reap(struct work_struct *work)
{
	struct ivshm_dev *idev = container_of(to_delayed_work(work),
					      struct ivshm_dev, reaper);
	u32 i;

	/* Not while it acts as a stopped VM (ivshm_dev_freeze()). */
	if (time_after(jiffies, idev->audit_at + IVSHM_AUDIT_PERIOD) &&
	    !ivshm_dev_frozen(idev) && !ivshm_ctrl_lock_nowait(idev)) {
		ivshm_chan_audit(idev);
		ivshm_ctrl_unlock_dev(idev);
		idev->audit_at = jiffies;
	}

	for (i = 0; i < idev->layout.max_channels; i++) {
		struct ivshm_slot *s = &idev->slots[i];
		bool expired;

		spin_lock_bh(&idev->lock);
		expired = s->orphan &&
			  time_after(jiffies, s->since + IVSHM_ORPHAN_TIMEOUT);
		spin_unlock_bh(&idev->lock);
		if (expired)
			ivshm_orphan_event(idev, i, IVSHM_ORPHAN_TIMED_OUT);
	}
	schedule_delayed_work(&idev->reaper, HZ);
}

/* Our control vector rang: look at our control set, and at the peer
 * table, since the host's server rings it when it marks a departed VM
 * dead. Context: any, typically hard interrupt.
 */
void ivshm_conn_kick(struct ivshm_dev *idev)
{
	unsigned long last = READ_ONCE(idev->liveness_kicked);

	/* Leaving: the works are being cancelled and must stay so. */
	if (!READ_ONCE(idev->joined) || READ_ONCE(idev->dying))
		return;
	ivshm_ctrl_kick(idev);
	/* A flood of doorbells must not become a flood of peer checks. */
	if (time_before(jiffies, last + IVSHM_LIVENESS_KICK_GAP))
		return;
	WRITE_ONCE(idev->liveness_kicked, jiffies);
	mod_delayed_work(system_highpri_wq, &idev->liveness, 0);
}

/* Everything may have news: both sets, and the peer table. */
void ivshm_conn_kick_all(struct ivshm_dev *idev)
{
	if (!READ_ONCE(idev->joined) || READ_ONCE(idev->dying))
		return;
	ivshm_conn_kick(idev);
	ivshm_napi_kick(idev);
}

#ifdef CONFIG_AF_IVSHMEM_TEST_HOOKS
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
		ivshm_conn_kick_all(idev);
}
EXPORT_SYMBOL_GPL(ivshm_dev_freeze);
#endif

/**
 * ivshm_conn_init() - join the region and get ready for connections
 * @idev: a device whose region is open
 *
 * A device without a VM id (ivshmem-plain) cannot carry connections yet and
 * is left unjoined. Channels an earlier incarnation of ours left behind are
 * reclaimed, their sockets being gone, and so is every other channel no
 * live VM owns (ivshm_chan_tidy()).
 *
 * Return: 0 or -ENOMEM.
 */
int ivshm_conn_init(struct ivshm_dev *idev)
{
	const struct ivshm_layout *l = &idev->layout;
	u32 n;

	mutex_init(&idev->ctrl_mutex);
	spin_lock_init(&idev->lock);
	INIT_DELAYED_WORK(&idev->ctrl_work, ivshm_ctrl_work);
	INIT_DELAYED_WORK(&idev->reaper, ivshm_dev_reap);
	atomic_set(&idev->users, 1);
	idev->liveness_kicked = jiffies;
	idev->joined = false;
	idev->dying = false;
	idev->frozen = false;
	if (idev->own_id != IVSHM_ID_NONE && idev->own_id >= l->max_peers) {
		pr_warn("%s: VM id %u is beyond the region's %u peer slots; device left without connections (have the ivshmem server serve fewer peers)\n",
			idev->name, idev->own_id, l->max_peers);
		return 0;
	}

	idev->slots = kvcalloc(l->max_channels, sizeof(*idev->slots),
			       GFP_KERNEL);
	if (!idev->slots)
		return -ENOMEM;
	idev->held = kvcalloc(l->max_channels, sizeof(*idev->held),
			      GFP_KERNEL);
	if (!idev->held)
		goto err_slots;
	if (idev->own_id == IVSHM_ID_NONE) {
		/* No id from outside (ivshmem-plain): take a free slot. */
		if (ivshm_peer_claim(l, idev->nr_vectors, &idev->own_id,
				     &idev->inc)) {
			pr_warn("%s: every peer slot of the region is taken; device left without connections\n",
				idev->name);
			kvfree(idev->held);
			idev->held = NULL;
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
		n = ivshm_chan_tidy(l);
		ivshm_ctrl_unlock_dev(idev);
		if (n)
			pr_info("%s: reclaimed %u channels no live VM owns (an earlier incarnation's among them)\n",
				idev->name, n);
	} else {
		/* The liveness work tries again every period. */
		idev->reclaim = true;
	}
	/* Everything a doorbell kicks is ready before joined says so. */
	idev->audit_at = jiffies;
	schedule_delayed_work(&idev->reaper, HZ);
	ivshm_rebal_start(idev);
	ivshm_liveness_start(idev);
	ivshm_napi_start(idev);
	WRITE_ONCE(idev->joined, true);
	/* Catch whatever was announced before we armed the doorbell. */
	ivshm_ctrl_kick(idev);
	return 0;

err_slots:
	kvfree(idev->slots);
	idev->slots = NULL;
	return -ENOMEM;
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
	ivshm_rebal_stop(idev);
	cancel_delayed_work_sync(&idev->reaper);
	ivshm_napi_stop(idev);
	cancel_delayed_work_sync(&idev->ctrl_work);

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
			ivshm_chan_close(idev, i, &s->runs);
	}
	/* Sockets between a lookup and their first slot see dying. */
	atomic_dec(&idev->users);
	wait_var_event(&idev->users, !atomic_read(&idev->users));
	/* Sockets may have kicked both until they were gone. */
	cancel_delayed_work_sync(&idev->ctrl_work);
	ivshm_rebal_stop(idev);

	ivshm_peer_leave(l, idev->own_id, idev->inc);
	WRITE_ONCE(idev->joined, false);
	kvfree(idev->held);
	idev->held = NULL;
	kvfree(idev->slots);
	idev->slots = NULL;
}
