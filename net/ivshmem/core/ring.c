// SPDX-License-Identifier: GPL-2.0
/*
 * The record ring of one channel: lock-free, one producer (the sender's
 * kernel), one consumer (the receiver's kernel).
 *
 * head and tail are free-running byte counters in the channel descriptor;
 * each side keeps its own counter privately (ring.pos) and only publishes
 * it, so the region can never move it. The position of a counter inside
 * the run is tracked privately too (ring.off), with no division.
 *
 * A record is an 8-byte header word (length, type, flags), the payload, and
 * padding to 8 bytes. Headers never straddle the end of the run (runs are
 * whole blocks and records 8-aligned); payloads may wrap, which is why
 * reservations and records come as a span of up to two pieces.
 *
 * Memory ordering (protocol.md has the full table):
 *
 *   producer                          consumer
 *   write payload, header             h = load_acquire(head)     [R1]
 *   store_release(head, pos)  [R1]    read header, payload
 *                                     store_release(tail, pos)   [R2]
 *   t = load_acquire(tail)    [R2]
 *   overwrite space below t
 *
 * R1: the consumer sees a record's bytes once it sees the head covering it.
 * R2: the producer reuses space only after the consumer finished reading it.
 *
 * The peer's counter is validated on every load: the producer requires
 * tail <= head and head - tail <= size (the consumer cannot have read what
 * was not written, nor be more than a ring behind; the counters are 64-bit
 * and never wrap), the consumer requires the same of head, both require
 * that the counter never goes back, and every header the consumer reads
 * must describe a record that fits in what head says is available.
 * A failed check returns -EPROTO and the caller fails the channel; nothing
 * read is ever used unchecked.
 *
 * MOVED records, the one thing that makes the consumer go somewhere else
 * on the producer's word, come under three rules (protocol.md, Receiver
 * rules), so that no sequence of them can keep a consumer busy:
 *  - the run named is valid and at most IVSHM_RUN_MAX bytes;
 *  - at most one is followed per head loaded: an honest producer writes
 *    its next move only after it saw our tail past the last one, which we
 *    publish after loading the head that covered it, so a second MOVED
 *    under the same head is a violation (-EPROTO);
 *  - the consumer follows one only when its caller allowed it, once per
 *    call (ivshm_rx_allow_move()); a further one waits for the next call,
 *    which the producer's notification of the move brings.
 *
 * Private state that a waiter looks at without the caller's lock (pos,
 * peer and move_pending on the consumer's side, pos and peer on the
 * producer's) is written with WRITE_ONCE(), for ivshm_rx_changed() and
 * ivshm_tx_changed(); so is the consumer's count of records consumed
 * (touch), which the notification poll compares with head_touch to tell
 * a stream from a single record.
 */

#include "core.h"

static u32 ivshm_rec_need(u32 len)
{
	return IVSHM_REC_HDR + ALIGN(len, (u32)IVSHM_REC_ALIGN);
}

/* Offset @delta bytes after @off inside a run of @size; delta <= size. */
static u32 ivshm_ring_add(u32 off, u32 delta, u32 size)
{
	u32 o = off + delta;

	return o >= size ? o - size : o;
}

static void ivshm_span_at(struct ivshm_span *s, u8 *ring, u32 size, u32 off,
			  u32 len)
{
	u32 first = size - off;

	s->p[0] = ring + off;
	if (len <= first) {
		s->len[0] = len;
		s->p[1] = ring;
		s->len[1] = 0;
	} else {
		s->len[0] = first;
		s->p[1] = ring;
		s->len[1] = len - first;
	}
}

void ivshm_span_write(const struct ivshm_span *s, const void *src)
{
	memcpy(s->p[0], src, s->len[0]);
	if (s->len[1])
		memcpy(s->p[1], (const u8 *)src + s->len[0], s->len[1]);
}

void ivshm_span_read(const struct ivshm_span *s, void *dst)
{
	memcpy(dst, s->p[0], s->len[0]);
	if (s->len[1])
		memcpy((u8 *)dst + s->len[0], s->p[1], s->len[1]);
}

