// SPDX-License-Identifier: GPL-2.0
/*
 * The AF_IVSHMEM socket family: SOCK_SEQPACKET over the region's channels.
 *
 * A connection is two channels of one region, one per direction, each owned
 * by its sender (chan.c). This file holds the family, binding (the table
 * is bind.c's), and the connection: connect, listen, accept, the answers
 * and events of the handshakes (core/handshake.c decides what they mean),
 * shutdown, close, poll and the socket options. The records themselves
 * go through data.c, and rebalance.c resizes the channel a socket sends on.
 *
 * Socket states (sk_state; sock->state follows):
 *
 *   TCP_CLOSE        new, or the connection failed or was reset
 *   TCP_LISTEN       bound and listening; accept_q holds children
 *   TCP_SYN_SENT     our channel is in CONNECT, waiting for the answer
 *   TCP_ESTABLISHED  both channels attached; sk_shutdown records which
 *                    directions either side has shut
 *
 *   CLOSE --connect--> SYN_SENT --ACCEPTED--> ESTABLISHED
 *   SYN_SENT --REFUSED, timeout, reset--> CLOSE (sk_err set)
 *   CLOSE --listen--> LISTEN
 *   a request on a listener creates a child directly in ESTABLISHED
 *
 * Peer-side control events arrive from the device's control work (chan.c)
 * through ivshm_sock_event() and ivshm_sock_request(); they take the socket
 * lock like any system call. Records published and room freed only wake
 * the socket's waiters, from the device's NAPI poll (ivshm_sock_wake(), in
 * softirq context, without the socket lock): whoever wakes looks at the
 * ring under the lock.
 *
 * Locking, outermost first: lock_sock() of a listener, lock_sock() of a
 * child (nested), the bind table's lock (bind.c), then the device's
 * spinlock (chan.c). Everything in struct ivshm_sock is protected by the
 * socket lock, except its bind table entry, which the table's lock
 * protects as well. The device a socket is attached to (isk->idev) is held
 * by a reference that the device's removal waits for; removal detaches
 * every socket first.
 *
 * Module lifetime: the net_proto_family and the proto_ops both name
 * THIS_MODULE, and sk_alloc() takes a module reference for every sock,
 * including children that were never accepted.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <asm/ioctls.h>
#include <linux/capability.h>
#include <linux/ivshmem.h>
#include <linux/module.h>
#include <linux/net.h>
#include <linux/poll.h>
#include <linux/sched/signal.h>
#include <linux/socket.h>
#include <linux/sockios.h>
#include <net/sock.h>

#include "chan.h"
#include "device.h"
#include "netlink.h"
#include "params.h"
#include "rebalance.h"
#include "sock.h"
#include "stats.h"
#include "trace.h"

#define IVSHM_CONNECT_TIMEOUT_MS	10000

static int ivshm_family;

static struct proto ivshm_proto = {
	.name = "AF_IVSHMEM",
	.owner = THIS_MODULE,
	.obj_size = sizeof(struct ivshm_sock),
};

static const struct proto_ops ivshm_seqpacket_ops;

struct sock *ivshm_sk(struct ivshm_sock *isk)
{
	return &isk->sk;
}

/* Ring size for a channel we send on: SO_SNDBUF when the user set it,
 * else the initial size of @idev, or of a device not known yet (NULL).
 */
static u32 ivshm_ring_size(struct sock *sk, struct ivshm_dev *idev)
{
	u64 want;

	if (!(sk->sk_userlocks & SOCK_SNDBUF_LOCK))
		return idev ? ivshm_rebal_initial(idev) :
			      ivshm_params_default_ring();
	want = (u64)READ_ONCE(sk->sk_sndbuf);
	want = clamp_t(u64, want, IVSHMEM_RING_MIN, IVSHMEM_RING_MAX);
	return (u32)round_up(want, IVSHM_BLOCK_SIZE);
}

/* A new channel of ours, opened with @size bytes, is attached. */
static void ivshm_tx_attached(struct ivshm_sock *isk, u32 size)
{
	isk->tx_answer = IVSHM_RX_NONE;
	isk->tx_max_run = size;
	isk->tx_fixed = isk->sk.sk_userlocks & SOCK_SNDBUF_LOCK;
	isk->tx_full = 0;
	isk->rebal_touch = 0;
	isk->rebal_busy = jiffies;
}

/* Bind @isk to @a (bind.c); a port of IVSHMEM_PORT_ANY picks an ephemeral
 * one. Socket lock held.
 */
static int ivshm_do_bind(struct ivshm_sock *isk, struct sockaddr_ivshmem *a)
{
	int ret = ivshm_bind_add(&isk->bind, &isk->sk, a);

	if (!ret)
		isk->local = *a;
	return ret;
}

/* Check a user address; vm and port constants are left to the caller. */
static int ivshm_addr_check(const struct sockaddr *addr, int len,
			    struct sockaddr_ivshmem *out)
{
	if (len < (int)sizeof(*out) || !addr)
		return -EINVAL;
	memcpy(out, addr, sizeof(*out));
	if (out->sivshm_family != ivshm_family)
		return -EAFNOSUPPORT;
	if (out->sivshm_reserved)
		return -EINVAL;
	return 0;
}

static int ivshm_bind(struct socket *sock, struct sockaddr *addr, int len)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	struct sockaddr_ivshmem a;
	int ret;

	ret = ivshm_addr_check(addr, len, &a);
	if (ret)
		return ret == -EAFNOSUPPORT ? -EINVAL : ret;
	if (a.sivshm_port < IVSHMEM_PORT_PRIVILEGED &&
	    !capable(CAP_NET_BIND_SERVICE))
		return -EACCES;
	if (a.sivshm_vm == IVSHMEM_VM_LOCAL)
		return -EADDRNOTAVAIL;
	if (a.sivshm_vm != IVSHMEM_VM_ANY &&
	    !ivshm_dev_has_own(a.sivshm_vm, a.sivshm_dev))
		return -EADDRNOTAVAIL;

	lock_sock(sk);
	if (isk->bind.bound || sk->sk_state != TCP_CLOSE ||
	    sock->state != SS_UNCONNECTED)
		ret = -EINVAL;
	else
		ret = ivshm_do_bind(isk, &a);
	release_sock(sk);
	return ret;
}

/* ---- connection teardown ---- */

static void ivshm_drop_dev(struct ivshm_sock *isk)
{
	if (isk->idev && !isk->has_tx && !isk->has_rx) {
		ivshm_dev_put(isk->idev);
		isk->idev = NULL;
	}
}

/**
 * ivshm_sock_fenced() - whether the region took the connection from us
 * @isk: a socket with a channel (has_tx or has_rx), its lock held
 *
 * A peer that saw our heartbeat stand still for its liveness bound
 * declared us dead, reset its side, and may have given our channels'
 * slots and blocks to others already (ivshm_peer_reap()). Our liveness
 * work finds out within a period and resets every socket; but a VM that
 * was stopped and runs again (QEMU stop and cont, a host that starved it)
 * runs its users' calls and works first, and what they wrote into our
 * runs or into either channel's descriptor would land in other
 * connections. So each write of a connection into the region comes after
 * this look at our peer slot, which only we and a peer declaring us dead
 * write. What it cannot stop: a VM stopped between the look and the write
 * makes that one write when it runs again (one record's copy at most, or
 * one counter).
 *
 * Return: true when the region no longer names us alive as the
 * incarnation that made the connection (tx_inc: both channels of a
 * connection are taken and attached by one incarnation).
 */
