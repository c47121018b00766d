// SPDX-License-Identifier: GPL-2.0
/*
 * The control lock and the block allocator.
 *
 * The lock word in the control section holds 0 or the owner's VM id and
 * incarnation. It is taken with a fully ordered compare-and-exchange and
 * released with a release store (protocol.md, barrier B2), and protects
 * only allocation bookkeeping: the block bitmap, free_blocks,
 * free_start_offset, num_active_channel and the FREE <-> ALLOC transition of
 * channel slots. A holder that died (its peer slot is no longer ALIVE with
 * the same incarnation) does not wedge the others: its lock is taken over,
 * and since it may have died half-way through an update, the taker rebuilds
 * the bitmap from the channel table.
 *
 * Everything read here is checked before use: the hint is bounded, bitmap
 * words are indexed by private bounds, channel runs are validated before
 * they are counted. A corrupted control section can make an allocation fail
 * or hand out blocks another channel uses (which only garbles that data, as
 * a hostile peer could anyway), never make us touch memory outside the
 * region.
 */

#include "core.h"

static __le64 *ivshm_bitmap(const struct ivshm_layout *l)
{
	return (__le64 *)(l->base + l->bitmap_off);
}

/* Is the holder recorded in @word gone? */
bool ivshm_lock_owner_dead(const struct ivshm_layout *l, u64 word)
{
	u32 vm = IVSHM_LOCK_VM(word), inc = IVSHM_LOCK_INC(word);
	struct ivshm_peer *p;

	if (vm >= l->max_peers)
		return true;		/* no such peer can hold it */
	p = ivshm_peer(l, vm);
	return ivshm_get32(&p->state) != IVSHM_PEER_ALIVE ||
	       ivshm_get32(&p->incarnation) != inc;
}

/**
 * ivshm_ctrl_trylock() - take the control lock once
 * @l: layout
 * @vm: our VM id
 * @inc: our incarnation
 *
 * Return: 0 when taken; 1 when taken from a dead holder, in which case the
 * caller must call ivshm_blocks_rebuild() before relying on the bitmap;
 * -EBUSY when a live peer holds it.
 */
int ivshm_ctrl_trylock(const struct ivshm_layout *l, u32 vm, u32 inc)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u64 me = IVSHM_LOCK_OWNER(vm, inc);
	u64 seen;

	seen = ivshm_cmpxchg64(&c->lock, 0, me);
	if (!seen)
		return 0;
	if (seen == me || !ivshm_lock_owner_dead(l, seen))
		return -EBUSY;
	if (ivshm_cmpxchg64(&c->lock, seen, me) != seen)
		return -EBUSY;
	ivshm_put32(&c->lock_breaks, ivshm_get32(&c->lock_breaks) + 1);
	return 1;
}

void ivshm_ctrl_unlock(const struct ivshm_layout *l, u32 vm, u32 inc)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);

	/* B2: bookkeeping stores are visible before the lock is free. */
	if (ivshm_get64(&c->lock) == IVSHM_LOCK_OWNER(vm, inc))
		ivshm_store_release64(&c->lock, 0);
}

static bool ivshm_bit_test(const struct ivshm_layout *l, u32 b)
{
	return ivshm_get64(ivshm_bitmap(l) + b / 64) >> (b % 64) & 1;
}

static void ivshm_bits_assign(const struct ivshm_layout *l, u32 first,
			      u32 n, bool used)
{
	__le64 *bm = ivshm_bitmap(l);
	u32 b;

	for (b = first; b < first + n; b++) {
		__le64 *w = bm + b / 64;
		u64 mask = 1ull << (b % 64);
		u64 v = ivshm_get64(w);

		ivshm_put64(w, used ? v | mask : v & ~mask);
	}
}

static int ivshm_blocks_take(const struct ivshm_layout *l, u32 nblocks,
			     u32 hint, bool next_fit, u64 *off)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u32 start, run = 0, b, i;
	u32 free_blocks;

	if (!nblocks || nblocks > l->nr_blocks)
		return -EINVAL;
	if (hint >= l->nr_blocks)
		hint = 0;

	/* Scan nr_blocks + nblocks positions so a run may start anywhere. */
	start = hint;
	for (i = 0; i < l->nr_blocks + nblocks; i++) {
		b = (hint + i) % l->nr_blocks;
		if (b == 0)
			run = 0;	/* runs do not wrap */
		if (ivshm_bit_test(l, b)) {
			run = 0;
			continue;
		}
		if (!run)
			start = b;
		if (++run == nblocks)
			goto found;
	}
	return -ENOBUFS;

