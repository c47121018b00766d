/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The region core: layout and attach (layout.c), the control lock and the
 * block allocator (alloc.c), the single-producer/single-consumer record
 * ring of a channel (ring.c), channel descriptors (desc.c), notification
 * (notify.c), the event indexes that tell when a ring's sides notify each
 * other (event.c) and read-only views for diagnostics (view.c). Portable C,
 * see compat.h.
 *
 * The private state below (struct ivshm_layout, struct ivshm_ring) is what
 * every value read from the region is checked against; it is computed or
 * validated once and never refreshed from the region afterwards.
 */
#ifndef _IVSHM_CORE_H
#define _IVSHM_CORE_H

#include "compat.h"
#include "proto.h"

/* Where everything is, computed from the region size alone. */
struct ivshm_layout {
	u8 *base;
	u64 size;
	u32 max_peers;
	u32 max_channels;
	u32 nr_blocks;			/* data-area blocks */
	u32 bitmap_words;		/* 64-bit words of the block bitmap */
	u32 pending_words;		/* 64-bit words of one pending set */
	u64 peers_off;
	u64 ctrl_off;
	u64 bitmap_off;
	u64 pending_off;
	u64 chan_off;
	u64 data_off;
};

int ivshm_layout_compute(struct ivshm_layout *l, void *base, u64 size);

/* ivshm_region_open() results, besides negative errnos. */
enum ivshm_open_result {
	IVSHM_OPEN_ATTACHED = 0,	/* a valid region was already there */
	IVSHM_OPEN_INITIALISED = 1,	/* we claimed it and wrote the layout */
};

int ivshm_region_open(struct ivshm_layout *l, void *base, u64 size,
		      u32 vm, const char **why);

static inline struct ivshm_hdr *ivshm_hdr(const struct ivshm_layout *l)
{
	return (struct ivshm_hdr *)l->base;
}

static inline struct ivshm_ctrl *ivshm_ctrl(const struct ivshm_layout *l)
{
	return (struct ivshm_ctrl *)(l->base + l->ctrl_off);
}

/* @vm must be below l->max_peers; the callers check it first. */
static inline struct ivshm_peer *ivshm_peer(const struct ivshm_layout *l,
					    u32 vm)
{
	return (struct ivshm_peer *)(l->base + l->peers_off) + vm;
}

/* @idx must be below l->max_channels. */
static inline struct ivshm_chan *ivshm_chan(const struct ivshm_layout *l,
					    u32 idx)
{
	return (struct ivshm_chan *)(l->base + l->chan_off) + idx;
}

/* @vm below l->max_peers, @set below IVSHM_PEND_SETS. */
static inline __le64 *ivshm_pending(const struct ivshm_layout *l, u32 vm,
				    u32 set)
{
	return (__le64 *)(l->base + l->pending_off) +
	       ((u64)vm * IVSHM_PEND_SETS + set) * l->pending_words;
}

/* Is [off, off + len) a whole number of blocks inside the data area? */
bool ivshm_run_valid(const struct ivshm_layout *l, u64 off, u64 len);

/* Notification (notify.c): pending sets and their arming flags. */
enum ivshm_post {
	IVSHM_POST_INVALID,		/* no such VM, set or channel */
	IVSHM_POST_QUIET,		/* bit set; the VM looks without a bell */
	IVSHM_POST_RING,		/* bit set; ring the VM's vector */
};

bool ivshm_notify_mark(const struct ivshm_layout *l, u32 vm, u32 set,
		       u32 idx);
enum ivshm_post ivshm_notify_post(const struct ivshm_layout *l, u32 vm,
				  u32 set, u32 idx, u32 *vector);
u64 ivshm_notify_take(const struct ivshm_layout *l, u32 vm, u32 set,
		      u32 word);
bool ivshm_notify_any(const struct ivshm_layout *l, u32 vm, u32 set);
void ivshm_notify_disarm(const struct ivshm_layout *l, u32 vm, u32 set);
bool ivshm_notify_rearm(const struct ivshm_layout *l, u32 vm, u32 set);

/* Has a counter that moved from @old to @new passed @event, that is, is
 * @old <= @event < @new in free-running arithmetic? The test of virtio's
 * event index: a side that asked to be told at @event is told once.
 */
static inline bool ivshm_passed(u64 event, u64 new, u64 old)
{
	return new - event - 1 < new - old;
}

/* Control lock and allocator (alloc.c). */
bool ivshm_lock_owner_dead(const struct ivshm_layout *l, u64 word);
int ivshm_ctrl_trylock(const struct ivshm_layout *l, u32 vm, u32 inc,
		       u64 *holder);
