// SPDX-License-Identifier: GPL-2.0
/*
 * libivshmem in a dev_shm guest: the seed's ivshmem_send()/ivshmem_recv()
 * on the thread's current connection, and the helpers around them. A
 * listener bound to every VM id of this guest is reached from virtual peer
 * 0 at virtual peer 1, so one process holds both ends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "ivshm_test.h"
#include "ivshmem.h"

#define PEER_VM	1

static unsigned int port_for_test(void)
{
	return 20000 + (unsigned int)getpid() % 20000;
}

FIXTURE(lib) {
	int lfd, c, a;
	unsigned int port;
};

FIXTURE_SETUP(lib)
{
	unsigned int vm = 99, port = 0;

	self->port = port_for_test();
	self->lfd = ivshmem_listen(self->port, 4);
	ASSERT_LE(0, self->lfd);
	self->c = ivshmem_connect(PEER_VM, self->port);
	ASSERT_LE(0, self->c);
	self->a = ivshmem_accept(self->lfd, &vm, &port);
	ASSERT_LE(0, self->a);
	EXPECT_EQ(0, vm);		/* the connector is virtual peer 0 */
	EXPECT_LE(IVSHMEM_PORT_EPHEMERAL_FIRST, port);
}

FIXTURE_TEARDOWN(lib)
{
	ivshmem_close(self->a);
	ivshmem_close(self->c);
	ivshmem_close(self->lfd);
}

TEST(family_matches_the_module)
{
	EXPECT_EQ(ivshm_family(), ivshmem_family());
}

TEST(no_current_connection)
{
	char c = 0;

	ivshmem_use(-1);
	EXPECT_EQ(-1, ivshmem_send(&c, 1));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(-1, ivshmem_recv(&c, 1));
	EXPECT_EQ(ENOTCONN, errno);
}

TEST(connect_errors_are_the_socket_errors)
{
	EXPECT_EQ(-1, ivshmem_connect(PEER_VM, port_for_test() + 1));
	EXPECT_EQ(ECONNREFUSED, errno);
	EXPECT_EQ(-1, ivshmem_connect(50, 5000));
	EXPECT_EQ(EHOSTUNREACH, errno);
}

TEST_F(lib, send_and_recv_on_the_current_connection)
{
	char buf[16];

	/* accept() made the accepted socket current. */
	ASSERT_EQ(5, ivshmem_send("hello", 5));
	EXPECT_EQ(self->a, ivshmem_use(self->c));
	ASSERT_EQ(5, ivshmem_recv(buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	ASSERT_EQ(3, ivshmem_send("bye", 3));
	ASSERT_EQ(3, ivshmem_recv_fd(self->a, buf, sizeof(buf)));
	EXPECT_EQ(0, memcmp(buf, "bye", 3));
}

TEST_F(lib, records_stay_whole)
{
	static char big[100000];
	char small[10];
	int max = ivshmem_max_record(self->c);

	ASSERT_EQ(IVSHMEM_RING_DEFAULT - 8, max);
	memset(big, 7, sizeof(big));
	ASSERT_EQ((ssize_t)sizeof(big), ivshmem_send_fd(self->c, big, sizeof(big)));
	ASSERT_EQ(2, ivshmem_send_fd(self->c, "ok", 2));
	/* A short buffer gets the beginning; the rest of the record goes. */
	ASSERT_EQ(10, ivshmem_recv_fd(self->a, small, sizeof(small)));
	ASSERT_EQ(2, ivshmem_recv_fd(self->a, small, sizeof(small)));
	EXPECT_EQ(-1, ivshmem_send_fd(self->c, big, (size_t)max + 1));
	EXPECT_EQ(EMSGSIZE, errno);
}

TEST_F(lib, peer_and_close)
{
	struct ivshmem_peer p;
	char c;

	ASSERT_EQ(0, ivshmem_peer(self->a, &p));
	EXPECT_EQ(0, p.vm);
	EXPECT_EQ(getpid(), p.pid);
	ivshmem_use(self->c);
	ASSERT_EQ(0, ivshmem_close(self->c));
	EXPECT_EQ(-1, ivshmem_send(&c, 1));
	EXPECT_EQ(ENOTCONN, errno);		/* no current connection */
	EXPECT_EQ(0, ivshmem_recv_fd(self->a, &c, 1));	/* end of file */
	EXPECT_EQ(-1, ivshmem_send_fd(self->a, &c, 1));	/* no SIGPIPE */
	EXPECT_EQ(EPIPE, errno);
	self->c = -1;
}

static void *thread_current(void *arg __attribute__((unused)))
{
	/* A new thread has no current connection. */
	return (void *)(long)(ivshmem_send("x", 1) == -1 && errno == ENOTCONN);
}

TEST_F(lib, current_connection_is_per_thread)
{
	pthread_t t;
	void *ok;

	ivshmem_use(self->c);
	ASSERT_EQ(0, pthread_create(&t, NULL, thread_current, NULL));
	ASSERT_EQ(0, pthread_join(t, &ok));
	EXPECT_TRUE(ok);
}

TEST_HARNESS_MAIN
