/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between af_ivshmem's core and the transports that provide a
 * shared region: the ivshmem PCI driver (pci.c) and the dev_shm pseudo
 * device (dev_shm/dev_shm.c, a separate module).
 *
 * A transport embeds a struct ivshm_dev in its own per-device state, fills
 * in the fields marked "transport", and calls ivshm_dev_register(). From
 * then on the core may call ops->ring() at any time until
 * ivshm_dev_unregister() returns, and the transport reports every doorbell
 * it receives with ivshm_dev_interrupt().
 */
#ifndef _IVSHM_DEVICE_H
#define _IVSHM_DEVICE_H

#include <linux/atomic.h>
#include <linux/hrtimer.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/ratelimit.h>
#include <linux/netdevice.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/workqueue.h>

#include "chan.h"
#include "core.h"
#include "params.h"

struct device;
struct dentry;
struct ivshm_dev;
struct ivshm_sock;
struct ivshm_stats;

/* What this guest last saw of another VM's peer slot (peer.c). */
struct ivshm_peer_seen {
	bool known;			/* seen ALIVE since we last lost it */
	u32 inc;
	u64 beat;
	unsigned long changed;		/* jiffies when beat last moved */
};

/* What this guest knows about one channel slot of the region: the socket
 * sending on it (a channel of ours), the socket reading it (addressed to
 * us), both on a loopback connection; or, for a channel we sent on and gave
 * up before the receiver acknowledged, the run to free once it does.
 */
struct ivshm_slot {
	struct ivshm_sock *tx;		/* each holds a socket reference */
	struct ivshm_sock *rx;
	bool orphan;
	bool free_now;			/* orphan: free at the next look */
	struct ivshm_runs runs;		/* orphan: what to free, private copy */
	unsigned long since;		/* orphan: jiffies when given up */
};

/* Largest number of doorbell vectors the core keeps counters for. */
#define IVSHM_MAX_VECTORS	64

/* Largest peer (VM) id a doorbell can address: 16 bits in the register. */
#define IVSHM_MAX_PEER_ID	0xffff

/* own_id value of a transport that cannot tell its VM id (ivshmem-plain). */
#define IVSHM_ID_NONE		U32_MAX

/* "Every peer", where a VM id is expected (peer.c, socket.c). */
#define IVSHM_ALL_PEERS		U32_MAX

struct ivshm_dev_ops {
	/* Ring doorbell @vector of peer @peer. May be called from any
	 * context, including hard interrupt context, and must not sleep.
	 * Returns 0, -EINVAL for a peer or vector that cannot exist, or
	 * -EOPNOTSUPP on a transport without doorbells.
	 */
	int (*ring)(struct ivshm_dev *idev, u32 peer, u32 vector);
};

struct ivshm_dev {
	/* transport: set before ivshm_dev_register(), constant after it. */
	const struct ivshm_dev_ops *ops;
	struct device *parent;
	const char *transport;		/* "pci" or "dev_shm" */
	void *region;			/* shared region, ordinary memory */
	size_t region_size;
	u32 own_id;			/* VM id, or IVSHM_ID_NONE */
	unsigned int nr_vectors;	/* 0: no doorbells, the region is polled */

	/* core: private to device.c and debugfs.c. */
	struct ivshm_layout layout;	/* private copy, see core.h */
	bool initialised;		/* we wrote the region's layout */
	struct list_head node;		/* in ivshm_devices, ivshm_devices_lock */
	int index;
	char name[16];			/* "ivshm%d" */
	struct dentry *debugfs;
	struct ivshm_stats __percpu *stats;	/* stats.h */
	atomic64_t doorbells[IVSHM_MAX_VECTORS];	/* received, per vector */
	seqlock_t params_lock;		/* params, see params.c */
	struct ivshm_params params;
	struct ratelimit_state nl_errors;	/* PROTO_ERROR events (netlink.c) */

