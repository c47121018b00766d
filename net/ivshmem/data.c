// SPDX-License-Identifier: GPL-2.0
/*
 * The data path of a connection: sendmsg() writes a record straight from
 * the user's iovec into the ring of the channel we send on, recvmsg()
 * copies one from the peer's channel straight into the user's iovec, and
 * busy polling watches that ring before a reader sleeps. There is no
 * socket buffer in between, so a record is never dropped, and a slow
 * receiver stops the sender when the ring is full.
 *
 * Notifications follow virtio's event index: a reader about to sleep
 * writes rx_event, the tail it sleeps at, and the writer notifies only when
 * a publication of its moves head past it, so a reader hears once per
 * sleep however many records come meanwhile; a writer waiting for room
 * writes wake_tail and the reader notifies once, when its tail passes it
 * (barriers N2 and N3 in protocol.md; the decisions are core/event.c's).
 *
 * Everything here runs under the socket lock (sock.h), but the busy poll's
 * spin, which drops it, and the wait conditions, which sk_wait_event()
 * evaluates without it and which therefore only look. A failed check of
 * what the peer wrote resets the connection (socket.c,
 * ivshm_sock_proto_error()).
 */

#include <linux/sched/signal.h>
#include <linux/uio.h>
#include <net/busy_poll.h>

#include "chan.h"
#include "device.h"
#include "netlink.h"
#include "sock.h"
#include "stats.h"
#include "trace.h"

/* Could a record of @len be sent now? 1 if so, 0 not yet, or the error
 * that trying would meet. A record larger than the run (which shrank while
 * the channel was idle) can be sent once the run may grow: no move pending
 * and room for the MOVED record.
 */
static int ivshm_data_room(struct ivshm_sock *isk, u32 len)
{
	int ret = ivshm_tx_room(&isk->tx, len);

	if (ret == -EMSGSIZE)
		ret = ivshm_tx_can_move(&isk->tx);
	return ret;
}

/* A reason for a waiting sender, who saw the reader's tail at @tail, to
 * look again: an error, a shutdown, or a tail the reader moved since
 * (ring.c; room grows only when it does). A wait condition: it only loads
 * and compares.
 */
static bool ivshm_data_tx_ready(struct ivshm_sock *isk, u64 tail)
{
	struct sock *sk = &isk->sk;

	if (READ_ONCE(sk->sk_err) ||
	    (READ_ONCE(sk->sk_shutdown) & SEND_SHUTDOWN) ||
	    !READ_ONCE(isk->has_tx))
		return true;
	return ivshm_tx_changed(&isk->tx, tail);
}

/* Tell the peer about our data path: a data notification. */
static void ivshm_data_notify(struct ivshm_sock *isk, u32 idx)
{
	isk->cs.notifies++;
	if (ivshm_notify(isk->idev, isk->remote.sivshm_vm, idx,
			 IVSHM_PEND_DATA) == IVSHM_NOTIFY_RANG)
		isk->cs.rings++;
}

/* We published records up to tx.published: notify the reader if it sleeps
 * at a tail they pass, once per sleep (N3, core/event.c).
 */
static void ivshm_data_published(struct ivshm_sock *isk)
{
	sock_owned_by_me(&isk->sk);
	switch (ivshm_event_published(&isk->tx)) {
	case IVSHM_TELL_PEER:
		ivshm_data_notify(isk, isk->tx_idx);
		break;
	case IVSHM_TELL_QUIET:
		isk->cs.suppressed++;
		ivshm_stat_inc(isk->idev, IVSHM_STAT_SUPPRESSED);
		break;
	case IVSHM_TELL_NONE:
		break;
	}
}

/* We wrote a MOVED record. The reader must pass it before we can use the
 * whole new run, or free the old one, even if its user reads nothing: tell
 * it on the control set too, whose handler passes a MOVED record that is
 * next in the ring (ivshm_rx_event()).
 */