bool ivshm_sock_fenced(const struct ivshm_sock *isk)
{
	const struct ivshm_dev *idev = isk->idev;

	sock_owned_by_me(&isk->sk);
	return !ivshm_peer_still_me(&idev->layout, idev->own_id, isk->tx_inc);
}

/* The sender moved its ring: follow a MOVED record that is next in it, so
 * that the sender can free its old run even while our user reads nothing.
 * One per call: a sender announces each move on the control set, so a
 * further one brings its own call (ring.c, the MOVED rules). Anything else
 * (records, a broken ring) waits for recvmsg().
 */
static void ivshm_rx_pass_moves(struct ivshm_sock *isk)
{
	struct ivshm_rec rec;

	if (!isk->has_rx)
		return;
	ivshm_rx_allow_move(&isk->rx);
	if (ivshm_rx_peek(&isk->rx, &rec) == IVSHM_RX_MOVED)
		ivshm_data_consumed(isk);
}

/* Stop reading the peer's channel and tell its sender: CLOSED, or RESET if
 * records are left unread (the sender's calls then fail with ECONNRESET, as
 * AF_UNIX does when a socket closes with data queued).
 */
static void ivshm_rx_detach(struct ivshm_sock *isk, bool may_reset)
{
	struct ivshm_dev *idev = isk->idev;
	u32 ack = IVSHM_RX_CLOSED;

	if (!isk->has_rx)
		return;
	/* Declared dead: the sender freed its channel without our answer,
	 * and the slot may be another's. Generation 0 answers nothing.
	 */
	if (ivshm_sock_fenced(isk)) {
		ivshm_slot_leave_rx(idev, isk->rx_idx, 0, ack, isk);
		isk->has_rx = false;
		return;
	}
	/* A MOVED record is not a record of the user's. */
	ivshm_rx_pass_moves(isk);
	if (may_reset && ivshm_rx_avail(&isk->rx) > 0)
		ack = IVSHM_RX_RESET;
	/* Only a channel that is still the one we attached to. */
	if (ivshm_slot_leave_rx(idev, isk->rx_idx, isk->rx_gen, ack, isk))
		ivshm_notify(idev, isk->remote.sivshm_vm, isk->rx_idx,
			     IVSHM_PEND_CTRL);
	isk->has_rx = false;
}

/* Write the state of our channel, if it is still ours: a rejoin of ours
 * reclaims every channel of the old incarnation, and the slot may hold one
 * of the new incarnation by now, even with the same generation. Socket
 * lock held.
 * Return: 0 or -ENOLINK.
 */
static int ivshm_tx_set_state(struct ivshm_sock *isk, u32 state)
{
	struct ivshm_dev *idev = isk->idev;

	sock_owned_by_me(&isk->sk);
	return ivshm_desc_publish(&idev->layout, isk->tx_idx, isk->tx_gen,
				  idev->own_id, isk->tx_inc, state);
}

/* Close our channel: the receiver drains, acknowledges, and we free it. */
static void ivshm_tx_detach(struct ivshm_sock *isk)
{
	struct ivshm_dev *idev = isk->idev;
	struct ivshm_hs_reply r = { .rx_state = IVSHM_RX_NONE };
	struct ivshm_runs runs;
	bool fenced;

	if (!isk->has_tx)
		return;
	/* Declared dead: nothing is written, nobody answers, and
	 * ivshm_chan_close() frees the channel only if it is still ours.
	 */
	fenced = ivshm_sock_fenced(isk);
	if (!fenced) {
		ivshm_tx_flush(&isk->tx);
		if (!ivshm_tx_set_state(isk, IVSHM_CHAN_CLOSED))
			ivshm_notify(idev, isk->remote.sivshm_vm, isk->tx_idx,
				     IVSHM_PEND_CTRL);
		ivshm_hs_reply(&idev->layout, isk->tx_idx, &r);
	}
	ivshm_chan_runs(&isk->tx, isk->tx_gen, isk->tx_inc,
			isk->remote.sivshm_vm, &runs);
	if (fenced || ivshm_rx_final(r.rx_state)) {
		ivshm_slot_leave_tx(idev, isk->tx_idx, isk);
		ivshm_chan_close(idev, isk->tx_idx, &runs);
	} else {
		ivshm_slot_orphan(idev, isk->tx_idx, &runs, isk);
	}
	isk->has_tx = false;
}

/* Announce that our channel is closed, keeping it until release. */
static void ivshm_tx_shut(struct ivshm_sock *isk)
{
	if (!isk->has_tx)
		return;
	ivshm_tx_flush(&isk->tx);
	if (!ivshm_tx_set_state(isk, IVSHM_CHAN_CLOSED))
		ivshm_notify(isk->idev, isk->remote.sivshm_vm, isk->tx_idx,
			     IVSHM_PEND_CTRL);
}

/* The connection is over with error @err (0: orderly). Socket lock held. */
void ivshm_sock_fail(struct ivshm_sock *isk, int err)
{
	struct sock *sk = &isk->sk;

	sock_owned_by_me(sk);
	/* A failure, not a close: the peer sees ECONNRESET, not EOF. */
	if (err && isk->has_tx && !ivshm_sock_fenced(isk))
		ivshm_event_tx_flags(&isk->tx, IVSHM_TXF_RESET, 0);
	ivshm_rx_detach(isk, false);
	ivshm_tx_detach(isk);
	ivshm_drop_dev(isk);
	if (err)
		WRITE_ONCE(sk->sk_err, err);
	if (sk->sk_state == TCP_SYN_SENT) {
		sk->sk_state = TCP_CLOSE;
		if (sk->sk_socket)
			sk->sk_socket->state = SS_UNCONNECTED;
	} else {
		WRITE_ONCE(sk->sk_shutdown, SHUTDOWN_MASK);
		if (sk->sk_socket)
			sk->sk_socket->state = SS_DISCONNECTING;
	}
	sk->sk_state_change(sk);
	if (err)
		sk_error_report(sk);
}

/* A value the peer wrote in channel @idx failed check @what: count it,
 * announce it, reset the connection.
 */
void ivshm_sock_proto_error(struct ivshm_sock *isk, u32 idx,
			    const char *what)
{
	if (isk->idev) {
		ivshm_stat_inc(isk->idev, IVSHM_STAT_PROTO_ERRORS);
		ivshm_nl_proto_error(isk->idev, idx, what);
	}
	isk->cs.proto_errors++;
	ivshm_sock_fail(isk, ECONNRESET);
}

/* ---- events from the device (chan.c), socket lock taken here ---- */

/* The acceptor answered our CONNECT (@r) and named its channel to us. Read
 * it once and check that it is the reverse of ours (ivshm_hs_reverse()).
 */
