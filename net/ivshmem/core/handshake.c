// SPDX-License-Identifier: GPL-2.0
/*
 * A connection's handshakes: reading a channel addressed to us, answering
 * on its consumer line, and deciding what an answer or a state means.
 *
 * Reading. A receiver learns of a channel from a pending bit, which can
 * be late: the slot may have been freed and taken again by then, even
 * while it reads. ivshm_hs_read() brackets its reading with two loads of
 * the generation (barrier pair G1 in protocol.md): ivshm_chan_alloc()
 * bumps the generation, and orders it before everything else it writes, so
 * a reading that starts and ends with the same generation saw one channel,
 * not the fields of two. A changed generation means the slot has a new
 * channel, whose sender notifies us of it: the reading is dropped.
 *
 * Answering. An answer that lets the sender free its channel (REFUSED,
 * NOBUFS, CLOSED, RESET) is written only while the slot still holds the
 * generation it answers and only forward (NONE, then ACCEPTED, then one
 * final answer). The check and the store are not one atomic step; they
 * need not be, if the caller makes every answer of its own to one slot
 * under one lock: the sender frees a slot only after a final answer, so
 * while no answer of ours is written the generation we checked stays (or
 * after IVSHM_ORPHAN_TIMEOUT, 30 s, of no answer at all: a stall that
 * long between two stores under a spinlock is a stopped VM, and what it
 * writes then is what a stale writer writes, which senders validate).
 *
 * Deciding. What a connection does with what it read is decided here too,
 * from its private state and the values read once: whether a connect
 * request may be acted on, whether the channel an acceptor names is the
 * reverse of ours, and what an answer on our channel or a state of the
 * channel we read means for the connection (ivshm_hs_tx_step(),
 * ivshm_hs_rx_step()). Both sides only move forward: CONNECT, OPEN,
 * CLOSED for a sender; NONE, ACCEPTED, one final answer for a receiver.
 * A value that goes back, or that no honest peer writes, is a protocol
 * error, and the connection is reset.
 *
 * Every function here makes a fixed number of region accesses
 * (IVSHM_HS_MAX_ACCESS at most).
 */

#include "core.h"

/**
 * ivshm_hs_read() - one consistent reading of a channel addressed to us
 * @l: the layout
 * @idx: the channel, below l->max_channels
 * @v: filled in: the identity line, the generation, the run and the
 *	answer written so far
 *
 * Nothing read is checked here beyond its consistency: the caller
 * validates the values it uses against its own state.
 *
 * Return: 0, or -EAGAIN when the slot changed hands while it was read (or
 * is being taken: generation 0 is never a channel's).
 */
int ivshm_hs_read(const struct ivshm_layout *l, u32 idx,
		  struct ivshm_hs_line *v)
{
	struct ivshm_chan *ch = ivshm_chan(l, idx);
	u32 gen;

	v->gen = ivshm_load_acquire32(&ch->generation);		/* G1 */
	v->d.state = ivshm_load_acquire32(&ch->state);		/* D1 */
	v->d.sender_vm = ivshm_get16(&ch->sender_vm);
	v->d.receiver_vm = ivshm_get16(&ch->receiver_vm);
	v->d.pid = ivshm_get32(&ch->sender_pid);
	v->d.src_port = ivshm_get32(&ch->src_port);
	v->d.dst_port = ivshm_get32(&ch->dst_port);
	v->d.size = ivshm_get32(&ch->buff_size);
	v->d.sender_inc = ivshm_get32(&ch->sender_inc);
	v->d.peer_chan = ivshm_get32(&ch->peer_chan);
	v->d.peer_gen = ivshm_get32(&ch->peer_gen);
	v->off = ivshm_get64(&ch->buff_offset);
	v->rx_state = ivshm_get32(&ch->rx_state);
	ivshm_rmb();						/* G1 */
	gen = ivshm_get32(&ch->generation);
	return !gen || gen != v->gen ? -EAGAIN : 0;
}

