// SPDX-License-Identifier: GPL-2.0
/*
 * Registry of the shared-memory devices the transports provide.
 *
 * Locking: ivshm_devices_lock (a mutex) protects ivshm_devices and the
 * name index allocator; it is taken by register, unregister and socket
 * lookups, all in process context. A lookup takes a reference (users) on
 * the device it returns, which unregister waits for (chan.c). The
 * per-vector doorbell counters are atomics updated from hard interrupt
 * context without any lock; everything else is counted per CPU (stats.c).
 *
 * Vectors: IVSHM_VEC_CTRL (0) carries control events, and peer departures
 * the host's server announces, to the control work; IVSHM_VEC_DATA (1) and
 * any further vector carries data events to NAPI. A device with a single
 * vector takes both on it.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/device.h>
#include <linux/errno.h>
#include <linux/delay.h>
#include <linux/idr.h>
#include <linux/module.h>
#include <linux/mutex.h>

#include <linux/ivshmem.h>
#include <linux/wait_bit.h>

#include "chan.h"
#include "debugfs.h"
#include "device.h"
#include "napi.h"
#include "netlink.h"
#include "rebalance.h"
#include "stats.h"
#include "trace.h"

static DEFINE_MUTEX(ivshm_devices_lock);
static LIST_HEAD(ivshm_devices);
static DEFINE_IDA(ivshm_dev_ida);

/* How long to wait for another peer that is initialising the region. It
 * only writes the metadata sections, which takes microseconds; a region
 * that stays BUSY longer belongs to a peer that died or misbehaves.
 */
#define IVSHM_INIT_WAIT_MS	2000

/* Initialise the region or attach to it; refuse a region we cannot use. */
static int ivshm_dev_open_region(struct ivshm_dev *idev)
{
	unsigned int waited = 0;
	const char *why;
	int ret;

	for (;;) {
		ret = ivshm_region_open(&idev->layout, idev->region,
					idev->region_size, idev->own_id, &why);
		if (ret != -EAGAIN || waited >= IVSHM_INIT_WAIT_MS)
			break;
		msleep(20);
		waited += 20;
	}
	if (ret < 0) {
		pr_err("%s: region refused: %s (%d); device left unused\n",
		       idev->name, why, ret);
		return ret;
	}
	idev->initialised = ret == IVSHM_OPEN_INITIALISED;
	return 0;
}

/**
 * ivshm_dev_register() - make a transport's region known to the core
 * @idev: device whose transport fields are filled in
 *
 * Initialises the shared region if nobody has, or attaches to it after
 * checking that its layout is the one this region size implies.
 *
 * Return: 0, or a negative errno if the device description or the region
 * is unusable.
 */
int ivshm_dev_register(struct ivshm_dev *idev)
{
	struct ivshm_dev *pos;
	unsigned int i;
	int index, ret;

	if (!idev->ops || !idev->ops->ring || !idev->region ||
	    !idev->region_size || idev->nr_vectors > IVSHM_MAX_VECTORS)
		return -EINVAL;

	index = ida_alloc(&ivshm_dev_ida, GFP_KERNEL);
	if (index < 0)
		return index;

	idev->index = index;
	snprintf(idev->name, sizeof(idev->name), "ivshm%d", index);
	ret = ivshm_dev_open_region(idev);
	if (ret)
		goto err_ida;
	for (i = 0; i < IVSHM_MAX_VECTORS; i++)
		atomic64_set(&idev->doorbells[i], 0);
	ivshm_params_init(idev);
	ivshm_nl_dev_init(idev);
	ret = ivshm_stats_init(idev);
	if (ret)
		goto err_ida;
	ret = ivshm_napi_init(idev);
	if (ret)
		goto err_stats;
	ret = ivshm_conn_init(idev);
	if (ret)
		goto err_napi;
	ivshm_debugfs_dev_add(idev);

	mutex_lock(&ivshm_devices_lock);
	/* In order of their numbers, which dumps resume by. */
	list_for_each_entry(pos, &ivshm_devices, node)
		if (pos->index > index)
			break;
	list_add_tail(&idev->node, &pos->node);
	mutex_unlock(&ivshm_devices_lock);

	if (idev->own_id == IVSHM_ID_NONE)
		pr_info("%s: %s %s, %zu KiB region, polled (no doorbells)\n",
			idev->name, idev->transport,
			idev->parent ? dev_name(idev->parent) : "-",
			idev->region_size >> 10);
	else
		pr_info("%s: %s %s, %zu KiB region, VM id %u, %u doorbell vectors\n",
			idev->name, idev->transport,
			idev->parent ? dev_name(idev->parent) : "-",
			idev->region_size >> 10, idev->own_id,
			idev->nr_vectors);
	return 0;

err_napi:
	ivshm_napi_exit(idev);
err_stats:
	ivshm_stats_exit(idev);
err_ida:
	ida_free(&ivshm_dev_ida, index);
	return ret;
}
EXPORT_SYMBOL_GPL(ivshm_dev_register);