void ivshm_data_moved(struct ivshm_sock *isk)
{
	struct ivshm_nl_chan c = {
		.idx = isk->tx_idx,
		.sender = isk->idev->own_id,
		.receiver = isk->remote.sivshm_vm,
		.size = isk->tx.size,
	};

	ivshm_nl_chan_event(isk->idev, IVSHMEM_CMD_CHAN_RESIZED, &c);
	isk->cs.resizes++;
	ivshm_data_published(isk);
	ivshm_notify(isk->idev, isk->remote.sivshm_vm, isk->tx_idx,
		     IVSHM_PEND_CTRL);
}

/* Take the time a growth spent waiting for the control lock off the
 * caller's timeout.
 */
static void ivshm_data_spent(long *timeo, unsigned long since)
{
	long spent = (long)(jiffies - since);

	if (*timeo != MAX_SCHEDULE_TIMEOUT)
		*timeo = *timeo > spent ? *timeo - spent : 0;
}

/* Declared dead (ivshm_sock_fenced()): reset the connection as our
 * liveness work would, before anything of it is written to the region.
 * For the socket's calls, each time round before they write; a
 * connection without channels has nothing to write.
 */
static int ivshm_data_fence(struct ivshm_sock *isk)
{
	if (!(isk->has_tx || isk->has_rx) || likely(!ivshm_sock_fenced(isk)))
		return 0;
	ivshm_sock_fail(isk, ECONNRESET);
	return sock_error(&isk->sk);
}

/* The channel's run is smaller than a record of @len bytes, because it
 * shrank while idle: give it back the size it was opened with, which holds
 * any record the socket accepts.
 *
 * Return: 0 when it moved (the record fits once the reader has passed the
 * move); -EAGAIN to wait for the reader, whose tail must move first (it
 * has not passed the last move, or the ring has no room for a MOVED record);
 * -EBUSY when the region's control lock stayed busy for @timeo (the
 * sender's timeout, 0 for a nonblocking one), which no notification
 * announces; -ENOBUFS when the region has no room; -ENOLINK when we were
 * declared dead; -EINTR for a signal; -EPROTO.
 */
static int ivshm_data_grow_for(struct ivshm_sock *isk, long timeo)
{
	struct ivshm_ring *r = &isk->tx;
	unsigned long since = jiffies;
	int ret;

	ret = ivshm_chan_move_done(isk->idev, isk->tx_idx, isk->tx_gen,
				   isk->tx_inc, r, timeo);
	if (ret < 0)
		return ret;
	/* Both waits for the lock together stay within the timeout. */
	ivshm_data_spent(&timeo, since);
	ret = ivshm_tx_can_move(r);
	if (ret <= 0)
		return ret ? ret : -EAGAIN;
	/* The reader left the old run, which is still ours: the lock that
	 * frees it was busy.
	 */
	if (r->old_size)
		return -EBUSY;
	/* Under the socket lock the tail only moves on: the ring keeps room
	 * for the MOVED record, and -EBUSY now means the control lock.
	 */
	ret = ivshm_chan_move(isk->idev, isk->tx_idx, isk->tx_gen,
			      isk->tx_inc, r, isk->tx_max_run, 0, timeo);
	if (ret > 0) {
		ivshm_stat_inc(isk->idev, IVSHM_STAT_GROWN);
		ivshm_data_moved(isk);
		return 0;
	}
	if (ret == -ENOBUFS)
		ivshm_stat_inc(isk->idev, IVSHM_STAT_GROW_FAILED);
	/* (No room for the MOVED record cannot be: the ring had it, and the
	 * tail only moves on. Should it be, the caller sleeps before it asks
	 * again, as for the lock, rather than ask at once.)
	 */
	return ret == -EAGAIN ? -EBUSY : ret;
}

/* How long a sender that must grow its channel waits before it asks for
 * the region's control lock again, once a wait for it (as long as its
 * timeout allowed, a second at most) came to nothing.
 */
#define IVSHM_DATA_LOCK_RETRY	(HZ / 10)

/* Sleep for room (or for the reader to pass a move) as
 * ivshm_sock_wait() does; with @lock_busy, for IVSHM_DATA_LOCK_RETRY at
 * most, the rest of *@timeo staying the caller's. A signal that comes
 * meanwhile ends the call, restartable as any wait for room.
 */
