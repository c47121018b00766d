// SPDX-License-Identifier: GPL-2.0
/*
 * The control lock and the block allocator.
 *
 * The lock word in the control section holds 0 or the owner's VM id and
 * incarnation. It is taken and released with fully ordered
 * compare-and-exchanges (protocol.md, barrier B2), and protects
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
 * @holder: when a live VM holds it, the lock word found (may be NULL)
 *
 * The caller is the only one of its VM that competes for the lock (the
 * kernel serialises its users with a mutex), so a lock word that names the
 * caller is never its own: another guest wrote it, or it was left behind.
 * It is taken over like a dead holder's.
 *
 * Return: 0 when taken; 1 when taken from a dead holder or from a word
 * naming us, in which case the caller must call ivshm_blocks_rebuild()
 * before relying on the bitmap; -EBUSY when a live peer holds it.
 */
int ivshm_ctrl_trylock(const struct ivshm_layout *l, u32 vm, u32 inc,
		       u64 *holder)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u64 me = IVSHM_LOCK_OWNER(vm, inc);
	u64 seen;

	seen = ivshm_cmpxchg64(&c->lock, 0, me);
	if (!seen)
		return 0;
	if (seen != me && !ivshm_lock_owner_dead(l, seen)) {
		if (holder)
			*holder = seen;
		return -EBUSY;
	}
	return ivshm_ctrl_break(l, vm, inc, seen);
}

/**
 * ivshm_ctrl_break() - take the control lock from the holder @seen names
 * @l: layout
 * @vm: our VM id
 * @inc: our incarnation
 * @seen: the lock word as found, unchanged for as long as the caller
 *	decides a live holder may keep the lock (the caller's policy)
 *
 * Only if the word still is @seen: a holder that released it meanwhile,
 * and whoever took it next, keep it.
 *
 * Return: 1 when taken (rebuild before relying on the bitmap), -EBUSY.
 */
int ivshm_ctrl_break(const struct ivshm_layout *l, u32 vm, u32 inc, u64 seen)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);

	if (!seen ||
	    ivshm_cmpxchg64(&c->lock, seen, IVSHM_LOCK_OWNER(vm, inc)) != seen)
		return -EBUSY;
	ivshm_put32(&c->lock_breaks, ivshm_get32(&c->lock_breaks) + 1);
	return 1;
}

/**
 * ivshm_ctrl_unlock() - release the control lock
 * @l: layout
 * @vm: our VM id
 * @inc: our incarnation
 *
 * One fully ordered compare-and-exchange (barrier B2: the bookkeeping
 * stores are visible before the lock is free), so a word that another VM
 * wrote after breaking our lock is never cleared.
 *
 * Return: true if we still held it; false if it was broken meanwhile, in
 * which case what we changed under it may have raced the breaker's own
 * changes (its rebuild made the bookkeeping match the channel table, which
 * is what the next rebuild trusts too).
 */
bool ivshm_ctrl_unlock(const struct ivshm_layout *l, u32 vm, u32 inc)
{
	u64 me = IVSHM_LOCK_OWNER(vm, inc);

	return ivshm_cmpxchg64(&ivshm_ctrl(l)->lock, me, 0) == me;
}

/* The bitmap is read and written a word at a time: marking, counting and
 * finding blocks costs one access per 64 blocks, so the work under the
 * control lock grows with the region's size / 256 KiB at most, and with
 * the run's size for the operations on one run (IVSHM_RUN_MAX bounds it).
 */

/* Bits [lo, hi) of a word, 0 <= lo < hi <= 64. */
static u64 ivshm_mask(u32 lo, u32 hi)
{
	u64 m = hi == 64 ? ~0ull : (1ull << hi) - 1;

	return m & ~((1ull << lo) - 1);
}

/* Mark blocks [first, first + n) used or free; the range is valid. */
static void ivshm_bits_assign(const struct ivshm_layout *l, u32 first,
			      u32 n, bool used)
{
	__le64 *bm = ivshm_bitmap(l);
	u32 b = first, end = first + n;

	while (b < end) {
		u32 lo = b % 64, hi = end - b < 64 - lo ? lo + (end - b) : 64;
		__le64 *w = bm + b / 64;
		u64 m = ivshm_mask(lo, hi), v = ivshm_get64(w);

		ivshm_put64(w, used ? v | m : v & ~m);
		b += hi - lo;
	}
}