found:
	ivshm_bits_assign(l, start, nblocks, true);
	free_blocks = ivshm_get32(&c->free_blocks);
	ivshm_put32(&c->free_blocks,
		    free_blocks >= nblocks ? free_blocks - nblocks : 0);
	if (next_fit)
		ivshm_put32(&c->free_start_offset,
			    (u32)(((u64)(start + nblocks) % l->nr_blocks) <<
				  IVSHM_BLOCK_SHIFT));
	*off = (u64)start << IVSHM_BLOCK_SHIFT;
	return 0;
}

/**
 * ivshm_blocks_alloc() - take a run of free blocks, control lock held
 * @l: layout
 * @nblocks: how many
 * @off: the run's data-area byte offset, on success
 *
 * Next fit from free_start_offset, wrapping once.
 *
 * Return: 0, -EINVAL for a size that cannot exist, -ENOBUFS if no run of
 * that length is free.
 */
int ivshm_blocks_alloc(const struct ivshm_layout *l, u32 nblocks, u64 *off)
{
	u32 hint = ivshm_get32(&ivshm_ctrl(l)->free_start_offset) >>
		   IVSHM_BLOCK_SHIFT;

	return ivshm_blocks_take(l, nblocks, hint, true, off);
}

/**
 * ivshm_blocks_alloc_low() - take a run as low as possible, lock held
 * @l: layout
 * @nblocks: how many
 * @off: the run's data-area byte offset, on success
 *
 * First fit, for a channel that shrinks: small runs gather at the start of
 * the data area and leave the long free extents, where channels grow in
 * place, alone. free_start_offset is not moved.
 *
 * Return: as ivshm_blocks_alloc().
 */
int ivshm_blocks_alloc_low(const struct ivshm_layout *l, u32 nblocks,
			   u64 *off)
{
	return ivshm_blocks_take(l, nblocks, 0, false, off);
}

/**
 * ivshm_blocks_fit_below() - is there a free run of @nblocks before @off?
 * @l: layout
 * @nblocks: how many
 * @off: data-area byte offset of a run
 *
 * Whether ivshm_blocks_alloc_low() would place a run of @nblocks wholly
 * before block @off, that is, lower than a run starting there. Without the
 * control lock the answer is a hint, read from memory any peer may change.
 */
bool ivshm_blocks_fit_below(const struct ivshm_layout *l, u32 nblocks,
			    u64 off)
{
	u64 first = off >> IVSHM_BLOCK_SHIFT;
	u32 end = first < l->nr_blocks ? (u32)first : l->nr_blocks;
	u32 b, run = 0;

	if (!nblocks)
		return false;
	for (b = 0; b < end; b++) {
		run = ivshm_bit_test(l, b) ? 0 : run + 1;
		if (run == nblocks)
			return true;
	}
	return false;
}

/**
 * ivshm_blocks_extend() - lengthen a run in place, control lock held
 * @l: layout
 * @off: data-area byte offset of a run we hold
 * @nblocks: its length
 * @more: blocks to add right after it
 *
 * Return: 0, or -ENOBUFS if those blocks are not all free or inside the
 * data area.
 */
int ivshm_blocks_extend(const struct ivshm_layout *l, u64 off, u32 nblocks,
			u32 more)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u32 first = (u32)(off >> IVSHM_BLOCK_SHIFT) + nblocks, b, free_blocks;

	if (!more || !ivshm_run_valid(l, off, (u64)(nblocks + more) <<
				      IVSHM_BLOCK_SHIFT))
		return -ENOBUFS;
	for (b = first; b < first + more; b++)
		if (ivshm_bit_test(l, b))
			return -ENOBUFS;
	ivshm_bits_assign(l, first, more, true);
	free_blocks = ivshm_get32(&c->free_blocks);
	ivshm_put32(&c->free_blocks,
		    free_blocks >= more ? free_blocks - more : 0);
	return 0;
}

/* Free blocks from block @b on, up to the first used one. */
static u32 ivshm_free_from(const struct ivshm_layout *l, u32 b)
{
	u32 n = 0;

	while (b + n < l->nr_blocks && !ivshm_bit_test(l, b + n))
		n++;
	return n;
}

/**
 * ivshm_blocks_alloc_grow() - take a run where a growing channel has room
 * @l: layout, control lock held
 * @nblocks: blocks wanted; fewer are taken if the extent is shorter
 * @cur_off: data-area byte offset of the run the channel leaves
 * @cur: its length, in blocks; the new run takes more than that
 * @off: the new run's data-area byte offset, on success
 *
 * The run starts at the free extent with the most room to grow in place
 * afterwards. That is the extent's own length, and for an extent that ends
 * where the current run begins, also the current run and the free blocks
 * after it, which join it once the reader has left the old run. Without
 * that, a channel that filled the largest extent could be left where it
 * can neither extend nor move, while the space it gave back lies right
 * before it.
 *
 * Return: the blocks taken, or 0 if no extent has more than @cur free.
 */