int ivshm_ctrl_break(const struct ivshm_layout *l, u32 vm, u32 inc, u64 seen);
bool ivshm_ctrl_unlock(const struct ivshm_layout *l, u32 vm, u32 inc);
int ivshm_blocks_alloc(const struct ivshm_layout *l, u32 nblocks, u64 *off);
int ivshm_blocks_alloc_low(const struct ivshm_layout *l, u32 nblocks,
			   u64 *off);
int ivshm_blocks_free(const struct ivshm_layout *l, u64 off, u32 nblocks);
int ivshm_blocks_extend(const struct ivshm_layout *l, u64 off, u32 nblocks,
			u32 more);
u32 ivshm_blocks_alloc_grow(const struct ivshm_layout *l, u32 nblocks,
			    u64 cur_off, u32 cur, u64 *off);
bool ivshm_blocks_fit_below(const struct ivshm_layout *l, u32 nblocks,
			    u64 off);
u32 ivshm_blocks_rebuild(const struct ivshm_layout *l);
u32 ivshm_blocks_hint_free(const struct ivshm_layout *l);
u32 ivshm_blocks_count_free(const struct ivshm_layout *l);
int ivshm_chan_alloc(const struct ivshm_layout *l, u32 *idx);
void ivshm_chan_free(const struct ivshm_layout *l, u32 idx);
u32 ivshm_chan_reclaim(const struct ivshm_layout *l, u32 vm, u32 keep);
u32 ivshm_chan_sweep(const struct ivshm_layout *l);
u32 ivshm_chan_tidy(const struct ivshm_layout *l);
u32 ivshm_chan_count_full(const struct ivshm_layout *l);

/* What a sender writes in the descriptor of a channel it opens (desc.c). */
struct ivshm_desc {
	u32 sender_vm;
	u32 sender_inc;
	u32 receiver_vm;
	u32 pid;
	u32 src_port;
	u32 dst_port;
	u32 size;			/* run bytes, whole blocks */
	u32 state;			/* IVSHM_CHAN_OPEN, or ALLOC for a connect */
	u32 peer_chan;			/* accepting side: the connector's */
	u32 peer_gen;
};

/* What a channel we send on holds, from our private state only: its
 * generation, the incarnation of ours that took it, its run and, while a
 * move is pending, the run it left.
 */
struct ivshm_runs {
	u32 gen;
	u32 inc;
	u32 receiver;			/* the VM it is addressed to */
	u32 size;
	u64 off;
	u64 old_off;
	u32 old_size;			/* 0: no move pending */
};

int ivshm_desc_open(const struct ivshm_layout *l, const struct ivshm_desc *d,
		    u32 *idx, u32 *gen, u64 *off);
bool ivshm_desc_ours(const struct ivshm_layout *l, u32 idx, u32 gen, u32 vm,
		     u32 inc);
int ivshm_desc_publish(const struct ivshm_layout *l, u32 idx, u32 gen, u32 vm,
		       u32 inc, u32 state);
int ivshm_desc_close(const struct ivshm_layout *l, u32 idx,
		     const struct ivshm_runs *runs, u32 vm, u32 inc,
		     u32 *receiver);
u32 ivshm_desc_audit(const struct ivshm_layout *l, u32 vm, u32 inc,
		     const u32 *held);

/* A channel addressed to us, as its receiver read it (handshake.c). */
struct ivshm_hs_line {
	struct ivshm_desc d;		/* d.state: the channel's state now */
	u32 gen;
	u64 off;			/* its run, of d.size bytes */
	u32 rx_state;			/* the answer on it so far */
};

/* The receiver's answer on a channel we send on (handshake.c). */
struct ivshm_hs_reply {
	u32 rx_state;
	u32 peer_chan;			/* after ACCEPTED: its channel to us */
	u32 peer_gen;
};

/* An answer after which the sender frees its channel. */
static inline bool ivshm_rx_final(u32 rx)
{
	return rx == IVSHM_RX_REFUSED || rx == IVSHM_RX_NOBUFS ||
	       rx == IVSHM_RX_CLOSED || rx == IVSHM_RX_RESET;
}

int ivshm_hs_read(const struct ivshm_layout *l, u32 idx,
		  struct ivshm_hs_line *v);
bool ivshm_hs_answer(const struct ivshm_layout *l, u32 idx, u32 gen,
		     u32 answer);
bool ivshm_hs_accept(const struct ivshm_layout *l, u32 idx, u32 gen,
		     u32 inc, const struct ivshm_hs_reply *back);
void ivshm_hs_reply(const struct ivshm_layout *l, u32 idx,
		    struct ivshm_hs_reply *r);
int ivshm_hs_sender_state(const struct ivshm_layout *l, u32 idx, u32 gen,
			  bool *reset);

/* The ends of a connection and our channel, from the connector's private
 * state: what the channel an acceptor names must match.
 */