/* May @answer follow @cur on a consumer line? NONE, ACCEPTED, then one
 * final answer; REFUSED and NOBUFS only instead of ACCEPTED.
 */
static bool ivshm_hs_forward(u32 cur, u32 answer)
{
	switch (answer) {
	case IVSHM_RX_ACCEPTED:
	case IVSHM_RX_REFUSED:
	case IVSHM_RX_NOBUFS:
		return cur == IVSHM_RX_NONE;
	case IVSHM_RX_CLOSED:
	case IVSHM_RX_RESET:
		return cur == IVSHM_RX_NONE || cur == IVSHM_RX_ACCEPTED;
	default:
		return false;
	}
}

/**
 * ivshm_hs_answer() - answer on channel @idx, if it is still @gen
 * @l: the layout
 * @idx: the channel, below l->max_channels
 * @gen: the generation the answer is for
 * @answer: an enum ivshm_rx_state other than NONE
 *
 * The caller makes all its answers to this slot under one lock (see the
 * top of this file). The answer is a release store: whatever the caller
 * wrote before (its reading's end, the acceptor's line) is seen with it.
 *
 * Return: whether the answer was written; the caller then notifies.
 */
bool ivshm_hs_answer(const struct ivshm_layout *l, u32 idx, u32 gen,
		     u32 answer)
{
	struct ivshm_chan *ch = ivshm_chan(l, idx);

	if (!gen || ivshm_get32(&ch->generation) != gen ||
	    !ivshm_hs_forward(ivshm_get32(&ch->rx_state), answer))
		return false;
	ivshm_store_release32(&ch->rx_state, answer);
	return true;
}

/**
 * ivshm_hs_accept() - tell the sender of channel @idx that we read it
 * @l: the layout
 * @idx: the channel
 * @gen: its generation, as read
 * @inc: our incarnation
 * @back: the acceptor's answer to a connect: our channel back (its
 *	peer_chan and peer_gen); NULL for the connector attaching to the
 *	acceptor's channel, which names nothing
 *
 * The acceptor's line is written before ACCEPTED, whose release store
 * publishes it, so a connector that sees ACCEPTED reads the line whole
 * (ivshm_hs_reply()).
 *
 * Return: whether ACCEPTED was written.
 */
bool ivshm_hs_accept(const struct ivshm_layout *l, u32 idx, u32 gen,
		     u32 inc, const struct ivshm_hs_reply *back)
{
	struct ivshm_chan *ch = ivshm_chan(l, idx);

	if (!gen || ivshm_get32(&ch->generation) != gen ||
	    ivshm_get32(&ch->rx_state) != IVSHM_RX_NONE)
		return false;
	ivshm_put32(&ch->receiver_inc, inc);
	if (back) {
		ivshm_put32(&ch->rx_peer_chan, back->peer_chan);
		ivshm_put32(&ch->rx_peer_gen, back->peer_gen);
	}
	ivshm_store_release32(&ch->rx_state, IVSHM_RX_ACCEPTED);
	return true;
}

/**
 * ivshm_hs_reply() - the receiver's answer on a channel we send on
 * @l: the layout
 * @idx: our channel
 * @r: filled in; r->peer_chan and r->peer_gen name the acceptor's channel
 *	when r->rx_state is ACCEPTED, CLOSED or RESET after an acceptance
 */
void ivshm_hs_reply(const struct ivshm_layout *l, u32 idx,
		    struct ivshm_hs_reply *r)
{
	struct ivshm_chan *ch = ivshm_chan(l, idx);

	/* Pairs with the release store of ivshm_hs_accept(). */
	r->rx_state = ivshm_load_acquire32(&ch->rx_state);
	r->peer_chan = ivshm_get32(&ch->rx_peer_chan);
	r->peer_gen = ivshm_get32(&ch->rx_peer_gen);
}

