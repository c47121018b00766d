/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Two VMs on one region, each running the connection code as the module
 * composes the core's calls (net/ivshmem/socket.c, data.c, chan.c): the
 * world the sequence fuzzer (conn_fuzz.c) and the model check (conn_model.c) drive.
 * VM 1 is S[0], VM 2 is S[1]; actions are single-threaded, one after the
 * other, and each one is a whole step of the module (a system call, one
 * run of the control work).
 */
#ifndef _CONN_SIM_H
#define _CONN_SIM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define REGION		(1u << 20)
#define NCONN		6		/* connections per side */
#define NORPHAN		64		/* channels a side waits to free */
#define LISTEN_PORT	9
#define RX_BURST	16		/* records per receive */
#define RING_BYTES	(4 * IVSHM_BLOCK_SIZE)

/* The work of one action, in region sim_accesses: a scan of the channel table
 * (allocation, a rebuild after a broken lock), a scan of the block bitmap
 * and a bounded number of handshake calls, or RX_BURST records with their
 * bounded MOVED following. Anything more is an unbounded loop fed by the
 * region.
 */
#define CONN_WORK_BOUND	(8 * IVSHM_MAX_CHANNELS + 64 * IVSHM_HS_MAX_ACCESS + \
			 RX_BURST * 64)

extern int sim_trace;

#define T(...) do {							\
	if (sim_trace)							\
		fprintf(stderr, __VA_ARGS__);				\
} while (0)

#define die(...) do {							\
	fprintf(stderr, "INVARIANT (%s:%d): ", __func__, __LINE__);	\
	fprintf(stderr, __VA_ARGS__);					\
	fputc('\n', stderr);						\
	abort();							\
} while (0)

/* ------------------------------------------------------------------ */
/* One VM's private state, as the module keeps it */

enum cstate { C_FREE, C_CONNECTING, C_OPEN };

struct conn {
	enum cstate st;
	bool has_tx, has_rx;
	bool eof, epipe;		/* peer closed its side / stopped reading */
	struct ivshm_ring tx, rx;
	u32 tx_idx, tx_gen, rx_idx, rx_gen;
	u32 tx_inc;			/* our incarnation that took tx */
	u32 answer, rx_seen;		/* the engine's "seen" values */
	u32 lport, rport;
	u32 tx_seq, rx_seq;		/* records sent, received */
	u32 tx_size;
	u64 tx_off;
	bool fresh;			/* made after VM 2 came back honest */
	/* A user asleep in recv (send): the head it found the ring empty
	 * at (the tail it found the ring full at), for its wait condition.
	 * Only the model check sets them.
	 */
	bool rx_waits, tx_waits;
	u64 rx_wait_pos, tx_wait_tail;
	u64 tx_wake_tail;		/* the tail it asked to be told of */
};

struct orphan {
	bool used;
	u32 idx;
	struct ivshm_runs runs;
};

struct side {
	u32 vm, inc;
	bool dead;			/* stopped: it does nothing more */
	bool listening;
	u32 next_port;
	struct conn c[NCONN];
	struct orphan o[NORPHAN];
	u32 held[IVSHM_MAX_CHANNELS];	/* generations we took (idev->held) */
	u32 proto_errors;
	u32 refused;
};

/* Why an orphan is looked at (chan.c's enum ivshm_orphan_why). */
enum why { NEWS, TIMED_OUT, NOW };

extern struct ivshm_layout L;
extern struct side S[2];
extern bool deviated;			/* VM 2 broke the protocol */
extern bool recovering;			/* ... and came back honest */
extern u64 sim_accesses;		/* counted by sim_count_access() */

void sim_count_access(const volatile void *p);
void sim_setup(void);
void sim_join(struct side *s);
void sim_connect(struct side *s, u32 port);
void sim_poll(struct side *s);
void sim_send(struct side *s, struct conn *c, u32 len);
void sim_recv(struct side *s, struct conn *c);
void sim_close(struct side *s, struct conn *c, bool reset);
void sim_move(struct side *s, struct conn *c, u32 blocks);
void sim_orphan_event(struct side *s, struct orphan *o, enum why why);
void sim_expire(struct side *s);
void sim_reap(struct side *s);
void sim_rejoin_peer(void);
void sim_kill_peer(void);
void sim_stall_self(void);
void sim_rejoin_self(void);
void sim_check_private(struct side *s);
void sim_settle(void);
void sim_check_recovery(void);

#endif /* _CONN_SIM_H */
