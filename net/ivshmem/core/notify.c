// SPDX-License-Identifier: GPL-2.0
/*
 * Notification: the pending sets and their arming flags.
 *
 * Each VM has two pending sets in the region (control and data), each a
 * bitmap with one bit per channel, and in its peer slot one arming flag per
 * set. A sender that has news on a channel sets the channel's bit in the
 * receiver's set and rings the receiver's doorbell only if the receiver
 * armed that set; a receiver disarms a set while it drains it and arms it
 * again before it sleeps. Both halves of that handshake live here, so the
 * rule that no wakeup is lost (protocol.md, barrier pairs P1 and N1) is kept
 * in one place:
 *
 *   sender                          receiver
 *   ivshm_notify_post():            ivshm_notify_rearm():
 *     set bit (fully ordered RMW)     armed = 1
 *     read armed                      full barrier
 *     ring if armed                   look at the set's words again
 *
 * Either the sender reads armed == 1 and rings, or the receiver's second
 * look finds the bit.
 *
 * Bits are set and taken with one locked instruction each (compat.h): no
 * bit is lost, and neither side retries, so a peer that writes the words
 * all the time cannot keep us here. Every function touches at most
 * 2 + pending_words region words.
 */

#include "core.h"

static __le32 *ivshm_notify_flag(const struct ivshm_layout *l, u32 vm,
				 u32 set)
{
	struct ivshm_peer *p = ivshm_peer(l, vm);

	return set == IVSHM_PEND_DATA ? &p->data_armed : &p->doorbell_armed;
}

static bool ivshm_notify_valid(const struct ivshm_layout *l, u32 vm, u32 set)
{
	return vm < l->max_peers && set < IVSHM_PEND_SETS;
}

/**
 * ivshm_notify_mark() - set channel @idx's bit in @vm's pending set @set
 * @l: the layout
 * @vm: the receiving VM
 * @set: IVSHM_PEND_CTRL or IVSHM_PEND_DATA
 * @idx: the channel
 *
 * Ids come from callers that may have read them from the region: each is
 * checked against the layout here.
 *
 * Return: false, with nothing written, if @vm, @set or @idx cannot exist.
 */
bool ivshm_notify_mark(const struct ivshm_layout *l, u32 vm, u32 set,
		       u32 idx)
{
	if (!ivshm_notify_valid(l, vm, set) || idx >= l->max_channels)
		return false;
	/* P1 */
	ivshm_set_bit64(ivshm_pending(l, vm, set) + idx / 64, idx % 64);
	return true;
}

/**
 * ivshm_notify_post() - tell @vm that channel @idx has news in set @set
 * @l: the layout
 * @vm: the receiving VM
 * @set: IVSHM_PEND_CTRL or IVSHM_PEND_DATA
 * @idx: the channel
 * @vector: set to the doorbell vector to ring, on IVSHM_POST_RING
 *
 * The sender's half of N1. The data set rings vector 1 of a VM that has
 * two or more, the control set always vector 0. @vm's vector count is read
 * from the region, but any value only chooses between those two.
 *
 * Return: IVSHM_POST_INVALID for ids that cannot exist (nothing written);
 * IVSHM_POST_QUIET when the bit is set and @vm is not armed for @set, so it
 * will look without a doorbell; IVSHM_POST_RING when the caller must ring
 * *@vector of @vm.
 */
enum ivshm_post ivshm_notify_post(const struct ivshm_layout *l, u32 vm,
				  u32 set, u32 idx, u32 *vector)
{
	if (!ivshm_notify_mark(l, vm, set, idx))
		return IVSHM_POST_INVALID;
	/* The mark is a fully ordered RMW: the flag is read after it. */
	if (!ivshm_get32(ivshm_notify_flag(l, vm, set)))
		return IVSHM_POST_QUIET;
	*vector = IVSHM_VEC_CTRL;
	/* A VM with one vector takes both sets on it. */
	if (set == IVSHM_PEND_DATA &&
	    ivshm_get32(&ivshm_peer(l, vm)->vectors) > IVSHM_VEC_DATA)
		*vector = IVSHM_VEC_DATA;
	return IVSHM_POST_RING;
}

/**
 * ivshm_notify_take() - take word @word of @vm's pending set @set
 * @l: the layout
 * @vm: the VM, normally ourselves
 * @set: IVSHM_PEND_CTRL or IVSHM_PEND_DATA
 * @word: below l->pending_words
 *
 * Return: the bits that were set, now clear; 0 for ids that cannot exist.
 * Bits at or above max_channels come from a hostile peer: the caller checks
 * each channel index it derives.
 */
u64 ivshm_notify_take(const struct ivshm_layout *l, u32 vm, u32 set,
		      u32 word)
{
	__le64 *w;

	if (!ivshm_notify_valid(l, vm, set) || word >= l->pending_words)
		return 0;
	w = ivshm_pending(l, vm, set) + word;
	/* Most words are empty: look before taking the cache line. */
	if (!ivshm_get64(w))
		return 0;
	return ivshm_xchg64(w, 0);
}

/**
 * ivshm_notify_any() - is any bit of @vm's pending set @set up?
 * @l: the layout
 * @vm: the VM
 * @set: IVSHM_PEND_CTRL or IVSHM_PEND_DATA
 *
 * Plain loads: a hint for whether to drain again, never a reason to touch
 * a channel.
 */
bool ivshm_notify_any(const struct ivshm_layout *l, u32 vm, u32 set)
{
	__le64 *p;
	u32 w;

	if (!ivshm_notify_valid(l, vm, set))
		return false;
	p = ivshm_pending(l, vm, set);
	for (w = 0; w < l->pending_words; w++)
		if (ivshm_get64(p + w))
			return true;
	return false;
}

/**
 * ivshm_notify_disarm() - no doorbell for set @set of @vm: it is draining
 * @l: the layout
 * @vm: the VM, ourselves
 * @set: IVSHM_PEND_CTRL or IVSHM_PEND_DATA
 *
 * Senders that read the flag from now on only set bits. Whatever they set
 * is found by the drain or by the look that ivshm_notify_rearm() takes.
 */
void ivshm_notify_disarm(const struct ivshm_layout *l, u32 vm, u32 set)
{
	if (ivshm_notify_valid(l, vm, set))
		ivshm_put32(ivshm_notify_flag(l, vm, set), 0);
}

/**
 * ivshm_notify_rearm() - ask for a doorbell on set @set of @vm again
 * @l: the layout
 * @vm: the VM, ourselves
 * @set: IVSHM_PEND_CTRL or IVSHM_PEND_DATA
 *
 * The receiver's half of N1: the flag is written before the set is looked
 * at again, with a full barrier between, so a bit set by a sender that
 * read the flag as 0 is found here.
 *
 * Return: true if a bit is up, so the caller must drain again rather than
 * sleep; false if any later bit comes with a doorbell.
 */
bool ivshm_notify_rearm(const struct ivshm_layout *l, u32 vm, u32 set)
{
	if (!ivshm_notify_valid(l, vm, set))
		return false;
	ivshm_put32(ivshm_notify_flag(l, vm, set), 1);
	ivshm_mb();						/* N1 */
	return ivshm_notify_any(l, vm, set);
}