/**
 * ivshm_ring_init() - set up one side of a channel's ring
 * @r: private ring state
 * @l: layout
 * @chan_idx: channel slot
 * @buff_offset: run offset in the data area (private or already read once)
 * @buff_size: run size in bytes
 *
 * Both counters start at 0 on a new channel.
 *
 * Return: 0 or -EINVAL for a slot or run that cannot exist.
 */
int ivshm_ring_init(struct ivshm_ring *r, const struct ivshm_layout *l,
		    u32 chan_idx, u64 buff_offset, u32 buff_size)
{
	if (chan_idx >= l->max_channels ||
	    !ivshm_run_valid(l, buff_offset, buff_size))
		return -EINVAL;
	memset(r, 0, sizeof(*r));
	r->l = l;
	r->chan = ivshm_chan(l, chan_idx);
	r->ring = l->base + l->data_off + buff_offset;
	r->size = buff_size;
	r->cap = buff_size;
	r->bound = buff_size;
	return 0;
}

/* Producer: bytes usable now, the smaller run while a move is pending. */
static u32 ivshm_tx_cap(const struct ivshm_ring *r)
{
	return r->cap < r->size ? r->cap : r->size;
}

/* Largest payload one record can carry in this ring. */
u32 ivshm_ring_max_record(const struct ivshm_ring *r)
{
	u32 cap = ivshm_tx_cap(r);

	return cap - IVSHM_REC_HDR;
}

/* Producer: refresh and check the consumer's tail. */
static int ivshm_tx_refresh(struct ivshm_ring *r)
{
	u64 t = ivshm_load_acquire64(&r->chan->tail);	/* R2 */

	if (t > r->published || t < r->peer || r->pos - t > r->bound)
		return -EPROTO;
	WRITE_ONCE(r->peer, t);
	if (r->cap_until && t >= r->cap_until) {
		/* The reader has left the old run. */
		r->cap = r->size;
		r->bound = r->size;
		r->cap_until = 0;
	}
	return 0;
}

/**
 * ivshm_tx_reserve() - make room for a record
 * @r: producer ring
 * @len: payload bytes
 * @type: enum ivshm_rec_type
 * @flags: IVSHM_REC_F_*
 * @span: where to write the payload
 *
 * Return: 0; -EMSGSIZE if @len can never fit in this run; -EAGAIN if it
 * does not fit now; -EPROTO if the consumer's tail is impossible.
 */
int ivshm_tx_reserve(struct ivshm_ring *r, u32 len, u16 type, u16 flags,
		     struct ivshm_span *span)
{
	u32 need, cap = ivshm_tx_cap(r);
	int ret;

	if (len > cap - IVSHM_REC_HDR) {
		if (len > r->size - IVSHM_REC_HDR)
			return -EMSGSIZE;
		/* Held down by a move the reader may have passed by now. */
		ret = ivshm_tx_refresh(r);
		if (ret)
			return ret;
		cap = ivshm_tx_cap(r);
		if (len > cap - IVSHM_REC_HDR)
			goto full;
	}
	need = ivshm_rec_need(len);
	if (r->pos - r->peer + need > cap) {
		ret = ivshm_tx_refresh(r);
		if (ret)
			return ret;
		cap = ivshm_tx_cap(r);
		if (r->pos - r->peer + need > cap)
			goto full;
	}
	r->res_len = len;
	r->res_type = type;
	r->res_flags = flags;
	ivshm_span_at(span, r->ring, r->size,
		      ivshm_ring_add(r->off, IVSHM_REC_HDR, r->size), len);
	return 0;
full:
	/* Whoever waits for room must not sit on records the consumer
	 * cannot see yet: they may be what it is waiting for.
	 */
	ivshm_tx_flush(r);
	return -EAGAIN;
}

/* Producer: make every queued record visible to the consumer. */
void ivshm_tx_flush(struct ivshm_ring *r)
{
	if (r->pos == r->published)
		return;
	r->published = r->pos;
	ivshm_store_release64(&r->chan->head, r->pos);		/* R1 */
	ivshm_put64(&r->chan->data_size, r->pos - r->peer);
	ivshm_put64(&r->chan->head_touch, r->touch);
}