/**
 * ivshm_dev_unregister() - forget a device
 * @idev: a registered device
 *
 * After this returns the core no longer calls @idev->ops. The transport must
 * already have stopped its interrupts, so ivshm_dev_interrupt() cannot run.
 */
void ivshm_dev_unregister(struct ivshm_dev *idev)
{
	mutex_lock(&ivshm_devices_lock);
	list_del(&idev->node);
	mutex_unlock(&ivshm_devices_lock);

	ivshm_debugfs_dev_remove(idev);
	ivshm_conn_exit(idev);
	ivshm_napi_exit(idev);
	ivshm_stats_exit(idev);
	ida_free(&ivshm_dev_ida, idev->index);
}
EXPORT_SYMBOL_GPL(ivshm_dev_unregister);

/**
 * ivshm_dev_interrupt() - a doorbell of this device was rung
 * @idev: the device
 * @vector: which of its vectors
 *
 * Context: any, typically hard interrupt.
 */
void ivshm_dev_interrupt(struct ivshm_dev *idev, unsigned int vector)
{
	trace_ivshm_interrupt(idev->index, vector);
	if (vector < IVSHM_MAX_VECTORS)
		atomic64_inc(&idev->doorbells[vector]);
	if (!READ_ONCE(idev->joined) || READ_ONCE(idev->dying))
		return;
	ivshm_rebal_doorbell(idev);
	if (vector == IVSHM_VEC_CTRL)
		ivshm_conn_kick(idev);
	if (vector != IVSHM_VEC_CTRL || idev->nr_vectors <= IVSHM_VEC_DATA)
		napi_schedule(&idev->napi);
}
EXPORT_SYMBOL_GPL(ivshm_dev_interrupt);

/**
 * ivshm_dev_ring() - ring a peer's doorbell through the transport
 * @idev: the device
 * @peer: the peer's VM id
 * @vector: the peer's vector
 *
 * Return: 0 or the transport's negative errno.
 */
int ivshm_dev_ring(struct ivshm_dev *idev, u32 peer, u32 vector)
{
	int ret;

	ret = idev->ops->ring(idev, peer, vector);
	ivshm_stat_inc(idev, ret ? IVSHM_STAT_RING_ERRORS : IVSHM_STAT_RINGS);
	return ret;
}

static bool ivshm_dev_try_get(struct ivshm_dev *idev)
{
	bool ok;

	spin_lock_bh(&idev->lock);
	ok = idev->joined && !idev->dying;
	if (ok)
		atomic_inc(&idev->users);
	spin_unlock_bh(&idev->lock);
	return ok;
}

/**
 * ivshm_dev_get() - find the device a socket address names
 * @dev: IVSHMEM_DEV_ANY, or device index + 1
 * @vm: for a connect, the VM to reach (IVSHMEM_VM_LOCAL: ourselves)
 * @for_connect: with IVSHMEM_DEV_ANY, pick the first device on which @vm is
 *	another attached VM, else one on which it is our own id; without,
 *	the first device that carries connections
 *
 * Return: the device with a reference (ivshm_dev_put()), or NULL.
 */
struct ivshm_dev *ivshm_dev_get(u32 dev, u32 vm, bool for_connect)
{
	struct ivshm_dev *idev, *found = NULL, *self = NULL;

