// SPDX-License-Identifier: GPL-2.0
/*
 * Peer liveness: every joined device beats a heartbeat in its peer slot and
 * watches the others'.
 *
 * A peer whose heartbeat has not moved for the device's peer_timeout_ms
 * (params.c; 10 s unless set, so that a VM paused for a snapshot, a
 * migration or a debugger keeps its connections) is declared DEAD in its
 * slot (compare-and-exchange, so one declaration wins). A VM that really
 * went away is found faster where the transport can tell: on doorbell
 * regions the host's server marks it DEAD and rings us at once. A peer
 * found DEAD (by us or by anyone, the host's ivshmem server included) is
 * lost: every socket here connected to it is reset (ECONNRESET, blocked
 * calls wake up), channels of ours it should have acknowledged are freed,
 * and its own channels and slot are reaped under the control lock. A peer
 * that comes back with another incarnation is a new peer: whatever we had
 * with the old one is lost the same way.
 *
 * We may be the one declared dead, for instance after our VM stood still
 * for longer than the timeout: then our slot is no longer ALIVE with our
 * incarnation. We reset every socket of the device, since the others may
 * have reclaimed our channels, and join again as a new incarnation.
 *
 * The heartbeat has a work of its own, on the high-priority workqueue,
 * that does nothing else and never waits: a guest busy with a flood of
 * events, or whose checks below wait for socket locks, keeps beating every
 * IVSHM_BEAT_PERIOD, or its peers would declare it dead and reset its
 * connections. The checks run in the device's liveness work, once per
 * period: reaping and reclaiming take the region's control lock only if
 * it is free now (ivshm_ctrl_lock_nowait()) and are tried again a period
 * later. Values read from other slots are only compared with what we saw
 * before, never used as indices or sizes.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/ivshmem_netlink.h>
#include <linux/jiffies.h>
#include <linux/workqueue.h>

#include "chan.h"
#include "device.h"
#include "netlink.h"
#include "peer.h"
#include "socket.h"
#include "stats.h"

#define IVSHM_BEAT_PERIOD	(HZ / 10)

/* Reset what we have with @vm (below max_peers, or IVSHM_ALL_PEERS). */
static void ivshm_peer_lost(struct ivshm_dev *idev, u32 vm)
{
	const struct ivshm_layout *l = &idev->layout;
	u32 i;

	ivshm_stat_inc(idev, IVSHM_STAT_PEERS_LOST);
	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_slot *s = &idev->slots[i];
		struct ivshm_sock *isk[2];
		bool orphan;
		int k;

		ivshm_slot_get(idev, i, isk);
		for (k = 0; k < 2; k++)
			if (isk[k])
				ivshm_sock_peer_lost(isk[k], idev, vm);
		ivshm_slot_put(isk);
		/* Nobody will acknowledge, also what the resets just gave
		 * up: free it now.
		 */
		spin_lock_bh(&idev->lock);
		orphan = s->orphan &&
			 (vm == IVSHM_ALL_PEERS || s->runs.receiver == vm);
		spin_unlock_bh(&idev->lock);
		if (orphan)
			ivshm_orphan_expire(idev, i);
	}
}

/* Channels an earlier incarnation of ours left in the region, and any
 * other that no live VM owns (ivshm_chan_tidy()), once the control lock
 * is free; until then, every period.
 */
static void ivshm_peer_reclaim_own(struct ivshm_dev *idev)
{
	u32 n;

	if (!idev->reclaim || ivshm_ctrl_lock_nowait(idev))
		return;
	n = ivshm_chan_tidy(&idev->layout);
	idev->reclaim = false;
	ivshm_ctrl_unlock_dev(idev);
	if (n)
		pr_info_ratelimited("%s: reclaimed %u channels no live VM owns (an earlier incarnation's among them)\n",
				    idev->name, n);
}

/* Our slot was taken from us: start over as a new incarnation. */
static void ivshm_peer_rejoin(struct ivshm_dev *idev)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_peer_slot ps;
	u32 vm;

	pr_warn_ratelimited("%s: our peer slot %u is no longer ours (declared dead?); resetting connections and joining again\n",
			    idev->name, idev->own_id);
	ivshm_peer_lost(idev, IVSHM_ALL_PEERS);
	/* Whoever we knew, we know no longer: listeners hear it. */
	for (vm = 0; vm < l->max_peers; vm++)
		if (idev->seen[vm].known && ivshm_peer_read(l, vm, &ps))
			ivshm_nl_peer_event(idev, IVSHMEM_CMD_PEER_DOWN, vm,
					    idev->seen[vm].inc,
					    min(ps.state, 255u));
	memset(idev->seen, 0, sizeof(idev->seen));
	/* The new incarnation under ctrl_mutex: a connect that opened its
	 * channel under the old one finds it no longer ours when it comes to
	 * publish CONNECT (ivshm_chan_publish()). The old incarnation's
	 * channels are reclaimed once the control lock is free; channels of
	 * the new one are left alone.
	 */
	mutex_lock(&idev->ctrl_mutex);
	WRITE_ONCE(idev->inc, ivshm_peer_join_again(l, idev->own_id,
						    idev->nr_vectors, idev->inc));
	/* The new incarnation holds nothing yet. */
	memset(idev->held, 0, l->max_channels * sizeof(*idev->held));
	idev->reclaim = true;
	mutex_unlock(&idev->ctrl_mutex);
	ivshm_peer_reclaim_own(idev);
	/* Joining disarmed our doorbells: the work and NAPI arm them. */
	ivshm_conn_kick_all(idev);
}

