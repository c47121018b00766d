// SPDX-License-Identifier: GPL-2.0
/*
 * ivshm_hammer: for tests only. It takes the ivshmem PCI device when
 * af_ivshmem is not loaded, and hammers a few words of the shared region
 * together with a module like it in another VM, counting the updates that
 * get lost between the two: the test of what compat.h promises, that the
 * region core's read-modify-writes stay atomic against another VM even on
 * a kernel that booted on one CPU, whose lock prefixes are patched out of
 * cmpxchg() and the atomic bit operations.
 *
 * Writing "MODE ROLE ROUNDS N" to /sys/kernel/debug/ivshm_hammer/run
 * (MODE "core" or "plain", ROLE 0 or 1) runs ROUNDS rounds in step with
 * the other VM; each round:
 *  - both add 1 to a shared counter N times, with compare-and-exchange;
 *  - each sets 32 bits of a shared word, its own half, one at a time;
 *  - both take a lock word N times with compare-and-exchange, and while
 *    holding it add 1 to another counter with a plain load and store.
 * "core" uses the region core's primitives (ivshm_cmpxchg64,
 * ivshm_set_bit64), "plain" the kernel's cmpxchg() as the core did before.
 * Reading the file gives what was lost: counter, bits and lock increments
 * below what both VMs did, and lock words left set by nobody (taken over
 * after 20 ms), as "counter N bits N lock N stuck N rounds N".
 *
 * The words live in the region's first page; nothing else uses the region
 * while this module holds the device.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/debugfs.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/uaccess.h>

#include "compat.h"

/* One cache line each, in the region's first page. */
struct hammer_area {
	__le64 round[2];		/* the round each VM has reached */
	__le64 pad0[6];
	__le64 counter;
	__le64 pad1[7];
	__le64 bits;
	__le64 pad2[7];
	__le64 lock;
	__le64 pad3[7];
	__le64 locked;			/* changed only under @lock */
	__le64 pad4[7];
	__le64 done[2];			/* results published per VM */
};

static struct hammer_area *area;
static struct dentry *dir;
static DEFINE_MUTEX(run_lock);
static u64 lost_counter, lost_bits, lost_lock, stuck, rounds_done;

/* The kernel's own cmpxchg(), as the region core used before. */
static u64 plain_cmpxchg64(__le64 *p, u64 old, u64 new)
{
	return le64_to_cpu(cmpxchg(p, cpu_to_le64(old), cpu_to_le64(new)));
}

static u64 hammer_cmpxchg(bool core, __le64 *p, u64 old, u64 new)
{
	return core ? ivshm_cmpxchg64(p, old, new) :
		      plain_cmpxchg64(p, old, new);
}

/* Wait for the other VM to reach round @r; -ETIMEDOUT after 30 s. */
static int hammer_sync(int role, u64 r)
{
	unsigned long end = jiffies + 30 * HZ;

	ivshm_store_release64(&area->round[role], r);
	while (ivshm_load_acquire64(&area->round[!role]) < r) {
		if (time_after(jiffies, end) || fatal_signal_pending(current))
			return -ETIMEDOUT;
		cond_resched();
	}
	return 0;
}

static void hammer_add(bool core, __le64 *p)
{
	u64 old = ivshm_get64(p), seen;

	while ((seen = hammer_cmpxchg(core, p, old, old + 1)) != old)
		old = seen;
}

static void hammer_set_bit(bool core, __le64 *p, u32 bit)
{
	u64 old, seen;

	if (core) {
		ivshm_set_bit64(p, bit);
		return;
	}
	old = ivshm_get64(p);
	while ((seen = plain_cmpxchg64(p, old, old | 1ull << bit)) != old)
		old = seen;
}

/* Take the lock word, spinning for at most 20 ms (an honest holder keeps
 * it for a few instructions): a word left set by updates that were lost,
 * whose owner believes it let go, is counted and taken over, so that the
 * test goes on instead of hanging. 0 or -ETIMEDOUT.
 */
static int hammer_lock(bool core, u64 me)
{
	unsigned long end = jiffies + msecs_to_jiffies(20);
	u32 spins = 0;

	while (hammer_cmpxchg(core, &area->lock, 0, me)) {
		if (!(++spins & 255))
			cond_resched();
		if (time_after(jiffies, end)) {
			ivshm_put64(&area->lock, me);
			return -ETIMEDOUT;
		}
		cpu_relax();
	}
	return 0;
}