static int ivshm_attach_reverse(struct ivshm_sock *isk,
				const struct ivshm_hs_reply *r)
{
	struct ivshm_dev *idev = isk->idev;
	const struct ivshm_layout *l = &idev->layout;
	const struct ivshm_hs_ends e = {
		.local_vm = idev->own_id,
		.local_port = isk->local.sivshm_port,
		.remote_vm = isk->remote.sivshm_vm,
		.remote_port = isk->remote.sivshm_port,
		.idx = isk->tx_idx,
		.gen = isk->tx_gen,
	};
	struct ivshm_hs_line v;
	int ret;

	if (ivshm_hs_reverse(l, &e, r, &v) ||
	    ivshm_ring_init(&isk->rx, l, r->peer_chan, v.off, v.d.size))
		return -EPROTO;
	ret = ivshm_slot_set(idev, r->peer_chan, true, isk);
	if (ret)
		return ret;
	isk->rx_idx = r->peer_chan;
	isk->rx_gen = v.gen;
	isk->rx_state_seen = v.d.state;
	isk->has_rx = true;
	isk->peer_pid = (s32)v.d.pid;
	/* Its sender is told that its reader is here, even if it closed
	 * already: then it waits for our reader to drain it and let go,
	 * however long that takes (ivshm_hs_may_free()).
	 */
	ivshm_slot_accept(idev, r->peer_chan, v.gen, NULL);
	/* A rejoin of ours since the connect reclaimed our channel. */
	if (ivshm_tx_set_state(isk, IVSHM_CHAN_OPEN))
		return -ENOLINK;
	if (v.d.state == IVSHM_CHAN_CLOSED)
		WRITE_ONCE(isk->sk.sk_shutdown,
			   isk->sk.sk_shutdown | RCV_SHUTDOWN);
	return 0;
}

/* Something changed on our channel: the receiver's answer, or its tail. */
static void ivshm_tx_event(struct ivshm_sock *isk)
{
	struct sock *sk = &isk->sk;
	struct ivshm_hs_reply r;
	enum ivshm_hs_tx step;

	if (sk->sk_state != TCP_SYN_SENT && sk->sk_state != TCP_ESTABLISHED)
		return;
	ivshm_hs_reply(&isk->idev->layout, isk->tx_idx, &r);
	step = ivshm_hs_tx_step(&isk->tx_answer, r.rx_state,
				sk->sk_state == TCP_SYN_SENT);
	if (step == IVSHM_HS_TX_ATTACH) {
		if (ivshm_attach_reverse(isk, &r)) {
			ivshm_sock_proto_error(isk, isk->tx_idx, "reverse channel invalid");
			return;
		}
		sk->sk_state = TCP_ESTABLISHED;
		if (sk->sk_socket)
			sk->sk_socket->state = SS_CONNECTED;
		sk->sk_state_change(sk);
		/* The same answer, for the connection now made: a close
		 * before we looked takes effect at once.
		 */
		step = ivshm_hs_tx_step(&isk->tx_answer, r.rx_state, false);
	}
	switch (step) {
	case IVSHM_HS_TX_NOTHING:
	case IVSHM_HS_TX_ATTACH:	/* only while connecting, above */
		return;
	case IVSHM_HS_TX_REFUSED:
		ivshm_sock_fail(isk, ECONNREFUSED);
		return;
	case IVSHM_HS_TX_NOBUFS:
		ivshm_sock_fail(isk, ENOBUFS);
		return;
	case IVSHM_HS_TX_OPEN:
		break;
	case IVSHM_HS_TX_PEER_CLOSED:
		/* The peer stopped reading: our sends fail with EPIPE. */
		if (!(sk->sk_shutdown & SEND_SHUTDOWN)) {
			WRITE_ONCE(sk->sk_shutdown,
				   sk->sk_shutdown | SEND_SHUTDOWN);
			sk->sk_state_change(sk);
		}
		break;
	case IVSHM_HS_TX_PEER_RESET:
		ivshm_sock_fail(isk, ECONNRESET);
		return;
	case IVSHM_HS_TX_BAD:
		ivshm_sock_proto_error(isk, isk->tx_idx,
				       "answer unknown or gone back");
		return;
	}
	sk->sk_write_space(sk);
}

/* Something changed on the peer's channel: records, its closing, a move.
 * Return: false when the channel was freed under us and the slot holds
 * another: the news is that channel's (a stray's, ivshm_sock_event()).
 */
static bool ivshm_rx_event(struct ivshm_sock *isk)
{
	struct sock *sk = &isk->sk;
	bool reset;
	int state;

	/* CONNECT: an accepted connector that has not attached yet. */
	state = ivshm_hs_sender_state(&isk->idev->layout, isk->rx_idx,
				      isk->rx_gen, &reset);
	switch (ivshm_hs_rx_step(&isk->rx_state_seen, state, reset)) {
	case IVSHM_HS_RX_BAD:
		ivshm_sock_proto_error(isk, isk->rx_idx, "channel state invalid or gone back");
		return true;
	case IVSHM_HS_RX_GONE:
		ivshm_sock_fail(isk, ECONNRESET);
		return false;
	case IVSHM_HS_RX_RESET:
		ivshm_sock_fail(isk, ECONNRESET);
		return true;
	case IVSHM_HS_RX_EOF:
		if (!(sk->sk_shutdown & RCV_SHUTDOWN)) {
			/* Records before the close stay readable; then EOF. */
			WRITE_ONCE(sk->sk_shutdown,
				   sk->sk_shutdown | RCV_SHUTDOWN);
			sk->sk_state_change(sk);
		}
		break;
	case IVSHM_HS_RX_DATA:
		break;
	}
	ivshm_rx_pass_moves(isk);
	sk->sk_data_ready(sk);
	return true;
}

/**
 * ivshm_sock_event() - a channel that @isk uses has news
 * @isk: the socket, held by the caller
 * @idev: the device the news came from
 * @idx: the channel
 * @rx: whether @isk reads the channel (else it sends on it)
 *
 * The caller found @isk in the channel's slot, but the socket may have
 * let go of the channel since (closing, under its lock): then the news is
 * not its own, and may be a new sender's request on the same slot.
 *
 * Context: process (the device's control work); takes the socket lock.
 * Return: whether @isk still uses the channel and took the news.
 */
bool ivshm_sock_event(struct ivshm_sock *isk, struct ivshm_dev *idev,
		      u32 idx, bool rx)
{
	struct sock *sk = &isk->sk;
	bool mine = false;

	lock_sock(sk);
	if (isk->idev != idev)
		goto out;
	mine = rx ? isk->has_rx && isk->rx_idx == idx :
		    isk->has_tx && isk->tx_idx == idx;
	if (!mine)
		goto out;
	/* Declared dead: whatever the news, the connection is reset, and
	 * nothing of it written (ivshm_sock_fenced()).
	 */
	if (ivshm_sock_fenced(isk))
		ivshm_sock_fail(isk, ECONNRESET);
	else if (rx)
		mine = ivshm_rx_event(isk);
	else
		ivshm_tx_event(isk);
out:
	release_sock(sk);
	return mine;
}

/**
 * ivshm_sock_wake() - records or room may be there for @isk
 * @isk: the socket, held by the caller
 * @idev: the device the news came from
 * @idx: the channel
 * @rx: whether @isk reads the channel (else it sends on it)
 *
 * Only wakes the socket's waiters, who look at the ring under the socket
 * lock; a stale or forged bit costs a spurious wakeup, nothing more.
 *
 * For a reader, also tells the poll whether it lags behind a stream: the
 * bytes waiting when more than one record waits, else 0. One record is a
 * request or an answer, however long, and its reader must not wait for
 * the moderation timer (napi.c); several mean the sender writes faster
 * than we read. The counters come from the region unchecked, so this is
 * only a hint: it decides how we are woken next, never what is read. A
 * peer that forges it can keep our device in bulk periods, so that every
 * peer's records reach us by a poll every coalesce_us instead of by a
 * doorbell: later by that much at most, never stalled.
 *
 * Context: softirq (the device's NAPI poll), the only writer of the
 * wakeup counters.
 * Return: for a reader lagging behind a stream, the bytes waiting; else 0.
 */
