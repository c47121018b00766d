// SPDX-License-Identifier: GPL-2.0
/*
 * Diagnostic files under /sys/kernel/debug/af_ivshmem/<dev>/, readable and
 * writable by root only:
 *
 *   info       what the transport reported (VM id, vectors, region size)
 *              and the region layout this device uses
 *   doorbells  the device's counters (stats.h): doorbells rung, refused
 *              and spared, NAPI polls, control work, records and bytes,
 *              and per vector the doorbells received
 *   channels   one line per side of a connection on this device: the
 *              channel, its direction, ports, peer, ring and counters
 *   ring       write "PEER VECTOR [COUNT]" to ring a peer's doorbell
 *              COUNT times (default once, at most 10^7), for testing the
 *              doorbell path between guests without any protocol; only
 *              in the modules of the test guests
 *              (CONFIG_AF_IVSHMEM_TEST_HOOKS)
 *
 * The stable configuration and statistics interface is generic netlink;
 * these files exist for debugging and for the bring-up tests.
 *
 * debugfs removal waits for readers and writers of a file to leave, so a
 * file op never sees a device that ivshm_dev_unregister() has released.
 */

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/kernel.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>
#include <linux/uaccess.h>

#include "chan.h"
#include "debugfs.h"
#include "device.h"
#include "socket.h"
#include "stats.h"

static struct dentry *ivshm_debugfs_root;