u32 ivshm_blocks_alloc_grow(const struct ivshm_layout *l, u32 nblocks,
			    u64 cur_off, u32 cur, u64 *off)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u32 first = (u32)(cur_off >> IVSHM_BLOCK_SHIFT), b = 0, len, room;
	u32 best = 0, best_len = 0, best_start = 0, free_blocks;

	while (b < l->nr_blocks) {
		len = ivshm_free_from(l, b);
		if (!len) {
			b++;
			continue;
		}
		room = len;
		if (b + len == first && first + cur <= l->nr_blocks)
			room += cur + ivshm_free_from(l, first + cur);
		if (len > cur && room > best) {
			best = room;
			best_len = len;
			best_start = b;
		}
		b += len;
	}
	if (!best)
		return 0;
	if (nblocks > best_len)
		nblocks = best_len;
	ivshm_bits_assign(l, best_start, nblocks, true);
	free_blocks = ivshm_get32(&c->free_blocks);
	ivshm_put32(&c->free_blocks,
		    free_blocks >= nblocks ? free_blocks - nblocks : 0);
	*off = (u64)best_start << IVSHM_BLOCK_SHIFT;
	return nblocks;
}

/**
 * ivshm_blocks_free() - give a run back, control lock held
 * @l: layout
 * @off: data-area byte offset of the run
 * @nblocks: its length
 *
 * Return: 0; -EINVAL for a run outside the data area (nothing changed);
 * -EPROTO if some block was already free (the rest are freed anyway).
 */
int ivshm_blocks_free(const struct ivshm_layout *l, u64 off, u32 nblocks)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u32 first, b, freed = 0;

	if (!ivshm_run_valid(l, off, (u64)nblocks << IVSHM_BLOCK_SHIFT))
		return -EINVAL;
	first = (u32)(off >> IVSHM_BLOCK_SHIFT);
	for (b = first; b < first + nblocks; b++)
		freed += ivshm_bit_test(l, b);
	ivshm_bits_assign(l, first, nblocks, false);
	ivshm_put32(&c->free_blocks, ivshm_get32(&c->free_blocks) + freed);
	return freed == nblocks ? 0 : -EPROTO;
}

/**
 * ivshm_blocks_count_free() - free blocks as the bitmap says
 * @l: layout
 *
 * For accounting checks: without the control lock the answer may be stale,
 * but a quiet region gives the exact count, to compare with free_blocks.
 */
u32 ivshm_blocks_count_free(const struct ivshm_layout *l)
{
	u32 i, used = 0, tail = l->nr_blocks % 64;

	for (i = 0; i < l->bitmap_words; i++) {
		u64 w = ivshm_get64(ivshm_bitmap(l) + i);

		/* Bits past the data area are nobody's blocks. */
		if (tail && i == l->nr_blocks / 64)
			w &= (1ull << tail) - 1;
		else if (i >= l->nr_blocks / 64 + !!tail)
			w = 0;
		used += hweight64(w);
	}
	return l->nr_blocks - used;
}

/* Mark a run used for a rebuild, unless it is invalid or overlaps. */
static bool ivshm_rebuild_claim(const struct ivshm_layout *l, u64 off,
				u32 size, u32 *used)
{
	u32 first, n, b;

	if (!ivshm_run_valid(l, off, size))
		return false;
	first = (u32)(off >> IVSHM_BLOCK_SHIFT);
	n = size >> IVSHM_BLOCK_SHIFT;
	for (b = first; b < first + n; b++)
		if (ivshm_bit_test(l, b))
			return false;
	ivshm_bits_assign(l, first, n, true);
	*used += n;
	return true;
}

/**
 * ivshm_blocks_rebuild() - recompute the bookkeeping from the channel table
 * @l: layout, control lock held
 *
 * Used after taking the lock from a dead holder. Every channel that is not
 * FREE keeps the blocks of its run, and of the run a pending move left, when
 * the run is valid and does not overlap an earlier one; the rest of the
 * data area becomes free.
 *
 * Return: the number of channel runs that were invalid or overlapping.
 */