u64 ivshm_sock_wake(struct ivshm_sock *isk, struct ivshm_dev *idev,
		    u32 idx, bool rx)
{
	struct sock *sk = &isk->sk;
	u64 backlog;

	if (READ_ONCE(isk->idev) != idev)
		return 0;
	trace_ivshm_wake(idev->index, idx, rx);
	if (!rx) {
		WRITE_ONCE(isk->cs.tx_wakeups, isk->cs.tx_wakeups + 1);
		sk->sk_write_space(sk);
		return 0;
	}
	/* Before the wakeup: our reader may move the tail meanwhile. Our
	 * count of records consumed is read late, so it can only count fewer
	 * waiting. A MOVED record counts as a record, so just after a move
	 * one large answer may look like two: one bulk period, once per move.
	 */
	backlog = ivshm_event_backlog(&idev->layout, idx,
				      READ_ONCE(isk->rx.touch));
	WRITE_ONCE(isk->cs.rx_wakeups, isk->cs.rx_wakeups + 1);
	sk->sk_data_ready(sk);
	return backlog;
}

/**
 * ivshm_sock_detach() - the device is going away
 * @isk: a socket using it, held by the caller
 * @idev: the device
 *
 * The connection is reset; our channels are freed by the device.
 */
void ivshm_sock_detach(struct ivshm_sock *isk, struct ivshm_dev *idev)
{
	struct sock *sk = &isk->sk;

	lock_sock(sk);
	if (isk->idev == idev)
		ivshm_sock_fail(isk, ECONNRESET);
	release_sock(sk);
}

/**
 * ivshm_sock_peer_lost() - the VM at the other end is dead or gone
 * @isk: a socket using @idev, held by the caller
 * @idev: the device
 * @vm: the VM, or IVSHM_ALL_PEERS
 *
 * The connection is reset; our channel, which nobody will acknowledge, is
 * freed by the caller's sweep of orphans.
 */
void ivshm_sock_peer_lost(struct ivshm_sock *isk, struct ivshm_dev *idev,
			  u32 vm)
{
	struct sock *sk = &isk->sk;

	lock_sock(sk);
	if (isk->idev == idev && (isk->has_tx || isk->has_rx) &&
	    (vm == IVSHM_ALL_PEERS || isk->remote.sivshm_vm == vm))
		ivshm_sock_fail(isk, ECONNRESET);
	release_sock(sk);
}

/**
 * ivshm_sock_info() - what diagnostics show of one side of a connection
 * @isk: the socket, held by the caller
 * @idev: the device whose slot @idx the caller found it in
 * @idx: that slot
 * @rx: describe the channel it reads (else the one it sends on)
 * @out: filled in
 *
 * The socket may have let go of the slot since the caller looked it up.
 *
 * Context: process; takes the socket lock.
 * Return: false when it no longer holds that channel (@out is not filled).
 */
bool ivshm_sock_info(struct ivshm_sock *isk, struct ivshm_dev *idev, u32 idx,
		     bool rx, struct ivshm_sock_info *out)
{
	struct sock *sk = &isk->sk;
	s64 avail;

	memset(out, 0, sizeof(*out));
	lock_sock(sk);
	if (isk->idev != idev ||
	    (rx ? !isk->has_rx || isk->rx_idx != idx :
		  !isk->has_tx || isk->tx_idx != idx)) {
		release_sock(sk);
		return false;
	}
	out->local_port = isk->local.sivshm_port;
	out->peer_vm = isk->remote.sivshm_vm;
	out->peer_port = isk->remote.sivshm_port;
	out->owner_pid = isk->owner_pid;
	out->peer_pid = isk->peer_pid;
	out->state = sk->sk_state;
	if (rx) {
		out->ring = isk->rx.size;
		avail = ivshm_rx_avail(&isk->rx);
		out->queued = avail > 0 ? (u64)avail : 0;
		out->records = isk->cs.rx_records;
		out->offset = ivshm_ring_run(&isk->rx);
		out->head = isk->rx.peer;
		out->tail = isk->rx.pos;
		ivshm_view_ring(&isk->rx, &out->chan);
		out->touch = out->chan.head_touch;
		out->chan_state = out->chan.state;
		out->told = isk->rx.told;
		out->move_pending = isk->rx.move_pending;
		out->waiting = isk->rx.waiting;
	} else {
		out->ring = isk->tx.size;
		out->old_ring = isk->tx.old_size;
		out->moving = isk->tx.cap_until != 0;
		out->queued = ivshm_tx_unread(&isk->tx);
		out->records = isk->tx.touch;
		out->full = isk->tx.flags & IVSHM_TXF_FULL;
		out->fixed = isk->tx_fixed;
		out->offset = ivshm_ring_run(&isk->tx);
		out->head = isk->tx.pos;
		out->tail = isk->tx.peer;
		out->touch = isk->tx.touch;
		ivshm_view_ring(&isk->tx, &out->chan);
		out->chan_state = out->chan.state;
		out->told = isk->tx.told;
		out->cap = isk->tx.cap;
		out->cap_until = isk->tx.cap_until;
	}
	out->cs = isk->cs;
	out->cs.tx_wakeups = READ_ONCE(isk->cs.tx_wakeups);
	out->cs.rx_wakeups = READ_ONCE(isk->cs.rx_wakeups);
	release_sock(sk);
	return true;
}

static struct sock *ivshm_sock_alloc(struct net *net, struct socket *sock,
				     int kern)
{
	struct ivshm_sock *isk;
	struct sock *sk;

	sk = sk_alloc(net, ivshm_family, GFP_KERNEL, &ivshm_proto, kern);
	if (!sk)
		return NULL;
	sock_init_data(sock, sk);
	sk->sk_type = SOCK_SEQPACKET;
	sk->sk_state = TCP_CLOSE;
	isk = ivshm_isk(sk);
	INIT_LIST_HEAD(&isk->accept_q);
	INIT_LIST_HEAD(&isk->accept_node);
	isk->connect_timeout_ms = IVSHM_CONNECT_TIMEOUT_MS;
	isk->local.sivshm_family = ivshm_family;
	isk->local.sivshm_port = IVSHMEM_PORT_ANY;
	isk->local.sivshm_vm = IVSHMEM_VM_ANY;
	isk->remote.sivshm_family = ivshm_family;
	isk->remote.sivshm_port = IVSHMEM_PORT_ANY;
	isk->remote.sivshm_vm = IVSHMEM_VM_ANY;
	return sk;
}

/* Refuse a connection request with @answer (IVSHM_RX_REFUSED, or
 * IVSHM_RX_NOBUFS when the region has no room for our channel); the
 * sender frees its channel.
 */
static void ivshm_refuse(struct ivshm_dev *idev, u32 idx,
			 const struct ivshm_hs_line *v, u32 answer)
{
	if (ivshm_slot_answer(idev, idx, v->gen, answer))
		ivshm_notify(idev, v->d.sender_vm, idx, IVSHM_PEND_CTRL);
}

/* Set up a child for the request on channel @idx: attach to the sender's
 * channel, open ours in the other direction, and answer ACCEPTED.
 *
 * The child is built whole, under its own lock, before it goes into the
 * device's slots, where the control work, a peer's loss or a rejoin can
 * find it: whoever does waits for the lock and sees a complete socket.
 * Context: the listener's lock held (the child's nests inside it).
 */
