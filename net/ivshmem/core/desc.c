// SPDX-License-Identifier: GPL-2.0
/*
 * The descriptor of a channel we send on: its sender's identity line.
 *
 * A sender takes a FREE slot and a run under the region's control lock,
 * writes the identity line (who sends to whom, between which ports, over
 * which run) and the state last, with a release store that pairs with the
 * receiver's acquire load of the state (protocol.md, barrier D1). Only the
 * sender ever writes that line.
 *
 * A slot is "ours" while its state is not FREE and its generation, sender
 * and sender incarnation are the ones we wrote. A VM declared dead while
 * it stood still may find its slots reaped and taken by others; before it
 * frees a channel or writes its state it checks that the slot is still
 * its own, under the control lock, so that it never frees or rewrites
 * what is no longer its.
 *
 * Every function here makes a fixed number of region accesses, besides
 * the allocator calls it makes (alloc.c bounds those), except the audit:
 * one pass over the channel table.
 */

#include "core.h"

/**
 * ivshm_desc_open() - take a channel and a run, and describe them
 * @l: the layout
 * @d: the identity line to write; d->size is whole blocks
 * @idx: set to the channel
 * @gen: set to its generation
 * @off: set to its run's offset in the data area
 *
 * The caller holds the control lock. The descriptor is complete, state
 * last, when this returns.
 *
 * Return: 0, or -ENOBUFS when the region has no free slot or run.
 */
int ivshm_desc_open(const struct ivshm_layout *l, const struct ivshm_desc *d,
		    u32 *idx, u32 *gen, u64 *off)
{
	struct ivshm_chan *ch;

	if (ivshm_chan_alloc(l, idx))
		return -ENOBUFS;
	if (ivshm_blocks_alloc(l, d->size >> IVSHM_BLOCK_SHIFT, off)) {
		ivshm_chan_free(l, *idx);
		return -ENOBUFS;
	}
	ch = ivshm_chan(l, *idx);
	/* chan_alloc() zeroed the slot and bumped the generation: ours. */
	*gen = ivshm_get32(&ch->generation);
	ivshm_put16(&ch->sender_vm, (u16)d->sender_vm);
	ivshm_put16(&ch->receiver_vm, (u16)d->receiver_vm);
	ivshm_put32(&ch->sender_pid, d->pid);
	ivshm_put32(&ch->src_port, d->src_port);
	ivshm_put32(&ch->dst_port, d->dst_port);
	ivshm_put64(&ch->buff_offset, *off);
	ivshm_put32(&ch->buff_size, d->size);
	ivshm_put32(&ch->sender_inc, d->sender_inc);
	ivshm_put32(&ch->peer_chan, d->peer_chan);
	ivshm_put32(&ch->peer_gen, d->peer_gen);
	ivshm_store_release32(&ch->state, d->state);		/* D1 */
	return 0;
}

/**
 * ivshm_desc_ours() - is slot @idx still the channel we took?
 * @l: the layout
 * @idx: the channel
 * @gen: the generation ivshm_desc_open() gave
 * @vm: our VM id
 * @inc: our incarnation
 *
 * The caller keeps the region's slots from changing hands while it acts
 * on the answer: it holds the control lock, or at least keeps its own
 * incarnation from changing (our reclaim runs under the same guard).
 */
bool ivshm_desc_ours(const struct ivshm_layout *l, u32 idx, u32 gen, u32 vm,
		     u32 inc)
{
	struct ivshm_chan *ch;

	if (idx >= l->max_channels)
		return false;
	ch = ivshm_chan(l, idx);
	return ivshm_get32(&ch->state) != IVSHM_CHAN_FREE &&
	       ivshm_get32(&ch->generation) == gen &&
	       ivshm_get16(&ch->sender_vm) == vm &&
	       ivshm_get32(&ch->sender_inc) == inc;
}

/**
 * ivshm_desc_publish() - write the state of a channel we opened
 * @l: the layout
 * @idx: the channel
 * @gen: its generation
 * @vm: our VM id
 * @inc: our incarnation
 * @state: the new state, e.g. IVSHM_CHAN_CONNECT
 *
 * Return: 0, or -ENOLINK when the slot is no longer ours.
 */