/* Queue the reserved record, whose payload the caller has written, without
 * publishing it yet: a sender with more records to come (MSG_MORE,
 * sendmmsg) saves the consumer one transfer of the head's cache line per
 * record. The queue is published by ivshm_tx_flush(), by ivshm_tx_commit(),
 * by a reserve that finds the ring full, and by itself once it holds
 * IVSHM_TX_BATCH bytes or a quarter of the run, so the consumer is never
 * starved for long nor the producer left waiting on records only it sees.
 */
void ivshm_tx_queue(struct ivshm_ring *r)
{
	u32 need = ivshm_rec_need(r->res_len);
	__le64 *hdr = (__le64 *)(r->ring + r->off);
	u32 batch = r->size / 4 < IVSHM_TX_BATCH ? r->size / 4 : IVSHM_TX_BATCH;

	ivshm_put64(hdr, IVSHM_REC_WORD(r->res_len, r->res_type, r->res_flags));
	WRITE_ONCE(r->pos, r->pos + need);
	r->off = ivshm_ring_add(r->off, need, r->size);
	r->touch++;
	if (r->pos - r->published >= batch)
		ivshm_tx_flush(r);
}

/* Publish the reserved record and everything queued before it. */
void ivshm_tx_commit(struct ivshm_ring *r)
{
	ivshm_tx_queue(r);
	ivshm_tx_flush(r);
}

/**
 * ivshm_tx_relocate() - continue the ring in another run, or a longer one
 * @r: producer ring
 * @buff_offset: the new run, already allocated
 * @buff_size: its size
 * @extend: the new run is the current one made longer
 *
 * Context: the control lock is held, because the descriptor's identity
 * line changes: buff_offset/buff_size name the new run and
 * old_offset/old_size the old one, which stays allocated until the consumer
 * has left it (ivshm_tx_move_done()). A rebuild therefore never frees a run
 * the consumer may still read.
 *
 * Writes a MOVED record at the current record boundary and switches to the
 * new run at once. Until the consumer has passed the MOVED record, the
 * capacity stays at the smaller of the two runs, so the consumer's check
 * head - tail <= size holds with either size, while the check of the
 * consumer's tail allows the larger, since unread bytes of the old run may
 * exceed the new run's size. One move at a time: a second one waits until
 * the consumer has passed the first and its old run is freed.
 *
 * With @extend, the run is extended in place (IVSHM_MOVED_F_EXTEND): the
 * ring goes on right after the MOVED record, which must not wrap, and
 * wraps at the new size from then on. Every unread byte keeps its place:
 * with the capacity held at the old size until the consumer passes the
 * record, a byte written after it lands at least a whole old run after
 * every unread one, which is where the consumer has finished reading
 * (protocol.md, Extending in place).
 *
 * Return: 0, -EINVAL for a bad run, -EBUSY while a move is pending, -EAGAIN
 * if the old run has no room for the MOVED record yet (or, extending, the
 * record would wrap), -EPROTO as for ivshm_tx_reserve().
 */
static int ivshm_tx_relocate(struct ivshm_ring *r, u64 buff_offset,
			     u32 buff_size, bool extend)
{
	const struct ivshm_layout *l = r->l;
	u32 need = ivshm_rec_need(sizeof(struct ivshm_rec_moved));
	u64 old_off = ivshm_ring_run(r);
	struct ivshm_rec_moved m;
	struct ivshm_span span;
	u32 old = r->size;
	int ret;

	if (!ivshm_run_valid(l, buff_offset, buff_size) ||
	    (extend && buff_size <= old))
		return -EINVAL;
	if (r->old_size || r->cap_until)
		return -EBUSY;
	if (extend && r->off + need > old)
		return -EAGAIN;
	ret = ivshm_tx_reserve(r, sizeof(m), IVSHM_REC_MOVED, 0, &span);
	if (ret)
		return ret;
	m.buff_offset = cpu_to_le64(buff_offset);
	m.buff_size = cpu_to_le32(buff_size);
	m.flags = cpu_to_le32(extend ? IVSHM_MOVED_F_EXTEND : 0);
	ivshm_span_write(&span, &m);

	if (!extend) {
		ivshm_put64(&r->chan->old_offset, old_off);
		ivshm_put32(&r->chan->old_size, old);
		ivshm_put64(&r->chan->buff_offset, buff_offset);
	}
	ivshm_put32(&r->chan->buff_size, buff_size);
	if (extend) {
		/* The record does not wrap: go on right after it. */
		u32 off = r->off + need;

		ivshm_tx_commit(r);
		r->off = off;
		r->size = buff_size;
		r->cap = old;
		r->bound = old;
	} else {
		ivshm_tx_commit(r);
		r->old_off = old_off;
		r->old_size = old;
		r->ring = l->base + l->data_off + buff_offset;
		r->size = buff_size;
		r->off = 0;
		r->cap = old < buff_size ? old : buff_size;
		r->bound = old > buff_size ? old : buff_size;
	}
	r->cap_until = r->pos;
	return 0;
}

