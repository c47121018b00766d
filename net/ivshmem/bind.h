/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_BIND_H
#define _IVSHM_BIND_H

#include <linux/ivshmem.h>
#include <linux/types.h>

struct sock;

/* A socket's place in the bind table (bind.c), embedded in the socket. */
struct ivshm_bind {
	struct hlist_node node;		/* in its port's bucket */
	struct sockaddr_ivshmem addr;	/* what it is bound to */
	struct sock *sk;		/* the socket it is embedded in */
	bool bound;
};

int ivshm_bind_add(struct ivshm_bind *b, struct sock *sk,
		   struct sockaddr_ivshmem *a);
void ivshm_bind_del(struct ivshm_bind *b);
struct sock *ivshm_bind_listener(u32 port, u32 vm, u32 dev);

#endif /* _IVSHM_BIND_H */