int ivshm_desc_publish(const struct ivshm_layout *l, u32 idx, u32 gen, u32 vm,
		       u32 inc, u32 state)
{
	if (!ivshm_desc_ours(l, idx, gen, vm, inc))
		return -ENOLINK;
	ivshm_store_release32(&ivshm_chan(l, idx)->state, state);	/* D1 */
	return 0;
}

/**
 * ivshm_desc_close() - free a channel we sent on, and its runs
 * @l: the layout
 * @idx: the channel
 * @runs: its generation and runs, from our private copy, never from the
 *	region; a run left by a pending move is freed too
 * @vm: our VM id
 * @inc: our incarnation
 * @receiver: set to the receiver our identity line names, when freed
 *
 * The caller holds the control lock.
 *
 * Every rebuild of the bitmap takes the runs from the descriptors: one
 * whose runs someone rewrote (ours say otherwise) had the rebuilds count
 * blocks we never held, which freeing ours does not give back. Then, as
 * when the blocks of a run were not all held, the bitmap is rebuilt once
 * the slot is free.
 *
 * Return: 0 when freed; -EPROTO when freed, but the descriptor's runs were
 * not ours or the blocks of a run were not all held (someone wrote the
 * region), and the bookkeeping was rebuilt; -ENOLINK when the slot is no
 * longer ours, and nothing was touched.
 */
int ivshm_desc_close(const struct ivshm_layout *l, u32 idx,
		     const struct ivshm_runs *runs, u32 vm, u32 inc,
		     u32 *receiver)
{
	struct ivshm_chan *ch = ivshm_chan(l, idx);
	int ret = 0;

	if (!ivshm_desc_ours(l, idx, runs->gen, vm, inc))
		return -ENOLINK;
	*receiver = ivshm_get16(&ch->receiver_vm);
	if (ivshm_get64(&ch->buff_offset) != runs->off ||
	    ivshm_get32(&ch->buff_size) != runs->size ||
	    ivshm_get32(&ch->old_size) != runs->old_size ||
	    (runs->old_size && ivshm_get64(&ch->old_offset) != runs->old_off))
		ret = -EPROTO;
	if (ivshm_blocks_free(l, runs->off, runs->size >> IVSHM_BLOCK_SHIFT))
		ret = -EPROTO;
	if (runs->old_size &&
	    ivshm_blocks_free(l, runs->old_off,
			      runs->old_size >> IVSHM_BLOCK_SHIFT))
		ret = -EPROTO;
	ivshm_chan_free(l, idx);
	if (ret)
		ivshm_blocks_rebuild(l);
	return ret;
}

/**
 * ivshm_desc_audit() - free the channels in our name that we never took
 * @l: the layout
 * @vm: our VM id
 * @inc: our incarnation
 * @held: l->max_channels entries: the generation of the channel we hold in
 *	each slot, 0 for none
 *
 * A sweep keeps every channel whose named sender is alive with the
 * incarnation the slot names, and nobody else frees a live VM's channels:
 * a peer that writes a descriptor in our name, with a run over the data
 * area, would hold both until we left the region. Only we can tell that
 * we never took it. The caller holds the control lock and keeps @held
 * from changing meanwhile: it records every channel it takes or frees
 * under the same guard, so that a channel of ours that no socket holds
 * yet is not taken for a forgery. One pass over the table; each slot's
 * fields are read once.
 *
 * Return: the number of slots freed; the bitmap is rebuilt if any was.
 */
u32 ivshm_desc_audit(const struct ivshm_layout *l, u32 vm, u32 inc,
		     const u32 *held)
{
	u32 i, n = 0;

	for (i = 0; i < l->max_channels; i++) {
		struct ivshm_chan *ch = ivshm_chan(l, i);
		u32 gen;

		if (ivshm_get32(&ch->state) == IVSHM_CHAN_FREE ||
		    ivshm_get16(&ch->sender_vm) != vm ||
		    ivshm_get32(&ch->sender_inc) != inc)
			continue;
		gen = ivshm_get32(&ch->generation);
		if (held[i] && gen == held[i])
			continue;
		ivshm_chan_free(l, i);
		n++;
	}
	if (n)
		ivshm_blocks_rebuild(l);
	return n;
}