static int ivshm_child_connect(struct sock *parent, struct sock *sk,
			       struct ivshm_dev *idev, u32 idx,
			       const struct ivshm_hs_line *v)
{
	struct ivshm_sock *lis = ivshm_isk(parent), *isk = ivshm_isk(sk);
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_chan_params p = { .d = {
		.receiver_vm = v->d.sender_vm,
		.pid = (u32)lis->owner_pid,
		.src_port = lis->local.sivshm_port,
		.dst_port = v->d.src_port,
		.size = ivshm_ring_size(parent, idev),
		.state = IVSHM_CHAN_OPEN,
		.peer_chan = idx,
		.peer_gen = v->gen,
	} };
	struct ivshm_hs_reply back;
	int ret;

	sock_owned_by_me(parent);
	lock_sock_nested(sk, SINGLE_DEPTH_NESTING);
	ret = ivshm_ring_init(&isk->rx, l, idx, v->off, v->d.size);
	if (ret)
		goto out;
	ret = ivshm_chan_open(idev, &p);
	if (ret)
		goto out;
	ret = ivshm_ring_init(&isk->tx, l, p.idx, p.off, p.d.size);
	if (ret)
		goto err_close;

	ivshm_dev_hold(idev);
	isk->idev = idev;
	isk->has_tx = true;
	isk->tx_idx = p.idx;
	isk->tx_gen = p.gen;
	isk->tx_inc = p.d.sender_inc;
	ivshm_tx_attached(isk, p.d.size);
	isk->has_rx = true;
	isk->rx_idx = idx;
	isk->rx_gen = v->gen;
	isk->rx_state_seen = IVSHM_CHAN_CONNECT;
	isk->peer_pid = (s32)v->d.pid;
	isk->owner_pid = lis->owner_pid;
	isk->connect_timeout_ms = lis->connect_timeout_ms;
	isk->local.sivshm_port = lis->local.sivshm_port;
	isk->local.sivshm_vm = idev->own_id;
	isk->local.sivshm_dev = idev->index + 1;
	isk->remote.sivshm_port = v->d.src_port;
	isk->remote.sivshm_vm = v->d.sender_vm;
	isk->remote.sivshm_dev = idev->index + 1;
	sk->sk_state = TCP_ESTABLISHED;

	ret = ivshm_slot_set(idev, p.idx, false, isk);
	if (ret)
		goto err_unbuild;
	ret = ivshm_slot_set(idev, idx, true, isk);
	if (ret)
		goto err_clear_tx;

	/* Not if the connector's channel is gone or answered meanwhile. */
	ret = -ECONNABORTED;
	back.peer_chan = p.idx;
	back.peer_gen = p.gen;
	if (!ivshm_slot_accept(idev, idx, v->gen, &back))
		goto err_clear_rx;
	ivshm_notify(idev, v->d.sender_vm, idx, IVSHM_PEND_CTRL);
	release_sock(sk);
	return 0;

err_clear_rx:
	/* Generation 0 answers nothing: the slot is only let go. */
	ivshm_slot_leave_rx(idev, idx, 0, IVSHM_RX_CLOSED, isk);
err_clear_tx:
	ivshm_slot_leave_tx(idev, p.idx, isk);
err_unbuild:
	sk->sk_state = TCP_CLOSE;
	isk->has_tx = false;
	isk->has_rx = false;
	isk->idev = NULL;
	ivshm_dev_put(idev);
err_close:
	ivshm_chan_drop(idev, &p);
out:
	release_sock(sk);
	return ret;
}

/**
 * ivshm_sock_request() - channel @idx asks us for a connection
 * @idev: the device, whose VM the channel is addressed to
 * @idx: the connector's channel
 * @v: its one reading, in state CONNECT (ivshm_hs_read())
 *
 * Context: process (the device's work).
 */
void ivshm_sock_request(struct ivshm_dev *idev, u32 idx,
			const struct ivshm_hs_line *v)
{
	u32 answer = IVSHM_RX_REFUSED;
	struct sock *parent, *sk;
	struct ivshm_sock *lis;
	int ret;

	if (ivshm_hs_request_check(&idev->layout, v)) {
		ivshm_stat_inc(idev, IVSHM_STAT_PROTO_ERRORS);
		ivshm_nl_proto_error(idev, idx, "connect request invalid");
		ivshm_refuse(idev, idx, v, IVSHM_RX_REFUSED);
		return;
	}

	parent = ivshm_bind_listener(v->d.dst_port, idev->own_id,
				     idev->index + 1);
	if (!parent) {
		ivshm_refuse(idev, idx, v, IVSHM_RX_REFUSED);
		return;
	}
	lock_sock(parent);
	lis = ivshm_isk(parent);
	if (parent->sk_state != TCP_LISTEN || sk_acceptq_is_full(parent))
		goto refuse;
	sk = ivshm_sock_alloc(sock_net(parent), NULL, 0);
	if (!sk)
		goto refuse;
	sk->sk_sndbuf = parent->sk_sndbuf;
	sk->sk_rcvbuf = parent->sk_rcvbuf;
	sk->sk_userlocks = parent->sk_userlocks;
	sk->sk_sndtimeo = parent->sk_sndtimeo;
	sk->sk_rcvtimeo = parent->sk_rcvtimeo;
	ret = ivshm_child_connect(parent, sk, idev, idx, v);
	if (ret) {
		/* Whoever found it in a slot meanwhile holds its own
		 * reference: the last one frees it.
		 */
		sock_put(sk);
		if (ret == -ENOBUFS)
			answer = IVSHM_RX_NOBUFS;
		goto refuse;
	}
	list_add_tail(&ivshm_isk(sk)->accept_node, &lis->accept_q);
	sk_acceptq_added(parent);
	parent->sk_data_ready(parent);
	release_sock(parent);
	sock_put(parent);
	return;

refuse:
	release_sock(parent);
	sock_put(parent);
	ivshm_refuse(idev, idx, v, answer);
}

/* ---- system calls ---- */

static void ivshm_release_child(struct sock *sk)
{
	struct ivshm_sock *isk = ivshm_isk(sk);

	lock_sock_nested(sk, SINGLE_DEPTH_NESTING);
	ivshm_rx_detach(isk, true);
	ivshm_tx_detach(isk);
	ivshm_drop_dev(isk);
	WRITE_ONCE(sk->sk_shutdown, SHUTDOWN_MASK);
	sk->sk_state = TCP_CLOSE;
	sock_orphan(sk);
	release_sock(sk);
	sock_put(sk);
}

static int ivshm_release(struct socket *sock)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk;

	if (!sk)
		return 0;
	isk = ivshm_isk(sk);

	lock_sock(sk);
	while (!list_empty(&isk->accept_q)) {
		struct ivshm_sock *child;

		child = list_first_entry(&isk->accept_q, struct ivshm_sock,
					 accept_node);
		list_del_init(&child->accept_node);
		sk_acceptq_removed(sk);
		ivshm_release_child(&child->sk);
	}
	ivshm_bind_del(&isk->bind);
	ivshm_rx_detach(isk, true);
	ivshm_tx_detach(isk);
	ivshm_drop_dev(isk);
	WRITE_ONCE(sk->sk_shutdown, SHUTDOWN_MASK);
	sk->sk_state = TCP_CLOSE;
	sock_orphan(sk);
	release_sock(sk);

	sock->sk = NULL;
	sock_put(sk);
	return 0;
}

/* The device to connect through to @a, held, and in *@vmp the VM there
 * (IVSHMEM_VM_LOCAL resolved); an unbound socket is bound on the way.
 * Return: the device, or an ERR_PTR(): -EADDRNOTAVAIL, -ENETUNREACH,
 * -ENETDOWN, -EHOSTUNREACH, or as ivshm_do_bind().
 */
