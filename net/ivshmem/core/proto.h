/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Region protocol v1: the byte layout of the shared region. Every field is
 * little endian and fixed width; Documentation/protocol.md is the
 * specification and explains each field, state and barrier.
 *
 * Every guest can write any byte of the region at any time. Nothing here is
 * trusted: each value is read once through compat.h, checked against the
 * reader's private state (struct ivshm_layout, struct ivshm_ring), and only
 * then used.
 */
#ifndef _IVSHM_PROTO_H
#define _IVSHM_PROTO_H

#include "compat.h"

#define IVSHM_MAGIC		0x4d485349	/* "ISHM" */
#define IVSHM_VERSION		1
#define IVSHM_BLOCK_SHIFT	12
#define IVSHM_BLOCK_SIZE	((u32)BIT(IVSHM_BLOCK_SHIFT))
#define IVSHM_CACHELINE		64

#define IVSHM_MIN_REGION	(64ull << 10)
#define IVSHM_MAX_REGION	BIT_ULL(36)	/* 64 GiB */

/* The longest run a channel may have: the largest ring a socket can ask
 * for (IVSHMEM_RING_MAX in the ABI). Every run read from the region, in a
 * descriptor or a MOVED record, is refused past it, which bounds what one
 * channel can make a reader or a rebuild walk over, whatever the region's
 * size.
 */
#define IVSHM_RUN_MAX		(16u << 20)
/* The shortest run a channel may have (IVSHMEM_RING_MIN in the ABI). */
#define IVSHM_RUN_MIN		(16u << 10)

/* VM ids 0 .. IVSHM_MAX_PEERS - 1 have a slot in the peer table. */
#define IVSHM_MAX_PEERS		64

/* Channel table size: one per 16 KiB of region, 64 to 4096. */
#define IVSHM_MIN_CHANNELS	64
#define IVSHM_MAX_CHANNELS	4096

/* header.init_state */
enum ivshm_init_state {
	IVSHM_INIT_NONE = 0,		/* zeroed or foreign region */
	IVSHM_INIT_BUSY = 1,		/* claimed by one peer, being written */
	IVSHM_INIT_READY = 2,		/* layout valid, peers may attach */
};

struct ivshm_hdr {
	__le32 magic;
	__le16 version;
	__le16 hdr_size;		/* sizeof(struct ivshm_hdr) */
	__le32 init_state;		/* enum ivshm_init_state */
	__le32 block_size;		/* IVSHM_BLOCK_SIZE */
	__le64 region_size;
	__le32 max_peers;
	__le32 max_channels;
	__le64 peers_off;		/* byte offsets from the region start */
	__le64 ctrl_off;
	__le64 bitmap_off;
	__le64 pending_off;
	__le64 chan_off;
	__le64 data_off;
	__le32 nr_blocks;		/* blocks in the data area */
	__le32 init_peer;		/* VM id of the peer that initialised */
	__le64 reserved[5];
};

/* peer.state */
enum ivshm_peer_state {
	IVSHM_PEER_FREE = 0,
	IVSHM_PEER_ALIVE = 1,
	IVSHM_PEER_DEAD = 2,		/* declared dead; its resources reclaimable */
	IVSHM_PEER_CLAIMED = 3,		/* taken by a VM choosing its own id */
};

/* One cache line per VM id, written only by that VM (see protocol.md). */
struct ivshm_peer {
	__le32 state;			/* enum ivshm_peer_state */
	__le32 incarnation;		/* bumped on every attach, never 0 */
	__le64 heartbeat;		/* incremented periodically while alive */
	__le32 doorbell_armed;		/* 1: ring my control vector for control bits */
	__le32 vectors;			/* doorbell vectors, 0 if polled */
	__le32 data_armed;		/* 1: ring my data vector for data bits */
	__le32 reserved0;
	__le64 reserved[4];
};