static int ivshm_data_wait_room(struct ivshm_sock *isk, long *timeo,
				bool lock_busy)
{
	u64 tail = isk->tx.peer;
	long slice, left;
	int ret;

	if (!lock_busy || *timeo <= IVSHM_DATA_LOCK_RETRY)
		return ivshm_sock_wait(isk, timeo, ivshm_data_tx_ready, tail);
	slice = IVSHM_DATA_LOCK_RETRY;
	left = slice;
	/* With time left it fails only for a signal, whose error is the
	 * caller's timeout's to decide.
	 */
	ret = ivshm_sock_wait(isk, &left, ivshm_data_tx_ready, tail);
	if (*timeo != MAX_SCHEDULE_TIMEOUT)
		*timeo -= slice - left;
	if (ret || signal_pending(current))
		ret = sock_intr_errno(*timeo);
	return ret;
}

/* Reserve room for a record of @len bytes in the channel we send on,
 * growing it back if it shrank below the record, and waiting for room as
 * the sender asked (@timeo).
 *
 * Each trip round the loop sleeps, or follows progress that has a bound:
 * a move made (the next reserve then waits for the reader to pass it), or
 * room or a chance to move that the reader's tail made (which goes only
 * forward, up to what we published).
 *
 * Context: the socket lock held.
 * Return: 0 with @span reserved; -EAGAIN, a signal's error, the socket's
 * error, -EPIPE, -ENOBUFS, -ECONNRESET (we had been declared dead).
 */
static int ivshm_data_reserve(struct ivshm_sock *isk, u32 len, long *timeo,
			      struct ivshm_span *span)
{
	struct sock *sk = &isk->sk;
	int ret;

	for (;;) {
		bool lock_busy = false;

		ret = ivshm_data_fence(isk);
		if (ret)
			return ret;
		ret = ivshm_tx_reserve(&isk->tx, len, IVSHM_REC_DATA, 0, span);
		if (ret == -EMSGSIZE) {
			unsigned long since = jiffies;

			ret = ivshm_data_grow_for(isk, *timeo);
			ivshm_data_spent(timeo, since);
			if (!ret)
				continue;
			/* It may have waited for the lock a while. */
			if (ret == -EBUSY && ivshm_data_fence(isk))
				return -ECONNRESET;
			if (ret == -EBUSY) {
				lock_busy = true;
				ret = -EAGAIN;
			}
		}
		if (ret != -EAGAIN)
			break;
		/* Backpressure: the next rebalance grows the channel. */
		isk->tx_full++;
		/* A full ring published what it held back: say so first. */
		ivshm_tx_flush(&isk->tx);
		ivshm_data_published(isk);
		ivshm_event_want_room(&isk->tx, len);
		if (!lock_busy && ivshm_data_room(isk, len))
			continue;
		ret = ivshm_data_wait_room(isk, timeo, lock_busy);
		if (ret)
			return ret;
		ret = sock_error(sk);
		if (ret)
			return ret;
		if ((sk->sk_shutdown & SEND_SHUTDOWN) || !isk->has_tx)
			return -EPIPE;
	}
	switch (ret) {
	case 0:
	case -ENOBUFS:
		return ret;
	case -EINTR:
		return sock_intr_errno(*timeo);
	case -ENOLINK:
		/* Our channel was reaped: we had been declared dead. */
		ivshm_sock_fail(isk, ECONNRESET);
		return -ECONNRESET;
	default:
		ivshm_sock_proto_error(isk, isk->tx_idx, "tail invalid");
		return sock_error(sk);
	}
}