static struct ivshm_dev *ivshm_connect_dev(struct ivshm_sock *isk,
					   const struct sockaddr_ivshmem *a,
					   u32 *vmp)
{
	u32 dev = a->sivshm_dev, vm = a->sivshm_vm;
	struct ivshm_dev *idev;
	int ret;

	if (isk->bind.bound && isk->local.sivshm_dev != IVSHMEM_DEV_ANY) {
		if (dev != IVSHMEM_DEV_ANY && dev != isk->local.sivshm_dev)
			return ERR_PTR(-EADDRNOTAVAIL);
		dev = isk->local.sivshm_dev;
	}
	idev = ivshm_dev_get(dev, vm, true);
	if (!idev) {
		if (dev != IVSHMEM_DEV_ANY && !ivshm_dev_exists(dev))
			return ERR_PTR(-ENETUNREACH);
		/* Our own VM id, on a device whose peers declared us dead. */
		return ERR_PTR(ivshm_dev_has_own(vm, dev) ? -ENETDOWN :
			       -EHOSTUNREACH);
	}
	if (vm == IVSHMEM_VM_LOCAL)
		vm = idev->own_id;
	ret = -EHOSTUNREACH;
	if (vm != idev->own_id && !ivshm_peer_alive(&idev->layout, vm, NULL))
		goto err_put;
	ret = -EADDRNOTAVAIL;
	if (isk->bind.bound && isk->local.sivshm_vm != IVSHMEM_VM_ANY &&
	    isk->local.sivshm_vm != idev->own_id)
		goto err_put;
	if (!isk->bind.bound) {
		struct sockaddr_ivshmem any = {
			.sivshm_family = ivshm_family,
			.sivshm_port = IVSHMEM_PORT_ANY,
			.sivshm_vm = IVSHMEM_VM_ANY,
		};

		ret = ivshm_do_bind(isk, &any);
		if (ret)
			goto err_put;
	}
	*vmp = vm;
	return idev;

err_put:
	ivshm_dev_put(idev);
	return ERR_PTR(ret);
}

static int ivshm_start_connect(struct ivshm_sock *isk,
			       const struct sockaddr_ivshmem *a)
{
	struct sock *sk = &isk->sk;
	struct ivshm_chan_params p = { .d = {
		.pid = (u32)task_tgid_nr(current),
		.dst_port = a->sivshm_port,
		/* CONNECT only once the slot knows us: see below. */
		.state = IVSHM_CHAN_ALLOC,
	} };
	struct ivshm_dev *idev;
	u32 vm;
	int ret;

	idev = ivshm_connect_dev(isk, a, &vm);
	if (IS_ERR(idev))
		return PTR_ERR(idev);

	p.d.receiver_vm = vm;
	p.d.src_port = isk->local.sivshm_port;
	p.d.size = ivshm_ring_size(sk, idev);
	ret = ivshm_chan_open(idev, &p);
	if (ret) {
		/* Declared dead and not joined again yet: down for now. */
		if (ret == -ENOLINK)
			ret = -ENETDOWN;
		goto err_put;
	}
	ret = ivshm_ring_init(&isk->tx, &idev->layout, p.idx, p.off, p.d.size);
	if (ret)
		goto err_close;
	ret = ivshm_slot_set(idev, p.idx, false, isk);
	if (ret)
		goto err_close;

	isk->idev = idev;
	isk->has_tx = true;
	isk->tx_idx = p.idx;
	isk->tx_gen = p.gen;
	isk->tx_inc = p.d.sender_inc;
	ivshm_tx_attached(isk, p.d.size);
	memset(&isk->cs, 0, sizeof(isk->cs));
	isk->owner_pid = task_tgid_nr(current);
	isk->remote.sivshm_vm = vm;
	isk->remote.sivshm_port = a->sivshm_port;
	isk->remote.sivshm_dev = idev->index + 1;
	WRITE_ONCE(sk->sk_err, 0);
	WRITE_ONCE(sk->sk_shutdown, 0);
	sk->sk_state = TCP_SYN_SENT;
	sk->sk_socket->state = SS_CONNECTING;
	/* The receiver may answer a CONNECT it finds before we notify (a
	 * stale bit of the slot's last channel): the answer must find this
	 * socket in the slot, or it would be news for nobody. And only a
	 * channel that is still ours is asked for: a rejoin since we opened
	 * it has reclaimed it.
	 */
	ret = ivshm_chan_publish(idev, p.idx, p.gen, p.d.sender_inc,
				 IVSHM_CHAN_CONNECT);
	if (ret)
		goto err_unbuild;
	ivshm_notify(idev, vm, p.idx, IVSHM_PEND_CTRL);
	return 0;

err_unbuild:
	sk->sk_state = TCP_CLOSE;
	sk->sk_socket->state = SS_UNCONNECTED;
	isk->has_tx = false;
	isk->idev = NULL;
	ivshm_slot_leave_tx(idev, p.idx, isk);
	if (ret == -ENOLINK)
		ret = -ECONNRESET;
err_close:
	ivshm_chan_drop(idev, &p);
err_put:
	ivshm_dev_put(idev);
	return ret;
}

/* Sleep until @ready(isk, arg) holds, the timeout runs out or a signal
 * comes. The socket lock is held; sk_wait_event() drops it and evaluates
 * @ready without it, so @ready only loads and compares: it must change no
 * state, and whoever wakes looks again under the lock.
 * Return: 0 to look again, -EAGAIN when the time is up, or the signal's
 * errno.
 */
int ivshm_sock_wait(struct ivshm_sock *isk, long *timeo,
		    bool (*ready)(struct ivshm_sock *isk, u64 arg), u64 arg)
{
	DEFINE_WAIT_FUNC(wait, woken_wake_function);
	struct sock *sk = &isk->sk;

	if (!*timeo)
		return -EAGAIN;
	if (signal_pending(current))
		return sock_intr_errno(*timeo);
	add_wait_queue(sk_sleep(sk), &wait);
	sk_wait_event(sk, timeo, ready(isk, arg), &wait);
	remove_wait_queue(sk_sleep(sk), &wait);
	return 0;
}

static bool ivshm_connect_done(struct ivshm_sock *isk, u64 unused)
{
	return READ_ONCE(isk->sk.sk_state) != TCP_SYN_SENT;
}

