// SPDX-License-Identifier: GPL-2.0
/*
 * The AF_IVSHMEM socket family.
 *
 * This file registers the family and creates SOCK_SEQPACKET sockets. The
 * connection operations (bind, connect, listen, accept, sendmsg, recvmsg,
 * poll) are not implemented yet and answer EOPNOTSUPP, as the kernel's
 * sock_no_*() helpers do for operations a family does not offer.
 *
 * Module lifetime: the net_proto_family and the proto_ops both name
 * THIS_MODULE, so the socket core holds a module reference for every open
 * socket and rmmod fails while one exists.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/net.h>
#include <linux/socket.h>
#include <net/sock.h>

#include "socket.h"

static int ivshm_family;

struct ivshm_sock {
	struct sock sk;		/* must be first: sk_alloc() sizes by proto */
};

static struct proto ivshm_proto = {
	.name = "AF_IVSHMEM",
	.owner = THIS_MODULE,
	.obj_size = sizeof(struct ivshm_sock),
};

static int ivshm_release(struct socket *sock)
{
	struct sock *sk = sock->sk;

	if (!sk)
		return 0;

	lock_sock(sk);
	sock_orphan(sk);
	sk->sk_shutdown = SHUTDOWN_MASK;
	release_sock(sk);

	sock->sk = NULL;
	sock_put(sk);
	return 0;
}

static const struct proto_ops ivshm_seqpacket_ops = {
	.owner = THIS_MODULE,
	.release = ivshm_release,
	.bind = sock_no_bind,
	.connect = sock_no_connect,
	.socketpair = sock_no_socketpair,
	.accept = sock_no_accept,
	.getname = sock_no_getname,
	.poll = datagram_poll,
	.ioctl = sock_no_ioctl,
	.listen = sock_no_listen,
	.shutdown = sock_no_shutdown,
	.sendmsg = sock_no_sendmsg,
	.recvmsg = sock_no_recvmsg,
	.mmap = sock_no_mmap,
};

static int ivshm_create(struct net *net, struct socket *sock, int protocol,
			int kern)
{
	struct sock *sk;

	if (sock->type != SOCK_SEQPACKET)
		return -ESOCKTNOSUPPORT;
	if (protocol != 0)
		return -EPROTONOSUPPORT;

	sk = sk_alloc(net, ivshm_family, GFP_KERNEL, &ivshm_proto, kern);
	if (!sk)
		return -ENOMEM;

	sock->ops = &ivshm_seqpacket_ops;
	sock->state = SS_UNCONNECTED;
	sock_init_data(sock, sk);
	return 0;
}

static struct net_proto_family ivshm_family_ops = {
	.create = ivshm_create,
	.owner = THIS_MODULE,
};

/**
 * ivshm_sock_init() - register the socket family
 * @family: address family number to take
 *
 * Return: 0, or a negative errno with the reason logged.
 */
int ivshm_sock_init(int family)
{
	int ret;

	if (family <= AF_UNSPEC || family >= NPROTO) {
		pr_err("family=%d is out of range: it must be between 1 and %d\n",
		       family, NPROTO - 1);
		return -EINVAL;
	}

	ret = proto_register(&ivshm_proto, 1);
	if (ret)
		return ret;

	ivshm_family = family;
	ivshm_family_ops.family = family;
	ret = sock_register(&ivshm_family_ops);
	if (ret) {
		if (ret == -EEXIST)
			pr_err("address family %d is already registered by another module; load af_ivshmem with family=N naming a free number\n",
			       family);
		else
			pr_err("cannot register address family %d: %d\n",
			       family, ret);
		goto err_proto;
	}

	pr_info("AF_IVSHMEM registered as address family %d\n", family);
	return 0;

err_proto:
	proto_unregister(&ivshm_proto);
	return ret;
}

void ivshm_sock_exit(void)
{
	sock_unregister(ivshm_family);
	proto_unregister(&ivshm_proto);
}