/* The two pending sets of a VM (protocol.md, Pending sets). */
enum ivshm_pend_set {
	IVSHM_PEND_CTRL = 0,		/* states and acknowledgments */
	IVSHM_PEND_DATA = 1,		/* records published, room freed */
	IVSHM_PEND_SETS,
};

/* Doorbell vectors: control on 0; data on 1 when a VM has two or more. */
#define IVSHM_VEC_CTRL		0
#define IVSHM_VEC_DATA		1

/* Control section. Allocation bookkeeping (bitmap, free_start_offset,
 * num_active_channel, free_blocks, channel slots changing FREE <-> ALLOC) is
 * changed only by the holder of @lock; data transfer never takes it.
 */
struct ivshm_ctrl {
	__le64 lock;			/* 0 or IVSHM_LOCK_OWNER(vm, incarnation) */
	__le32 free_start_offset;	/* next-fit hint: data-area byte offset */
	__le32 num_active_channel;
	__le32 free_blocks;
	__le32 lock_breaks;		/* times a dead holder's lock was taken */
	__le64 reserved[5];
};

#define IVSHM_LOCK_OWNER(vm, inc)	((u64)(inc) << 32 | ((u64)(vm) + 1))
#define IVSHM_LOCK_VM(word)		((u32)(word) - 1)
#define IVSHM_LOCK_INC(word)		((u32)((word) >> 32))

/* chan.state: the channel lifecycle, see protocol.md. */
enum ivshm_chan_state {
	IVSHM_CHAN_FREE = 0,		/* slot unused */
	IVSHM_CHAN_ALLOC = 1,		/* owned by a sender, being set up */
	IVSHM_CHAN_CONNECT = 2,		/* sender asks receiver_vm to accept */
	IVSHM_CHAN_OPEN = 3,		/* records flow */
	IVSHM_CHAN_CLOSED = 4,		/* sender done; receiver drains, acks */
	IVSHM_CHAN_NR_STATES,
};

/* Receiver-written state of a channel (chan.rx_state). */
enum ivshm_rx_state {
	IVSHM_RX_NONE = 0,
	IVSHM_RX_ACCEPTED = 1,		/* receiver attached its reader */
	IVSHM_RX_REFUSED = 2,		/* nobody listens; sender frees */
	IVSHM_RX_CLOSED = 3,		/* receiver let go; sender frees */
	IVSHM_RX_RESET = 4,		/* as CLOSED, with records left unread */
	IVSHM_RX_NOBUFS = 5,		/* no room for the reverse channel; sender frees */
	IVSHM_RX_NR_STATES,
};

/* tx_flags: the sender waits for room; notify it when tail moves. */
#define IVSHM_TXF_WAIT		0x0001
/* tx_flags: the sender closed because the connection failed (reset). */
#define IVSHM_TXF_RESET		0x0002
/* tx_flags: the ring was full since the sender's last rebalance: it wants
 * to grow, and counts in the fair share of every sender that does.
 */
#define IVSHM_TXF_FULL		0x0004
/* rx_flags: the receiver sleeps; notify it when head passes rx_event. */
#define IVSHM_RXF_WAIT		0x0001

/* A channel: one sender, one receiver, one ring. Three cache lines, each
 * with exactly one writer: identity (the sender, while it owns the slot,
 * and only with the control lock held, so that a rebuild sees it whole),
 * producer (the sender), consumer (the receiver).
 */
struct ivshm_chan {
	/* Line 0: identity, written by the sender. */
	__le32 state;			/* enum ivshm_chan_state */
	__le32 generation;		/* bumped each time the slot is taken */
	__le16 sender_vm;
	__le16 receiver_vm;
	__le32 sender_pid;
	__le32 src_port;
	__le32 dst_port;
	__le64 buff_offset;		/* ring start, data-area byte offset */
	__le32 buff_size;		/* ring bytes, a multiple of the block */
	__le32 sender_inc;		/* sender's incarnation */
	__le64 old_offset;		/* run left by a move, until freed */
	__le32 old_size;		/* its bytes; 0 when no move is pending */
	__le32 peer_chan;		/* accepting side: the connector's channel */
	__le32 peer_gen;		/* ... and its generation */
	__le32 reserved0;

