// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libivshmem: see ivshmem.h. Nothing here but socket calls.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "ivshmem.h"

static _Thread_local int current = -1;

int ivshmem_family(void)
{
	FILE *f = fopen(IVSHMEM_FAMILY_SYSFS, "r");
	int saved = errno, af = AF_IVSHMEM_DEFAULT, v;

	if (f) {
		if (fscanf(f, "%d", &v) == 1 && v > 0)
			af = v;
		fclose(f);
	}
	errno = saved;
	return af;
}

int ivshmem_socket(void)
{
	return socket(ivshmem_family(), SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
}

static struct sockaddr_ivshmem ivshmem_addr(unsigned int vm,
					    unsigned int port)
{
	struct sockaddr_ivshmem a;

	memset(&a, 0, sizeof(a));
	a.sivshm_family = (__kernel_sa_family_t)ivshmem_family();
	a.sivshm_vm = vm;
	a.sivshm_port = port;
	a.sivshm_dev = IVSHMEM_DEV_ANY;
	return a;
}

/* Close without losing the errno that made us give up. */
static int ivshmem_fail(int fd)
{
	int saved = errno;

	close(fd);
	errno = saved;
	return -1;
}

int ivshmem_listen(unsigned int port, int backlog)
{
	struct sockaddr_ivshmem a = ivshmem_addr(IVSHMEM_VM_ANY, port);
	int fd = ivshmem_socket();

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, backlog))
		return ivshmem_fail(fd);
	return fd;
}

int ivshmem_accept(int lfd, unsigned int *vm, unsigned int *port)
{
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);
	int fd = accept4(lfd, (struct sockaddr *)&a, &len, SOCK_CLOEXEC);

	if (fd < 0)
		return -1;
	if (vm)
		*vm = a.sivshm_vm;
	if (port)
		*port = a.sivshm_port;
	current = fd;
	return fd;
}

int ivshmem_connect(unsigned int vm, unsigned int port)
{
	struct sockaddr_ivshmem a = ivshmem_addr(vm, port);
	int fd = ivshmem_socket();

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return ivshmem_fail(fd);
	current = fd;
	return fd;
}

int ivshmem_use(int fd)
{
	int old = current;

	current = fd;
	return old;
}

ssize_t ivshmem_send_fd(int fd, const void *buffer, size_t size)
{
	return send(fd, buffer, size, MSG_NOSIGNAL);
}

ssize_t ivshmem_recv_fd(int fd, void *buffer, size_t size)
{
	return recv(fd, buffer, size, 0);
}

ssize_t ivshmem_send(const void *buffer, size_t size)
{
	if (current < 0) {
		errno = ENOTCONN;
		return -1;
	}
	return ivshmem_send_fd(current, buffer, size);
}

ssize_t ivshmem_recv(void *buffer, size_t size)
{
	if (current < 0) {
		errno = ENOTCONN;
		return -1;
	}
	return ivshmem_recv_fd(current, buffer, size);
}

int ivshmem_max_record(int fd)
{
	socklen_t len = sizeof(int);
	int v;

	if (getsockopt(fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &v, &len))
		return -1;
	return v;
}

int ivshmem_peer(int fd, struct ivshmem_peer *peer)
{
	socklen_t len = sizeof(*peer);

	return getsockopt(fd, SOL_IVSHMEM, IVSHMEM_PEER, peer, &len);
}

int ivshmem_close(int fd)
{
	if (fd == current)
		current = -1;
	return close(fd);
}
