/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libivshmem: AF_IVSHMEM sockets for programs, without the boilerplate.
 *
 * Every call is a thin wrapper over the socket calls and reports errors
 * the same way: -1 (or NULL) with errno set. Records are what the socket
 * family carries: one ivshmem_send() is one record, delivered whole and in
 * order to one ivshmem_recv(), up to ivshmem_max_record() bytes.
 *
 * ivshmem_send() and ivshmem_recv() take no descriptor, as the original
 * design names them: they use the calling thread's current connection,
 * which ivshmem_connect() and ivshmem_accept() set, and ivshmem_use()
 * changes. The *_fd variants take the descriptor explicitly.
 */
#ifndef LIBIVSHMEM_H
#define LIBIVSHMEM_H

#include <stddef.h>
#include <sys/types.h>
#include <linux/ivshmem.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The address family number the loaded module registered (read from
 * IVSHMEM_FAMILY_SYSFS), or AF_IVSHMEM_DEFAULT when it is not loaded yet:
 * the first socket() then loads it on demand.
 */
int ivshmem_family(void);

/* A SOCK_SEQPACKET socket of the family, close-on-exec. */
int ivshmem_socket(void);

/*
 * A socket bound to @port on every VM id and region of this guest and
 * listening with @backlog. @port may be IVSHMEM_PORT_ANY.
 */
int ivshmem_listen(unsigned int port, int backlog);

/*
 * Accept a connection on @lfd; it becomes the thread's current one. The
 * peer's VM id and port are stored where @vm and @port point, if not NULL.
 */
int ivshmem_accept(int lfd, unsigned int *vm, unsigned int *port);

/*
 * Connect to @port on VM @vm (IVSHMEM_VM_LOCAL for this guest); the
 * connection becomes the thread's current one.
 */
int ivshmem_connect(unsigned int vm, unsigned int port);

/* Make @fd the thread's current connection; returns the previous one. */
int ivshmem_use(int fd);

/* The seed's API, on the thread's current connection (ENOTCONN if none). */
ssize_t ivshmem_send(const void *buffer, size_t size);
ssize_t ivshmem_recv(void *buffer, size_t size);

/* The same on a given socket. */
ssize_t ivshmem_send_fd(int fd, const void *buffer, size_t size);
ssize_t ivshmem_recv_fd(int fd, void *buffer, size_t size);

/* The largest record @fd can send (IVSHMEM_MAX_RECORD). */
int ivshmem_max_record(int fd);

/* The peer of a connected socket: VM id, port and pid. */
int ivshmem_peer(int fd, struct ivshmem_peer *peer);

/* Close @fd; if it was the thread's current connection, there is none. */
int ivshmem_close(int fd);

#ifdef __cplusplus
}
#endif

#endif /* LIBIVSHMEM_H */