	/* Line 1: producer, written by the sender. */
	__le64 head;			/* bytes produced, free running */
	__le64 data_size;		/* bytes queued at the last publish */
	__le64 head_touch;		/* records published, free running */
	__le32 tx_flags;		/* IVSHM_TXF_* */
	__le32 reserved1;
	__le64 wake_tail;		/* TXF_WAIT: notify once tail reaches it */
	__le64 reserved2[3];

	/* Line 2: consumer, written by the receiver. */
	__le64 tail;			/* bytes consumed, free running */
	__le32 rx_state;		/* enum ivshm_rx_state */
	__le32 rx_flags;		/* IVSHM_RXF_* */
	__le32 receiver_inc;		/* receiver's incarnation */
	__le32 rx_peer_chan;		/* ACCEPTED: the acceptor's channel */
	__le32 rx_peer_gen;		/* ... and its generation */
	__le32 reserved3;
	__le64 rx_event;		/* RXF_WAIT: notify once head passes it */
	__le64 reserved4[3];
};

/* Records: an 8-byte header, the payload, padding to 8 bytes. */
#define IVSHM_REC_ALIGN		8
#define IVSHM_REC_HDR		8

enum ivshm_rec_type {
	IVSHM_REC_DATA = 1,		/* payload for the user */
	IVSHM_REC_MOVED = 2,		/* ring continues elsewhere */
	IVSHM_REC_NR_TYPES,
};

/* Record flags: none are defined in version 1; a record with any set is
 * refused, so that a later version can give them a meaning.
 */
#define IVSHM_REC_F_ALL		0

/* The header as one little-endian 64-bit word, so that the reader takes it
 * with a single load: bits 0-31 payload length, 32-47 type, 48-63 flags.
 */
#define IVSHM_REC_WORD(len, type, flags) \
	((u64)(len) | (u64)(type) << 32 | (u64)(flags) << 48)
#define IVSHM_REC_LEN(w)	((u32)(w))
#define IVSHM_REC_TYPE(w)	((u16)((w) >> 32))
#define IVSHM_REC_FLAGS(w)	((u16)((w) >> 48))

/* Payload of IVSHM_REC_MOVED. */
struct ivshm_rec_moved {
	__le64 buff_offset;
	__le32 buff_size;
	__le32 flags;			/* IVSHM_MOVED_F_* */
};

/* The new run starts where the current one does and is longer (the blocks
 * after it were free): the ring continues right after the MOVED record, not
 * at offset 0, and nothing is left to free.
 */
#define IVSHM_MOVED_F_EXTEND	0x0001

/* The layout is ABI between guests: pin the sizes and the line split. */
static_assert(sizeof(struct ivshm_hdr) == 128, "region ABI");
static_assert(sizeof(struct ivshm_peer) == IVSHM_CACHELINE, "region ABI");
static_assert(sizeof(struct ivshm_ctrl) == IVSHM_CACHELINE, "region ABI");
static_assert(sizeof(struct ivshm_chan) == 3 * IVSHM_CACHELINE, "region ABI");
static_assert(offsetof(struct ivshm_chan, head) == IVSHM_CACHELINE, "region ABI");
static_assert(offsetof(struct ivshm_chan, tail) == 2 * IVSHM_CACHELINE, "region ABI");
static_assert(offsetof(struct ivshm_chan, rx_event) == 160, "region ABI");
static_assert(offsetof(struct ivshm_peer, data_armed) == 24, "region ABI");
static_assert(sizeof(struct ivshm_rec_moved) == 16, "region ABI");

#endif /* _IVSHM_PROTO_H */