u32 ivshm_blocks_rebuild(const struct ivshm_layout *l)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u32 i, bad = 0, active = 0, used = 0;

	for (i = 0; i < l->bitmap_words; i++)
		ivshm_put64(ivshm_bitmap(l) + i, 0);

	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_chan *ch = ivshm_chan(l, i);
		u32 state = ivshm_get32(&ch->state);
		u64 off = ivshm_get64(&ch->buff_offset);
		u32 size = ivshm_get32(&ch->buff_size);

		if (state == IVSHM_CHAN_FREE)
			continue;
		active++;
		if (state >= IVSHM_CHAN_NR_STATES) {
			bad++;
			continue;
		}
		if (!ivshm_rebuild_claim(l, off, size, &used)) {
			bad++;
			continue;
		}
		/* A run left by a move stays until the reader has left it. */
		off = ivshm_get64(&ch->old_offset);
		size = ivshm_get32(&ch->old_size);
		if (size && !ivshm_rebuild_claim(l, off, size, &used))
			bad++;
	}
	ivshm_put32(&c->free_blocks, l->nr_blocks - used);
	ivshm_put32(&c->num_active_channel, active);
	ivshm_put32(&c->free_start_offset, 0);
	return bad;
}

/**
 * ivshm_chan_alloc() - take a FREE channel slot, control lock held
 * @l: layout
 * @idx: the slot, on success; it is in state ALLOC with a new generation
 *	and every other field zero
 *
 * Return: 0 or -ENOBUFS.
 */
int ivshm_chan_alloc(const struct ivshm_layout *l, u32 *idx)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u32 i, gen;

	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_chan *ch = ivshm_chan(l, i);

		if (ivshm_get32(&ch->state) != IVSHM_CHAN_FREE)
			continue;
		/* A FREE slot belongs to nobody: taking it clears whatever the
		 * last owner left (runs, counters, the receiver's line), so no
		 * stale value outlives the channel.
		 */
		gen = ivshm_get32(&ch->generation);
		memset(ch, 0, sizeof(*ch));
		ivshm_put32(&ch->generation, gen + 1);
		ivshm_put32(&ch->state, IVSHM_CHAN_ALLOC);
		ivshm_put32(&c->num_active_channel,
			    ivshm_get32(&c->num_active_channel) + 1);
		*idx = i;
		return 0;
	}
	return -ENOBUFS;
}

/* Return a slot to FREE, control lock held; @idx below max_channels. */
void ivshm_chan_free(const struct ivshm_layout *l, u32 idx)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	struct ivshm_chan *ch = ivshm_chan(l, idx);
	u32 active = ivshm_get32(&c->num_active_channel);

	if (ivshm_get32(&ch->state) == IVSHM_CHAN_FREE)
		return;
	ivshm_put32(&ch->state, IVSHM_CHAN_FREE);
	ivshm_put32(&c->num_active_channel, active ? active - 1 : 0);
}

/**
 * ivshm_peer_join() - announce ourselves in our peer slot
 * @l: layout
 * @vm: our VM id, below l->max_peers
 * @vectors: our doorbell vectors, 0 if we are polled
 *
 * The slot is written completely before its state says ALIVE (release), so
 * whoever sees us alive sees our incarnation too.
 *
 * Return: our new incarnation, never 0.
 */
u32 ivshm_peer_join(const struct ivshm_layout *l, u32 vm, u32 vectors)
{
	struct ivshm_peer *p = ivshm_peer(l, vm);
	u32 inc = ivshm_get32(&p->incarnation) + 1;

	if (!inc)
		inc = 1;
	ivshm_put32(&p->doorbell_armed, 0);
	ivshm_put32(&p->data_armed, 0);
	ivshm_put32(&p->vectors, vectors);
	ivshm_put64(&p->heartbeat, 0);
	ivshm_put32(&p->incarnation, inc);
	ivshm_store_release32(&p->state, IVSHM_PEER_ALIVE);
	return inc;
}

/* Leave our slot, unless a later incarnation of us already owns it. */
void ivshm_peer_leave(const struct ivshm_layout *l, u32 vm, u32 inc)
{
	struct ivshm_peer *p = ivshm_peer(l, vm);

	if (ivshm_get32(&p->incarnation) == inc)
		ivshm_store_release32(&p->state, IVSHM_PEER_FREE);
}

/**
 * ivshm_peer_alive() - is a VM attached to the region?
 * @l: layout
 * @vm: any value; ids that cannot exist are simply not alive
 * @inc: its incarnation, when alive (may be NULL)
 */
bool ivshm_peer_alive(const struct ivshm_layout *l, u32 vm, u32 *inc)
{
	struct ivshm_peer *p;

	if (vm >= l->max_peers)
		return false;
	p = ivshm_peer(l, vm);
	if (ivshm_load_acquire32(&p->state) != IVSHM_PEER_ALIVE)
		return false;
	if (inc)
		*inc = ivshm_get32(&p->incarnation);
	return true;
}

