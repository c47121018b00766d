// SPDX-License-Identifier: GPL-2.0
/*
 * Diagnostic files under /sys/kernel/debug/af_ivshmem/<dev>/, readable and
 * writable by root only:
 *
 *   info       what the transport reported (VM id, vectors, region size)
 *              and the region layout this device uses
 *   doorbells  per-vector count of doorbells received, rings sent, errors
 *   ring       write "PEER VECTOR" to ring a peer's doorbell, for testing
 *              the doorbell path between guests without any protocol
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
#include <linux/seq_file.h>
#include <linux/uaccess.h>

#include "debugfs.h"
#include "device.h"

static struct dentry *ivshm_debugfs_root;

static int info_show(struct seq_file *m, void *unused)
{
	struct ivshm_dev *idev = m->private;

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
	seq_printf(m, "free_blocks: %u\n",
		   ivshm_get32(&ivshm_ctrl(&idev->layout)->free_blocks));
	seq_printf(m, "active_channels: %u\n",
		   ivshm_get32(&ivshm_ctrl(&idev->layout)->num_active_channel));
	seq_printf(m, "incarnation: %u\n", idev->inc);
	seq_printf(m, "events: %lld\n", atomic64_read(&idev->events));
	seq_printf(m, "proto_errors: %lld\n",
		   atomic64_read(&idev->proto_errors));
	seq_printf(m, "peers_lost: %lld\n", atomic64_read(&idev->peers_lost));
	if (!idev->nr_vectors)
		seq_printf(m, "poll_us: %u\n", READ_ONCE(idev->poll_us));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(info);

static int doorbells_show(struct seq_file *m, void *unused)
{
	struct ivshm_dev *idev = m->private;
	unsigned int i;

	seq_printf(m, "rings_sent: %lld\n", atomic64_read(&idev->rings_sent));
	seq_printf(m, "ring_errors: %lld\n", atomic64_read(&idev->ring_errors));
	if (idev->joined) {
		seq_printf(m, "notifies: %lld\n",
			   atomic64_read(&idev->notifies));
		seq_printf(m, "suppressed: %lld\n",
			   atomic64_read(&idev->suppressed));
		seq_printf(m, "polls: %lld\n", atomic64_read(&idev->polls));
		seq_printf(m, "tx_records: %lld\n",
			   atomic64_read(&idev->tx_records));
		seq_printf(m, "tx_bytes: %lld\n",
			   atomic64_read(&idev->tx_bytes));
		seq_printf(m, "rx_records: %lld\n",
			   atomic64_read(&idev->rx_records));
		seq_printf(m, "rx_bytes: %lld\n",
			   atomic64_read(&idev->rx_bytes));
	}
	for (i = 0; i < idev->nr_vectors; i++)
		seq_printf(m, "vector%u: %lld\n", i,
			   atomic64_read(&idev->doorbells[i]));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(doorbells);

static ssize_t ring_write(struct file *file, const char __user *ubuf,
			  size_t count, loff_t *ppos)
{
	struct ivshm_dev *idev = file->private_data;
	unsigned int peer, vector;
	char buf[32];
	int ret;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';

	if (sscanf(buf, "%u %u", &peer, &vector) != 2)
		return -EINVAL;
	if (peer > IVSHM_MAX_PEER_ID)
		return -EINVAL;

	ret = ivshm_dev_ring(idev, peer, vector);
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
	debugfs_create_file("ring", 0200, idev->debugfs, idev, &ring_fops);
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