static int ivshm_connect(struct socket *sock, struct sockaddr *addr,
			 int len, int flags)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	struct sockaddr_ivshmem a;
	long timeo;
	int ret;

	ret = ivshm_addr_check(addr, len, &a);
	if (ret)
		return ret;
	if (a.sivshm_vm == IVSHMEM_VM_ANY || a.sivshm_port == IVSHMEM_PORT_ANY)
		return -EINVAL;

	lock_sock(sk);
	switch (sock->state) {
	case SS_CONNECTED:
		ret = -EISCONN;
		goto out;
	case SS_DISCONNECTING:
		ret = -EISCONN;
		goto out;
	case SS_CONNECTING:
		if (sk->sk_state == TCP_SYN_SENT) {
			ret = -EALREADY;
			if (flags & O_NONBLOCK)
				goto out;
			break;
		}
		/* A background connect that failed: report and start over. */
		sock->state = SS_UNCONNECTED;
		ret = sock_error(sk);
		if (ret)
			goto out;
		fallthrough;
	default:
		if (sk->sk_state == TCP_LISTEN) {
			ret = -EINVAL;
			goto out;
		}
		if (isk->has_tx || isk->has_rx) {
			ret = -EISCONN;
			goto out;
		}
		ret = ivshm_start_connect(isk, &a);
		if (ret)
			goto out;
		if (flags & O_NONBLOCK) {
			ret = -EINPROGRESS;
			goto out;
		}
	}

	timeo = sock_sndtimeo(sk, flags & O_NONBLOCK);
	if (isk->connect_timeout_ms &&
	    (long)msecs_to_jiffies(isk->connect_timeout_ms) < timeo)
		timeo = (long)msecs_to_jiffies(isk->connect_timeout_ms);
	while (sk->sk_state == TCP_SYN_SENT) {
		ret = ivshm_sock_wait(isk, &timeo, ivshm_connect_done, 0);
		if (ret == -EAGAIN) {
			/* Withdraw; a late ACCEPTED is closed by the orphan. */
			ivshm_sock_fail(isk, 0);
			sock->state = SS_UNCONNECTED;
			ret = -ETIMEDOUT;
			goto out;
		}
		if (ret)	/* a signal: the connection goes on meanwhile */
			goto out;
	}
	if (sk->sk_state == TCP_ESTABLISHED) {
		ret = 0;
	} else {
		ret = sock_error(sk) ? : -ECONNREFUSED;
		sock->state = SS_UNCONNECTED;
	}
out:
	release_sock(sk);
	return ret;
}

static int ivshm_listen(struct socket *sock, int backlog)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	int ret = 0;

	lock_sock(sk);
	if (sock->state != SS_UNCONNECTED || !isk->bind.bound ||
	    (sk->sk_state != TCP_CLOSE && sk->sk_state != TCP_LISTEN)) {
		ret = -EINVAL;
		goto out;
	}
	WRITE_ONCE(sk->sk_max_ack_backlog, backlog < 0 ? 0 : backlog);
	isk->owner_pid = task_tgid_nr(current);
	sk->sk_state = TCP_LISTEN;
out:
	release_sock(sk);
	return ret;
}

static bool ivshm_accept_ready(struct ivshm_sock *isk, u64 unused)
{
	return !list_empty_careful(&isk->accept_q) ||
	       READ_ONCE(isk->sk.sk_state) != TCP_LISTEN;
}

static int ivshm_do_accept(struct socket *sock, struct socket *newsock,
			   int flags)
{
	struct sock *sk = sock->sk, *child;
	struct ivshm_sock *isk = ivshm_isk(sk), *c;
	long timeo;
	int ret = 0;

	lock_sock(sk);
	if (sk->sk_state != TCP_LISTEN) {
		ret = -EINVAL;
		goto out;
	}
	timeo = sock_rcvtimeo(sk, flags & O_NONBLOCK);
	while (list_empty(&isk->accept_q)) {
		ret = ivshm_sock_wait(isk, &timeo, ivshm_accept_ready, 0);
		if (ret)
			goto out;
		if (sk->sk_state != TCP_LISTEN) {
			ret = -EINVAL;
			goto out;
		}
	}
	c = list_first_entry(&isk->accept_q, struct ivshm_sock, accept_node);
	list_del_init(&c->accept_node);
	sk_acceptq_removed(sk);
	child = &c->sk;

	lock_sock_nested(child, SINGLE_DEPTH_NESTING);
	sock_graft(child, newsock);
	newsock->state = child->sk_state == TCP_ESTABLISHED ?
			 (child->sk_shutdown == SHUTDOWN_MASK ?
			  SS_DISCONNECTING : SS_CONNECTED) : SS_UNCONNECTED;
	release_sock(child);
	/* The queue's reference is now the new socket's. */
out:
	release_sock(sk);
	return ret;
}

#ifdef IVSHM_HAVE_ACCEPT_ARG	/* 6.10 and later; see Kbuild */
static int ivshm_accept(struct socket *sock, struct socket *newsock,
			struct proto_accept_arg *arg)
{
	return ivshm_do_accept(sock, newsock, arg->flags);
}
#else
static int ivshm_accept(struct socket *sock, struct socket *newsock,
			int flags, bool kern)
{
	return ivshm_do_accept(sock, newsock, flags);
}
#endif

static int ivshm_getname(struct socket *sock, struct sockaddr *addr, int peer)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	int ret = sizeof(struct sockaddr_ivshmem);

	lock_sock(sk);
	if (peer) {
		if (sock->state != SS_CONNECTED &&
		    sock->state != SS_DISCONNECTING)
			ret = -ENOTCONN;
		else
			memcpy(addr, &isk->remote, sizeof(isk->remote));
	} else {
		struct sockaddr_ivshmem a = isk->local;

		/* Connected: the VM id and device the connection uses. */
		if (isk->idev) {
			a.sivshm_vm = isk->idev->own_id;
			a.sivshm_dev = isk->idev->index + 1;
		}
		memcpy(addr, &a, sizeof(a));
	}
	release_sock(sk);
	return ret;
}

static int ivshm_shutdown(struct socket *sock, int how)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	int mode, ret = 0;

	if (how < SHUT_RD || how > SHUT_RDWR)
		return -EINVAL;
	mode = how + 1;		/* RCV_SHUTDOWN, SEND_SHUTDOWN or both */

	lock_sock(sk);
	if (sk->sk_state != TCP_ESTABLISHED) {
		ret = -ENOTCONN;
		goto out;
	}
	/* Declared dead: reset, as a send would be (ivshm_sock_fenced()). */
	if ((isk->has_tx || isk->has_rx) && ivshm_sock_fenced(isk)) {
		ivshm_sock_fail(isk, ECONNRESET);
		ret = sock_error(sk);
		goto out;
	}
	if ((mode & RCV_SHUTDOWN) && !(sk->sk_shutdown & RCV_SHUTDOWN))
		ivshm_rx_detach(isk, false);
	if ((mode & SEND_SHUTDOWN) && !(sk->sk_shutdown & SEND_SHUTDOWN))
		ivshm_tx_shut(isk);
	WRITE_ONCE(sk->sk_shutdown, sk->sk_shutdown | mode);
	sk->sk_state_change(sk);
out:
	release_sock(sk);
	return ret;
}

static __poll_t ivshm_poll(struct file *file, struct socket *sock,
			   poll_table *wait)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	__poll_t mask = 0;
	bool readable;
	int room;

	sock_poll_wait(file, sock, wait);

	lock_sock(sk);
	if (sk->sk_err)
		mask |= EPOLLERR;
	if (sk->sk_shutdown == SHUTDOWN_MASK || sk->sk_state == TCP_CLOSE)
		mask |= EPOLLHUP;
	if (sk->sk_shutdown & RCV_SHUTDOWN)
		mask |= EPOLLRDHUP | EPOLLIN | EPOLLRDNORM;

	if (sk->sk_state == TCP_LISTEN) {
		if (!list_empty(&isk->accept_q))
			mask |= EPOLLIN | EPOLLRDNORM;
		goto out;
	}
	/* Declared dead: the next call resets the connection, and nothing
	 * is asked of the region (ivshm_sock_fenced()).
	 */
	if (sk->sk_state == TCP_ESTABLISHED && (isk->has_rx || isk->has_tx) &&
	    ivshm_sock_fenced(isk)) {
		mask |= EPOLLIN | EPOLLRDNORM | EPOLLOUT | EPOLLWRNORM;
		goto out;
	}
	if (isk->has_rx) {
		/* Readable means a record, or a broken ring that recv
		 * reports; not a MOVED marker.
		 */
		readable = ivshm_data_readable(isk);
		if (!readable) {
			/* A poller sleeps too: ask for a notification, then
			 * look again (N3).
			 */
			ivshm_data_want(isk);
			readable = ivshm_data_readable(isk);
		}
		if (readable)
			mask |= EPOLLIN | EPOLLRDNORM;
	}
	if (sk->sk_state != TCP_ESTABLISHED)
		goto out;
	if (sk->sk_shutdown & SEND_SHUTDOWN) {
		mask |= EPOLLOUT | EPOLLWRNORM;	/* a send fails at once */
	} else if (isk->has_tx) {
		/* Writable: a quarter of the ring is free, so that a
		 * writer woken by poll does not fail again at once.
		 */
		u32 want = ivshm_ring_max_record(&isk->tx) / 4;

		room = ivshm_tx_room(&isk->tx, want);
		if (!room) {
			ivshm_event_want_room(&isk->tx, want);
			room = ivshm_tx_room(&isk->tx, want);
		}
		if (room)
			mask |= EPOLLOUT | EPOLLWRNORM;
	}
