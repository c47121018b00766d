/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The "ivshmem" generic netlink family: configuration and observation of
 * AF_IVSHMEM devices (ivshmN), their peers and their channels.
 *
 * The family is registered by af_ivshmem.ko, which the kernel loads on
 * demand when the family is resolved (CTRL_CMD_GETFAMILY); it exists in
 * the initial network namespace only. Every request is validated strictly:
 * unknown attributes, wrong lengths and values outside the ranges below
 * fail with EINVAL (or ERANGE) and an extended ack message naming the
 * attribute. Changes need CAP_NET_ADMIN; reading does not.
 *
 * Commands
 * --------
 * IVSHMEM_CMD_DEV_GET
 *	doit: the device named by IVSHMEM_A_DEV_ID or IVSHMEM_A_DEV_NAME
 *	(ENODEV if there is none); dumpit: every device, in the order of
 *	their numbers. Replies carry the device attributes below, the
 *	nested IVSHMEM_A_DEV_PARAMS and IVSHMEM_A_DEV_STATS.
 * IVSHMEM_CMD_DEV_SET
 *	CAP_NET_ADMIN. Names a device as DEV_GET does and carries
 *	IVSHMEM_A_DEV_PARAMS with the parameters to change. The whole set is
 *	checked against the device's other parameters before any is applied,
 *	so a refused request changes nothing. Applied values are announced as
 *	IVSHMEM_CMD_DEV_CHANGED on the events group.
 * IVSHMEM_CMD_PEER_GET
 *	dumpit: every VM slot in use on every device (or on the device named
 *	in the request: ENODEV if there is none), with the IVSHMEM_A_PEER_*
 *	attributes.
 * IVSHMEM_CMD_CHAN_GET
 *	dumpit: every side of a connection this guest holds (a channel it
 *	sends on, or one it reads), on every device or the one named, and
 *	optionally only those whose other end is VM IVSHMEM_A_PEER_VM
 *	(0 .. 65535), with the IVSHMEM_A_CHAN_* attributes and the nested
 *	IVSHMEM_A_CHAN_STATS.
 *
 * Every reply and every event names its device with IVSHMEM_A_DEV_ID and
 * IVSHMEM_A_DEV_NAME. The name is the one the device registered with
 * (at most 15 bytes).
 *
 * Events (multicast group IVSHMEM_GENL_MCGRP_EVENTS)
 * ------
 * Any user may listen.
 * IVSHMEM_CMD_PEER_UP, IVSHMEM_CMD_PEER_DOWN: a VM joined or was lost
 *	(IVSHMEM_A_PEER_VM, IVSHMEM_A_PEER_INCARNATION; DOWN adds
 *	IVSHMEM_A_PEER_STATE, the state its slot was found in).
 * IVSHMEM_CMD_CHAN_NEW, IVSHMEM_CMD_CHAN_RESIZED, IVSHMEM_CMD_CHAN_DEL: a
 *	channel this guest sends on was opened, moved to another size, or
 *	freed (IVSHMEM_A_CHAN_INDEX, _SENDER_VM, _RECEIVER_VM, _SIZE; NEW adds
 *	_LOCAL_PORT and _PEER_PORT, the sender's and the receiver's).
 * IVSHMEM_CMD_PROTO_ERROR: a value a peer wrote failed a check
 *	(IVSHMEM_A_CHAN_INDEX when a channel is concerned, whose other end
 *	wrote it; IVSHMEM_A_ERROR_MSG saying which check). At most a burst of
 *	10 a second per device; the PROTO_ERRORS counter counts them all.
 * IVSHMEM_CMD_DEV_CHANGED: a DEV_SET was applied; IVSHMEM_A_DEV_PARAMS
 *	carries the whole set as it is now.
 */
#ifndef _UAPI_LINUX_IVSHMEM_NETLINK_H
#define _UAPI_LINUX_IVSHMEM_NETLINK_H

#define IVSHMEM_GENL_NAME		"ivshmem"
#define IVSHMEM_GENL_VERSION		1
#define IVSHMEM_GENL_MCGRP_EVENTS	"events"

enum ivshmem_cmd {
	IVSHMEM_CMD_UNSPEC,
	IVSHMEM_CMD_DEV_GET,
	IVSHMEM_CMD_DEV_SET,
	IVSHMEM_CMD_PEER_GET,
	IVSHMEM_CMD_CHAN_GET,
	IVSHMEM_CMD_PEER_UP,
	IVSHMEM_CMD_PEER_DOWN,
	IVSHMEM_CMD_CHAN_NEW,
	IVSHMEM_CMD_CHAN_RESIZED,
	IVSHMEM_CMD_CHAN_DEL,
	IVSHMEM_CMD_PROTO_ERROR,
	IVSHMEM_CMD_DEV_CHANGED,