/**
 * ivshm_chan_reclaim() - free every channel a VM sends on, lock held
 * @l: layout
 * @vm: the VM: an earlier incarnation of ourselves, or a dead peer
 *
 * The runs those channels name are not freed one by one, since they were
 * written by a VM we no longer trust to have left them consistent: the slots
 * go FREE and the bitmap is rebuilt from what remains.
 *
 * Return: the number of channels freed.
 */
u32 ivshm_chan_reclaim(const struct ivshm_layout *l, u32 vm)
{
	u32 i, n = 0;

	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_chan *ch = ivshm_chan(l, i);

		if (ivshm_get32(&ch->state) == IVSHM_CHAN_FREE ||
		    ivshm_get16(&ch->sender_vm) != vm)
			continue;
		ivshm_chan_free(l, i);
		n++;
	}
	if (n)
		ivshm_blocks_rebuild(l);
	return n;
}

/**
 * ivshm_chan_sweep() - free the slots no live peer can own, lock held
 * @l: layout
 *
 * A channel belongs to its sender's incarnation, which writes line 0 only
 * with the control lock held, so a sweep (which holds it too) never sees a
 * channel half set up. A slot in an unknown state, or whose sender is not
 * alive with the incarnation the slot names, is nobody's: a VM that left
 * it behind, or bytes another guest wrote over the table. Left alone it
 * would hold its slot, and a run the rebuild might count, forever; freeing
 * it is what reaping that VM would do. The caller rebuilds the
 * bookkeeping afterwards.
 *
 * Return: the number of slots freed.
 */
u32 ivshm_chan_sweep(const struct ivshm_layout *l)
{
	u32 i, inc, n = 0;

	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_chan *ch = ivshm_chan(l, i);
		u32 state = ivshm_get32(&ch->state);

		if (state == IVSHM_CHAN_FREE)
			continue;
		if (state < IVSHM_CHAN_NR_STATES &&
		    ivshm_peer_alive(l, ivshm_get16(&ch->sender_vm), &inc) &&
		    inc == ivshm_get32(&ch->sender_inc))
			continue;
		ivshm_chan_free(l, i);
		n++;
	}
	return n;
}

/**
 * ivshm_peer_claim() - take a free peer slot and join with its VM id
 * @l: layout
 * @vectors: our doorbell vectors (0: polled)
 * @vm: the id taken
 * @inc: our incarnation
 *
 * For regions whose peers have no id given from outside (ivshmem-plain):
 * the first FREE slot is taken with a compare-and-exchange to CLAIMED, so
 * two VMs never take the same one, and then joined.
 *
 * Return: 0, or -EBUSY when every slot is taken.
 */
int ivshm_peer_claim(const struct ivshm_layout *l, u32 vectors, u32 *vm,
		     u32 *inc)
{
	u32 i;

	for (i = 0; i < l->max_peers; i++) {
		struct ivshm_peer *p = ivshm_peer(l, i);

		if (ivshm_cmpxchg32(&p->state, IVSHM_PEER_FREE,
				    IVSHM_PEER_CLAIMED) != IVSHM_PEER_FREE)
			continue;
		*vm = i;
		*inc = ivshm_peer_join(l, i, vectors);
		return 0;
	}
	return -EBUSY;
}

/**
 * ivshm_peer_declare_dead() - a peer stopped beating: say so in its slot
 * @l: layout
 * @vm: the peer, below max_peers
 * @inc: the incarnation that stopped
 *
 * Return: true if we moved it from ALIVE to DEAD.
 */
bool ivshm_peer_declare_dead(const struct ivshm_layout *l, u32 vm, u32 inc)
{
	struct ivshm_peer *p = ivshm_peer(l, vm);

	if (ivshm_get32(&p->incarnation) != inc)
		return false;
	return ivshm_cmpxchg32(&p->state, IVSHM_PEER_ALIVE, IVSHM_PEER_DEAD) ==
	       IVSHM_PEER_ALIVE;
}

/**
 * ivshm_peer_reap() - free a dead peer's channels and its slot, lock held
 * @l: layout
 * @vm: a peer in state DEAD, below max_peers
 *
 * Return: the number of channels freed.
 */
u32 ivshm_peer_reap(const struct ivshm_layout *l, u32 vm)
{
	u32 n = ivshm_chan_reclaim(l, vm);

	ivshm_cmpxchg32(&ivshm_peer(l, vm)->state, IVSHM_PEER_DEAD,
			IVSHM_PEER_FREE);
	return n;
}
