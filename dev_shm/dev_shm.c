// SPDX-License-Identifier: GPL-2.0
/*
 * dev_shm: a pseudo ivshmem device, so that af_ivshmem runs on one machine
 * without virtual machines.
 *
 * The module allocates one region and registers "peers" virtual peers with
 * af_ivshmem, each an ivshm_dev of its own with VM id 0 .. peers-1 and the
 * same region. Sockets on different virtual peers therefore talk through the
 * shared region exactly as sockets in different guests do.
 *
 * Doorbells imitate MSI-X: ringing sets the vector's bit in the target
 * peer's pending mask and queues that peer's irq_work, whose handler runs
 * in hard interrupt context and reports each pending vector. Rings that
 * arrive before the handler runs coalesce, as edge interrupts do.
 *
 * A transport must stop a device's interrupts before it unregisters it
 * (device.h). Here the other virtual peers would keep ringing until they
 * go too, so every peer is marked gone first, which the ringing side reads
 * in an RCU read-side section: after synchronize_rcu() no ring can queue an
 * irq_work any more, and irq_work_sync() waits for the last one queued.
 *
 * Root-only debugfs files under /sys/kernel/debug/dev_shm/ play the part of
 * the other guests for tests: "region" reads and writes raw region bytes,
 * "ring" takes "SRC DST VECTOR" to ring DST's doorbell as peer SRC, and
 * "hold" takes "PEER 1" to hold back PEER's doorbells, as a guest that has
 * stopped handling interrupts would, and "PEER 0" to deliver them again;
 * "freeze" takes "PEER 1" to stop PEER altogether, as a VM whose QEMU was
 * stopped (no heartbeat, nothing handled), and "PEER 0" to let it go on
 * (only with af_ivshmem's test hooks: CONFIG_AF_IVSHMEM_TEST_HOOKS);
 * "flood" takes "SRC DST MS" and, for MS milliseconds, has peer SRC set
 * every bit of DST's pending sets and ring every vector of DST, as fast as
 * it can, as a hostile guest would.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/fs.h>
#include <linux/irq_work.h>
#include <linux/module.h>
#include <linux/rcupdate.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/vmalloc.h>

#include "device.h"

#define DEVSHM_MAX_PEERS	64
#define DEVSHM_MIN_SIZE		(64 * 1024)
#define DEVSHM_MAX_SIZE		(1024 * 1024 * 1024)
#define DEVSHM_MAX_FLOOD_MS	60000

static unsigned int peers = 4;
module_param(peers, uint, 0444);
MODULE_PARM_DESC(peers, "number of virtual peers (VMs), 2 to 64 (default 4)");

static unsigned long size = 4 * 1024 * 1024;
module_param(size, ulong, 0444);
MODULE_PARM_DESC(size, "region size in bytes, a power of two, 64 KiB to 1 GiB (default 4 MiB)");

static unsigned int vectors = 2;
module_param(vectors, uint, 0444);
MODULE_PARM_DESC(vectors, "doorbell vectors per peer, 1 to 64 (default 2)");

struct devshm_peer {
	struct ivshm_dev idev;
	struct irq_work irq_work;
	unsigned long pending;		/* vectors rung, not yet delivered */
	bool held;			/* debugfs "hold": do not deliver */
	bool gone;			/* unregistering: rings are dropped */
	bool registered;
};

struct devshm {
	struct device *dev;
	void *region;
	struct dentry *debugfs;
	unsigned int nr_peers;
	struct devshm_peer peer[];
};

static struct devshm *devshm;

static void devshm_irq_work(struct irq_work *work)
{
	struct devshm_peer *peer = container_of(work, struct devshm_peer,
						irq_work);
	unsigned long pending = xchg(&peer->pending, 0);
	unsigned int vector;

	for_each_set_bit(vector, &pending, BITS_PER_LONG)
		ivshm_dev_interrupt(&peer->idev, vector);
}

static int devshm_ring(struct ivshm_dev *idev, u32 dst, u32 vector)
{
	struct devshm_peer *peer;

	if (dst >= devshm->nr_peers || vector >= vectors)
		return -EINVAL;

	peer = &devshm->peer[dst];
	rcu_read_lock();
	if (READ_ONCE(peer->gone)) {
		rcu_read_unlock();
		return -ENODEV;
	}
	set_bit(vector, &peer->pending);
	/* Pairs with the release of a hold: a ring is never lost. */
	smp_mb__after_atomic();
	if (!READ_ONCE(peer->held))
		irq_work_queue(&peer->irq_work);
	rcu_read_unlock();
	return 0;
}