static int hammer_run(bool core, int role, u32 rounds, u32 n)
{
	u64 me = role + 1, base = ivshm_get64(&area->round[role]);
	u64 c0, l0;
	u32 r, i;
	int ret;

	lost_counter = lost_bits = lost_lock = stuck = rounds_done = 0;
	for (r = 0; r < rounds; r++) {
		/* Four steps a round, each begun by both: VM 0 clears the
		 * words, both note the counters, both hammer, both count.
		 */
		if (!role) {
			ivshm_put64(&area->bits, 0);
			ivshm_put64(&area->lock, 0);
		}
		ret = hammer_sync(role, base + 4 * r + 1);
		if (ret)
			return ret;
		c0 = ivshm_get64(&area->counter);
		l0 = ivshm_get64(&area->locked);
		ret = hammer_sync(role, base + 4 * r + 2);
		if (ret)
			return ret;
		for (i = 0; i < n; i++) {
			hammer_add(core, &area->counter);
			if (i < 32)
				hammer_set_bit(core, &area->bits, role * 32 + i);
			if (hammer_lock(core, me))
				stuck++;
			ivshm_put64(&area->locked, ivshm_get64(&area->locked) + 1);
			hammer_cmpxchg(core, &area->lock, me, 0);
			if (!(i & 1023))
				cond_resched();
		}
		ret = hammer_sync(role, base + 4 * r + 3);
		if (ret)
			return ret;
		lost_counter += 2ull * n - (ivshm_get64(&area->counter) - c0);
		lost_bits += 64 - hweight64(ivshm_get64(&area->bits));
		lost_lock += 2ull * n - (ivshm_get64(&area->locked) - l0);
		rounds_done++;
		ret = hammer_sync(role, base + 4 * r + 4);
		if (ret)
			return ret;
	}
	return 0;
}

static ssize_t run_write(struct file *f, const char __user *ubuf,
			 size_t count, loff_t *ppos)
{
	char buf[64], mode[8];
	u32 rounds, n;
	int role, ret;

	if (count >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, count))
		return -EFAULT;
	buf[count] = '\0';
	if (sscanf(buf, "%7s %d %u %u", mode, &role, &rounds, &n) != 4 ||
	    (role != 0 && role != 1) || !rounds || !n ||
	    (strcmp(mode, "core") && strcmp(mode, "plain")))
		return -EINVAL;
	mutex_lock(&run_lock);
	ret = hammer_run(!strcmp(mode, "core"), role, rounds, n);
	mutex_unlock(&run_lock);
	return ret ? ret : count;
}

static ssize_t run_read(struct file *f, char __user *ubuf, size_t count,
			loff_t *ppos)
{
	char buf[128];
	int len;

	mutex_lock(&run_lock);
	len = scnprintf(buf, sizeof(buf), "counter %llu bits %llu lock %llu stuck %llu rounds %llu\n",
			lost_counter, lost_bits, lost_lock, stuck, rounds_done);
	mutex_unlock(&run_lock);
	return simple_read_from_buffer(ubuf, count, ppos, buf, len);
}

static const struct file_operations run_fops = {
	.owner = THIS_MODULE,
	.read = run_read,
	.write = run_write,
	.llseek = default_llseek,
};

static int hammer_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	int ret;

	if (area || pci_resource_len(pdev, 2) < PAGE_SIZE)
		return -ENODEV;
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pci_request_region(pdev, 2, KBUILD_MODNAME);
	if (ret)
		return ret;
	area = memremap(pci_resource_start(pdev, 2), PAGE_SIZE, MEMREMAP_WB);
	if (!area) {
		pci_release_region(pdev, 2);
		return -ENOMEM;
	}
	dir = debugfs_create_dir(KBUILD_MODNAME, NULL);
	debugfs_create_file("run", 0600, dir, NULL, &run_fops);
	pr_info("hammering the region of %s\n", pci_name(pdev));
	return 0;
}

static void hammer_remove(struct pci_dev *pdev)
{
	debugfs_remove(dir);
	memunmap(area);
	area = NULL;
	pci_release_region(pdev, 2);
}

static const struct pci_device_id hammer_ids[] = {
	{ PCI_DEVICE(0x1af4, 0x1110) },
	{ }
};

static struct pci_driver hammer_driver = {
	.name = KBUILD_MODNAME,
	.id_table = hammer_ids,
	.probe = hammer_probe,
	.remove = hammer_remove,
};
module_pci_driver(hammer_driver);

MODULE_DESCRIPTION("Lost updates between VMs on the region's words (tests only)");
MODULE_LICENSE("GPL");