	__IVSHMEM_CMD_MAX
};

#define IVSHMEM_CMD_MAX (__IVSHMEM_CMD_MAX - 1)

/* IVSHMEM_A_DEV_MODE */
enum ivshmem_mode {
	IVSHMEM_MODE_DOORBELL,	/* ivshmem-doorbell, dev_shm: interrupts */
	IVSHMEM_MODE_PLAIN,	/* ivshmem-plain: no interrupts, polled */
};

/* IVSHMEM_A_PEER_STATE: the state of a VM's slot in the region. */
enum ivshmem_peer_state {
	IVSHMEM_PEER_FREE,	/* nobody */
	IVSHMEM_PEER_ALIVE,	/* attached and beating */
	IVSHMEM_PEER_DEAD,	/* declared dead; its resources are reclaimed */
	IVSHMEM_PEER_CLAIMED,	/* being taken by a VM that chose its id */
};

/* IVSHMEM_A_CHAN_DIR: which end of the channel this guest is. */
enum ivshmem_chan_dir {
	IVSHMEM_CHAN_DIR_TX,	/* this guest sends on it (and owns its blocks) */
	IVSHMEM_CHAN_DIR_RX,	/* this guest reads it */
};

/* IVSHMEM_A_CHAN_STATE: the channel's state in the region. */
enum ivshmem_chan_state {
	IVSHMEM_CHAN_FREE,
	IVSHMEM_CHAN_ALLOC,	/* being set up by its sender */
	IVSHMEM_CHAN_CONNECT,	/* the sender asks the receiver to accept */
	IVSHMEM_CHAN_OPEN,	/* records flow */
	IVSHMEM_CHAN_CLOSED,	/* the sender is done; the receiver drains */
};

enum ivshmem_attr {
	IVSHMEM_A_UNSPEC,
	IVSHMEM_A_PAD,

	/* Device. A request names one by either of the first two. */
	IVSHMEM_A_DEV_ID,		/* u32: N + 1 for ivshmN, as sivshm_dev */
	IVSHMEM_A_DEV_NAME,		/* string: "ivshmN" */
	IVSHMEM_A_DEV_IFINDEX,		/* unused: devices have no net device */
	IVSHMEM_A_DEV_TRANSPORT,	/* string: "pci" or "dev_shm" */
	IVSHMEM_A_DEV_PARENT,		/* string: PCI address or parent device */
	IVSHMEM_A_DEV_MODE,		/* u8: enum ivshmem_mode */
	IVSHMEM_A_DEV_VECTORS,		/* u32: doorbell vectors, 0 if polled */
	IVSHMEM_A_DEV_REGION_SIZE,	/* u64: bytes of the shared region */
	IVSHMEM_A_DEV_PROTOCOL,		/* u32: region protocol version */
	IVSHMEM_A_DEV_INITIALISED,	/* flag: this guest laid the region out */
	IVSHMEM_A_DEV_JOINED,		/* flag: attached, with a VM id */
	IVSHMEM_A_DEV_VM_ID,		/* u32: this guest's VM id (joined) */
	IVSHMEM_A_DEV_INCARNATION,	/* u32: this guest's incarnation (joined) */
	IVSHMEM_A_DEV_MAX_PEERS,	/* u32: VM ids the region has room for */
	IVSHMEM_A_DEV_PEERS,		/* u32: VMs alive, this one included */
	IVSHMEM_A_DEV_MAX_CHANNELS,	/* u32: channel slots */
	IVSHMEM_A_DEV_CHANNELS,		/* u32: channels in use, whole region (joined) */
	IVSHMEM_A_DEV_BLOCK_SIZE,	/* u32: bytes of a data block */
	IVSHMEM_A_DEV_BLOCKS,		/* u32: data blocks */
	IVSHMEM_A_DEV_BLOCKS_FREE,	/* u32: blocks nobody holds (joined) */
	IVSHMEM_A_DEV_POLL_US,		/* u32: polled devices: interval now */
	IVSHMEM_A_DEV_PARAMS,		/* nest: enum ivshmem_param_attr */
	IVSHMEM_A_DEV_STATS,		/* nest: enum ivshmem_stat_attr */