static void ivshm_peer_reap_dev(struct ivshm_dev *idev, u32 vm)
{
	u32 n, swept;

	if (ivshm_ctrl_lock_nowait(idev))
		return;		/* next period */
	n = ivshm_peer_reap(&idev->layout, vm);
	/* Whatever else no live peer owns goes too (a VM that died long
	 * ago, the table overwritten), so that the region recovers.
	 */
	swept = ivshm_chan_sweep(&idev->layout);
	if (swept)
		ivshm_blocks_rebuild(&idev->layout);
	ivshm_ctrl_unlock_dev(idev);
	if (n || swept)
		pr_info_ratelimited("%s: reclaimed %u channels of dead VM %u, %u orphaned\n",
				    idev->name, n, vm, swept);
}

/* A peer we knew is gone (@state: what its slot says now, for the event):
 * reset what we had with it and say so.
 */
static void ivshm_peer_down(struct ivshm_dev *idev, u32 vm, u32 state)
{
	struct ivshm_peer_seen *s = &idev->seen[vm];

	ivshm_peer_lost(idev, vm);
	WRITE_ONCE(s->known, false);
	ivshm_nl_peer_event(idev, IVSHMEM_CMD_PEER_DOWN, vm, s->inc,
			    min(state, 255u));
}

static void ivshm_peer_check(struct ivshm_dev *idev, u32 vm)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_peer_seen *s = &idev->seen[vm];
	struct ivshm_peer_slot ps;
	u32 state, inc;
	u64 beat;

	if (!ivshm_peer_read(l, vm, &ps))
		return;
	state = ps.state;
	inc = ps.incarnation;
	beat = ps.heartbeat;

	switch (state) {
	case IVSHM_PEER_ALIVE:
		if (!s->known || s->inc != inc) {
			if (s->known)
				ivshm_peer_down(idev, vm, state);
			s->inc = inc;
			s->beat = beat;
			WRITE_ONCE(s->changed, jiffies);
			WRITE_ONCE(s->known, true);
			ivshm_nl_peer_event(idev, IVSHMEM_CMD_PEER_UP, vm, inc, -1);
			return;
		}
		if (beat != s->beat) {
			s->beat = beat;
			WRITE_ONCE(s->changed, jiffies);
			return;
		}
		if (!time_after(jiffies, s->changed +
				msecs_to_jiffies(READ_ONCE(idev->params.peer_timeout_ms))))
			return;
		if (ivshm_peer_declare_dead(l, vm, inc))
			pr_warn_ratelimited("%s: VM %u stopped beating; declared dead\n",
					    idev->name, vm);
		state = IVSHM_PEER_DEAD;
		fallthrough;
	case IVSHM_PEER_DEAD:
		if (s->known)
			ivshm_peer_down(idev, vm, state);
		ivshm_peer_reap_dev(idev, vm);
		return;
	default:
		/* FREE or CLAIMED: gone, or not there yet. */
		if (s->known)
			ivshm_peer_down(idev, vm, state);
	}
}

/* Our heartbeat: one store per period, whatever else is going on. */
static void ivshm_beat_work(struct work_struct *work)
{
	struct ivshm_dev *idev = container_of(to_delayed_work(work),
					      struct ivshm_dev, beat_work);

	/* Leaving: ivshm_liveness_stop() cancels us, and we stay cancelled. */
	if (READ_ONCE(idev->dying))
		return;
	if (!ivshm_dev_frozen(idev))
		ivshm_peer_beat(&idev->layout, idev->own_id, ++idev->beat);
	queue_delayed_work(system_highpri_wq, &idev->beat_work,
			   IVSHM_BEAT_PERIOD);
}

static void ivshm_liveness_work(struct work_struct *work)
{
	struct ivshm_dev *idev = container_of(to_delayed_work(work),
					      struct ivshm_dev, liveness);
	const struct ivshm_layout *l = &idev->layout;
	u32 vm;

	/* Leaving: ivshm_liveness_stop() cancels us, and we stay cancelled. */
	if (READ_ONCE(idev->dying))
		return;
	if (ivshm_dev_frozen(idev))
		goto out;
	if (!ivshm_peer_still_me(l, idev->own_id, idev->inc))
		ivshm_peer_rejoin(idev);
	ivshm_peer_reclaim_own(idev);
	for (vm = 0; vm < l->max_peers; vm++)
		if (vm != idev->own_id)
			ivshm_peer_check(idev, vm);
out:
	queue_delayed_work(system_highpri_wq, &idev->liveness,
			   IVSHM_BEAT_PERIOD);
}

void ivshm_liveness_start(struct ivshm_dev *idev)
{
	memset(idev->seen, 0, sizeof(idev->seen));
	idev->beat = 0;
	INIT_DELAYED_WORK(&idev->beat_work, ivshm_beat_work);
	INIT_DELAYED_WORK(&idev->liveness, ivshm_liveness_work);
	queue_delayed_work(system_highpri_wq, &idev->beat_work, 0);
	queue_delayed_work(system_highpri_wq, &idev->liveness,
			   IVSHM_BEAT_PERIOD);
}

void ivshm_liveness_stop(struct ivshm_dev *idev)
{
	cancel_delayed_work_sync(&idev->beat_work);
	cancel_delayed_work_sync(&idev->liveness);
}
