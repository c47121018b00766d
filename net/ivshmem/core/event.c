// SPDX-License-Identifier: GPL-2.0
/*
 * When one side of a ring tells the other: event indexes on a channel.
 *
 * A sender does not notify a reader for every record, nor a reader the
 * sender for every record consumed. Each side that is about to sleep
 * writes in the channel descriptor where it wants to be woken, and the
 * other side notifies once its counter passes that point (the event index
 * of virtio, protocol.md "Notification"):
 *
 *   N3, records for a sleeping reader:
 *   reader (ivshm_event_want_data)      sender (ivshm_event_published)
 *     rx_event = tail, rx_flags = WAIT    publish head                [R1]
 *     full barrier                [N3]    full barrier                [N3]
 *     look at head again                  WAIT and head passed rx_event?
 *                                           notify the reader
 *
 *   N2, room for a waiting sender:
 *   sender (ivshm_event_want_room)      reader (ivshm_event_consumed)
 *     wake_tail, tx_flags |= WAIT         publish tail                [R2]
 *     full barrier                [N2]    full barrier                [N2]
 *     look at tail again                  WAIT and tail passed wake_tail?
 *                                           notify the sender
 *
 * Either the waiter's second look sees the counter move, or the other
 * side's read of the flags after its barrier sees the wait and notifies.
 * The flags and event indexes a peer writes only decide whether we notify
 * it, the only side a wrong value hurts; a notification that is not due
 * costs the peer one wakeup. Every function here makes a fixed number of
 * region accesses, at most four.
 */

#include "core.h"

/**
 * ivshm_event_tx_flags() - set and clear bits of our channel's tx_flags
 * @r: our ring, the producer's side
 * @set: IVSHM_TXF_* bits to set
 * @clear: bits to clear
 *
 * Only the sender writes tx_flags: the value is kept privately and
 * written only when it changes.
 */
void ivshm_event_tx_flags(struct ivshm_ring *r, u32 set, u32 clear)
{
	u32 f = (r->flags | set) & ~clear;

	if (f == r->flags)
		return;
	r->flags = f;
	ivshm_put32(&r->chan->tx_flags, f);
}

/**
 * ivshm_event_want_room() - sleep until the reader freed room (N2)
 * @r: our ring, its tail refreshed by ivshm_tx_room()
 * @len: the payload we wait to write
 *
 * Asks for a notification once the tail reaches the point where the
 * record fits, or half the ring if that is more (ivshm_tx_wake_tail()).
 * The caller looks at the room again after this, before it sleeps.
 */
void ivshm_event_want_room(struct ivshm_ring *r, u32 len)
{
	ivshm_put64(&r->chan->wake_tail, ivshm_tx_wake_tail(r, len));
	ivshm_event_tx_flags(r, IVSHM_TXF_WAIT, 0);
	ivshm_mb();						/* N2 */
}

/* Our counter (head or tail) is at @now, published: is the other side
 * waiting (@wait in @flags) for a point at or below it, that is, has the
 * counter passed @event - @below since the last call? The barrier is N3
 * on the sender's side and N2 on the reader's: the counter is published
 * before the other side's flag and index are read.
 */
static enum ivshm_tell ivshm_event_tell(struct ivshm_ring *r, u64 now,
					const __le32 *flags, u32 wait,
					const __le64 *event, u64 below)
{
	u64 old = r->told;

	if (now == old)
		return IVSHM_TELL_NONE;
	r->told = now;
	ivshm_mb();						/* N2, N3 */
	if ((ivshm_get32(flags) & wait) &&
	    ivshm_passed(ivshm_get64(event) - below, now, old))
		return IVSHM_TELL_PEER;
	return IVSHM_TELL_QUIET;
}

/**
 * ivshm_event_published() - does the reader need telling about our records?
 * @r: our ring, the producer's side
 *
 * The sender's half of N3, after records were published up to
 * @r->published. A reader that sleeps at a tail the new records pass is
 * told once per sleep.
 *
 * Return: IVSHM_TELL_NONE when nothing was published since the last call;
 * IVSHM_TELL_PEER when the caller must notify the reader on the data set;
 * IVSHM_TELL_QUIET when the reader does not wait for these records.
 */