	/* Peer: a VM slot of the device's region. */
	IVSHMEM_A_PEER_VM,		/* u32: VM id; CHAN_GET: filter */
	IVSHMEM_A_PEER_STATE,		/* u8: enum ivshmem_peer_state */
	IVSHMEM_A_PEER_INCARNATION,	/* u32 */
	IVSHMEM_A_PEER_HEARTBEAT,	/* u64: its heartbeat counter */
	IVSHMEM_A_PEER_BEAT_AGE_MS,	/* u32: since it last moved, if known */
	IVSHMEM_A_PEER_VECTORS,		/* u32: its doorbell vectors */
	IVSHMEM_A_PEER_SELF,		/* flag: this guest */

	/* Channel: one side of a connection of this guest. */
	IVSHMEM_A_CHAN_INDEX,		/* u32: channel slot */
	IVSHMEM_A_CHAN_DIR,		/* u8: enum ivshmem_chan_dir */
	IVSHMEM_A_CHAN_STATE,		/* u8: enum ivshmem_chan_state */
	IVSHMEM_A_CHAN_SOCK_STATE,	/* u8: the socket's TCP_* state */
	IVSHMEM_A_CHAN_SENDER_VM,	/* u32 */
	IVSHMEM_A_CHAN_RECEIVER_VM,	/* u32 */
	IVSHMEM_A_CHAN_SENDER_PID,	/* u32: as the sender reports it, 0 unknown */
	IVSHMEM_A_CHAN_LOCAL_PORT,	/* u32: this guest's socket's port */
	IVSHMEM_A_CHAN_PEER_PORT,	/* u32: the other end's port */
	IVSHMEM_A_CHAN_OFFSET,		/* u64: ring start in the data area */
	IVSHMEM_A_CHAN_SIZE,		/* u32: ring bytes */
	IVSHMEM_A_CHAN_OLD_SIZE,	/* u32: tx: bytes of the run a pending
					 * move left, 0 if none
					 */
	IVSHMEM_A_CHAN_QUEUED,		/* u64: bytes not consumed yet */
	IVSHMEM_A_CHAN_HEAD,		/* u64: bytes produced, free running */
	IVSHMEM_A_CHAN_TAIL,		/* u64: bytes consumed, free running */
	IVSHMEM_A_CHAN_HEAD_TOUCH,	/* u64: records published (activity) */
	IVSHMEM_A_CHAN_FULL,		/* flag: tx: full since last rebalance */
	IVSHMEM_A_CHAN_FIXED,		/* flag: tx: SO_SNDBUF, never resized */
	IVSHMEM_A_CHAN_STATS,		/* nest: enum ivshmem_chan_stat_attr */

	IVSHMEM_A_ERROR_MSG,		/* string: PROTO_ERROR: what failed */

	__IVSHMEM_A_MAX
};

#define IVSHMEM_A_MAX (__IVSHMEM_A_MAX - 1)

/*
 * Device parameters, in IVSHMEM_A_DEV_PARAMS. Each device starts with the
 * values of the module parameters of the same names (REBALANCE_INTERVAL:
 * rebalance_doorbells; Documentation/admin-guide.md). Sizes are bytes,
 * whole 4 KiB blocks, 16384 .. 16777216 (IVSHMEM_RING_MIN .. _MAX in
 * <linux/ivshmem.h>), with chan_min <= chan_initial <= chan_max;
 * poll_min_us <= poll_max_us.
 */
enum ivshmem_param_attr {
	IVSHMEM_PARAM_UNSPEC,
	IVSHMEM_PARAM_REBALANCE,		/* u8: 0 or 1, resize channels */
	IVSHMEM_PARAM_REBALANCE_INTERVAL,	/* u32: doorbells per pass, 0 .. 10^6, 0: time */
	IVSHMEM_PARAM_REBALANCE_MS,		/* u32: polled: ms between, 1 .. 60000 */
	IVSHMEM_PARAM_REBALANCE_IDLE_MS,	/* u32: most ms between passes, 1 .. 600000 */
	IVSHMEM_PARAM_CHAN_INITIAL,		/* u32: bytes of a new channel */
	IVSHMEM_PARAM_CHAN_MIN,			/* u32: bytes an idle channel shrinks to */
	IVSHMEM_PARAM_CHAN_MAX,			/* u32: bytes a busy channel grows to */
	IVSHMEM_PARAM_POLL_MIN_US,		/* u32: polled: after work, 1 .. 1000000 */
	IVSHMEM_PARAM_POLL_MAX_US,		/* u32: polled: longest idle, 1 .. 1000000 */
	IVSHMEM_PARAM_COALESCE_US,		/* u32: bulk poll interval, 0 .. 100000, 0: off */
	IVSHMEM_PARAM_COALESCE_BULK,		/* u32: bytes starting a bulk period, 1 .. 16 MiB */
	IVSHMEM_PARAM_COALESCE_IDLE_US,		/* u32: a bulk period ends after, 1 .. 10000000 */
	IVSHMEM_PARAM_PEER_TIMEOUT_MS,		/* u32: a peer whose heartbeat stands still
						 * this long is dead, 500 .. 3600000
						 */