int ivshm_data_sendmsg(struct socket *sock, struct msghdr *msg, size_t len)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	int flags = msg->msg_flags;
	struct ivshm_span span;
	long timeo;
	size_t n;
	int ret;

	if (flags & MSG_OOB)
		return -EOPNOTSUPP;

	lock_sock(sk);
	ret = sock_error(sk);
	if (ret)
		goto out;
	if (sk->sk_shutdown & SEND_SHUTDOWN) {
		ret = -EPIPE;
		goto out;
	}
	if (sk->sk_state != TCP_ESTABLISHED || !isk->has_tx) {
		ret = -ENOTCONN;
		goto out;
	}
	if (len > isk->tx_max_run - IVSHM_REC_HDR) {
		ret = -EMSGSIZE;
		goto out;
	}
	/* has_tx holds: idev is set. */
	trace_ivshm_sendmsg(isk->idev->index, isk->tx_idx, len);

	timeo = sock_sndtimeo(sk, flags & MSG_DONTWAIT);
	ret = ivshm_data_reserve(isk, (u32)len, &timeo, &span);
	if (ret)
		goto out;
	ivshm_event_tx_flags(&isk->tx, 0, IVSHM_TXF_WAIT);

	n = copy_from_iter(span.p[0], span.len[0], &msg->msg_iter);
	if (n == span.len[0] && span.len[1])
		n += copy_from_iter(span.p[1], span.len[1], &msg->msg_iter);
	if (n != len) {
		/* Nothing was committed: the reservation is simply dropped. */
		ret = -EFAULT;
		goto out;
	}
	/* The copy may have slept on a fault: look again before publishing
	 * (a reservation dropped with the channel is never published).
	 */
	ret = ivshm_data_fence(isk);
	if (ret)
		goto out;
	if (flags & (MSG_MORE | MSG_BATCH))
		ivshm_tx_queue(&isk->tx);
	else
		ivshm_tx_commit(&isk->tx);
	ivshm_data_published(isk);
	isk->cs.tx_records++;
	isk->cs.tx_bytes += len;
	ivshm_stat_inc(isk->idev, IVSHM_STAT_TX_RECORDS);
	ivshm_stat_add(isk->idev, IVSHM_STAT_TX_BYTES, len);
	ret = (int)len;
out:
	if (ret == -EPIPE && !(flags & MSG_NOSIGNAL))
		send_sig(SIGPIPE, current, 0);
	release_sock(sk);
	return ret;
}

/* A reason for a waiting reader, whose tail was @pos, to look again: an
 * error, a shutdown, or news in the ring (ivshm_rx_changed()). A wait
 * condition: it only loads and compares.
 */
static bool ivshm_data_rx_ready(struct ivshm_sock *isk, u64 pos)
{
	struct sock *sk = &isk->sk;

	if (READ_ONCE(sk->sk_err) ||
	    (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN) ||
	    !READ_ONCE(isk->has_rx))
		return true;
	return ivshm_rx_changed(&isk->rx, pos);
}

/* We consumed records: notify the sender if it waits for room our tail
 * has now passed, once per wait (N2, core/event.c).
 */
void ivshm_data_consumed(struct ivshm_sock *isk)
{
	sock_owned_by_me(&isk->sk);
	if (ivshm_event_consumed(&isk->rx) == IVSHM_TELL_PEER)
		ivshm_data_notify(isk, isk->rx_idx);
}

/* About to sleep for records: ask the sender to notify us once records
 * pass our tail (N3).
 */
void ivshm_data_want(struct ivshm_sock *isk)
{
	sock_owned_by_me(&isk->sk);
	if (isk->has_rx)
		ivshm_event_want_data(&isk->rx);
}

/* The next record for the user, past one MOVED record at most, as any
 * call may follow: ivshm_rx_peek()'s result, never IVSHM_RX_MOVED.
 */
int ivshm_data_next(struct ivshm_sock *isk, struct ivshm_rec *rec)
{
	int ret;

	sock_owned_by_me(&isk->sk);
	/* Passing a MOVED record writes our tail. */
	ret = ivshm_data_fence(isk);
	if (ret)
		return ret;
	ivshm_rx_allow_move(&isk->rx);
	ret = ivshm_rx_peek(&isk->rx, rec);
	if (ret != IVSHM_RX_MOVED)
		return ret;
	ivshm_data_consumed(isk);
	return ivshm_rx_peek(&isk->rx, rec);
}