	/* core, the data path's notifications (napi.c). */
	struct net_device *napi_dev;	/* a dummy, never registered */
	struct napi_struct napi;	/* drains our data set */
	u64 *carry;			/* data bits taken, not yet handled */
	u32 next_word;			/* where the next poll starts */
	struct hrtimer poll_timer;	/* no doorbells: schedules NAPI */
	u32 poll_us;			/* current polling interval */
	ktime_t bulk_until;		/* moderation: end of the bulk period */

	/* core, connections (chan.c). */
	u32 inc;			/* our incarnation; ctrl_mutex to change */
	bool joined;			/* own_id valid and our peer slot ALIVE */
	bool dying;			/* under lock: no new slots */
	struct mutex ctrl_mutex;	/* our users of the control lock, one at a
					 * time; guards inc and ctrl_seen*
					 */
	u64 ctrl_seen;			/* a live holder's lock word we last saw */
	unsigned long ctrl_seen_at;	/* jiffies when we first saw it */
	unsigned long ctrl_seen_last;	/* ... and last */
	spinlock_t lock;		/* slots[], dying; bottom halves off */
	struct ivshm_slot *slots;	/* by channel index, max_channels */
	u32 *held;			/* by channel index: the generation of
					 * the channel we took there, 0 for
					 * none; ctrl_mutex (ivshm_chan_audit())
					 */
	unsigned long audit_at;		/* reaper: jiffies of the last audit */
	struct delayed_work ctrl_work;	/* drains our control set */
	struct delayed_work reaper;	/* frees orphans nobody acknowledges */
	atomic_t users;			/* 1 + sockets and lookups using it */

	/* core, rebalancing (rebalance.c). */
	struct delayed_work rebal_work;	/* one pass over our channels */
	atomic_t rebal_count;		/* doorbells since the last pass */

	/* core, liveness (peer.c). */
	struct delayed_work beat_work;	/* our heartbeat, alone */
	struct delayed_work liveness;	/* peer checks, rejoining */
	unsigned long liveness_kicked;	/* jiffies of the last doorbell's check */
	u64 beat;			/* beat_work only */
	bool frozen;			/* test hook: act as a stopped VM */
	bool reclaim;			/* an old incarnation's channels remain */
	struct ivshm_peer_seen seen[IVSHM_MAX_PEERS];
};

int ivshm_dev_register(struct ivshm_dev *idev);
void ivshm_dev_unregister(struct ivshm_dev *idev);
void ivshm_dev_interrupt(struct ivshm_dev *idev, unsigned int vector);
int ivshm_dev_ring(struct ivshm_dev *idev, u32 peer, u32 vector);

void ivshm_devices_exit(void);

/* Device lookup for sockets; returns with a device reference (chan.c). */
struct ivshm_dev *ivshm_dev_get(u32 dev, u32 vm, bool for_connect);
void ivshm_dev_put(struct ivshm_dev *idev);
void ivshm_dev_hold(struct ivshm_dev *idev);
bool ivshm_dev_has_own(u32 vm, u32 dev);
bool ivshm_dev_exists(u32 dev);
struct ivshm_dev *ivshm_dev_get_from(int from);
int ivshm_dev_walk(int from, int (*fn)(struct ivshm_dev *idev, void *arg),
		   void *arg);

/* Test hooks, built only into the modules of the test guests (Kbuild
 * defines CONFIG_AF_IVSHMEM_TEST_HOOKS for IVSHM_TEST_MODULES=1):
 * dev_shm's "freeze" stops a device as a VM whose QEMU was stopped
 * (chan.c).
 */
#ifdef CONFIG_AF_IVSHMEM_TEST_HOOKS
void ivshm_dev_freeze(struct ivshm_dev *idev, bool frozen);
#endif

static inline bool ivshm_dev_frozen(const struct ivshm_dev *idev)
{
	return IS_ENABLED(CONFIG_AF_IVSHMEM_TEST_HOOKS) &&
	       READ_ONCE(idev->frozen);
}

#endif /* _IVSHM_DEVICE_H */