/* Move to another run: see ivshm_tx_relocate(). Control lock held. */
int ivshm_tx_move(struct ivshm_ring *r, u64 buff_offset, u32 buff_size)
{
	return ivshm_tx_relocate(r, buff_offset, buff_size, false);
}

/* Extend the run in place to @buff_size bytes, the blocks after it already
 * taken: see ivshm_tx_relocate(). Control lock held.
 */
int ivshm_tx_extend(struct ivshm_ring *r, u32 buff_size)
{
	return ivshm_tx_relocate(r, ivshm_ring_run(r), buff_size, true);
}

/**
 * ivshm_tx_move_done() - has the consumer left the old run?
 * @r: producer ring after ivshm_tx_move()
 * @off: the old run's data-area offset, when done
 * @size: its size, when done
 *
 * Context: the control lock is held. When this returns 1, the descriptor no
 * longer names the old run, the caller frees it, the full capacity of the
 * new run is usable and another move may start.
 *
 * Return: 1 when done, 0 when no move is pending or the consumer is still
 * in the old run, -EPROTO for an impossible tail.
 */
int ivshm_tx_move_done(struct ivshm_ring *r, u64 *off, u32 *size)
{
	int ret;

	if (!r->old_size)
		return 0;
	ret = ivshm_tx_refresh(r);
	if (ret)
		return ret;
	if (r->cap_until)
		return 0;
	ivshm_put32(&r->chan->old_size, 0);
	ivshm_put64(&r->chan->old_offset, 0);
	*off = r->old_off;
	*size = r->old_size;
	r->old_size = 0;
	return 1;
}

/**
 * ivshm_tx_can_move() - could ivshm_tx_move() succeed now?
 * @r: producer ring
 *
 * No move is pending (the consumer has passed the last MOVED record, even
 * if its old run is not freed yet) and the ring has room for a MOVED record.
 *
 * Return: 1 if so, 0 if not yet, -EPROTO for an impossible tail.
 */
int ivshm_tx_can_move(struct ivshm_ring *r)
{
	int ret = ivshm_tx_refresh(r);

	if (ret)
		return ret;
	if (r->cap_until)
		return 0;
	return r->pos - r->peer + ivshm_rec_need(sizeof(struct ivshm_rec_moved)) <=
	       ivshm_tx_cap(r);
}

/* Data-area offset of the run the ring uses now. */
u64 ivshm_ring_run(const struct ivshm_ring *r)
{
	return (u64)(r->ring - r->l->base - r->l->data_off);
}

/* Consumer: refresh and check the producer's head. */
static int ivshm_rx_refresh(struct ivshm_ring *r)
{
	u64 h = ivshm_load_acquire64(&r->chan->head);		/* R1 */

	if (h < r->pos || h < r->peer || h - r->pos > r->size)
		return -EPROTO;
	WRITE_ONCE(r->peer, h);
	r->head_before_move = false;
	return 0;
}

/**
 * ivshm_rx_allow_move() - let the next peek follow one MOVED record
 * @r: consumer ring
 *
 * Called once per call that reads the ring (a receive, a poll, a control
 * event, a wakeup): however many MOVED records a producer chains, a call
 * follows one of them; the next is followed by the next call, which the
 * producer's notification of its move brings.
 */
void ivshm_rx_allow_move(struct ivshm_ring *r)
{
	r->may_move = true;
}