/* Is a record there for the user (or a broken ring that recv reports)? */
bool ivshm_data_readable(struct ivshm_sock *isk)
{
	struct ivshm_rec rec;
	int ret = ivshm_data_next(isk, &rec);

	return ret != -EAGAIN && ret != IVSHM_RX_MOVE_PENDING;
}

static void ivshm_data_have(struct ivshm_sock *isk)
{
	ivshm_event_have_data(&isk->rx);
}

/* Busy polling (SO_BUSY_POLL, net.core.busy_read): before a reader sleeps,
 * it watches the head of the peer's channel for up to sk_ll_usec. It has
 * not set IVSHM_RXF_WAIT, so the sender rings no doorbell for what it
 * publishes meanwhile: a record that comes in time costs neither an
 * interrupt nor a wakeup.
 *
 * The socket lock is dropped while spinning, as TCP does, so that a sender
 * on the same socket and the rebalance work are not held up. The head is
 * only a hint: any change ends the spin and the caller looks again under
 * the lock, where the ring is validated as always. Our own device reference
 * keeps the region mapped if the connection is torn down meanwhile; a
 * channel freed and reused under us only ends the spin early. An error or
 * the peer's close ends it too: sk_err and sk_shutdown are written with
 * WRITE_ONCE() for this lockless look.
 */
static void ivshm_data_busy_poll(struct ivshm_sock *isk)
{
	struct sock *sk = &isk->sk;
	struct ivshm_dev *idev = isk->idev;
	unsigned long start = busy_loop_current_time();
	struct ivshm_event_watch w;

	ivshm_event_watch_init(&isk->rx, &w);
	ivshm_dev_hold(idev);
	release_sock(sk);
	while (!ivshm_event_watch_moved(&w)) {
		if (sk_busy_loop_timeout(sk, start) || need_resched() ||
		    signal_pending(current) || READ_ONCE(idev->dying) ||
		    READ_ONCE(sk->sk_err) ||
		    (READ_ONCE(sk->sk_shutdown) & RCV_SHUTDOWN))
			break;
		cpu_relax();
	}
	lock_sock(sk);
	ivshm_dev_put(idev);
}

static int ivshm_data_copy_out(const struct ivshm_span *s, size_t n,
			       struct msghdr *msg)
{
	size_t first = min_t(size_t, n, s->len[0]);

	if (copy_to_iter(s->p[0], first, &msg->msg_iter) != first)
		return -EFAULT;
	n -= first;
	if (n && copy_to_iter(s->p[1], n, &msg->msg_iter) != n)
		return -EFAULT;
	return 0;
}

/* Wait for the next record, as the reader asked (@timeo), following
 * MOVED records.
 *
 * One MOVED record per call and per wakeup (ring.c): each trip round the
 * loop returns, sleeps, or follows at most that one.
 *
 * Context: the socket lock held.
 * Return: 1 with @rec the record; 0 at the end of the stream; -EAGAIN,
 * a signal's error, the socket's error, -ENOTCONN.
 */
static int ivshm_data_wait_record(struct ivshm_sock *isk,
				  struct ivshm_rec *rec, long *timeo)
{
	bool spun = false, armed = false, shut_moved = false, move_waits;
	struct sock *sk = &isk->sk;
	int ret;

