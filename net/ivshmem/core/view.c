// SPDX-License-Identifier: GPL-2.0
/*
 * Read-only views of the region, for diagnostics (netlink, debugfs).
 *
 * What the peers' bookkeeping says right now: each value is read once and
 * reported as it is, and nothing here decides anything. A peer can make
 * these numbers lie about itself and about the region's counters; the
 * admin tools say so (Documentation/threat-model.md). Loops are bounded by
 * the layout: max_peers slots, the block bitmap's words. A peer slot is
 * read with ivshm_peer_read() (alloc.c), which liveness uses too.
 */

#include "core.h"

/**
 * ivshm_view_region() - the region's counters and how many VMs are alive
 * @l: the layout
 * @v: filled in
 */
void ivshm_view_region(const struct ivshm_layout *l,
		       struct ivshm_region_view *v)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u32 vm;

	v->free_blocks = ivshm_blocks_hint_free(l);
	v->active_channels = ivshm_get32(&c->num_active_channel);
	v->bitmap_free = ivshm_blocks_count_free(l);
	v->peers_alive = 0;
	for (vm = 0; vm < l->max_peers; vm++)
		if (ivshm_load_acquire32(&ivshm_peer(l, vm)->state) ==
		    IVSHM_PEER_ALIVE)
			v->peers_alive++;
}

/**
 * ivshm_view_ring() - the channel descriptor of a ring, as it is now
 * @r: either side of a channel's ring
 * @v: filled in: the channel's state, head_touch (the producer's count of
 *	records published), the published counters and the event indexes,
 *	which tell a side that waits for a notification from one that lost
 *	it
 */
void ivshm_view_ring(const struct ivshm_ring *r, struct ivshm_chan_view *v)
{
	struct ivshm_chan *ch = r->chan;

	v->state = ivshm_get32(&ch->state);
	v->head_touch = ivshm_get64(&ch->head_touch);
	v->head = ivshm_get64(&ch->head);
	v->tail = ivshm_get64(&ch->tail);
	v->tx_flags = ivshm_get32(&ch->tx_flags);
	v->rx_flags = ivshm_get32(&ch->rx_flags);
	v->wake_tail = ivshm_get64(&ch->wake_tail);
	v->rx_event = ivshm_get64(&ch->rx_event);
}
