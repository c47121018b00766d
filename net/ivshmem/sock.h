/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A socket of the family, as the files that make the family share it:
 * socket.c (the family, binding and the connection), data.c (the data
 * path) and rebalance.c (resizing the channel a socket sends on). Other
 * files know struct ivshm_sock only by name (socket.h).
 */
#ifndef _IVSHM_SOCK_H
#define _IVSHM_SOCK_H

#include <linux/ivshmem.h>
#include <linux/list.h>
#include <net/sock.h>

#include "bind.h"
#include "core.h"
#include "socket.h"

struct ivshm_sock {
	struct sock sk;		/* must be first: sk_alloc() sizes by proto */

	/* addresses; local is valid once bound or connected */
	struct sockaddr_ivshmem local;
	struct sockaddr_ivshmem remote;
	struct ivshm_bind bind;		/* the bind table's (bind.c) */

	/* the connection */
	struct ivshm_dev *idev;		/* holds a device reference */
	bool has_tx, has_rx;
	u32 tx_idx, tx_gen, rx_idx, rx_gen;
	u32 tx_inc;			/* our incarnation that took tx, and made
					 * the connection
					 */
	struct ivshm_ring tx;		/* our channel */
	struct ivshm_ring rx;		/* the peer's channel to us */
	u32 tx_answer;			/* the rx_state we last took from ours */
	u32 rx_state_seen;		/* the peer's channel state we last took */
	u32 tx_max_run;			/* bytes it was opened with: largest record + 8 */
	bool tx_fixed;			/* SO_SNDBUF chose its size: never resized */
	u32 tx_full;			/* times it was full since the last rebalance */
	u64 rebal_touch;		/* records produced at the last rebalance */
	unsigned long rebal_busy;	/* jiffies: a pass last saw records */
	struct ivshm_conn_stats cs;	/* this connection's counters */
	s32 peer_pid;
	s32 owner_pid;			/* who called listen() or connect() */
	u64 connect_timeout_ms;

	/* listener: children ready for accept(); child: its place there */
	struct list_head accept_q;
	struct list_head accept_node;
};

static inline struct ivshm_sock *ivshm_isk(struct sock *sk)
{
	return container_of(sk, struct ivshm_sock, sk);
}

/* socket.c: the connection, for the data path and the rebalancing pass. */
int ivshm_sock_wait(struct ivshm_sock *isk, long *timeo,
		    bool (*ready)(struct ivshm_sock *isk, u64 arg), u64 arg);
bool ivshm_sock_fenced(const struct ivshm_sock *isk);
void ivshm_sock_fail(struct ivshm_sock *isk, int err);
void ivshm_sock_proto_error(struct ivshm_sock *isk, u32 idx,
			    const char *what);

/* data.c: the data path, for the socket's calls and the rebalancing pass. */
int ivshm_data_sendmsg(struct socket *sock, struct msghdr *msg, size_t len);
int ivshm_data_recvmsg(struct socket *sock, struct msghdr *msg, size_t len,
		       int flags);
void ivshm_data_consumed(struct ivshm_sock *isk);
void ivshm_data_want(struct ivshm_sock *isk);
int ivshm_data_next(struct ivshm_sock *isk, struct ivshm_rec *rec);
bool ivshm_data_readable(struct ivshm_sock *isk);
void ivshm_data_moved(struct ivshm_sock *isk);

#endif /* _IVSHM_SOCK_H */