	mutex_lock(&ivshm_devices_lock);
	list_for_each_entry(idev, &ivshm_devices, node) {
		if (!idev->joined)
			continue;
		if (dev != IVSHMEM_DEV_ANY) {
			if (idev->index + 1 == dev)
				found = idev;
			continue;
		}
		if (!for_connect || vm == IVSHMEM_VM_LOCAL) {
			found = idev;
			break;
		}
		if (vm == idev->own_id) {
			/* Not while we are declared dead: until we rejoin,
			 * our channels are anybody's to reclaim.
			 */
			if (!self &&
			    ivshm_peer_still_me(&idev->layout, idev->own_id,
						READ_ONCE(idev->inc)))
				self = idev;
			continue;
		}
		if (ivshm_peer_alive(&idev->layout, vm, NULL)) {
			found = idev;
			break;
		}
	}
	if (!found)
		found = self;
	if (found && !ivshm_dev_try_get(found))
		found = NULL;
	mutex_unlock(&ivshm_devices_lock);
	return found;
}

/* Another reference on a device the caller already holds or serves. */
void ivshm_dev_hold(struct ivshm_dev *idev)
{
	atomic_inc(&idev->users);
}

/* Is @vm our own VM id on device @dev (IVSHMEM_DEV_ANY: on any)? */
bool ivshm_dev_has_own(u32 vm, u32 dev)
{
	struct ivshm_dev *idev;
	bool found = false;

	mutex_lock(&ivshm_devices_lock);
	list_for_each_entry(idev, &ivshm_devices, node)
		if (idev->joined && idev->own_id == vm &&
		    (dev == IVSHMEM_DEV_ANY || idev->index + 1 == dev))
			found = true;
	mutex_unlock(&ivshm_devices_lock);
	return found;
}

/**
 * ivshm_dev_walk() - call @fn for the devices from number @from on
 * @from: the lowest index to visit
 * @fn: called with ivshm_devices_lock held, so the device cannot be
 *	unregistered meanwhile; it must not take socket locks (connect takes
 *	this lock under its socket's), nor sleep for long
 * @arg: passed to @fn
 *
 * Devices are visited in order of their index. A non-zero return from @fn
 * stops the walk.
 *
 * Return: what @fn returned last, or -ENODEV if it was never called.
 */
int ivshm_dev_walk(int from, int (*fn)(struct ivshm_dev *idev, void *arg),
		   void *arg)
{
	struct ivshm_dev *idev;
	int ret = -ENODEV;

	mutex_lock(&ivshm_devices_lock);
	list_for_each_entry(idev, &ivshm_devices, node) {
		if (idev->index < from)
			continue;
		ret = fn(idev, arg);
		if (ret)
			break;
	}
	mutex_unlock(&ivshm_devices_lock);
	return ret;
}

/**
 * ivshm_dev_get_from() - the first device from index @from on that carries
 *	connections
 * @from: the lowest index to consider
 *
 * Return: the device with a reference (ivshm_dev_put()), or NULL.
 */
struct ivshm_dev *ivshm_dev_get_from(int from)
{
	struct ivshm_dev *idev, *found = NULL;

	mutex_lock(&ivshm_devices_lock);
	list_for_each_entry(idev, &ivshm_devices, node) {
		if (idev->index >= from && ivshm_dev_try_get(idev)) {
			found = idev;
			break;
		}
	}
	mutex_unlock(&ivshm_devices_lock);
	return found;
}

/* Is there a device with this number (index + 1)? */
bool ivshm_dev_exists(u32 dev)
{
	struct ivshm_dev *idev;
	bool found = false;

	mutex_lock(&ivshm_devices_lock);
	list_for_each_entry(idev, &ivshm_devices, node)
		if (idev->index + 1 == dev)
			found = true;
	mutex_unlock(&ivshm_devices_lock);
	return found;
}

void ivshm_dev_put(struct ivshm_dev *idev)
{
	if (atomic_dec_and_test(&idev->users))
		wake_up_var(&idev->users);
}

/* Called on module exit, after every transport is gone. */
void ivshm_devices_exit(void)
{
	WARN_ON(!list_empty(&ivshm_devices));
	ida_destroy(&ivshm_dev_ida);
}