static int info_show(struct seq_file *m, void *unused)
{
	struct ivshm_dev *idev = m->private;
	struct ivshm_region_view v;

	seq_printf(m, "name: %s\n", idev->name);
	seq_printf(m, "transport: %s\n", idev->transport);
	seq_printf(m, "parent: %s\n",
		   idev->parent ? dev_name(idev->parent) : "-");
	seq_printf(m, "region_size: %zu\n", idev->region_size);
	if (idev->own_id == IVSHM_ID_NONE)
		seq_puts(m, "own_id: none\n");
	else
		seq_printf(m, "own_id: %u\n", idev->own_id);
	seq_printf(m, "vectors: %u\n", idev->nr_vectors);
	seq_printf(m, "mode: %s\n", idev->nr_vectors ? "doorbell" : "plain");
	seq_printf(m, "protocol: %u\n", IVSHM_VERSION);
	seq_printf(m, "region: %s\n",
		   idev->initialised ? "initialised" : "attached");
	seq_printf(m, "max_channels: %u\n", idev->layout.max_channels);
	seq_printf(m, "data_blocks: %u\n", idev->layout.nr_blocks);
	seq_printf(m, "data_offset: %llu\n", idev->layout.data_off);
	if (!idev->joined)
		return 0;
	/* Read from the region: what the peers' bookkeeping says now. */
	ivshm_view_region(&idev->layout, &v);
	seq_printf(m, "free_blocks: %u\n", v.free_blocks);
	seq_printf(m, "bitmap_free: %u\n", v.bitmap_free);
	seq_printf(m, "active_channels: %u\n", v.active_channels);
	seq_printf(m, "incarnation: %u\n", READ_ONCE(idev->inc));
	if (!idev->nr_vectors)
		seq_printf(m, "poll_us: %u\n", READ_ONCE(idev->poll_us));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(info);

static int doorbells_show(struct seq_file *m, void *unused)
{
	struct ivshm_dev *idev = m->private;
	u64 v[IVSHM_STAT_NR];
	unsigned int i;

	ivshm_stats_read(idev, v);
	for (i = 0; i < IVSHM_STAT_NR; i++)
		seq_printf(m, "%s: %llu\n", ivshm_stat_name(i), v[i]);
	for (i = 0; i < idev->nr_vectors; i++)
		seq_printf(m, "vector%u: %lld\n", i,
			   atomic64_read(&idev->doorbells[i]));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(doorbells);

static const char *const ivshm_dir_names[2] = { "tx", "rx" };

static int channels_show(struct seq_file *m, void *unused)
{
	struct ivshm_dev *idev = m->private;
	struct ivshm_sock_info in;
	u32 i;
	int k;

	if (!idev->joined)
		return 0;
	for (i = 0; i < idev->layout.max_channels; i++) {
		struct ivshm_sock *isk[2];

		ivshm_slot_get(idev, i, isk);
		for (k = 0; k < 2; k++) {
			if (!isk[k] || !ivshm_sock_info(isk[k], idev, i, k, &in))
				continue;
			seq_printf(m, "chan %u %s port %u peer %u:%u pid %d peer_pid %d state %d ring %u queued %llu",
				   i, ivshm_dir_names[k], in.local_port,
				   in.peer_vm, in.peer_port, in.owner_pid,
				   in.peer_pid, in.state, in.ring, in.queued);
			seq_printf(m, " old %u moving %d full %d resizes %llu",
				   in.old_ring, in.moving, in.full,
				   in.cs.resizes);
			seq_printf(m, " offset %llu head %llu tail %llu told %llu cap %u cap_until %llu pending %d waiting %d",
				   in.offset, in.head, in.tail, in.told,
				   in.cap, in.cap_until, in.move_pending,
				   in.waiting);
			seq_printf(m, " region head %llu tail %llu tx_flags %#x wake_tail %llu rx_flags %#x rx_event %llu",
				   in.chan.head, in.chan.tail,
				   in.chan.tx_flags, in.chan.wake_tail,
				   in.chan.rx_flags, in.chan.rx_event);
			seq_printf(m, " records %llu bytes %llu notifies %llu rings %llu suppressed %llu wakeups %llu proto_errors %llu\n",
				   k ? in.cs.rx_records : in.cs.tx_records,
				   k ? in.cs.rx_bytes : in.cs.tx_bytes,
				   in.cs.notifies, in.cs.rings,
				   in.cs.suppressed,
				   k ? in.cs.rx_wakeups : in.cs.tx_wakeups,
				   in.cs.proto_errors);
		}
		ivshm_slot_put(isk);
	}
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(channels);

/* Most rings one write to "ring" asks for: a flood, but a bounded one. */
#define IVSHM_RING_MAX_COUNT	10000000u

static ssize_t ring_write(struct file *file, const char __user *ubuf,
			  size_t count, loff_t *ppos)
{
	struct ivshm_dev *idev = file->private_data;
	unsigned int peer, vector, n = 1, i;
	char buf[48];
	int ret = 0;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';

	if (sscanf(buf, "%u %u %u", &peer, &vector, &n) < 2)
		return -EINVAL;
	if (peer > IVSHM_MAX_PEER_ID || !n || n > IVSHM_RING_MAX_COUNT)
		return -EINVAL;

	for (i = 0; i < n && !ret; i++) {
		ret = ivshm_dev_ring(idev, peer, vector);
		if (!(i % 1024)) {
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	return ret ? ret : count;
}

static const struct file_operations ring_fops = {
	.owner = THIS_MODULE,
	.open = simple_open,
	.write = ring_write,
};

void ivshm_debugfs_dev_add(struct ivshm_dev *idev)
{
	idev->debugfs = debugfs_create_dir(idev->name, ivshm_debugfs_root);
	debugfs_create_file("info", 0400, idev->debugfs, idev, &info_fops);
	debugfs_create_file("doorbells", 0400, idev->debugfs, idev,
			    &doorbells_fops);
	debugfs_create_file("channels", 0400, idev->debugfs, idev,
			    &channels_fops);
	if (IS_ENABLED(CONFIG_AF_IVSHMEM_TEST_HOOKS))
		debugfs_create_file("ring", 0200, idev->debugfs, idev,
				    &ring_fops);
}

void ivshm_debugfs_dev_remove(struct ivshm_dev *idev)
{
	debugfs_remove(idev->debugfs);
	idev->debugfs = NULL;
}

void ivshm_debugfs_init(void)
{
	ivshm_debugfs_root = debugfs_create_dir(KBUILD_MODNAME, NULL);
}

void ivshm_debugfs_exit(void)
{
	debugfs_remove(ivshm_debugfs_root);
}