/**
 * ivshm_rx_peek() - look at the next record without consuming it
 * @r: consumer ring
 * @rec: the record: type, flags, length and where its payload is
 *
 * A MOVED record is handled here, under the rules at the top of this
 * file: if the caller allowed a move (ivshm_rx_allow_move()), the ring
 * switches to the new run, the old run is noted in @r->old_off/@r->old_size
 * (the producer frees it once it sees the tail past the MOVED record), and
 * IVSHM_RX_MOVED is returned: call again for the next record. Otherwise the
 * record stays, @r->move_pending says so, and IVSHM_RX_MOVE_PENDING is
 * returned. A record of another type found there (a peer may rewrite the
 * header of a record it published) clears @r->move_pending.
 *
 * Return: 0; IVSHM_RX_MOVED; IVSHM_RX_MOVE_PENDING; -EAGAIN when empty;
 * -EPROTO when the producer published something impossible.
 */
int ivshm_rx_peek(struct ivshm_ring *r, struct ivshm_rec *rec)
{
	u64 avail = r->peer - r->pos, word;
	u32 len, need;
	u16 type, flags;
	int ret;

	if (avail < IVSHM_REC_HDR) {
		ret = ivshm_rx_refresh(r);
		if (ret)
			return ret;
		avail = r->peer - r->pos;
		if (!avail)
			return -EAGAIN;
		if (avail < IVSHM_REC_HDR)
			return -EPROTO;
	}

	/* One load of the header; decode the private copy only. */
	word = ivshm_get64((__le64 *)(r->ring + r->off));
	len = IVSHM_REC_LEN(word);
	type = IVSHM_REC_TYPE(word);
	flags = IVSHM_REC_FLAGS(word);
	if (len > r->size - IVSHM_REC_HDR || !type ||
	    type >= IVSHM_REC_NR_TYPES || flags & ~IVSHM_REC_F_ALL)
		return -EPROTO;
	need = ivshm_rec_need(len);
	if (need > avail)
		return -EPROTO;

	rec->type = type;
	rec->flags = flags;
	rec->len = len;
	ivshm_span_at(&rec->span, r->ring, r->size,
		      ivshm_ring_add(r->off, IVSHM_REC_HDR, r->size), len);
	r->rec_need = need;

	if (type == IVSHM_REC_MOVED) {
		struct ivshm_rec_moved m;
		u64 noff, ooff = ivshm_ring_run(r);
		u32 nsize, mflags, off;

		if (len != sizeof(m) || flags || r->head_before_move)
			return -EPROTO;
		if (!r->may_move) {
			WRITE_ONCE(r->move_pending, true);
			return IVSHM_RX_MOVE_PENDING;
		}
		ivshm_span_read(&rec->span, &m);
		noff = le64_to_cpu(m.buff_offset);
		nsize = le32_to_cpu(m.buff_size);
		mflags = le32_to_cpu(m.flags);
		if (nsize > IVSHM_RUN_MAX || !ivshm_run_valid(r->l, noff, nsize) ||
		    mflags & ~IVSHM_MOVED_F_EXTEND)
			return -EPROTO;
		r->may_move = false;
		r->head_before_move = true;
		WRITE_ONCE(r->move_pending, false);
		if (mflags & IVSHM_MOVED_F_EXTEND) {
			/* Same start, longer, and a record that did not wrap:
			 * the ring goes on right after it.
			 */
			if (noff != ooff || nsize <= r->size ||
			    r->off + need > r->size)
				return -EPROTO;
			off = r->off + need;
			r->old_off = 0;
			r->old_size = 0;
			ivshm_rx_release(r);
			r->off = off;
			r->size = nsize;
			return IVSHM_RX_MOVED;
		}
		r->old_off = ooff;
		r->old_size = r->size;
		ivshm_rx_release(r);
		r->ring = r->l->base + r->l->data_off + noff;
		r->size = nsize;
		r->off = 0;
		return IVSHM_RX_MOVED;
	}
	if (r->move_pending)
		WRITE_ONCE(r->move_pending, false);
	return 0;
}

/* Consume the record last returned by ivshm_rx_peek(). */
void ivshm_rx_release(struct ivshm_ring *r)
{
	WRITE_ONCE(r->touch, r->touch + 1);
	WRITE_ONCE(r->pos, r->pos + r->rec_need);
	r->off = ivshm_ring_add(r->off, r->rec_need, r->size);
	r->rec_need = 0;
	ivshm_store_release64(&r->chan->tail, r->pos);		/* R2 */
}