	if (isk->has_rx)
		ivshm_rx_allow_move(&isk->rx);
	for (;;) {
		move_waits = false;
		ret = ivshm_data_fence(isk);
		if (ret)
			return ret;
		if (isk->has_rx) {
			ret = ivshm_rx_peek(&isk->rx, rec);
			if (ret == IVSHM_RX_MOVED) {
				/* Passing the marker frees room too. */
				ivshm_data_consumed(isk);
				continue;
			}
			if (!ret)
				return 1;
			if (ret != -EAGAIN && ret != IVSHM_RX_MOVE_PENDING) {
				ivshm_sock_proto_error(isk, isk->rx_idx, "record invalid");
				return sock_error(sk);
			}
			move_waits = ret == IVSHM_RX_MOVE_PENDING;
		}
		ret = sock_error(sk);
		if (ret)
			return ret;
		if (sk->sk_shutdown & RCV_SHUTDOWN) {
			/* A MOVED record may stand before records the sender
			 * wrote before it closed, and no notification of it
			 * will wake us now. An honest sender moves again only
			 * once it saw us past its last move, and writes nothing
			 * once closed, so one more move reaches all it wrote:
			 * follow it rather than end the file early. One, not
			 * more: a chain of moves still costs a call each.
			 */
			if (move_waits && !shut_moved) {
				shut_moved = true;
				ivshm_rx_allow_move(&isk->rx);
				continue;
			}
			return 0;
		}
		if (sk->sk_state != TCP_ESTABLISHED)
			return -ENOTCONN;
		/* Once per call, and only for a reader that would sleep. */
		if (*timeo && !spun && isk->has_rx && sk_can_busy_loop(sk) &&
		    !isk->rx.move_pending) {
			spun = true;
			ivshm_data_busy_poll(isk);
			continue;
		}
		/* Nothing to read: ask for a notification, whether we sleep
		 * or return EAGAIN (an edge-triggered poller waits for the
		 * next record too), and look once more after asking (N3).
		 */
		if (!armed && isk->has_rx) {
			ivshm_data_want(isk);
			armed = true;
			continue;
		}
		ret = ivshm_sock_wait(isk, timeo, ivshm_data_rx_ready,
				      isk->rx.pos);
		if (ret)
			return ret;
		armed = false;
		if (isk->has_rx)
			ivshm_rx_allow_move(&isk->rx);
	}
}

/* Hand record @rec to the reader: copied out, and released unless
 * MSG_PEEK. A copy that faults leaves it in place: nothing is lost.
 *
 * Context: the socket lock held; has_rx holds, so idev is set.
 * Return: as recvmsg().
 */
static int ivshm_data_deliver(struct ivshm_sock *isk,
			      const struct ivshm_rec *rec, struct msghdr *msg,
			      size_t len, int flags)
{
	size_t n = min_t(size_t, len, rec->len);
	int ret;

	ivshm_data_have(isk);
	ret = ivshm_data_copy_out(&rec->span, n, msg);
	if (ret)
		return ret;
	if (n < rec->len)
		msg->msg_flags |= MSG_TRUNC;
	msg->msg_flags |= MSG_EOR;
	if (msg->msg_name) {
		memcpy(msg->msg_name, &isk->remote, sizeof(isk->remote));
		msg->msg_namelen = sizeof(isk->remote);
	}
	/* Records are shorter than IVSHM_RUN_MAX (ring.c): an int holds them. */
	ret = (flags & MSG_TRUNC) ? (int)rec->len : (int)n;
	if (!(flags & MSG_PEEK)) {
		/* The copy may have slept on a fault: look again before our
		 * tail is written.
		 */
		if (ivshm_data_fence(isk))
			return -ECONNRESET;
		ivshm_rx_release(&isk->rx);
		ivshm_data_consumed(isk);
		isk->cs.rx_records++;
		isk->cs.rx_bytes += rec->len;
		ivshm_stat_inc(isk->idev, IVSHM_STAT_RX_RECORDS);
		ivshm_stat_add(isk->idev, IVSHM_STAT_RX_BYTES, rec->len);
	}
	trace_ivshm_recvmsg(isk->idev->index, isk->rx_idx, ret);
	return ret;
}

int ivshm_data_recvmsg(struct socket *sock, struct msghdr *msg, size_t len,
		       int flags)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	struct ivshm_rec rec;
	long timeo;
	int ret;

	if (flags & MSG_OOB)
		return -EOPNOTSUPP;

	lock_sock(sk);
	if (sk->sk_state == TCP_LISTEN) {
		ret = -ENOTCONN;
		goto out;
	}
	timeo = sock_rcvtimeo(sk, flags & MSG_DONTWAIT);
	ret = ivshm_data_wait_record(isk, &rec, &timeo);
	if (ret > 0)
		ret = ivshm_data_deliver(isk, &rec, msg, len, flags);
out:
	release_sock(sk);
	return ret;
}