static const struct ivshm_dev_ops devshm_ops = {
	.ring = devshm_ring,
};

static ssize_t region_read(struct file *file, char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	return simple_read_from_buffer(ubuf, count, ppos, devshm->region, size);
}

static ssize_t region_write(struct file *file, const char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	if (*ppos >= size)
		return -ENOSPC;
	return simple_write_to_buffer(devshm->region, size, ppos, ubuf, count);
}

static const struct file_operations region_fops = {
	.owner = THIS_MODULE,
	.read = region_read,
	.write = region_write,
	.llseek = default_llseek,
};

static ssize_t ring_write(struct file *file, const char __user *ubuf,
			  size_t count, loff_t *ppos)
{
	unsigned int src, dst, vector;
	char buf[48];
	int ret;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';

	if (sscanf(buf, "%u %u %u", &src, &dst, &vector) != 3)
		return -EINVAL;
	if (src >= devshm->nr_peers)
		return -EINVAL;

	ret = devshm_ring(&devshm->peer[src].idev, dst, vector);
	return ret ? ret : count;
}

/* "PEER 0|1" from user space, for "hold" and "freeze". */
static int devshm_parse_switch(const char __user *ubuf, size_t count,
			       struct devshm_peer **peer, bool *on)
{
	unsigned int dst, val;
	char buf[32];

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	if (sscanf(buf, "%u %u", &dst, &val) != 2 ||
	    dst >= devshm->nr_peers || val > 1)
		return -EINVAL;
	*peer = &devshm->peer[dst];
	*on = val;
	return 0;
}

static ssize_t hold_write(struct file *file, const char __user *ubuf,
			  size_t count, loff_t *ppos)
{
	struct devshm_peer *peer;
	bool on;
	int ret;

	ret = devshm_parse_switch(ubuf, count, &peer, &on);
	if (ret)
		return ret;
	WRITE_ONCE(peer->held, on);
	/* Released: deliver what was rung meanwhile (pairs with the ring). */
	smp_mb();
	if (!on && READ_ONCE(peer->pending))
		irq_work_queue(&peer->irq_work);
	return count;
}

#ifdef CONFIG_AF_IVSHMEM_TEST_HOOKS
static ssize_t freeze_write(struct file *file, const char __user *ubuf,
			    size_t count, loff_t *ppos)
{
	struct devshm_peer *peer;
	bool on;
	int ret;

	ret = devshm_parse_switch(ubuf, count, &peer, &on);
	if (ret)
		return ret;
	ivshm_dev_freeze(&peer->idev, on);
	return count;
}
#endif

/*
 * A hostile peer: every pending bit of @dst set, every vector rung, again
 * and again until @ms have passed. Runs in the writer's context, yielding
 * between rounds, so it competes for a CPU like any busy process.
 */
static ssize_t flood_write(struct file *file, const char __user *ubuf,
			   size_t count, loff_t *ppos)
{
	unsigned int src, dst, ms, set, w, v;
	const struct ivshm_layout *l;
	unsigned long end;
	u64 rounds = 0;
	char buf[48];

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	if (sscanf(buf, "%u %u %u", &src, &dst, &ms) != 3 ||
	    src >= devshm->nr_peers || dst >= devshm->nr_peers ||
	    ms > DEVSHM_MAX_FLOOD_MS)
		return -EINVAL;

	/* The core's own copy of the layout, read only. */
	l = &devshm->peer[src].idev.layout;
	end = jiffies + msecs_to_jiffies(ms);
	while (time_before(jiffies, end)) {
		for (set = 0; set < IVSHM_PEND_SETS; set++)
			for (w = 0; w < l->pending_words; w++)
				ivshm_put64(ivshm_pending(l, dst, set) + w,
					    ~0ull);
		for (v = 0; v < vectors; v++)
			devshm_ring(&devshm->peer[src].idev, dst, v);
		rounds++;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	pr_info("flood of peer %u by peer %u: %llu rounds in %u ms\n", dst,
		src, rounds, ms);
	return count;
}

static const struct file_operations flood_fops = {
	.owner = THIS_MODULE,
	.write = flood_write,
	.llseek = noop_llseek,
};

#ifdef CONFIG_AF_IVSHMEM_TEST_HOOKS
static const struct file_operations freeze_fops = {
	.owner = THIS_MODULE,
	.write = freeze_write,
	.llseek = noop_llseek,
};
#endif

static const struct file_operations hold_fops = {
	.owner = THIS_MODULE,
	.write = hold_write,
	.llseek = noop_llseek,
};

static const struct file_operations ring_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = ring_write,
};

