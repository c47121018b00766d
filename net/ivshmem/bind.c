// SPDX-License-Identifier: GPL-2.0
/*
 * The bind table: which local addresses sockets hold, and the listener a
 * connection request is for.
 *
 * An address is a port, a VM id and a device, each of the last two maybe
 * "any". Two addresses overlap when their ports are equal and neither the
 * VM ids nor the devices tell them apart; no two bound sockets overlap.
 * Overlap needs equal ports, so the table hashes by port: a lookup walks
 * one bucket, not every bound socket in the system. An ephemeral port is
 * looked for from a random start, one bucket per candidate.
 *
 * Locking: ivshm_bind_lock (a mutex: every caller is in process context:
 * bind(), connect(), release() and the control work) protects the table
 * and every entry's addr, sk and bound. An entry is added and deleted
 * under its socket's lock too, so that the socket may read bound under
 * its own lock alone. The mutex nests inside socket locks and takes none.
 */

#include <linux/hashtable.h>
#include <linux/mutex.h>
#include <linux/random.h>
#include <net/sock.h>

#include "bind.h"

/* 256 buckets: a few kilobytes, and short chains for thousands of ports. */
#define IVSHM_BIND_HASH_BITS	8

static DEFINE_MUTEX(ivshm_bind_lock);
static DEFINE_HASHTABLE(ivshm_bind_table, IVSHM_BIND_HASH_BITS);

static bool ivshm_bind_overlap(const struct sockaddr_ivshmem *a,
			       const struct sockaddr_ivshmem *b)
{
	return a->sivshm_port == b->sivshm_port &&
	       (a->sivshm_vm == IVSHMEM_VM_ANY ||
		b->sivshm_vm == IVSHMEM_VM_ANY ||
		a->sivshm_vm == b->sivshm_vm) &&
	       (a->sivshm_dev == IVSHMEM_DEV_ANY ||
		b->sivshm_dev == IVSHMEM_DEV_ANY ||
		a->sivshm_dev == b->sivshm_dev);
}

/* The bound entry that overlaps @a, or NULL. */
static struct ivshm_bind *ivshm_bind_find(const struct sockaddr_ivshmem *a)
{
	struct ivshm_bind *o;

	lockdep_assert_held(&ivshm_bind_lock);
	hash_for_each_possible(ivshm_bind_table, o, node, a->sivshm_port)
		if (ivshm_bind_overlap(&o->addr, a))
			return o;
	return NULL;
}

/**
 * ivshm_bind_add() - bind a socket to an address
 * @b: the socket's entry, not bound
 * @sk: the socket, for ivshm_bind_listener()
 * @a: the address; a port of IVSHMEM_PORT_ANY is replaced by the
 *	ephemeral port chosen
 *
 * Context: process; the caller holds @sk's socket lock.
 * Return: 0, -EADDRINUSE when a bound socket overlaps @a, -EADDRNOTAVAIL
 * when every ephemeral port is taken.
 */
int ivshm_bind_add(struct ivshm_bind *b, struct sock *sk,
		   struct sockaddr_ivshmem *a)
{
	const u32 range = IVSHMEM_PORT_EPHEMERAL_LAST -
			  IVSHMEM_PORT_EPHEMERAL_FIRST + 1;
	struct sockaddr_ivshmem want = *a;
	u32 i, start;
	int ret = 0;

	sock_owned_by_me(sk);
	mutex_lock(&ivshm_bind_lock);
	if (want.sivshm_port != IVSHMEM_PORT_ANY) {
		if (ivshm_bind_find(&want))
			ret = -EADDRINUSE;
		goto out;
	}
	start = get_random_u32_below(range);
	for (i = 0; i < range; i++) {
		want.sivshm_port = IVSHMEM_PORT_EPHEMERAL_FIRST +
				   (start + i) % range;
		if (!ivshm_bind_find(&want))
			goto out;
	}
	ret = -EADDRNOTAVAIL;
out:
	if (!ret) {
		b->addr = want;
		b->sk = sk;
		b->bound = true;
		*a = want;
		hash_add(ivshm_bind_table, &b->node, want.sivshm_port);
	}
	mutex_unlock(&ivshm_bind_lock);
	return ret;
}

/* Give @b's address back; nothing for an entry that is not bound. The
 * caller holds the socket's lock.
 */
void ivshm_bind_del(struct ivshm_bind *b)
{
	mutex_lock(&ivshm_bind_lock);
	if (b->bound) {
		hash_del(&b->node);
		b->bound = false;
	}
	mutex_unlock(&ivshm_bind_lock);
}

/**
 * ivshm_bind_listener() - the listener a request to @port is for
 * @port: the request's destination port
 * @vm: the VM id it reached
 * @dev: the device it reached (index + 1)
 *
 * Context: process.
 * Return: the listening socket, held (sock_put() it), or NULL.
 */
struct sock *ivshm_bind_listener(u32 port, u32 vm, u32 dev)
{
	struct sockaddr_ivshmem at = {
		.sivshm_port = port, .sivshm_vm = vm, .sivshm_dev = dev,
	};
	struct sock *found = NULL;
	struct ivshm_bind *o;

	mutex_lock(&ivshm_bind_lock);
	hash_for_each_possible(ivshm_bind_table, o, node, port) {
		struct sock *sk = o->sk;

		if (ivshm_bind_overlap(&o->addr, &at) &&
		    READ_ONCE(sk->sk_state) == TCP_LISTEN) {
			found = sk;
			sock_hold(found);
			break;
		}
	}
	mutex_unlock(&ivshm_bind_lock);
	return found;
}