struct ivshm_hs_ends {
	u32 local_vm;
	u32 local_port;
	u32 remote_vm;
	u32 remote_port;
	u32 idx;			/* our channel */
	u32 gen;
};

/* What an answer on our channel means for the connection. */
enum ivshm_hs_tx {
	IVSHM_HS_TX_NOTHING,		/* connecting: no answer yet */
	IVSHM_HS_TX_REFUSED,		/* connecting: nobody listens */
	IVSHM_HS_TX_NOBUFS,		/* connecting: no room for its channel */
	IVSHM_HS_TX_ATTACH,		/* connecting: accepted; attach */
	IVSHM_HS_TX_OPEN,		/* the reader reads (or will) */
	IVSHM_HS_TX_PEER_CLOSED,	/* the reader let go: EPIPE */
	IVSHM_HS_TX_PEER_RESET,		/* ... with records unread */
	IVSHM_HS_TX_BAD,		/* a protocol error: reset */
};

/* What the state of the channel we read means for the connection. */
enum ivshm_hs_rx {
	IVSHM_HS_RX_DATA,		/* records may come */
	IVSHM_HS_RX_EOF,		/* closed: what is left, then EOF */
	IVSHM_HS_RX_RESET,		/* closed for a failure */
	IVSHM_HS_RX_GONE,		/* freed under us: reset; the news is
					 * the slot's next channel's
					 */
	IVSHM_HS_RX_BAD,		/* a protocol error: reset */
};

/* Region accesses of one call here, at most (the fuzzers check it). */
#define IVSHM_HS_MAX_ACCESS	16

int ivshm_hs_request_check(const struct ivshm_layout *l,
			   const struct ivshm_hs_line *v);
int ivshm_hs_reverse(const struct ivshm_layout *l,
		     const struct ivshm_hs_ends *e,
		     const struct ivshm_hs_reply *r, struct ivshm_hs_line *v);
enum ivshm_hs_tx ivshm_hs_tx_step(u32 *seen, u32 rx, bool connecting);
enum ivshm_hs_rx ivshm_hs_rx_step(u32 *seen, int state, bool reset);
bool ivshm_hs_may_free(const struct ivshm_hs_reply *r, bool timed_out,
		       bool receiver_alive);

/* Peer slots (alloc.c). */
struct ivshm_peer_slot {		/* one peer slot, each field read once */
	u32 state;
	u32 incarnation;
	u32 vectors;
	u64 heartbeat;
};

bool ivshm_peer_read(const struct ivshm_layout *l, u32 vm,
		     struct ivshm_peer_slot *ps);
bool ivshm_peer_still_me(const struct ivshm_layout *l, u32 vm, u32 inc);
void ivshm_peer_beat(const struct ivshm_layout *l, u32 vm, u64 beat);
u32 ivshm_peer_join(const struct ivshm_layout *l, u32 vm, u32 vectors);
u32 ivshm_peer_join_again(const struct ivshm_layout *l, u32 vm, u32 vectors,
			  u32 old);
void ivshm_peer_leave(const struct ivshm_layout *l, u32 vm, u32 inc);
bool ivshm_peer_alive(const struct ivshm_layout *l, u32 vm, u32 *inc);
int ivshm_peer_claim(const struct ivshm_layout *l, u32 vectors, u32 *vm,
		     u32 *inc);
bool ivshm_peer_declare_dead(const struct ivshm_layout *l, u32 vm, u32 inc);
u32 ivshm_peer_reap(const struct ivshm_layout *l, u32 vm);

/* A reserved or received record: up to two pieces, as the ring wraps. */
struct ivshm_span {
	u8 *p[2];
	u32 len[2];
};

/* One side of a channel's ring. */
struct ivshm_ring {
	struct ivshm_chan *chan;
	const struct ivshm_layout *l;
	u8 *ring;			/* start of the current run */
	u32 size;			/* bytes in the current run */
	u32 off;			/* position of @pos in the run */
	u64 pos;			/* tx: head; rx: tail (authoritative) */
	u64 peer;			/* tx: last tail seen; rx: last head */
	u64 touch;			/* tx: records produced; rx: consumed */
	u64 published;			/* tx: head, rx: tail as last published */
	/* tx after a move: capacity stays @cap until the reader passes @cap_until */
	u32 cap;
	u32 bound;			/* tx: largest legal head - tail */
	u64 cap_until;
	/* tx: the record being reserved */
	u32 res_len;
	u16 res_type;
	u16 res_flags;
	/* rx: the record peeked */
	u32 rec_need;
	/* rx: the MOVED rules (ring.c) */
	bool may_move;			/* the caller allows one move */
	bool head_before_move;		/* no head loaded since the last move */
	bool move_pending;		/* a MOVED record waits for a call */
	/* the run left by the last move: tx frees it, rx only reports it */
	u64 old_off;
	u32 old_size;
	/* event indexes (event.c) */
	u64 told;			/* tx: head, rx: tail the peer was told of */
	u32 flags;			/* tx: tx_flags as we last wrote them */
	bool waiting;			/* rx: IVSHM_RXF_WAIT is set */
};