static int devshm_check_params(void)
{
	if (peers < 2 || peers > DEVSHM_MAX_PEERS) {
		pr_err("peers=%u is out of range (2 to %d)\n", peers,
		       DEVSHM_MAX_PEERS);
		return -EINVAL;
	}
	if (size < DEVSHM_MIN_SIZE || size > DEVSHM_MAX_SIZE ||
	    !is_power_of_2(size)) {
		pr_err("size=%lu must be a power of two from %d to %d\n", size,
		       DEVSHM_MIN_SIZE, DEVSHM_MAX_SIZE);
		return -EINVAL;
	}
	if (vectors < 1 || vectors > IVSHM_MAX_VECTORS) {
		pr_err("vectors=%u is out of range (1 to %d)\n", vectors,
		       IVSHM_MAX_VECTORS);
		return -EINVAL;
	}
	return 0;
}

static void devshm_unregister_peers(struct devshm *shm)
{
	unsigned int i;

	/* Every peer's interrupts stop before any is unregistered: no ring
	 * reaches a peer once it is gone, and its last irq_work has run.
	 */
	for (i = 0; i < shm->nr_peers; i++)
		WRITE_ONCE(shm->peer[i].gone, true);
	synchronize_rcu();
	for (i = 0; i < shm->nr_peers; i++)
		irq_work_sync(&shm->peer[i].irq_work);
	for (i = 0; i < shm->nr_peers; i++) {
		if (shm->peer[i].registered)
			ivshm_dev_unregister(&shm->peer[i].idev);
		shm->peer[i].registered = false;
	}
}

static int __init devshm_init(void)
{
	struct devshm *shm;
	unsigned int i;
	int ret;

	ret = devshm_check_params();
	if (ret)
		return ret;

	shm = kzalloc(struct_size(shm, peer, peers), GFP_KERNEL);
	if (!shm)
		return -ENOMEM;
	shm->nr_peers = peers;
	devshm = shm;

	shm->region = vzalloc(size);
	if (!shm->region) {
		ret = -ENOMEM;
		goto err_free;
	}

	shm->dev = root_device_register(KBUILD_MODNAME);
	if (IS_ERR(shm->dev)) {
		ret = PTR_ERR(shm->dev);
		goto err_vfree;
	}

	for (i = 0; i < peers; i++) {
		struct devshm_peer *peer = &shm->peer[i];

		init_irq_work(&peer->irq_work, devshm_irq_work);
		peer->idev.ops = &devshm_ops;
		peer->idev.parent = shm->dev;
		peer->idev.transport = KBUILD_MODNAME;
		peer->idev.region = shm->region;
		peer->idev.region_size = size;
		peer->idev.own_id = i;
		peer->idev.nr_vectors = vectors;
		ret = ivshm_dev_register(&peer->idev);
		if (ret)
			goto err_unregister;
		peer->registered = true;
	}

	shm->debugfs = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("region", 0600, shm->debugfs, NULL, &region_fops);
	debugfs_create_file("ring", 0200, shm->debugfs, NULL, &ring_fops);
	debugfs_create_file("hold", 0200, shm->debugfs, NULL, &hold_fops);
#ifdef CONFIG_AF_IVSHMEM_TEST_HOOKS
	debugfs_create_file("freeze", 0200, shm->debugfs, NULL, &freeze_fops);
#endif
	debugfs_create_file("flood", 0200, shm->debugfs, NULL, &flood_fops);

	pr_info("%u virtual peers on a %lu KiB region\n", peers, size >> 10);
	return 0;

err_unregister:
	devshm_unregister_peers(shm);
	root_device_unregister(shm->dev);
err_vfree:
	vfree(shm->region);
err_free:
	kfree(shm);
	devshm = NULL;
	return ret;
}

static void __exit devshm_exit(void)
{
	struct devshm *shm = devshm;

	debugfs_remove(shm->debugfs);
	devshm_unregister_peers(shm);
	root_device_unregister(shm->dev);
	vfree(shm->region);
	kfree(shm);
}

module_init(devshm_init);
module_exit(devshm_exit);

MODULE_DESCRIPTION("Pseudo ivshmem device with virtual peers for af_ivshmem");
MODULE_LICENSE("GPL");
