/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * AF_IVSHMEM: a socket family for communication between virtual machines
 * that share memory through QEMU's ivshmem device.
 *
 * Address family number
 * ---------------------
 * Every address family number below AF_MAX is assigned in the kernel's
 * <linux/socket.h>, so an out-of-tree family has to borrow one that no
 * in-tree module registers. af_ivshmem.ko takes AF_IVSHMEM_DEFAULT unless
 * it is loaded with the "family" module parameter, and publishes the
 * number it registered in IVSHMEM_FAMILY_SYSFS. Programs should read that
 * file (libivshmem does) and fall back to AF_IVSHMEM_DEFAULT only when the
 * module is not loaded yet: socket(AF_IVSHMEM_DEFAULT, ...) loads it on
 * demand through the "net-pf-25" module alias.
 */
#ifndef _UAPI_LINUX_IVSHMEM_H
#define _UAPI_LINUX_IVSHMEM_H

#include <linux/socket.h>
#include <linux/types.h>

/*
 * Addresses
 * ---------
 * A socket is named by the VM it lives in and a port. A guest may see
 * several shared regions (ivshmN devices); sivshm_dev selects one.
 */
struct sockaddr_ivshmem {
	__kernel_sa_family_t sivshm_family;	/* AF_IVSHMEM */
	__u16 sivshm_reserved;	/* must be 0 */
	__u32 sivshm_port;	/* port, or IVSHMEM_PORT_ANY */
	__u32 sivshm_vm;	/* VM id, IVSHMEM_VM_ANY or IVSHMEM_VM_LOCAL */
	__u32 sivshm_dev;	/* device ivshmN as N + 1, or IVSHMEM_DEV_ANY */
};

/*
 * bind(): any VM id this guest has (a socket bound to it accepts through
 * every region); connect(): not allowed.
 */
#define IVSHMEM_VM_ANY		0xffffffffU
/* connect(): this guest's own VM id on the chosen region (loopback). */
#define IVSHMEM_VM_LOCAL	0xfffffffeU
/* bind(): pick a free ephemeral port. */
#define IVSHMEM_PORT_ANY	0xffffffffU
/*
 * bind(): every region; connect(): the first region (lowest N) on which
 * the VM is attached and is not this guest.
 */
#define IVSHMEM_DEV_ANY		0

/* Ports below this one need CAP_NET_BIND_SERVICE. */
#define IVSHMEM_PORT_PRIVILEGED	1024
/* Ephemeral ports, for connect() without bind() and IVSHMEM_PORT_ANY. */
#define IVSHMEM_PORT_EPHEMERAL_FIRST	49152
#define IVSHMEM_PORT_EPHEMERAL_LAST	65535

/*
 * Socket options
 * --------------
 * Level SOL_IVSHMEM. Besides these, the usual SOL_SOCKET options apply:
 * SO_SNDTIMEO and SO_RCVTIMEO bound blocking calls; SO_SNDBUF sizes the
 * ring of the channel this socket sends on (a hint, taken at connect() or,
 * for accepted sockets, from the listener; rounded up to whole 4 KiB
 * blocks, clamped to IVSHMEM_RING_MIN .. IVSHMEM_RING_MAX); SO_RCVBUF is
 * accepted for compatibility but the receive side reads the sender's ring
 * in place and keeps no buffer of its own.
 */
#define SOL_IVSHMEM		299

/*
 * int, read only: the largest record sendmsg() accepts on this socket, in
 * bytes; larger records fail with EMSGSIZE. Before connect() it is what
 * SO_SNDBUF would give.
 */
#define IVSHMEM_MAX_RECORD	1

/* struct ivshmem_peer, read only, connected sockets: who is on the other side. */
#define IVSHMEM_PEER		2

/*
 * __u64, milliseconds, read and write: how long a blocking connect() waits
 * for the other side to accept (default 10000; 0 waits forever).
 */
#define IVSHMEM_CONNECT_TIMEOUT	3

struct ivshmem_peer {
	__u32 vm;		/* the peer's VM id */
	__u32 port;		/* the peer's port */
	__s32 pid;		/* pid of the process that opened the channel,
				 * as the peer reports it; 0 if unknown
				 */
	__u32 reserved;
};

#define IVSHMEM_RING_MIN	(16U << 10)
#define IVSHMEM_RING_DEFAULT	(128U << 10)
#define IVSHMEM_RING_MAX	(16U << 20)

/*
 * ioctls: SIOCINQ (FIONREAD) gives the payload length of the next record,
 * 0 if there is none; SIOCOUTQ gives the bytes this socket has sent that
 * the peer has not consumed yet, record headers included.
 */

/*
 * 25 is AF_WANPIPE, a number reserved for a driver that was never merged;
 * no in-tree module registers it on the 6.1 and 6.12 kernels.
 */
#define AF_IVSHMEM_DEFAULT	25
#define PF_IVSHMEM_DEFAULT	AF_IVSHMEM_DEFAULT

/* Text file holding the family number the loaded module registered. */
#define IVSHMEM_FAMILY_SYSFS	"/sys/module/af_ivshmem/parameters/family"

#endif /* _UAPI_LINUX_IVSHMEM_H */