enum ivshm_tell ivshm_event_published(struct ivshm_ring *r)
{
	return ivshm_event_tell(r, r->published, &r->chan->rx_flags,
				IVSHM_RXF_WAIT, &r->chan->rx_event, 0);
}

/**
 * ivshm_event_consumed() - does the sender need telling about room?
 * @r: the peer's ring, the consumer's side
 *
 * The reader's half of N2, after records were consumed up to @r->pos. A
 * sender that waits for room our tail has now passed is told once per
 * wait.
 *
 * Return: as ivshm_event_published(), for the sender.
 */
enum ivshm_tell ivshm_event_consumed(struct ivshm_ring *r)
{
	/* wake_tail is the first tail that has room: passing one below. */
	return ivshm_event_tell(r, r->pos, &r->chan->tx_flags, IVSHM_TXF_WAIT,
				&r->chan->wake_tail, 1);
}

/**
 * ivshm_event_want_data() - sleep until records pass our tail (N3)
 * @r: the peer's ring, the consumer's side
 *
 * The caller looks at the ring again after this, before it sleeps.
 * rx_flags is written only when it changes.
 */
void ivshm_event_want_data(struct ivshm_ring *r)
{
	ivshm_put64(&r->chan->rx_event, r->pos);
	if (!r->waiting) {
		r->waiting = true;
		ivshm_put32(&r->chan->rx_flags, IVSHM_RXF_WAIT);
	}
	ivshm_mb();						/* N3 */
}

/**
 * ivshm_event_have_data() - the reader no longer sleeps for records
 * @r: the peer's ring, the consumer's side
 */
void ivshm_event_have_data(struct ivshm_ring *r)
{
	if (!r->waiting)
		return;
	r->waiting = false;
	ivshm_put32(&r->chan->rx_flags, 0);
}

/**
 * ivshm_event_watch_init() - prepare to spin on the head of a ring
 * @r: the peer's ring, the consumer's side, under its user's lock
 * @w: filled in
 *
 * For busy polling, which spins without that lock: @w keeps what the
 * spin needs, so that it reads nothing of @r. The region stays mapped for
 * as long as the caller holds its device; a channel freed and reused
 * meanwhile only ends the spin early.
 */
void ivshm_event_watch_init(const struct ivshm_ring *r,
			    struct ivshm_event_watch *w)
{
	w->head = &r->chan->head;
	w->tail = r->pos;
}

/* Has the head moved from the tail @w was made at? One load; a hint. */
bool ivshm_event_watch_moved(const struct ivshm_event_watch *w)
{
	return ivshm_get64(w->head) != w->tail;
}

/**
 * ivshm_event_backlog() - how far is the reader of channel @idx behind?
 * @l: the layout
 * @idx: the channel
 * @consumed: the reader's count of records consumed (ring.touch)
 *
 * A hint for moderating doorbells, read from a notification poll without
 * the reader's lock: its values only choose between a doorbell and a timer
 * poll. The tail is read first: the reader may move it meanwhile, and a
 * head read before it could seem to lag behind it. A MOVED record counts
 * as a record.
 *
 * Return: the bytes between tail and head when at least two records wait
 * (a stream rather than one answer), at most IVSHM_RUN_MAX; else 0.
 */
u64 ivshm_event_backlog(const struct ivshm_layout *l, u32 idx, u64 consumed)
{
	struct ivshm_chan *ch;
	u64 head, tail, records;

	if (idx >= l->max_channels)
		return 0;
	ch = ivshm_chan(l, idx);
	tail = ivshm_get64(&ch->tail);
	head = ivshm_get64(&ch->head);
	records = ivshm_get64(&ch->head_touch) - consumed;
	/* Every record takes a header at least: more records than that are
	 * a count that went wrong, not a stream.
	 */
	if (head <= tail || records < 2 ||
	    records > (head - tail) / IVSHM_REC_HDR)
		return 0;
	return head - tail < IVSHM_RUN_MAX ? head - tail : IVSHM_RUN_MAX;
}