struct ivshm_rec {
	u16 type;
	u16 flags;
	u32 len;
	struct ivshm_span span;
};

/* Most bytes ivshm_tx_queue() holds back before publishing them. */
#define IVSHM_TX_BATCH		(16u << 10)

/* ivshm_rx_peek() result when the ring moved; old_off/old_size are set. */
#define IVSHM_RX_MOVED		1
/* ... when a MOVED record is next but the caller allowed no move. */
#define IVSHM_RX_MOVE_PENDING	2

int ivshm_ring_init(struct ivshm_ring *r, const struct ivshm_layout *l,
		    u32 chan_idx, u64 buff_offset, u32 buff_size);
u32 ivshm_ring_max_record(const struct ivshm_ring *r);
int ivshm_tx_reserve(struct ivshm_ring *r, u32 len, u16 type, u16 flags,
		     struct ivshm_span *span);
void ivshm_tx_queue(struct ivshm_ring *r);
void ivshm_tx_flush(struct ivshm_ring *r);
void ivshm_tx_commit(struct ivshm_ring *r);
int ivshm_tx_move(struct ivshm_ring *r, u64 buff_offset, u32 buff_size);
int ivshm_tx_extend(struct ivshm_ring *r, u32 buff_size);
int ivshm_tx_move_done(struct ivshm_ring *r, u64 *off, u32 *size);
int ivshm_tx_can_move(struct ivshm_ring *r);
u64 ivshm_ring_run(const struct ivshm_ring *r);
void ivshm_rx_allow_move(struct ivshm_ring *r);
int ivshm_rx_peek(struct ivshm_ring *r, struct ivshm_rec *rec);
bool ivshm_rx_changed(const struct ivshm_ring *r, u64 pos);
bool ivshm_tx_changed(const struct ivshm_ring *r, u64 tail);
void ivshm_rx_release(struct ivshm_ring *r);
s64 ivshm_rx_avail(struct ivshm_ring *r);
int ivshm_tx_room(struct ivshm_ring *r, u32 len);
u64 ivshm_tx_wake_tail(const struct ivshm_ring *r, u32 len);
u64 ivshm_tx_unread(const struct ivshm_ring *r);

/* Copy between a span and ordinary memory. */
void ivshm_span_write(const struct ivshm_span *s, const void *src);
void ivshm_span_read(const struct ivshm_span *s, void *dst);

/* Event indexes of a ring (event.c): whether to notify the other side. */
enum ivshm_tell {
	IVSHM_TELL_NONE,		/* nothing new since the last call */
	IVSHM_TELL_QUIET,		/* the peer does not wait for it */
	IVSHM_TELL_PEER,		/* notify the peer on the data set */
};

/* What a busy poll spins on, taken under the ring user's lock. */
struct ivshm_event_watch {
	const __le64 *head;
	u64 tail;
};

void ivshm_event_tx_flags(struct ivshm_ring *r, u32 set, u32 clear);
void ivshm_event_want_room(struct ivshm_ring *r, u32 len);
enum ivshm_tell ivshm_event_published(struct ivshm_ring *r);
enum ivshm_tell ivshm_event_consumed(struct ivshm_ring *r);
void ivshm_event_want_data(struct ivshm_ring *r);
void ivshm_event_have_data(struct ivshm_ring *r);
void ivshm_event_watch_init(const struct ivshm_ring *r,
			    struct ivshm_event_watch *w);
bool ivshm_event_watch_moved(const struct ivshm_event_watch *w);
u64 ivshm_event_backlog(const struct ivshm_layout *l, u32 idx, u64 consumed);

/* Read-only views for diagnostics (view.c): reported, never acted on. */
struct ivshm_region_view {
	u32 free_blocks;		/* the control section's count */
	u32 bitmap_free;		/* counted in the bitmap */
	u32 active_channels;
	u32 peers_alive;
};

struct ivshm_chan_view {
	u32 state;
	u64 head_touch;
	u64 head, tail;			/* the counters as published */
	/* the event indexes (event.c): who waits, and for what */
	u32 tx_flags, rx_flags;
	u64 wake_tail, rx_event;
};

void ivshm_view_region(const struct ivshm_layout *l,
		       struct ivshm_region_view *v);
void ivshm_view_ring(const struct ivshm_ring *r, struct ivshm_chan_view *v);

#endif /* _IVSHM_CORE_H */