/**
 * ivshm_hs_sender_state() - the state of a channel we read, from its sender
 * @l: the layout
 * @idx: the channel
 * @gen: the generation we attached to
 * @reset: set when the sender closed it for a failure (IVSHM_TXF_RESET)
 *
 * An honest sender frees the slot only after our final answer, or once
 * it finds us gone (ivshm_hs_may_free()), or when it is reaped: then the
 * slot may hold another channel by the time we look.
 *
 * Return: IVSHM_CHAN_CONNECT (an accepted connector not yet attached),
 * OPEN or CLOSED; -ESTALE when the slot holds another generation (its news
 * is the new channel's); -EPROTO for any other state.
 */
int ivshm_hs_sender_state(const struct ivshm_layout *l, u32 idx, u32 gen,
			  bool *reset)
{
	struct ivshm_chan *ch = ivshm_chan(l, idx);
	u32 state = ivshm_load_acquire32(&ch->state);		/* D1 */

	*reset = false;
	if (ivshm_get32(&ch->generation) != gen)
		return -ESTALE;
	if (state != IVSHM_CHAN_CONNECT && state != IVSHM_CHAN_OPEN &&
	    state != IVSHM_CHAN_CLOSED)
		return -EPROTO;
	*reset = state == IVSHM_CHAN_CLOSED &&
		 (ivshm_get32(&ch->tx_flags) & IVSHM_TXF_RESET);
	return (int)state;
}

/**
 * ivshm_hs_request_check() - may we act on this connect request?
 * @l: the layout
 * @v: the request, one reading in state CONNECT (ivshm_hs_read())
 *
 * Return: 0, or -EPROTO when its sender is not the live incarnation it
 * names, or its run is not 16 KiB to 16 MiB of whole blocks inside the
 * data area.
 */
int ivshm_hs_request_check(const struct ivshm_layout *l,
			   const struct ivshm_hs_line *v)
{
	u32 inc;

	if (!ivshm_peer_alive(l, v->d.sender_vm, &inc) ||
	    inc != v->d.sender_inc ||
	    v->d.size < IVSHM_RUN_MIN || v->d.size > IVSHM_RUN_MAX ||
	    !ivshm_run_valid(l, v->off, v->d.size))
		return -EPROTO;
	return 0;
}

/**
 * ivshm_hs_reverse() - read the channel an acceptor named, and check it
 * @l: the layout
 * @e: the connection's ends and our channel, from private state
 * @r: the answer on our channel (ivshm_hs_reply())
 * @v: filled in with the channel's one reading
 *
 * It must be the reverse of ours: the generation named, state OPEN (or
 * CLOSED, if the acceptor closed again before we looked), from the VM we
 * asked to us, the ports swapped, naming our channel and generation, with
 * a run a reader may follow.
 *
 * Return: 0, or -EPROTO.
 */
int ivshm_hs_reverse(const struct ivshm_layout *l,
		     const struct ivshm_hs_ends *e,
		     const struct ivshm_hs_reply *r, struct ivshm_hs_line *v)
{
	if (r->peer_chan >= l->max_channels || r->peer_chan == e->idx ||
	    ivshm_hs_read(l, r->peer_chan, v))
		return -EPROTO;
	if ((v->d.state != IVSHM_CHAN_OPEN &&
	     v->d.state != IVSHM_CHAN_CLOSED) ||
	    v->gen != r->peer_gen ||
	    v->d.sender_vm != e->remote_vm || v->d.receiver_vm != e->local_vm ||
	    v->d.src_port != e->remote_port || v->d.dst_port != e->local_port ||
	    v->d.peer_chan != e->idx || v->d.peer_gen != e->gen ||
	    v->d.size < IVSHM_RUN_MIN || v->d.size > IVSHM_RUN_MAX ||
	    !ivshm_run_valid(l, v->off, v->d.size))
		return -EPROTO;
	return 0;
}