/**
 * ivshm_rx_avail() - bytes the producer published that we have not consumed
 * @r: consumer ring
 *
 * Return: the byte count (record headers included), or -EPROTO.
 */
s64 ivshm_rx_avail(struct ivshm_ring *r)
{
	int ret = ivshm_rx_refresh(r);

	if (ret)
		return ret;
	return (s64)(r->peer - r->pos);
}

/**
 * ivshm_tx_room() - could a record of @len bytes be reserved now?
 * @r: producer ring
 * @len: payload bytes
 *
 * Return: 1 if yes, 0 if not yet, -EMSGSIZE if never, -EPROTO.
 */
int ivshm_tx_room(struct ivshm_ring *r, u32 len)
{
	u32 cap;
	int ret;

	if (len > r->size - IVSHM_REC_HDR)
		return -EMSGSIZE;
	ret = ivshm_tx_refresh(r);
	if (ret)
		return ret;
	cap = ivshm_tx_cap(r);
	if (len > cap - IVSHM_REC_HDR)
		return 0;
	return r->pos - r->peer + ivshm_rec_need(len) <= cap;
}

/**
 * ivshm_tx_wake_tail() - the tail at which a waiting producer has room
 * @r: the producer's ring, its tail refreshed by ivshm_tx_room()
 * @len: the payload it waits to write
 *
 * Room for the record, or half the usable ring if that is more: waking the
 * producer for every record consumed would cost a notification per record.
 * A tail at or past the value returned leaves room for the record; since
 * the usable capacity only grows, that stays true whatever the consumer
 * does meanwhile.
 *
 * Return: the tail value, or 0 when any tail does.
 */
u64 ivshm_tx_wake_tail(const struct ivshm_ring *r, u32 len)
{
	u32 cap = ivshm_tx_cap(r);
	u64 need = ivshm_rec_need(len);
	u64 want = need > cap / 2 ? need : cap / 2;

	if (want > cap)
		want = cap;
	return r->pos + want > cap ? r->pos + want - cap : 0;
}

/**
 * ivshm_rx_changed() - may a waiting consumer find something new?
 * @r: consumer ring; the caller need not hold the lock its users take
 * @pos: @r->pos when the waiter looked last, and found the ring empty
 *	(ivshm_rx_peek() returned -EAGAIN: the head it loaded was @pos) or a
 *	MOVED record waiting for a call
 *
 * For wait conditions, which run without that lock: it only loads and
 * compares, and changes nothing. True when someone else consumed meanwhile
 * (a MOVED record followed by another call), or, unless a MOVED record
 * waits for such a call, when the producer's head is not @pos: a head that
 * moves while a MOVED waits is no reason to look again, however often a
 * peer moves it.
 *
 * The head is compared with what the waiter saw, not with @r->peer: any
 * holder of the lock may load the head meanwhile (a poll, SIOCINQ, the
 * diagnostics), and the wakeup of what it loaded may have come before
 * the waiter slept.
 */
bool ivshm_rx_changed(const struct ivshm_ring *r, u64 pos)
{
	if (READ_ONCE(r->pos) != pos)
		return true;
	if (READ_ONCE(r->move_pending))
		return false;
	return ivshm_get64(&r->chan->head) != pos;
}

/**
 * ivshm_tx_changed() - may a waiting producer find room now?
 * @r: producer ring; the caller need not hold the lock its users take
 * @tail: the consumer's tail as the waiter loaded it last (@r->peer then)
 *
 * For wait conditions: only loads and compares. True when the consumer's
 * tail is not @tail. Not @r->peer: whoever holds the lock meanwhile (the
 * rebalancing pass) may load the tail, and the wakeup of that tail may
 * have come before the waiter slept. The tail only moves forward (a tail
 * that goes back fails the next refresh), so a peer can make this true at
 * most once per byte of the ring between two of our refreshes.
 */
bool ivshm_tx_changed(const struct ivshm_ring *r, u64 tail)
{
	return ivshm_get64(&r->chan->tail) != tail;
}

/* Producer: bytes published that the consumer has not consumed. */
u64 ivshm_tx_unread(const struct ivshm_ring *r)
{
	u64 t = ivshm_load_acquire64(&r->chan->tail);		/* R2 */

	return t <= r->published ? r->published - t : 0;
}
