/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_SOCKET_H
#define _IVSHM_SOCKET_H

#include <linux/types.h>

struct ivshm_dev;
struct ivshm_hs_line;
struct ivshm_sock;
struct sock;

/* Counters of one connection, kept by its socket. */
struct ivshm_conn_stats {
	u64 tx_records, tx_bytes;	/* sent */
	u64 rx_records, rx_bytes;	/* received */
	u64 notifies;			/* data notifications we gave the peer */
	u64 rings;			/* ... that rang its doorbell */
	u64 suppressed;			/* publications the reader did not need */
	u64 tx_wakeups, rx_wakeups;	/* data notifications NAPI gave us */
	u64 proto_errors;		/* the peer's values that failed a check */
	u64 resizes;			/* moves of our channel to another size */
};

/* One side of a connection, as diagnostics show it (debugfs.c). */
struct ivshm_sock_info {
	u32 local_port;
	u32 peer_vm, peer_port;
	s32 owner_pid, peer_pid;
	int state;			/* sk_state, TCP_* */
	u32 ring;			/* bytes of this channel's ring */
	u32 old_ring;			/* tx: bytes of the run a move left, 0 if none */
	bool moving;			/* tx: the reader has not passed the last move */
	bool full;			/* tx: full since the last rebalance */
	bool fixed;			/* tx: SO_SNDBUF, never resized */
	u64 queued;			/* bytes in it not yet consumed */
	u64 records;			/* tx: records produced (head_touch); rx: read */
	u64 offset;			/* ring start in the data area */
	u64 head, tail;			/* produced, consumed: ours and the last
					 * the peer published
					 */
	u64 touch;			/* records published (head_touch); rx:
					 * as the sender reports it
					 */
	u32 chan_state;			/* the channel's state, as in the region */
	struct ivshm_chan_view chan;	/* the descriptor as it is now */
	/* ours: the counter the peer was last told of, and the waits */
	u64 told;
	u64 cap_until;			/* tx: the reader must pass this */
	u32 cap;			/* tx: usable bytes until then */
	bool move_pending;		/* rx: a MOVED record waits for a call */
	bool waiting;			/* rx: we asked for records */
	struct ivshm_conn_stats cs;
};

int ivshm_sock_init(int family);
void ivshm_sock_exit(void);

/* Called by the device's control work (chan.c), in process context. */
struct sock *ivshm_sk(struct ivshm_sock *isk);
bool ivshm_sock_event(struct ivshm_sock *isk, struct ivshm_dev *idev,
		      u32 idx, bool rx);
void ivshm_sock_request(struct ivshm_dev *idev, u32 idx,
			const struct ivshm_hs_line *v);
void ivshm_sock_detach(struct ivshm_sock *isk, struct ivshm_dev *idev);
void ivshm_sock_peer_lost(struct ivshm_sock *isk, struct ivshm_dev *idev,
			  u32 vm);

/* Called by the device's NAPI poll (napi.c), in softirq context. */
u64 ivshm_sock_wake(struct ivshm_sock *isk, struct ivshm_dev *idev,
		    u32 idx, bool rx);

/* Diagnostics, in process context. */
bool ivshm_sock_info(struct ivshm_sock *isk, struct ivshm_dev *idev, u32 idx,
		     bool rx, struct ivshm_sock_info *out);

#endif /* _IVSHM_SOCKET_H */