/**
 * ivshm_hs_tx_step() - what an answer on our channel means
 * @seen: the answer the connection last acted on, updated
 * @rx: the answer now (ivshm_hs_reply())
 * @connecting: the connection waits for the answer to its connect
 *
 * Return: what the connection does (enum ivshm_hs_tx).
 */
enum ivshm_hs_tx ivshm_hs_tx_step(u32 *seen, u32 rx, bool connecting)
{
	if (connecting) {
		switch (rx) {
		case IVSHM_RX_NONE:
			return IVSHM_HS_TX_NOTHING;
		case IVSHM_RX_REFUSED:
			return IVSHM_HS_TX_REFUSED;
		case IVSHM_RX_NOBUFS:
			return IVSHM_HS_TX_NOBUFS;
		case IVSHM_RX_ACCEPTED:
		case IVSHM_RX_CLOSED:
		case IVSHM_RX_RESET:
			/* Accepted, and maybe closed again before we looked:
			 * the connection was made, its reverse channel waits,
			 * and the close follows once attached.
			 */
			return IVSHM_HS_TX_ATTACH;
		default:
			return IVSHM_HS_TX_BAD;
		}
	}
	/* NONE (the connector has not attached yet), ACCEPTED, then one of
	 * CLOSED or RESET for good: going back would undo a shutdown we
	 * acted on.
	 */
	switch (*seen) {
	case IVSHM_RX_NONE:
		break;
	case IVSHM_RX_ACCEPTED:
		if (rx == IVSHM_RX_NONE)
			return IVSHM_HS_TX_BAD;
		break;
	default:
		if (rx != *seen)
			return IVSHM_HS_TX_BAD;
		break;
	}
	switch (rx) {
	case IVSHM_RX_NONE:
	case IVSHM_RX_ACCEPTED:
		*seen = rx;
		return IVSHM_HS_TX_OPEN;
	case IVSHM_RX_CLOSED:
		*seen = rx;
		return IVSHM_HS_TX_PEER_CLOSED;
	case IVSHM_RX_RESET:
		*seen = rx;
		return IVSHM_HS_TX_PEER_RESET;
	default:
		return IVSHM_HS_TX_BAD;
	}
}

/**
 * ivshm_hs_rx_step() - what the state of the channel we read means
 * @seen: the state the connection last acted on, updated
 * @state: the state now, or -ESTALE or -EPROTO (ivshm_hs_sender_state())
 * @reset: the sender closed it for a failure
 *
 * Return: what the connection does (enum ivshm_hs_rx).
 */
enum ivshm_hs_rx ivshm_hs_rx_step(u32 *seen, int state, bool reset)
{
	if (state == -ESTALE)
		return IVSHM_HS_RX_GONE;
	/* CONNECT, OPEN, CLOSED: a sender only ever moves forward. */
	if (state < 0 || (u32)state < *seen)
		return IVSHM_HS_RX_BAD;
	*seen = (u32)state;
	if (state != IVSHM_CHAN_CLOSED)
		return IVSHM_HS_RX_DATA;
	return reset ? IVSHM_HS_RX_RESET : IVSHM_HS_RX_EOF;
}

/**
 * ivshm_hs_may_free() - may a channel we closed be freed before its answer?
 * @r: the answer on it so far
 * @timed_out: the sender waited IVSHM_ORPHAN_TIMEOUT for it
 * @receiver_alive: its receiver is attached to the region
 *
 * A reader that attached (ACCEPTED) reads until it lets go, however long
 * its user keeps the socket: freeing the channel under it would give the
 * slot and the run to another connection while it may still read them.
 * One that never attached has had its chance once the time is up, and one
 * that is gone never answers.
 *
 * Return: whether the sender frees it now.
 */
bool ivshm_hs_may_free(const struct ivshm_hs_reply *r, bool timed_out,
		       bool receiver_alive)
{
	if (ivshm_rx_final(r->rx_state) || !receiver_alive)
		return true;
	return timed_out && r->rx_state != IVSHM_RX_ACCEPTED;
}