/* Used blocks among [first, first + n); the range is valid. */
static u32 ivshm_bits_count(const struct ivshm_layout *l, u32 first, u32 n)
{
	__le64 *bm = ivshm_bitmap(l);
	u32 b = first, end = first + n, used = 0;

	while (b < end) {
		u32 lo = b % 64, hi = end - b < 64 - lo ? lo + (end - b) : 64;

		used += hweight64(ivshm_get64(bm + b / 64) & ivshm_mask(lo, hi));
		b += hi - lo;
	}
	return used;
}

/* The first block in [b, end) that is used (@used) or free, else @end;
 * @end is at most nr_blocks.
 */
static u32 ivshm_bits_next(const struct ivshm_layout *l, u32 b, u32 end,
			   bool used)
{
	__le64 *bm = ivshm_bitmap(l);

	while (b < end) {
		u64 v = ivshm_get64(bm + b / 64);

		if (!used)
			v = ~v;
		v &= ~0ull << (b % 64);
		if (v) {
			b = (b & ~63u) + __ffs64(v);
			return b < end ? b : end;
		}
		b = (b & ~63u) + 64;
	}
	return end;
}

static int ivshm_blocks_take(const struct ivshm_layout *l, u32 nblocks,
			     u32 hint, bool next_fit, u64 *off)
{
	struct ivshm_ctrl *c = ivshm_ctrl(l);
	u32 start, b, e, to, pass, free_blocks;

	if (!nblocks || nblocks > l->nr_blocks)
		return -EINVAL;
	if (hint >= l->nr_blocks)
		hint = 0;

	/* Free extents from the hint on, then those that start before it:
	 * a next fit that wraps once. Runs do not wrap.
	 */
	for (pass = 0; pass < 2; pass++) {
		b = pass ? 0 : hint;
		to = pass ? hint : l->nr_blocks;
		while (b < to) {
			start = ivshm_bits_next(l, b, to, false);
			if (start >= to)
				break;
			e = ivshm_bits_next(l, start, l->nr_blocks, true);
			if (e - start >= nblocks)
				goto found;
			b = e;
		}
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
	u32 b = 0;

	if (!nblocks)
		return false;
	while (b < end) {
		u32 start = ivshm_bits_next(l, b, end, false);

		if (start >= end)
			break;
		b = ivshm_bits_next(l, start, end, true);
		if (b - start >= nblocks)
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
	u32 first = (u32)(off >> IVSHM_BLOCK_SHIFT) + nblocks, free_blocks;

	if (!more || !ivshm_run_valid(l, off, (u64)(nblocks + more) <<
				      IVSHM_BLOCK_SHIFT) ||
	    ivshm_bits_count(l, first, more))
		return -ENOBUFS;
	ivshm_bits_assign(l, first, more, true);
	free_blocks = ivshm_get32(&c->free_blocks);
	ivshm_put32(&c->free_blocks,
		    free_blocks >= more ? free_blocks - more : 0);
	return 0;
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
		b = ivshm_bits_next(l, b, l->nr_blocks, false);
		if (b >= l->nr_blocks)
			break;
		len = ivshm_bits_next(l, b, l->nr_blocks, true) - b;
		room = len;
		if (b + len == first && first + cur <= l->nr_blocks)
			room += ivshm_bits_next(l, first + cur, l->nr_blocks,
						true) - first;
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
	u32 first, freed;

	if (!ivshm_run_valid(l, off, (u64)nblocks << IVSHM_BLOCK_SHIFT))
		return -EINVAL;
	first = (u32)(off >> IVSHM_BLOCK_SHIFT);
	freed = ivshm_bits_count(l, first, nblocks);
	ivshm_bits_assign(l, first, nblocks, false);
	ivshm_put32(&c->free_blocks, ivshm_get32(&c->free_blocks) + freed);
	return freed == nblocks ? 0 : -EPROTO;
}

/**
 * ivshm_blocks_hint_free() - free blocks as the control section says
 * @l: layout
 *
 * A hint for sizing decisions: any peer can write the count, and a wrong
 * one only makes a channel grow less, or fail to. The bitmap decides what
 * is really free.
 */
u32 ivshm_blocks_hint_free(const struct ivshm_layout *l)
{
	return ivshm_get32(&ivshm_ctrl(l)->free_blocks);
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

/* Mark a run used for a rebuild, unless it is invalid, longer than any
 * channel's run can be, or overlaps one marked before: a word-wise look at
 * IVSHM_RUN_MAX / 256 KiB + 2 words at most, whatever the region's size.
 */
static bool ivshm_rebuild_claim(const struct ivshm_layout *l, u64 off,
				u32 size, u32 *used)
{
	u32 first, n;

	if (size > IVSHM_RUN_MAX || !ivshm_run_valid(l, off, size))
		return false;
	first = (u32)(off >> IVSHM_BLOCK_SHIFT);
	n = size >> IVSHM_BLOCK_SHIFT;
	if (ivshm_bits_count(l, first, n))
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
 * the run is valid, no longer than IVSHM_RUN_MAX and does not overlap an
 * earlier one; the rest of the data area becomes free.
 *
 * Bounded whatever the table says: the bitmap is cleared a word at a time
 * (region size / 256 KiB words) and each of at most 2 * max_channels runs
 * costs at most IVSHM_RUN_MAX / 256 KiB + 2 word reads and as many writes:
 * about 0.6 million word accesses for 4096 channels, on any region size.
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

/* A slot is cleared from here on; the state, before, is written apart. */
#define IVSHM_CHAN_AFTER_GEN	(offsetof(struct ivshm_chan, generation) + \
				 sizeof(__le32))
static_assert(offsetof(struct ivshm_chan, state) < IVSHM_CHAN_AFTER_GEN,
	      "the state is written, not cleared");

/**
 * ivshm_chan_alloc() - take a FREE channel slot, control lock held
 * @l: layout
 * @idx: the slot, on success; it is in state ALLOC with a new generation,
 *	never 0, and every other field zero
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
		gen = ivshm_get32(&ch->generation) + 1;
		/* Never 0, which no channel in use has (handshake.c). */
		ivshm_put32(&ch->generation, gen ? gen : 1);
		/* G1: the new generation before anything of the new
		 * channel, so that a reader whose reading of the old one
		 * ends with the old generation saw none of it (handshake.c).
		 */
		ivshm_wmb();
		memset((u8 *)ch + IVSHM_CHAN_AFTER_GEN, 0,
		       sizeof(*ch) - IVSHM_CHAN_AFTER_GEN);
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
 * ivshm_peer_join_again() - announce ourselves in our peer slot
 * @l: layout
 * @vm: our VM id, below l->max_peers
 * @vectors: our doorbell vectors, 0 if we are polled
 * @old: the incarnation we had, 0 for none
 *
 * The slot is written completely before its state says ALIVE (release), so
 * whoever sees us alive sees our incarnation too. The new incarnation
 * follows the slot's, which a peer may have written: it is never @old, so
 * that channels of the incarnation we leave can never pass for ours.
 *
 * Return: our new incarnation, never 0 and never @old.
 */
u32 ivshm_peer_join_again(const struct ivshm_layout *l, u32 vm, u32 vectors,
			  u32 old)
{
	struct ivshm_peer *p = ivshm_peer(l, vm);
	u32 inc = ivshm_get32(&p->incarnation) + 1;

	if (!inc)
		inc = 1;
	if (inc == old && !++inc)
		inc = 1;
	ivshm_put32(&p->doorbell_armed, 0);
	ivshm_put32(&p->data_armed, 0);
	ivshm_put32(&p->vectors, vectors);
	ivshm_put64(&p->heartbeat, 0);
	ivshm_put32(&p->incarnation, inc);
	ivshm_store_release32(&p->state, IVSHM_PEER_ALIVE);
	return inc;
}

/* Join for the first time (ivshm_peer_join_again(), with no old
 * incarnation).
 */
u32 ivshm_peer_join(const struct ivshm_layout *l, u32 vm, u32 vectors)
{
	return ivshm_peer_join_again(l, vm, vectors, 0);
}

/* Leave our slot, unless a later incarnation of us already owns it, or we
 * were declared dead.
 */
void ivshm_peer_leave(const struct ivshm_layout *l, u32 vm, u32 inc)
{
	struct ivshm_peer *p = ivshm_peer(l, vm);

	/* Declared DEAD, it stays so: its channels are the reapers' (a
	 * reaper frees only a DEAD slot's, ivshm_peer_reap()).
	 */
	if (ivshm_get32(&p->incarnation) == inc)
		ivshm_cmpxchg32(&p->state, IVSHM_PEER_ALIVE, IVSHM_PEER_FREE);
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
 * ivshm_peer_read() - what peer slot @vm says, each field read once
 * @l: layout
 * @vm: the slot
 * @ps: filled in; the state with acquire, so the rest is at least as new
 *
 * Return: false for a slot that cannot exist.
 */
bool ivshm_peer_read(const struct ivshm_layout *l, u32 vm,
		     struct ivshm_peer_slot *ps)
{
	struct ivshm_peer *p;

	if (vm >= l->max_peers)
		return false;
	p = ivshm_peer(l, vm);
	ps->state = ivshm_load_acquire32(&p->state);
	ps->incarnation = ivshm_get32(&p->incarnation);
	ps->heartbeat = ivshm_get64(&p->heartbeat);
	ps->vectors = ivshm_get32(&p->vectors);
	return true;
}

/**
 * ivshm_peer_still_me() - is slot @vm still ours, as incarnation @inc?
 * @l: layout
 * @vm: our slot
 * @inc: the incarnation we joined as
 *
 * False once a peer declared us dead (or the slot was taken over): we
 * must join again as a new incarnation.
 */
bool ivshm_peer_still_me(const struct ivshm_layout *l, u32 vm, u32 inc)
{
	struct ivshm_peer *p;

	if (vm >= l->max_peers)
		return false;
	p = ivshm_peer(l, vm);
	return ivshm_load_acquire32(&p->state) == IVSHM_PEER_ALIVE &&
	       ivshm_get32(&p->incarnation) == inc;
}

/* Our heartbeat: one store, which only we make to our slot's counter. */
void ivshm_peer_beat(const struct ivshm_layout *l, u32 vm, u64 beat)
{
	if (vm < l->max_peers)
		ivshm_put64(&ivshm_peer(l, vm)->heartbeat, beat);
}

/**
 * ivshm_chan_reclaim() - free every channel a VM sends on, lock held
 * @l: layout
 * @vm: the VM: ourselves, or a dead peer
 * @keep: an incarnation of @vm whose channels stay (ours, now), or 0
 *
 * The runs those channels name are not freed one by one, since they were
 * written by a VM we no longer trust to have left them consistent: the slots
 * go FREE and the bitmap is rebuilt from what remains.
 *
 * Return: the number of channels freed.
 */
u32 ivshm_chan_reclaim(const struct ivshm_layout *l, u32 vm, u32 keep)
{
	u32 i, n = 0;

	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_chan *ch = ivshm_chan(l, i);

		if (ivshm_get32(&ch->state) == IVSHM_CHAN_FREE ||
		    ivshm_get16(&ch->sender_vm) != vm ||
		    (keep && ivshm_get32(&ch->sender_inc) == keep))
			continue;
		ivshm_chan_free(l, i);
		n++;
	}
	if (n)
		ivshm_blocks_rebuild(l);
	return n;
}

/**
 * ivshm_chan_tidy() - on joining, free every slot no live peer owns, lock held
 * @l: layout
 *
 * A VM that joins (or rejoins as a new incarnation) frees what its earlier
 * incarnation left, and with it whatever nobody alive owns: slots a VM
 * left when it went away before it could be reaped, or that a peer wrote
 * in the name of a VM that is not there (ivshm_chan_sweep()). Then it
 * rebuilds the bitmap and the counters from the channels that remain, as
 * it trusts nobody's bookkeeping but its own: so a region that a
 * misbehaving peer filled or whose bitmap it wrote over is usable again
 * once that peer rejoins, or any other VM joins, honestly.
 *
 * Return: the number of slots freed.
 */
u32 ivshm_chan_tidy(const struct ivshm_layout *l)
{
	u32 n = ivshm_chan_sweep(l);

	ivshm_blocks_rebuild(l);
	return n;
}

/**
 * ivshm_chan_count_full() - open channels whose senders found them full
 * @l: layout
 *
 * The census behind fair shares when channels are resized (every sender
 * counts them alike). A hint only: a peer that lies about its own
 * channels changes the shares, nothing else. One pass over the slots.
 */
u32 ivshm_chan_count_full(const struct ivshm_layout *l)
{
	u32 i, n = 0;

	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_chan *ch = ivshm_chan(l, i);

		if (ivshm_get32(&ch->state) == IVSHM_CHAN_OPEN &&
		    (ivshm_get32(&ch->tx_flags) & IVSHM_TXF_FULL))
			n++;
	}
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
	u32 n;

	/* Not if it came back since it was declared dead: its new channels
	 * are taken with the lock, which we hold, so while its slot still
	 * says DEAD every channel in its name is the dead one's.
	 */
	if (ivshm_load_acquire32(&ivshm_peer(l, vm)->state) != IVSHM_PEER_DEAD)
		return 0;
	n = ivshm_chan_reclaim(l, vm, 0);

	ivshm_cmpxchg32(&ivshm_peer(l, vm)->state, IVSHM_PEER_DEAD,
			IVSHM_PEER_FREE);
	return n;
}