out:
	release_sock(sk);
	return mask;
}

static int ivshm_ioctl(struct socket *sock, unsigned int cmd,
		       unsigned long arg)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	struct ivshm_rec rec;
	int ret = 0, val = 0;

	switch (cmd) {
	case SIOCINQ:
	case SIOCOUTQ:
		break;
	default:
		return -ENOIOCTLCMD;
	}

	lock_sock(sk);
	if (sk->sk_state == TCP_LISTEN) {
		ret = -EINVAL;
		goto out;
	}
	if (cmd == SIOCINQ && isk->has_rx) {
		ret = ivshm_data_next(isk, &rec);
		/* Declared dead: the connection is reset now, and says so. */
		if (ret == -ECONNRESET)
			goto out;
		/* Shorter than IVSHM_RUN_MAX (ring.c): an int holds it. */
		val = ret ? 0 : (int)rec.len;
		ret = 0;
	} else if (cmd == SIOCOUTQ && isk->has_tx) {
		val = (int)min_t(u64, ivshm_tx_unread(&isk->tx), INT_MAX);
	}
out:
	release_sock(sk);
	if (!ret)
		ret = put_user(val, (int __user *)arg);
	return ret;
}

static int ivshm_setsockopt(struct socket *sock, int level, int optname,
			    sockptr_t optval, unsigned int optlen)
{
	struct sock *sk = sock->sk;
	u64 ms;

	if (level != SOL_IVSHMEM)
		return -ENOPROTOOPT;
	switch (optname) {
	case IVSHMEM_CONNECT_TIMEOUT:
		if (optlen < sizeof(ms))
			return -EINVAL;
		if (copy_from_sockptr(&ms, optval, sizeof(ms)))
			return -EFAULT;
		if (ms > (u64)INT_MAX)
			return -EDOM;
		lock_sock(sk);
		ivshm_isk(sk)->connect_timeout_ms = ms;
		release_sock(sk);
		return 0;
	case IVSHMEM_MAX_RECORD:
	case IVSHMEM_PEER:
		return -EPERM;		/* read only */
	default:
		return -ENOPROTOOPT;
	}
}

static int ivshm_getsockopt(struct socket *sock, int level, int optname,
			    char __user *optval, int __user *optlen)
{
	struct sock *sk = sock->sk;
	struct ivshm_sock *isk = ivshm_isk(sk);
	union {
		int i;
		u64 u;
		struct ivshmem_peer peer;
	} v;
	int len, size;

	if (level != SOL_IVSHMEM)
		return -ENOPROTOOPT;
	if (get_user(len, optlen))
		return -EFAULT;
	if (len < 0)
		return -EINVAL;
	memset(&v, 0, sizeof(v));

	lock_sock(sk);
	switch (optname) {
	case IVSHMEM_MAX_RECORD:
		v.i = (int)((isk->has_tx ? isk->tx_max_run :
			     ivshm_ring_size(sk, NULL)) - IVSHM_REC_HDR);
		size = sizeof(v.i);
		break;
	case IVSHMEM_PEER:
		if (sk->sk_state != TCP_ESTABLISHED) {
			release_sock(sk);
			return -ENOTCONN;
		}
		v.peer.vm = isk->remote.sivshm_vm;
		v.peer.port = isk->remote.sivshm_port;
		v.peer.pid = isk->peer_pid;
		size = sizeof(v.peer);
		break;
	case IVSHMEM_CONNECT_TIMEOUT:
		v.u = isk->connect_timeout_ms;
		size = sizeof(v.u);
		break;
	default:
		release_sock(sk);
		return -ENOPROTOOPT;
	}
	release_sock(sk);

	if (len < size)
		return -EINVAL;
	if (copy_to_user(optval, &v, size) || put_user(size, optlen))
		return -EFAULT;
	return 0;
}

static const struct proto_ops ivshm_seqpacket_ops = {
	.owner = THIS_MODULE,
	.release = ivshm_release,
	.bind = ivshm_bind,
	.connect = ivshm_connect,
	.socketpair = sock_no_socketpair,
	.accept = ivshm_accept,
	.getname = ivshm_getname,
	.poll = ivshm_poll,
	.ioctl = ivshm_ioctl,
	.listen = ivshm_listen,
	.shutdown = ivshm_shutdown,
	.setsockopt = ivshm_setsockopt,
	.getsockopt = ivshm_getsockopt,
	.sendmsg = ivshm_data_sendmsg,
	.recvmsg = ivshm_data_recvmsg,
	.mmap = sock_no_mmap,
};

static int ivshm_create(struct net *net, struct socket *sock, int protocol,
			int kern)
{
	struct sock *sk;

	if (sock->type != SOCK_SEQPACKET)
		return -ESOCKTNOSUPPORT;
	if (protocol != 0)
		return -EPROTONOSUPPORT;

	sock->ops = &ivshm_seqpacket_ops;
	sock->state = SS_UNCONNECTED;
	sk = ivshm_sock_alloc(net, sock, kern);
	if (!sk)
		return -ENOMEM;
	return 0;
}

static struct net_proto_family ivshm_family_ops = {
	.create = ivshm_create,
	.owner = THIS_MODULE,
};

/**
 * ivshm_sock_init() - register the socket family
 * @family: address family number to take
 *
 * Return: 0, or a negative errno with the reason logged.
 */
int ivshm_sock_init(int family)
{
	int ret;

	if (family <= AF_UNSPEC || family >= NPROTO) {
		pr_err("family=%d is out of range: it must be between 1 and %d\n",
		       family, NPROTO - 1);
		return -EINVAL;
	}

	ret = proto_register(&ivshm_proto, 1);
	if (ret)
		return ret;

	ivshm_family = family;
	ivshm_family_ops.family = family;
	ret = sock_register(&ivshm_family_ops);
	if (ret) {
		if (ret == -EEXIST)
			pr_err("address family %d is already registered by another module; load af_ivshmem with family=N naming a free number\n",
			       family);
		else
			pr_err("cannot register address family %d: %d\n",
			       family, ret);
		goto err_proto;
	}

	pr_info("AF_IVSHMEM registered as address family %d\n", family);
	return 0;

err_proto:
	proto_unregister(&ivshm_proto);
	return ret;
}

void ivshm_sock_exit(void)
{
	sock_unregister(ivshm_family);
	proto_unregister(&ivshm_proto);
}