	__IVSHMEM_PARAM_MAX
};

#define IVSHMEM_PARAM_MAX (__IVSHMEM_PARAM_MAX - 1)

/* Device counters, u64 each, in IVSHMEM_A_DEV_STATS. */
enum ivshmem_stat_attr {
	IVSHMEM_STAT_UNSPEC,
	IVSHMEM_STAT_PAD,
	IVSHMEM_STAT_TX_RECORDS,	/* records this guest's sockets sent */
	IVSHMEM_STAT_TX_BYTES,
	IVSHMEM_STAT_RX_RECORDS,	/* records they received */
	IVSHMEM_STAT_RX_BYTES,
	IVSHMEM_STAT_NOTIFIES,		/* pending bits set for peers */
	IVSHMEM_STAT_SUPPRESSED,	/* notifications and doorbells spared */
	IVSHMEM_STAT_DOORBELLS_TX,	/* doorbells rung */
	IVSHMEM_STAT_DOORBELL_ERRORS,	/* doorbells the transport refused */
	IVSHMEM_STAT_DOORBELLS_RX,	/* doorbells received, every vector */
	IVSHMEM_STAT_NAPI_POLLS,	/* runs of the data poll */
	IVSHMEM_STAT_DATA_EVENTS,	/* data bits it handled */
	IVSHMEM_STAT_MODERATED,		/* polls that left the doorbell off */
	IVSHMEM_STAT_CTRL_POLLS,	/* runs of the control work */
	IVSHMEM_STAT_CTRL_EVENTS,	/* control bits it handled */
	IVSHMEM_STAT_CTRL_FLOODS,	/* runs cut short by too many bits */
	IVSHMEM_STAT_PROTO_ERRORS,	/* peers' values that failed a check */
	IVSHMEM_STAT_PEERS_LOST,	/* peers found dead or gone */
	IVSHMEM_STAT_XMIT_DROPPED,	/* unused: devices have no net device */
	IVSHMEM_STAT_REBALANCES,	/* rebalancing passes */
	IVSHMEM_STAT_GROWN,		/* channels of this guest grown */
	IVSHMEM_STAT_SHRUNK,		/* ... and shrunk */
	IVSHMEM_STAT_GROW_FAILED,	/* growths the region had no room for */
	IVSHMEM_STAT_LOCK_BREAKS,	/* control locks taken from a dead,
					 * stalled or forged holder
					 */
	IVSHMEM_STAT_LOCK_LOST,		/* control locks others took from us */

	__IVSHMEM_STAT_MAX
};

#define IVSHMEM_STAT_MAX (__IVSHMEM_STAT_MAX - 1)

/* Connection counters, u64 each, in IVSHMEM_A_CHAN_STATS. */
enum ivshmem_chan_stat_attr {
	IVSHMEM_CHAN_STAT_UNSPEC,
	IVSHMEM_CHAN_STAT_PAD,
	IVSHMEM_CHAN_STAT_RECORDS,	/* tx: sent; rx: received */
	IVSHMEM_CHAN_STAT_BYTES,
	IVSHMEM_CHAN_STAT_NOTIFIES,	/* data notifications given the peer */
	IVSHMEM_CHAN_STAT_DOORBELLS,	/* ... that rang its doorbell */
	IVSHMEM_CHAN_STAT_SUPPRESSED,	/* publications the reader did not need */
	IVSHMEM_CHAN_STAT_WAKEUPS,	/* data notifications received */
	IVSHMEM_CHAN_STAT_PROTO_ERRORS,	/* the peer's values that failed a check */
	IVSHMEM_CHAN_STAT_RESIZES,	/* tx: moves to another size */

	__IVSHMEM_CHAN_STAT_MAX
};

#define IVSHMEM_CHAN_STAT_MAX (__IVSHMEM_CHAN_STAT_MAX - 1)

#endif /* _UAPI_LINUX_IVSHMEM_NETLINK_H */
