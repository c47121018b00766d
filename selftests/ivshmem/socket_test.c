// SPDX-License-Identifier: GPL-2.0
/*
 * AF_IVSHMEM SOCK_SEQPACKET semantics, as a user of AF_UNIX or AF_VSOCK
 * would rely on them.
 *
 * The far side of every connection is an agent: a process that serves one
 * connection the way a test asks (echo, close, sink, ...), told so over a
 * control connection of its own. With dev_shm (one guest) this program
 * forks the agent itself, bound to virtual peer 1 (ivshm1), and the tests
 * run as VM 0. Across two guests the agent runs in the other guest
 * ("socket_test:agent") and the tests find it by its control port.
 *
 * Usage: socket_test               tests (agent forked, dev_shm)
 *        socket_test remote        tests against an agent in another VM
 *        socket_test agent         the agent, until told to quit
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/sockios.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>

#include "kselftest_harness.h"
#include "ivshm_test.h"
#include "ivshm_nl.h"

/*
 * The harness's per-test timeout guards against hangs; it is no time
 * limit. Thousands of round trips take tens of seconds on the debug
 * kernel under TCG, more between polled (ivshmem-plain) guests, so the
 * guard is set well past that.
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	120

/*
 * How long a test waits for something that must happen "soon" (an edge, a
 * reset, an end of file after the peer's close): far beyond what it takes
 * on a loaded host, a debug kernel or both, and still a failure, not a
 * hang, when it never comes.
 */
#define SETTLE_MS	10000

#define CTRL_PORT	7000
#define AGENT_WAIT_S	60
#define MAX_REC		(IVSHMEM_RING_DEFAULT - 8)

static int af;			/* the family number */
static unsigned int agent_vm;	/* where the agent is */
static unsigned int agent_dev;	/* dev_shm: the agent's device, else ANY */
static pid_t agent_pid;		/* dev_shm: the forked agent */

/* ---- helpers ---- */

static struct sockaddr_ivshmem addr(unsigned int vm, unsigned int port,
				    unsigned int dev)
{
	return ivshm_addr(af, vm, port, dev);
}

static int sock_new(void)
{
	return socket(af, SOCK_SEQPACKET, 0);
}

static int do_bind(int fd, unsigned int vm, unsigned int port,
		   unsigned int dev)
{
	struct sockaddr_ivshmem a = addr(vm, port, dev);

	return bind(fd, (struct sockaddr *)&a, sizeof(a));
}

static int do_connect(int fd, unsigned int vm, unsigned int port)
{
	struct sockaddr_ivshmem a = addr(vm, port, IVSHMEM_DEV_ANY);

	return connect(fd, (struct sockaddr *)&a, sizeof(a));
}

/*
 * A port of our own for this test process (tests run in children), and a
 * new one each call, among TEST_PORTS: the agent's listener for a port
 * closes only after its accept() returns, which may be after our connect()
 * did, so a port handed out again at once could still be bound there.
 */
#define TEST_PORTS	16

static unsigned int test_port(void)
{
	static unsigned int n;

	return 10000 + (unsigned int)(getpid() % 2000) * TEST_PORTS +
	       (n++ % TEST_PORTS);
}

static void set_timeo(int fd, int opt, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

/* Send a command to the agent; 0 on "OK", else -1. */
static int agent_cmd(const char *fmt, ...)
{
	char cmd[128], reply[64];
	va_list ap;
	int fd, i;
	ssize_t n;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	for (i = 0; i < 3; i++) {
		fd = sock_new();
		if (fd < 0)
			return -1;
		set_timeo(fd, SO_RCVTIMEO, 10000);
		if (!do_connect(fd, agent_vm, CTRL_PORT))
			break;
		close(fd);
		fd = -1;
		usleep(100000);
	}
	if (fd < 0) {
		fprintf(stderr, "# agent_cmd \"%s\": cannot connect: %s\n", cmd,
			strerror(errno));
		return -1;
	}
	n = send(fd, cmd, strlen(cmd), 0);
	if (n == (ssize_t)strlen(cmd))
		n = recv(fd, reply, sizeof(reply) - 1, 0);
	if (n < 2)
		fprintf(stderr, "# agent_cmd \"%s\": no answer (%zd): %s\n", cmd,
			n, strerror(errno));
	close(fd);
	if (n < 2)
		return -1;
	reply[n] = 0;
	if (strncmp(reply, "OK", 2)) {
		fprintf(stderr, "# agent_cmd \"%s\": the agent answers \"%s\"\n",
			cmd, reply);
		return -1;
	}
	return 0;
}

/* After a failure: what the devices say, as diagnostics. */
static void dump_devices(void)
{
	static const char *const files[] = { "doorbells", "channels" };
	char path[128], line[1024];
	unsigned int d, f;
	FILE *fp;

	for (d = 0; d < 2; d++)
		for (f = 0; f < 2; f++) {
			snprintf(path, sizeof(path), IVSHM_DEBUGFS "/ivshm%u/%s",
				 d, files[f]);
			fp = fopen(path, "r");
			if (!fp)
				continue;
			while (fgets(line, sizeof(line), fp))
				fprintf(stderr, "# ivshm%u %s", d, line);
			fclose(fp);
		}
}

/* Ask the agent to serve one connection on a fresh port as @mode; connect. */
static int serve(const char *mode, unsigned int *port_out)
{
	unsigned int port = test_port();
	int fd;

	if (agent_cmd("serve %u %s", port, mode))
		return -1;
	fd = sock_new();
	if (fd < 0)
		return -1;
	if (do_connect(fd, agent_vm, port)) {
		fprintf(stderr, "# serve %s: connect to port %u: %s\n", mode,
			port, strerror(errno));
		dump_devices();
		close(fd);
		return -1;
	}
	if (port_out)
		*port_out = port;
	return fd;
}

static void fill(unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 8));
}

static int check(const unsigned char *p, size_t len, unsigned int seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != (unsigned char)(seed * 131 + i * 7 + (i >> 8)))
			return -1;
	return 0;
}

static uint64_t sum(const unsigned char *p, size_t len, uint64_t s)
{
	size_t i;

	for (i = 0; i < len; i++)
		s = s * 31 + p[i];
	return s;
}

/* Our VM id on the first device, where the agent reaches us. */
static unsigned int own_vm(void)
{
	long long v = ivshm_dev_attr_ll("ivshm0", "info", "own_id");

	return v < 0 ? 0 : (unsigned int)v;
}

/* ---- the agent ---- */

/* Echo until EOF or a zero-length record. */
static void agent_echo(int fd)
{
	static unsigned char buf[IVSHMEM_RING_MAX];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
}

/* Echo that tells zero-length records from EOF by MSG_EOR. */
static void agent_echo_records(int fd)
{
	static unsigned char buf[IVSHMEM_RING_MAX];

	for (;;) {
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n = recvmsg(fd, &mh, 0);

		if (n < 0 || (n == 0 && !(mh.msg_flags & MSG_EOR)))
			break;
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	}
}

static void agent_sink(int fd, unsigned int delay_ms)
{
	static unsigned char buf[IVSHMEM_RING_MAX];
	uint64_t count = 0, s = 0;
	char reply[64];
	ssize_t n;

	usleep(delay_ms * 1000);
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		count++;
		s = sum(buf, (size_t)n, s);
	}
	snprintf(reply, sizeof(reply), "%llu %llu", (unsigned long long)count,
		 (unsigned long long)s);
	send(fd, reply, strlen(reply), MSG_NOSIGNAL);
}

/* @count records of 4 bytes in lockstep: each @gap_ms after the reader
 * acknowledged the one before (a record back with its number), then
 * wait for the close.
 */
static void agent_trickle(int fd, unsigned int count, unsigned int gap_ms)
{
	unsigned int i, ack;

	for (i = 0; i < count; i++) {
		usleep(gap_ms * 1000);
		if (send(fd, &i, sizeof(i), MSG_NOSIGNAL) != sizeof(i) ||
		    recv(fd, &ack, sizeof(ack), 0) != sizeof(ack) || ack != i)
			break;
	}
	agent_echo(fd);
}

static void agent_send(int fd, unsigned int count, unsigned int size)
{
	unsigned char *buf = malloc(size ? size : 1);
	unsigned int i;

	for (i = 0; buf && i < count; i++) {
		fill(buf, size, i);
		if (send(fd, buf, size, MSG_NOSIGNAL) != (ssize_t)size)
			break;
	}
	free(buf);
}

static void agent_handle(int fd, const char *mode, unsigned int a,
			 unsigned int b)
{
	if (!strcmp(mode, "echo")) {
		agent_echo_records(fd);
	} else if (!strcmp(mode, "close")) {
		/* nothing */
	} else if (!strcmp(mode, "sink")) {
		agent_sink(fd, a);
	} else if (!strcmp(mode, "trickle")) {
		agent_trickle(fd, a, b);
	} else if (!strcmp(mode, "send")) {
		agent_send(fd, a, b);
		/* Let the test read everything before we go. */
		shutdown(fd, SHUT_WR);
		agent_echo(fd);
	} else if (!strcmp(mode, "hold")) {
		usleep(a * 1000);
	} else if (!strcmp(mode, "shutrd")) {
		shutdown(fd, SHUT_RD);
		usleep(a * 1000);
	} else if (!strcmp(mode, "shutwr")) {
		shutdown(fd, SHUT_WR);
		agent_echo_records(fd);
	}
	close(fd);
}

/* serve PORT MODE [A [B]] | noaccept PORT BACKLOG MS | connect VM PORT MODE */
static void agent_command(int ctl, char *cmd)
{
	char mode[16] = "";
	unsigned int port = 0, a = 0, b = 0, vm = 0;
	int lfd = -1, fd;

	if (sscanf(cmd, "serve %u %15s %u %u", &port, mode, &a, &b) >= 2) {
		lfd = sock_new();
		if (lfd < 0 || do_bind(lfd, IVSHMEM_VM_ANY, port, agent_dev) ||
		    listen(lfd, 4)) {
			send(ctl, "ERR", 3, MSG_NOSIGNAL);
			_exit(1);
		}
		send(ctl, "OK", 2, MSG_NOSIGNAL);
		close(ctl);
		set_timeo(lfd, SO_RCVTIMEO, 20000);
		fd = accept(lfd, NULL, NULL);
		close(lfd);
		if (fd >= 0)
			agent_handle(fd, mode, a, b);
		_exit(0);
	}
	if (sscanf(cmd, "noaccept %u %u %u", &port, &a, &b) == 3) {
		lfd = sock_new();
		if (lfd < 0 || do_bind(lfd, IVSHMEM_VM_ANY, port, agent_dev) ||
		    listen(lfd, (int)a)) {
			send(ctl, "ERR", 3, MSG_NOSIGNAL);
			_exit(1);
		}
		send(ctl, "OK", 2, MSG_NOSIGNAL);
		close(ctl);
		usleep(b * 1000);
		close(lfd);
		_exit(0);
	}
	if (sscanf(cmd, "connect %u %u %15s", &vm, &port, mode) == 3) {
		struct sockaddr_ivshmem sa = addr(vm, port, agent_dev);

		send(ctl, "OK", 2, MSG_NOSIGNAL);
		close(ctl);
		fd = sock_new();
		if (fd >= 0 && !connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			agent_handle(fd, mode, 0, 0);
		_exit(0);
	}
	send(ctl, "ERR", 3, MSG_NOSIGNAL);
	_exit(1);
}

#define AGENT_MAX_CHILDREN	256

static int agent_main(void)
{
	pid_t kids[AGENT_MAX_CHILDREN], pid;
	int lfd = sock_new(), fd, nkids = 0, i;
	char cmd[128];
	ssize_t n;

	if (lfd < 0 || do_bind(lfd, IVSHMEM_VM_ANY, CTRL_PORT, agent_dev) ||
	    listen(lfd, 16)) {
		fprintf(stderr, "agent: cannot listen: %s\n", strerror(errno));
		return 1;
	}
	fprintf(stderr, "agent: listening on port %d\n", CTRL_PORT);
	for (;;) {
		/* Reap the command processes that are done. */
		for (i = 0; i < nkids; i++) {
			if (waitpid(kids[i], NULL, WNOHANG) == kids[i])
				kids[i--] = kids[--nkids];
		}
		fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n = recv(fd, cmd, sizeof(cmd) - 1, 0);
		if (n <= 0) {
			close(fd);
			continue;
		}
		cmd[n] = 0;
		if (!strcmp(cmd, "quit")) {
			send(fd, "OK", 2, MSG_NOSIGNAL);
			close(fd);
			break;
		}
		if (nkids == AGENT_MAX_CHILDREN) {
			send(fd, "ERR", 3, MSG_NOSIGNAL);
			close(fd);
			continue;
		}
		pid = fork();
		if (!pid) {
			close(lfd);
			agent_command(fd, cmd);
		}
		if (pid > 0)
			kids[nkids++] = pid;
		close(fd);
	}
	close(lfd);
	/* Whatever still serves goes too, so every socket is closed. */
	for (i = 0; i < nkids; i++)
		kill(kids[i], SIGKILL);
	for (i = 0; i < nkids; i++)
		waitpid(kids[i], NULL, 0);
	return 0;
}

/* ---- local semantics: no peer needed ---- */

TEST(only_seqpacket)
{
	int fd;

	EXPECT_EQ(-1, socket(af, SOCK_STREAM, 0));
	EXPECT_EQ(ESOCKTNOSUPPORT, errno);
	EXPECT_EQ(-1, socket(af, SOCK_DGRAM, 0));
	EXPECT_EQ(ESOCKTNOSUPPORT, errno);
	EXPECT_EQ(-1, socket(af, SOCK_SEQPACKET, 1));
	EXPECT_EQ(EPROTONOSUPPORT, errno);
	fd = socket(af, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	ASSERT_LE(0, fd);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

TEST(bind_rejects_bad_addresses)
{
	struct sockaddr_ivshmem a = addr(IVSHMEM_VM_ANY, test_port(), 0);
	int fd = sock_new();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, bind(fd, (struct sockaddr *)&a, sizeof(a) - 1));
	EXPECT_EQ(EINVAL, errno);
	a.sivshm_family = AF_INET;
	EXPECT_EQ(-1, bind(fd, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(EINVAL, errno);
	a.sivshm_family = (unsigned short)af;
	a.sivshm_reserved = 1;
	EXPECT_EQ(-1, bind(fd, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(EINVAL, errno);
	/* A VM id that is not ours. */
	EXPECT_EQ(-1, do_bind(fd, 60, test_port(), 0));
	EXPECT_EQ(EADDRNOTAVAIL, errno);
	EXPECT_EQ(-1, do_bind(fd, IVSHMEM_VM_LOCAL, test_port(), 0));
	EXPECT_EQ(EADDRNOTAVAIL, errno);
	/* Still unbound: a good bind works. */
	EXPECT_EQ(0, do_bind(fd, IVSHMEM_VM_ANY, test_port(), 0));
	close(fd);
}

TEST(bind_port_in_use_and_released)
{
	unsigned int port = test_port();
	int a = sock_new(), b = sock_new();

	ASSERT_LE(0, a);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, do_bind(a, IVSHMEM_VM_ANY, port, 0));
	EXPECT_EQ(-1, do_bind(b, IVSHMEM_VM_ANY, port, 0));
	EXPECT_EQ(EADDRINUSE, errno);
	EXPECT_EQ(-1, do_bind(a, IVSHMEM_VM_ANY, port + 1, 0));
	EXPECT_EQ(EINVAL, errno);	/* already bound */
	close(a);
	EXPECT_EQ(0, do_bind(b, IVSHMEM_VM_ANY, port, 0));
	close(b);
}

TEST(bind_ephemeral_port)
{
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);
	int fd = sock_new();

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&a, &len));
	EXPECT_EQ(sizeof(a), len);
	EXPECT_EQ(af, a.sivshm_family);
	EXPECT_EQ(IVSHMEM_PORT_ANY, a.sivshm_port);
	ASSERT_EQ(0, do_bind(fd, IVSHMEM_VM_ANY, IVSHMEM_PORT_ANY, 0));
	len = sizeof(a);
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&a, &len));
	EXPECT_LE(IVSHMEM_PORT_EPHEMERAL_FIRST, a.sivshm_port);
	EXPECT_GE(IVSHMEM_PORT_EPHEMERAL_LAST, a.sivshm_port);
	close(fd);
}

TEST(bind_privileged_port_needs_capability)
{
	int status, fd;
	pid_t pid;

	fd = sock_new();
	ASSERT_LE(0, fd);
	EXPECT_EQ(0, do_bind(fd, IVSHMEM_VM_ANY, 100 + getpid() % 800, 0));
	close(fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		int s = sock_new();

		if (s < 0 || setuid(65534))
			_exit(2);
		if (!do_bind(s, IVSHMEM_VM_ANY, 100 + getpid() % 800, 0))
			_exit(3);
		_exit(errno == EACCES ? 0 : 4);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(unconnected_calls)
{
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);
	char c = 0;
	int fd = sock_new();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, getpeername(fd, (struct sockaddr *)&a, &len));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(-1, send(fd, &c, 1, MSG_NOSIGNAL));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(-1, recv(fd, &c, 1, MSG_DONTWAIT));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(-1, shutdown(fd, SHUT_RDWR));
	EXPECT_EQ(ENOTCONN, errno);
	EXPECT_EQ(-1, listen(fd, 1));		/* not bound */
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, accept(fd, NULL, NULL));	/* not listening */
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST(unsupported_operations)
{
	int sv[2], fd = sock_new();
	char c = 0;

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, socketpair(af, SOCK_SEQPACKET, 0, sv));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, send(fd, &c, 1, MSG_OOB | MSG_NOSIGNAL));
	EXPECT_EQ(EOPNOTSUPP, errno);
	EXPECT_EQ(-1, shutdown(fd, 7));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST(socket_options)
{
	struct ivshmem_peer peer;
	uint64_t ms = 1234;
	socklen_t len;
	int fd = sock_new(), v;

	ASSERT_LE(0, fd);
	len = sizeof(v);
	ASSERT_EQ(0, getsockopt(fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &v, &len));
	EXPECT_EQ(MAX_REC, v);
	EXPECT_EQ(-1, setsockopt(fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &v,
				 sizeof(v)));
	EXPECT_EQ(EPERM, errno);
	len = sizeof(peer);
	EXPECT_EQ(-1, getsockopt(fd, SOL_IVSHMEM, IVSHMEM_PEER, &peer, &len));
	EXPECT_EQ(ENOTCONN, errno);
	len = sizeof(v);
	EXPECT_EQ(-1, getsockopt(fd, SOL_IVSHMEM, 999, &v, &len));
	EXPECT_EQ(ENOPROTOOPT, errno);
	ASSERT_EQ(0, setsockopt(fd, SOL_IVSHMEM, IVSHMEM_CONNECT_TIMEOUT, &ms,
				sizeof(ms)));
	ms = 0;
	len = sizeof(ms);
	ASSERT_EQ(0, getsockopt(fd, SOL_IVSHMEM, IVSHMEM_CONNECT_TIMEOUT, &ms,
				&len));
	EXPECT_EQ(1234, ms);
	EXPECT_EQ(-1, setsockopt(fd, SOL_IVSHMEM, IVSHMEM_CONNECT_TIMEOUT, &v,
				 sizeof(v)));
	EXPECT_EQ(EINVAL, errno);	/* too short */
	/* SO_SNDBUF sizes the ring, so the largest record follows it. */
	v = 32 << 10;
	ASSERT_EQ(0, setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)));
	len = sizeof(v);
	ASSERT_EQ(0, getsockopt(fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &v, &len));
	EXPECT_EQ((64 << 10) - 8, v);	/* the kernel doubles SO_SNDBUF */
	close(fd);
}

TEST(accept_nonblocking_and_timeout)
{
	int fd = sock_new();
	uint64_t t0;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, do_bind(fd, IVSHMEM_VM_ANY, test_port(), 0));
	ASSERT_EQ(0, listen(fd, 4));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	EXPECT_EQ(-1, accept(fd, NULL, NULL));
	EXPECT_EQ(EAGAIN, errno);
	fcntl(fd, F_SETFL, 0);
	set_timeo(fd, SO_RCVTIMEO, 200);
	t0 = ivshm_now_ms();
	EXPECT_EQ(-1, accept(fd, NULL, NULL));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_LE(150, ivshm_now_ms() - t0);
	close(fd);
}

TEST(connect_rejects_bad_addresses)
{
	struct sockaddr_ivshmem a = addr(agent_vm, CTRL_PORT, 0);
	int fd = sock_new();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, connect(fd, (struct sockaddr *)&a, sizeof(a) - 2));
	EXPECT_EQ(EINVAL, errno);
	a.sivshm_family = AF_INET;
	EXPECT_EQ(-1, connect(fd, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(EAFNOSUPPORT, errno);
	EXPECT_EQ(-1, do_connect(fd, IVSHMEM_VM_ANY, CTRL_PORT));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, do_connect(fd, agent_vm, IVSHMEM_PORT_ANY));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST(connect_refused_unreachable_no_device)
{
	struct sockaddr_ivshmem a = addr(agent_vm, 3, 40);
	int fd = sock_new();

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, do_connect(fd, agent_vm, test_port()));
	EXPECT_EQ(ECONNREFUSED, errno);
	EXPECT_EQ(-1, do_connect(fd, 50, 5000));
	EXPECT_EQ(EHOSTUNREACH, errno);
	EXPECT_EQ(-1, connect(fd, (struct sockaddr *)&a, sizeof(a)));
	EXPECT_EQ(ENETUNREACH, errno);
	/* The socket is still usable. */
	EXPECT_EQ(-1, do_connect(fd, agent_vm, test_port()));
	EXPECT_EQ(ECONNREFUSED, errno);
	close(fd);
}

/* A VM that is attached but does not answer: dev_shm holds its doorbells. */
TEST(connect_times_out_and_recovers)
{
	uint64_t ms = 300, t0;
	int fd;

	if (agent_pid <= 0)
		SKIP(return, "needs the agent on dev_shm, in one guest");
	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/hold", "2 1"));
	fd = sock_new();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, setsockopt(fd, SOL_IVSHMEM, IVSHMEM_CONNECT_TIMEOUT, &ms,
				sizeof(ms)));
	t0 = ivshm_now_ms();
	EXPECT_EQ(-1, do_connect(fd, 2, test_port()));
	EXPECT_EQ(ETIMEDOUT, errno);
	EXPECT_LE(250, ivshm_now_ms() - t0);
	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/hold", "2 0"));
	/* The peer answers again; the same socket may connect again. */
	EXPECT_EQ(-1, do_connect(fd, 2, test_port()));
	EXPECT_EQ(ECONNREFUSED, errno);
	close(fd);
}

/* A connection from us to a listener on virtual peer 2 (ivshm2), after
 * setting every device's liveness bound to @timeout_ms: the listener, the
 * connector and the accepted socket in @fd[0..2]; 0 or -1.
 */
static int connect_to_peer2(unsigned int timeout_ms, int fd[3])
{
	unsigned int port = test_port();

	fd[0] = fd[1] = fd[2] = -1;
	if (ivshm_nl_set_param(NULL, IVSHMEM_PARAM_PEER_TIMEOUT_MS, timeout_ms))
		return -1;
	fd[0] = sock_new();
	if (fd[0] < 0 || do_bind(fd[0], IVSHMEM_VM_ANY, port, 3) ||
	    listen(fd[0], 4))
		return -1;
	fd[1] = sock_new();
	if (fd[1] < 0 || do_connect(fd[1], 2, port))
		return -1;
	fd[2] = accept(fd[0], NULL, NULL);
	return fd[2] < 0 ? -1 : 0;
}

/*
 * A VM that stops (dev_shm freezes virtual peer 2, as a killed QEMU): the
 * survivor's blocked recv fails with ECONNRESET once the liveness bound
 * set for the test has passed (before the 10 s default would have: the
 * bound set is the one that acts), the dead VM's channels are reclaimed,
 * and once it runs again it finds itself declared dead, resets its side
 * and joins as a new incarnation that can be connected to.
 *
 * Everything after the freeze runs in the liveness works (every 100 ms)
 * and the tasks they wake, which a loaded host, a debug kernel or both
 * may hold up for seconds: each step is waited for up to DEAD_STEP_MS,
 * and no call may block for longer than that (a step that does not come
 * fails the test, it does not hang it: five steps stay well within the
 * harness's timeout).
 */
#define DEAD_BOUND_MS	2000
#define DEAD_RESET_MS	9000
#define DEAD_STEP_MS	15000
#define PEER_TIMEOUT_DEFAULT_MS	10000

/*
 * Tests that set the liveness bound: the teardown sets the default back
 * on every device, for the agent's peer and every later test, also when
 * an ASSERT ended the test early.
 */
static bool liveness_froze, liveness_rebal_off;

FIXTURE(liveness) {
	int unused;
};

FIXTURE_SETUP(liveness)
{
}

FIXTURE_TEARDOWN(liveness)
{
	/* Thawed and rebalancing again, also after a failed assertion. */
	if (liveness_froze)
		EXPECT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 0"));
	if (liveness_rebal_off)
		EXPECT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE,
						1));
	liveness_froze = liveness_rebal_off = false;
	EXPECT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_PEER_TIMEOUT_MS,
					PEER_TIMEOUT_DEFAULT_MS));
}

TEST_F(liveness, dead_peer_resets_and_comes_back)
{
	long long free0, act0, n = -1, act = -1;
	uint64_t t0, deadline;
	int lfd, c, a, fd[3], ret;
	unsigned int port;
	char buf[8];

	if (agent_pid <= 0)
		SKIP(return, "needs the agent on dev_shm, in one guest");
	free0 = ivshm_dev_attr_ll("ivshm0", "info", "free_blocks");
	act0 = ivshm_dev_attr_ll("ivshm0", "info", "active_channels");
	ASSERT_LT(0, free0);
	ASSERT_LE(0, act0);
	/* Death is found once a heartbeat stands still for 2 s. */
	ASSERT_EQ(0, connect_to_peer2(DEAD_BOUND_MS, fd));
	lfd = fd[0];
	c = fd[1];
	a = fd[2];
	port = ivshm_local_port(lfd);
	ASSERT_EQ(1, send(c, "x", 1, 0));
	ASSERT_EQ(1, recv(a, buf, sizeof(buf), 0));

	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 1"));
	t0 = ivshm_now_ms();
	set_timeo(c, SO_RCVTIMEO, DEAD_STEP_MS);
	EXPECT_EQ(-1, recv(c, buf, sizeof(buf), 0));
	EXPECT_EQ(ECONNRESET, errno);
	TH_LOG("reset %llu ms after the freeze (bound %d ms)",
	       (unsigned long long)(ivshm_now_ms() - t0), DEAD_BOUND_MS);
	EXPECT_GE(DEAD_RESET_MS, ivshm_now_ms() - t0);
	EXPECT_EQ(-1, send(c, "x", 1, MSG_NOSIGNAL));
	EXPECT_EQ(EPIPE, errno);
	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 0"));

	/* The stopped side finds itself declared dead and resets too. */
	set_timeo(a, SO_RCVTIMEO, DEAD_STEP_MS);
	EXPECT_EQ(-1, recv(a, buf, sizeof(buf), 0));
	EXPECT_EQ(ECONNRESET, errno);
	close(a);
	close(c);

	/* The new incarnation is reachable, through the same listener. */
	deadline = ivshm_now_ms() + DEAD_STEP_MS;
	for (;;) {
		uint64_t ms = 2000;

		c = sock_new();
		ASSERT_LE(0, c);
		ASSERT_EQ(0, setsockopt(c, SOL_IVSHMEM, IVSHMEM_CONNECT_TIMEOUT,
					&ms, sizeof(ms)));
		ret = do_connect(c, 2, port);
		if (!ret || ivshm_now_ms() >= deadline)
			break;
		close(c);
		ivshm_sleep_ms(100);
	}
	ASSERT_EQ(0, ret) TH_LOG("no connection to the new incarnation: %s",
				 strerror(errno));
	set_timeo(lfd, SO_RCVTIMEO, DEAD_STEP_MS);
	set_timeo(c, SO_RCVTIMEO, DEAD_STEP_MS);
	a = accept(lfd, NULL, NULL);
	ASSERT_LE(0, a);
	ASSERT_EQ(2, send(a, "ok", 2, 0));
	ASSERT_EQ(2, recv(c, buf, sizeof(buf), 0));
	close(a);
	close(c);
	close(lfd);

	/*
	 * Every block comes back: the dead VM's and the orphans'. Not "as
	 * many as before": an earlier test's connections may still have been
	 * closing when we looked (their receivers acknowledge in the control
	 * work, which a loaded host runs late), and their blocks come back
	 * too. No channel more than before, and no block fewer.
	 */
	deadline = ivshm_now_ms() + DEAD_STEP_MS;
	do {
		n = ivshm_dev_attr_ll("ivshm0", "info", "free_blocks");
		act = ivshm_dev_attr_ll("ivshm0", "info", "active_channels");
		if (n >= free0 && act >= 0 && act <= act0)
			break;
		ivshm_sleep_ms(50);
	} while (ivshm_now_ms() < deadline);
	EXPECT_LE(free0, n);
	EXPECT_GE(act0, act);
	TH_LOG("free blocks %lld, then %lld; active channels %lld, then %lld",
	       free0, n, act0, act);
	/* The default comes back in the teardown. */
}

/*
 * While VM 2 stands declared dead, nothing is opened in its name: a
 * connect to it fails at once with ENETDOWN, also here, where its device
 * is in this kernel and would otherwise serve a connect to its own id,
 * and no channel is taken. (Before, the connect ran on that device under
 * the dead incarnation, timed out, and could leave a channel behind that
 * nobody answered.)
 */
TEST_F(liveness, dead_vm_takes_no_channel)
{
	long long act0, act;
	int lfd, c, a, s, fd[3], ret;
	uint64_t deadline;
	uint64_t ms = 2000;
	unsigned int port;
	char buf[8];

	if (agent_pid <= 0)
		SKIP(return, "needs the agent on dev_shm, in one guest");
	ASSERT_EQ(0, connect_to_peer2(DEAD_BOUND_MS, fd));
	lfd = fd[0];
	c = fd[1];
	a = fd[2];
	port = ivshm_local_port(lfd);
	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 1"));
	set_timeo(c, SO_RCVTIMEO, DEAD_STEP_MS);
	EXPECT_EQ(-1, recv(c, buf, sizeof(buf), 0));
	EXPECT_EQ(ECONNRESET, errno);
	close(c);

	act0 = ivshm_dev_attr_ll("ivshm0", "info", "active_channels");
	s = sock_new();
	ASSERT_LE(0, s);
	ASSERT_EQ(0, setsockopt(s, SOL_IVSHMEM, IVSHMEM_CONNECT_TIMEOUT, &ms,
				sizeof(ms)));
	EXPECT_EQ(-1, do_connect(s, 2, port));
	EXPECT_EQ(ENETDOWN, errno);
	act = ivshm_dev_attr_ll("ivshm0", "info", "active_channels");
	EXPECT_GE(act0, act) TH_LOG("active channels %lld, then %lld", act0,
				     act);
	close(s);

	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 0"));
	set_timeo(a, SO_RCVTIMEO, DEAD_STEP_MS);
	EXPECT_EQ(-1, recv(a, buf, sizeof(buf), 0));
	EXPECT_EQ(ECONNRESET, errno);
	close(a);

	/* Reachable again, as a new incarnation, before the next test. */
	deadline = ivshm_now_ms() + DEAD_STEP_MS;
	for (;;) {
		s = sock_new();
		ASSERT_LE(0, s);
		ret = do_connect(s, 2, port);
		if (!ret || ivshm_now_ms() >= deadline)
			break;
		close(s);
		ivshm_sleep_ms(100);
	}
	ASSERT_EQ(0, ret) TH_LOG("VM 2 did not come back: %s",
				 strerror(errno));
	set_timeo(lfd, SO_RCVTIMEO, DEAD_STEP_MS);
	a = accept(lfd, NULL, NULL);
	ASSERT_LE(0, a);
	close(a);
	close(s);
	close(lfd);
}

/* Documentation/protocol.md: the header keeps the channel table's offset
 * at byte 64; each descriptor is 192 bytes, its state (0: free) first.
 */
#define HDR_CHAN_OFF	64
#define DESC_SIZE	192

/* One end's channels, as its device's debugfs "channels" file shows them:
 * [0] the one it sends on, [1] the one it reads.
 */
struct end_chans {
	unsigned int idx[2], ring[2];
	unsigned long long off[2];	/* in the data area */
	bool found[2];
};

static void end_chan_line(void *arg, unsigned int dev, bool ours,
			  const char *line)
{
	struct end_chans *ec = arg;
	unsigned int idx, k;
	const char *p, *q;
	char dir[8];

	(void)dev;
	if (!ours || sscanf(line, "chan %u %7s", &idx, dir) != 2)
		return;
	k = strcmp(dir, "tx") != 0;
	p = strstr(line, " ring ");
	q = strstr(line, " offset ");
	if (p && q && sscanf(p, " ring %u", &ec->ring[k]) == 1 &&
	    sscanf(q, " offset %llu", &ec->off[k]) == 1) {
		ec->idx[k] = idx;
		ec->found[k] = true;
	}
}

static bool region_read(int rfd, unsigned long long off, void *buf,
			size_t len)
{
	return pread(rfd, buf, len, (off_t)off) == (ssize_t)len;
}

/* The dead VM's side of one connection: its channels' descriptors and
 * the run it sends on, as they were once freed, and written over.
 */
struct dead_end {
	int fd;
	struct end_chans ch;
	unsigned long long desc[2];
	unsigned char d[2][DESC_SIZE];
};

static bool dead_end_find(struct dead_end *e, unsigned long long chan_off)
{
	struct ivshm_conn_ends ends;
	int k;

	if (ivshm_conn_ends(e->fd, &ends))
		return false;
	ivshm_conn_channels(&ends, end_chan_line, &e->ch);
	for (k = 0; k < 2; k++) {
		if (!e->ch.found[k])
			return false;
		e->desc[k] = chan_off + (unsigned long long)e->ch.idx[k] *
					DESC_SIZE;
	}
	return true;
}

/* Both its channels freed: by their senders or the reapers. */
static bool dead_end_freed(int rfd, const struct dead_end *e)
{
	uint32_t st;
	int k;

	for (k = 0; k < 2; k++)
		if (!region_read(rfd, e->desc[k], &st, sizeof(st)) || st)
			return false;
	return true;
}

/* Its run written over, as by a next owner; its descriptors noted. */
static bool dead_end_mark(int rfd, struct dead_end *e,
			  unsigned long long data_off, unsigned char *run)
{
	int k;

	memset(run, 0x5a, e->ch.ring[0]);
	if (pwrite(rfd, run, e->ch.ring[0], (off_t)(data_off + e->ch.off[0])) !=
	    (ssize_t)e->ch.ring[0])
		return false;
	for (k = 0; k < 2; k++)
		if (!region_read(rfd, e->desc[k], e->d[k], DESC_SIZE))
			return false;
	return true;
}

/* What changed since: "" or where. */
static const char *dead_end_changed(int rfd, const struct dead_end *e,
				    unsigned long long data_off,
				    unsigned char *run, char *why, size_t len)
{
	unsigned char d[DESC_SIZE];
	unsigned int i;
	int k;

	for (k = 0; k < 2; k++) {
		if (!region_read(rfd, e->desc[k], d, DESC_SIZE))
			return "the region file";
		if (memcmp(d, e->d[k], DESC_SIZE)) {
			snprintf(why, len, "descriptor of channel %u",
				 e->ch.idx[k]);
			return why;
		}
	}
	if (!region_read(rfd, data_off + e->ch.off[0], run, e->ch.ring[0]))
		return "the region file";
	for (i = 0; i < e->ch.ring[0] && run[i] == 0x5a; i++)
		;
	if (i < e->ch.ring[0]) {
		snprintf(why, len, "byte %u of the run of channel %u", i,
			 e->ch.idx[0]);
		return why;
	}
	return "";
}

/*
 * A VM declared dead while it still runs (stopped past the bound, then
 * going on; here dev_shm freezes virtual peer 2, whose syscalls still
 * run) lost its channels to the reapers, who may already have handed
 * their slots and blocks to others. Its calls on its old connections must
 * write nothing there: not a record into the run it sent on, not a tail,
 * a flag, an event index or a state into either channel's descriptor,
 * whether it polls, sends, receives, shuts down or just closes; send,
 * receive and shutdown fail with ECONNRESET. Four connections to it: a
 * record waits unread on the first, the second was used both ways, the
 * third is shut down and the fourth closed without a call. Once their
 * channels are freed, the runs the dead VM sent on are written over, as
 * by a next owner, and every byte of those and of all eight descriptors
 * must stay as it was.
 * Rebalancing is off meanwhile, so that nobody else takes those runs.
 * (Before, the send wrote its record into the freed run, and the receive
 * read a record and wrote its tail.)
 */
TEST_F(liveness, dead_vm_writes_nothing_in_the_region)
{
	unsigned long long chan_off = 0, data_off;
	struct dead_end e[4] = { 0 };
	unsigned char *run = NULL;
	int lfd, c[4], rfd, fd[3], k, ret;
	struct pollfd pfd[2];
	uint64_t deadline;
	const char *what;
	char buf[64], why[80];
	bool gone;

	if (agent_pid <= 0)
		SKIP(return, "needs the agent on dev_shm, in one guest");
	rfd = open(DEVSHM_DEBUGFS "/region", O_RDWR);
	ASSERT_LE(0, rfd);
	ASSERT_TRUE(region_read(rfd, HDR_CHAN_OFF, &chan_off,
				sizeof(chan_off)));
	data_off = (unsigned long long)ivshm_dev_attr_ll("ivshm0", "info",
							 "data_offset");
	ASSERT_LT(0ull, chan_off);
	ASSERT_LT(chan_off, data_off);
	ASSERT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE, 0));
	liveness_rebal_off = true;

	ASSERT_EQ(0, connect_to_peer2(DEAD_BOUND_MS, fd));
	lfd = fd[0];
	c[0] = fd[1];
	e[0].fd = fd[2];
	for (k = 1; k < 4; k++) {
		c[k] = sock_new();
		ASSERT_LE(0, c[k]);
		ASSERT_EQ(0, do_connect(c[k], 2, ivshm_local_port(lfd)));
		e[k].fd = accept(lfd, NULL, NULL);
		ASSERT_LE(0, e[k].fd);
	}
	ASSERT_EQ(4, send(c[0], "wait", 4, 0));
	ASSERT_EQ(1, send(e[1].fd, "x", 1, 0));
	ASSERT_EQ(1, recv(c[1], buf, sizeof(buf), 0));
	ASSERT_EQ(1, send(c[1], "y", 1, 0));
	ASSERT_EQ(1, recv(e[1].fd, buf, sizeof(buf), 0));
	for (k = 0; k < 4; k++)
		ASSERT_TRUE(dead_end_find(&e[k], chan_off))
			TH_LOG("connection %d: channels not shown", k);
	run = malloc(IVSHMEM_RING_MAX);
	ASSERT_NE(NULL, run);

	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 1"));
	liveness_froze = true;
	for (k = 0; k < 4; k++) {
		set_timeo(c[k], SO_RCVTIMEO, DEAD_STEP_MS);
		EXPECT_EQ(-1, recv(c[k], buf, sizeof(buf), 0));
		EXPECT_EQ(ECONNRESET, errno);
	}
	deadline = ivshm_now_ms() + DEAD_STEP_MS;
	do {
		for (gone = true, k = 0; k < 4 && gone; k++)
			gone = dead_end_freed(rfd, &e[k]);
		if (!gone)
			ivshm_sleep_ms(50);
	} while (!gone && ivshm_now_ms() < deadline);
	ASSERT_TRUE(gone) TH_LOG("the dead VM's channels were not freed");
	for (k = 0; k < 4; k++)
		ASSERT_TRUE(dead_end_mark(rfd, &e[k], data_off, run));

	/* The dead VM's calls. */
	pfd[0] = (struct pollfd){ .fd = e[0].fd, .events = POLLIN | POLLOUT };
	pfd[1] = (struct pollfd){ .fd = e[1].fd, .events = POLLIN | POLLOUT };
	EXPECT_EQ(2, poll(pfd, 2, 0));
	EXPECT_EQ(-1, recv(e[0].fd, buf, sizeof(buf), MSG_DONTWAIT));
	EXPECT_EQ(ECONNRESET, errno);
	EXPECT_EQ(-1, send(e[1].fd, buf, sizeof(buf),
			   MSG_DONTWAIT | MSG_NOSIGNAL));
	EXPECT_EQ(ECONNRESET, errno);
	EXPECT_EQ(-1, shutdown(e[2].fd, SHUT_WR));
	EXPECT_EQ(ECONNRESET, errno);
	for (k = 0; k < 4; k++)
		close(e[k].fd);
	for (k = 0; k < 4; k++) {
		what = dead_end_changed(rfd, &e[k], data_off, run, why,
					sizeof(why));
		EXPECT_STREQ("", what) TH_LOG("connection %d", k);
	}
	free(run);
	close(rfd);

	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 0"));
	liveness_froze = false;
	for (k = 0; k < 4; k++)
		close(c[k]);
	/* Reachable again, as a new incarnation, before the next test. */
	deadline = ivshm_now_ms() + DEAD_STEP_MS;
	for (;;) {
		c[0] = sock_new();
		ASSERT_LE(0, c[0]);
		ret = do_connect(c[0], 2, ivshm_local_port(lfd));
		if (!ret || ivshm_now_ms() >= deadline)
			break;
		close(c[0]);
		ivshm_sleep_ms(100);
	}
	ASSERT_EQ(0, ret) TH_LOG("VM 2 did not come back: %s",
				 strerror(errno));
	set_timeo(lfd, SO_RCVTIMEO, DEAD_STEP_MS);
	e[0].fd = accept(lfd, NULL, NULL);
	ASSERT_LE(0, e[0].fd);
	close(e[0].fd);
	close(c[0]);
	close(lfd);
}

/*
 * Two regions in one guest at once: a connection to the agent over the
 * real device (ivshm0) and one between two dev_shm peers (ivshm1, vm 0,
 * to ivshm2, vm 1), used in turn, each keeping its own records.
 */
/*
 * A VM that stands still for less than the liveness bound (a paused QEMU,
 * a snapshot: dev_shm freezes virtual peer 2 for 3 s, beyond the 1.5 s
 * bound of earlier versions, within the 10 s default) keeps its
 * connections: nothing is reset on either side, and records flow both
 * ways once it runs again.
 */
TEST_F(liveness, paused_peer_keeps_its_connections)
{
	int lfd, c, a, fd[3];
	uint64_t t0;
	char buf[8];

	if (agent_pid <= 0)
		SKIP(return, "needs the agent on dev_shm, in one guest");
	ASSERT_EQ(0, connect_to_peer2(10000, fd));
	lfd = fd[0];
	c = fd[1];
	a = fd[2];

	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 1"));
	t0 = ivshm_now_ms();
	/* Nothing comes while it stands still, and nothing fails. */
	set_timeo(c, SO_RCVTIMEO, 3000);
	EXPECT_EQ(-1, recv(c, buf, sizeof(buf), 0));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_LE(2900, ivshm_now_ms() - t0);
	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 0"));

	set_timeo(c, SO_RCVTIMEO, 5000);
	set_timeo(a, SO_RCVTIMEO, 5000);
	EXPECT_EQ(2, send(c, "up", 2, MSG_NOSIGNAL));
	EXPECT_EQ(2, recv(a, buf, sizeof(buf), 0));
	EXPECT_EQ(2, send(a, "ok", 2, MSG_NOSIGNAL));
	EXPECT_EQ(2, recv(c, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "ok", 2));
	close(a);
	close(c);
	close(lfd);
}

TEST(two_devices_at_once)
{
	unsigned int port = test_port();
	char buf[16];
	int lfd, c, a, e, i;

	if (agent_pid > 0 || access(DEVSHM_DEBUGFS, F_OK))
		SKIP(return, "needs a PCI device and dev_shm in one guest");
	e = serve("echo", NULL);
	ASSERT_LE(0, e);
	lfd = sock_new();
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, do_bind(lfd, IVSHMEM_VM_ANY, port, 3));	/* ivshm2 */
	ASSERT_EQ(0, listen(lfd, 1));
	c = sock_new();
	ASSERT_LE(0, c);
	{
		struct sockaddr_ivshmem to = addr(1, port, 2);	/* via ivshm1 */

		ASSERT_EQ(0, connect(c, (struct sockaddr *)&to, sizeof(to)));
	}
	a = accept(lfd, NULL, NULL);
	ASSERT_LE(0, a);
	for (i = 0; i < 100; i++) {
		ASSERT_EQ(4, send(e, "pci", 4, 0));
		ASSERT_EQ(4, send(c, "shm", 4, 0));
		ASSERT_EQ(4, recv(a, buf, sizeof(buf), 0));
		ASSERT_EQ(0, strcmp(buf, "shm"));
		ASSERT_EQ(4, recv(e, buf, sizeof(buf), 0));
		ASSERT_EQ(0, strcmp(buf, "pci"));
	}
	close(a);
	close(c);
	close(lfd);
	close(e);
}

TEST(open_socket_pins_module)
{
	char path[] = "/sys/module/af_ivshmem/refcnt";
	char buf[32];
	long before, during;
	FILE *f;
	int fd;

	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(buf, sizeof(buf), f));
	fclose(f);
	before = atol(buf);
	fd = sock_new();
	ASSERT_LE(0, fd);
	f = fopen(path, "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(buf, sizeof(buf), f));
	fclose(f);
	during = atol(buf);
	EXPECT_LT(before, during);
	close(fd);
}

/* ---- connections ---- */

TEST(connect_send_receive)
{
	char buf[16];
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	ASSERT_EQ(5, send(fd, "hello", 5, 0));
	ASSERT_EQ(5, recv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "hello", 5));
	close(fd);
}

TEST(names_after_connect)
{
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);
	unsigned int port;
	int fd = serve("echo", &port);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getpeername(fd, (struct sockaddr *)&a, &len));
	EXPECT_EQ(sizeof(a), len);
	EXPECT_EQ(af, a.sivshm_family);
	EXPECT_EQ(agent_vm, a.sivshm_vm);
	EXPECT_EQ(port, a.sivshm_port);
	len = sizeof(a);
	ASSERT_EQ(0, getsockname(fd, (struct sockaddr *)&a, &len));
	EXPECT_NE(agent_vm, a.sivshm_vm);
	EXPECT_LE(IVSHMEM_PORT_EPHEMERAL_FIRST, a.sivshm_port);
	EXPECT_NE(IVSHMEM_DEV_ANY, a.sivshm_dev);
	close(fd);
}

TEST(peer_option)
{
	struct ivshmem_peer p;
	socklen_t len = sizeof(p);
	unsigned int port;
	int fd = serve("echo", &port);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockopt(fd, SOL_IVSHMEM, IVSHMEM_PEER, &p, &len));
	EXPECT_EQ(sizeof(p), len);
	EXPECT_EQ(agent_vm, p.vm);
	EXPECT_EQ(port, p.port);
	EXPECT_LT(0, p.pid);
	len = 2;
	EXPECT_EQ(-1, getsockopt(fd, SOL_IVSHMEM, IVSHMEM_PEER, &p, &len));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST(connect_twice)
{
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, do_connect(fd, agent_vm, CTRL_PORT));
	EXPECT_EQ(EISCONN, errno);
	EXPECT_EQ(-1, listen(fd, 1));
	EXPECT_EQ(EINVAL, errno);
	close(fd);
}

TEST(records_keep_their_boundaries)
{
	static const size_t sizes[] = { 1, 100, 1000, 3, 4096 };
	unsigned char out[4096], in[8192];
	size_t i;
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	for (i = 0; i < 5; i++) {
		fill(out, sizes[i], (unsigned int)i);
		ASSERT_EQ((ssize_t)sizes[i], send(fd, out, sizes[i], 0));
	}
	for (i = 0; i < 5; i++) {
		ASSERT_EQ((ssize_t)sizes[i], recv(fd, in, sizeof(in), 0));
		EXPECT_EQ(0, check(in, sizes[i], (unsigned int)i));
	}
	close(fd);
}

TEST(every_size_up_to_the_largest)
{
	static const size_t sizes[] = { 0, 1, 7, 8, 9, 63, 64, 65, 4087, 4088,
					4089, 4095, 4096, 4097, 65536,
					MAX_REC - 1, MAX_REC };
	unsigned char *out = malloc(MAX_REC), *in = malloc(MAX_REC + 16);
	size_t i;
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, out);
	ASSERT_NE(NULL, in);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct iovec iov = { in, MAX_REC + 16 };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

		fill(out, sizes[i], (unsigned int)i);
		ASSERT_EQ((ssize_t)sizes[i], send(fd, out, sizes[i], 0));
		ASSERT_EQ((ssize_t)sizes[i], recvmsg(fd, &mh, 0));
		EXPECT_TRUE(mh.msg_flags & MSG_EOR);
		EXPECT_FALSE(mh.msg_flags & MSG_TRUNC);
		EXPECT_EQ(0, check(in, sizes[i], (unsigned int)i));
	}
	free(out);
	free(in);
	close(fd);
}

TEST(emsgsize_above_the_largest)
{
	unsigned char *buf = calloc(1, MAX_REC + 1);
	socklen_t len = sizeof(int);
	int fd = serve("echo", NULL), max;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, getsockopt(fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &max,
				&len));
	EXPECT_EQ(MAX_REC, max);
	EXPECT_EQ(-1, send(fd, buf, (size_t)max + 1, 0));
	EXPECT_EQ(EMSGSIZE, errno);
	/* Nothing was sent: the next record is the first to arrive. */
	ASSERT_EQ(2, send(fd, "ok", 2, 0));
	ASSERT_EQ(2, recv(fd, buf, 16, 0));
	free(buf);
	close(fd);
}

TEST(zero_length_record_is_not_eof)
{
	char buf[8];
	struct iovec iov = { buf, sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, send(fd, buf, 0, 0));
	ASSERT_EQ(0, recvmsg(fd, &mh, 0));
	EXPECT_TRUE(mh.msg_flags & MSG_EOR);
	ASSERT_EQ(1, send(fd, "x", 1, 0));
	ASSERT_EQ(1, recv(fd, buf, sizeof(buf), 0));
	close(fd);
}

TEST(msg_trunc_drops_the_rest)
{
	unsigned char out[1000], in[1000];
	struct iovec iov = { in, 10 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	fill(out, sizeof(out), 1);
	ASSERT_EQ(1000, send(fd, out, 1000, 0));
	ASSERT_EQ(3, send(fd, "abc", 3, 0));
	ASSERT_EQ(10, recvmsg(fd, &mh, 0));
	EXPECT_TRUE(mh.msg_flags & MSG_TRUNC);
	EXPECT_EQ(0, check(in, 10, 1));
	ASSERT_EQ(3, recv(fd, in, sizeof(in), 0));
	EXPECT_EQ(0, memcmp(in, "abc", 3));
	close(fd);
}

TEST(msg_trunc_flag_returns_real_length)
{
	unsigned char out[500], in[500];
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	fill(out, sizeof(out), 2);
	ASSERT_EQ(500, send(fd, out, 500, 0));
	EXPECT_EQ(500, recv(fd, in, 20, MSG_TRUNC));
	EXPECT_EQ(0, check(in, 20, 2));
	close(fd);
}

TEST(msg_peek_does_not_consume)
{
	char a[8], b[8];
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	ASSERT_EQ(4, send(fd, "peek", 4, 0));
	ASSERT_EQ(4, send(fd, "next", 4, 0));
	ASSERT_EQ(4, recv(fd, a, sizeof(a), MSG_PEEK));
	ASSERT_EQ(2, recv(fd, b, 2, MSG_PEEK));
	ASSERT_EQ(4, recv(fd, b, sizeof(b), 0));
	EXPECT_EQ(0, memcmp(a, "peek", 4));
	EXPECT_EQ(0, memcmp(b, "peek", 4));
	ASSERT_EQ(4, recv(fd, b, sizeof(b), 0));
	EXPECT_EQ(0, memcmp(b, "next", 4));
	close(fd);
}

TEST(scatter_gather)
{
	char a[] = "scatter-", b[] = "gather", c[] = "!";
	struct iovec out[3] = { { a, 8 }, { b, 6 }, { c, 1 } };
	char x[4], y[20];
	struct iovec in[2] = { { x, 4 }, { y, sizeof(y) } };
	struct msghdr mo = { .msg_iov = out, .msg_iovlen = 3 };
	struct msghdr mi = { .msg_iov = in, .msg_iovlen = 2 };
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	ASSERT_EQ(15, sendmsg(fd, &mo, 0));
	ASSERT_EQ(15, recvmsg(fd, &mi, 0));
	EXPECT_EQ(0, memcmp(x, "scat", 4));
	EXPECT_EQ(0, memcmp(y, "ter-gather!", 11));
	close(fd);
}

TEST(bad_buffer_loses_nothing)
{
	char buf[8];
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, send(fd, (void *)8, 4, 0));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(4, send(fd, "data", 4, 0));
	/* Wait for the echo, then fail to receive it into a bad buffer. */
	ASSERT_EQ(4, recv(fd, buf, sizeof(buf), MSG_PEEK));
	EXPECT_EQ(-1, recv(fd, (void *)8, 4, 0));
	EXPECT_EQ(EFAULT, errno);
	ASSERT_EQ(4, recv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "data", 4));
	close(fd);
}

TEST(dontwait_and_rcvtimeo)
{
	uint64_t t0;
	char c;
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	EXPECT_EQ(-1, recv(fd, &c, 1, MSG_DONTWAIT));
	EXPECT_EQ(EAGAIN, errno);
	set_timeo(fd, SO_RCVTIMEO, 200);
	t0 = ivshm_now_ms();
	EXPECT_EQ(-1, recv(fd, &c, 1, 0));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_LE(150, ivshm_now_ms() - t0);
	close(fd);
}

TEST(order_and_integrity_of_many_records)
{
	unsigned char out[300], in[300];
	unsigned int i, n = 5000;
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	for (i = 0; i < n; i++) {
		size_t len = 1 + i % 299;

		fill(out, len, i);
		ASSERT_EQ((ssize_t)len, send(fd, out, len, 0));
		ASSERT_EQ((ssize_t)len, recv(fd, in, sizeof(in), 0));
		ASSERT_EQ(0, check(in, len, i));
	}
	close(fd);
}

TEST(siocinq_and_siocoutq)
{
	char buf[64];
	int fd = serve("echo", NULL), v = -1;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ioctl(fd, SIOCINQ, &v));
	EXPECT_EQ(0, v);
	ASSERT_EQ(37, send(fd, buf, 37, 0));
	ASSERT_EQ(37, recv(fd, buf, sizeof(buf), MSG_PEEK));
	ASSERT_EQ(0, ioctl(fd, SIOCINQ, &v));
	EXPECT_EQ(37, v);
	ASSERT_EQ(0, ioctl(fd, SIOCOUTQ, &v));
	EXPECT_LE(0, v);
	close(fd);
}

TEST(shutdown_wr_gives_peer_eof)
{
	char buf[8];
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	ASSERT_EQ(3, send(fd, "one", 3, 0));
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	/* The echo returns what came before, sees EOF and closes. */
	ASSERT_EQ(3, recv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, recv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, recv(fd, buf, sizeof(buf), 0));
	close(fd);
}

static volatile sig_atomic_t got_sigpipe;

static void on_sigpipe(int sig)
{
	(void)sig;
	got_sigpipe = 1;
}

TEST(send_after_shutdown_is_epipe)
{
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	signal(SIGPIPE, on_sigpipe);
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	got_sigpipe = 0;
	EXPECT_EQ(-1, send(fd, "x", 1, MSG_NOSIGNAL));
	EXPECT_EQ(EPIPE, errno);
	EXPECT_EQ(0, got_sigpipe);
	EXPECT_EQ(-1, send(fd, "x", 1, 0));
	EXPECT_EQ(EPIPE, errno);
	EXPECT_EQ(1, got_sigpipe);
	close(fd);
}

TEST(shutdown_rd_reads_eof)
{
	char c;
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, shutdown(fd, SHUT_RD));
	EXPECT_EQ(0, recv(fd, &c, 1, 0));
	close(fd);
}

TEST(peer_shutdown_rd_makes_send_fail)
{
	uint64_t t0 = ivshm_now_ms();
	int fd = serve("shutrd 30000", NULL), ret;

	/* Eventually, and long before the agent closes. */
	ASSERT_LE(0, fd);
	do {
		ret = (int)send(fd, "x", 1, MSG_NOSIGNAL);
		usleep(10000);
	} while (ret == 1 && ivshm_now_ms() - t0 < SETTLE_MS);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EPIPE, errno);
	close(fd);
}

TEST(peer_close_is_eof_then_epipe)
{
	uint64_t t0 = ivshm_now_ms();
	char c;
	int fd = serve("close", NULL), ret;

	ASSERT_LE(0, fd);
	EXPECT_EQ(0, recv(fd, &c, 1, 0));
	do {
		ret = (int)send(fd, "x", 1, MSG_NOSIGNAL);
		usleep(10000);
	} while (ret == 1 && ivshm_now_ms() - t0 < SETTLE_MS);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(EPIPE, errno);
	close(fd);
}

TEST(peer_close_with_unread_records_resets)
{
	uint64_t t0 = ivshm_now_ms();
	int fd = serve("hold 300", NULL), ret;

	ASSERT_LE(0, fd);
	ASSERT_EQ(4, send(fd, "lost", 4, 0));
	do {
		ret = (int)send(fd, "x", 1, MSG_NOSIGNAL);
		usleep(10000);
	} while (ret == 1 && ivshm_now_ms() - t0 < SETTLE_MS);
	EXPECT_EQ(-1, ret);
	EXPECT_EQ(ECONNRESET, errno);
	close(fd);
}

TEST(peer_sends_then_closes)
{
	unsigned char in[2000];
	unsigned int i;
	int fd = serve("send 50 2000", NULL);

	ASSERT_LE(0, fd);
	for (i = 0; i < 50; i++) {
		ASSERT_EQ(2000, recv(fd, in, sizeof(in), 0));
		ASSERT_EQ(0, check(in, 2000, i));
	}
	EXPECT_EQ(0, recv(fd, in, sizeof(in), 0));
	close(fd);
}

TEST(poll_in_out_rdhup_hup)
{
	struct pollfd p;
	char buf[8];
	int fd = serve("shutwr", NULL);

	ASSERT_LE(0, fd);
	p.fd = fd;
	p.events = POLLIN | POLLOUT | POLLRDHUP;
	/* The agent shut its side at once: EOF, but we can still write. */
	ASSERT_EQ(1, poll(&p, 1, 5000));
	while (!(p.revents & POLLRDHUP)) {
		usleep(10000);
		ASSERT_EQ(1, poll(&p, 1, 5000));
	}
	EXPECT_TRUE(p.revents & POLLOUT);
	EXPECT_TRUE(p.revents & POLLIN);
	EXPECT_FALSE(p.revents & POLLHUP);
	EXPECT_EQ(0, recv(fd, buf, sizeof(buf), 0));
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	ASSERT_EQ(1, poll(&p, 1, 5000));
	EXPECT_TRUE(p.revents & POLLHUP);
	close(fd);
}

TEST(poll_epoll_select_see_records)
{
	struct epoll_event ev = { .events = EPOLLIN }, out;
	struct pollfd p;
	struct timeval tv = { 5, 0 };
	fd_set rs;
	char buf[8];
	int fd = serve("echo", NULL), ep;

	ASSERT_LE(0, fd);
	p.fd = fd;
	p.events = POLLIN;
	EXPECT_EQ(0, poll(&p, 1, 50));
	ep = epoll_create1(0);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	EXPECT_EQ(0, epoll_wait(ep, &out, 1, 50));
	ASSERT_EQ(2, send(fd, "hi", 2, 0));
	ASSERT_EQ(1, epoll_wait(ep, &out, 1, 5000));
	EXPECT_TRUE(out.events & EPOLLIN);
	ASSERT_EQ(1, poll(&p, 1, 5000));
	EXPECT_TRUE(p.revents & POLLIN);
	FD_ZERO(&rs);
	FD_SET(fd, &rs);
	ASSERT_EQ(1, select(fd + 1, &rs, NULL, NULL, &tv));
	ASSERT_EQ(2, recv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, poll(&p, 1, 50));
	close(ep);
	close(fd);
}

/*
 * The event loop of mio, tokio and libuv: wait with EPOLLET, drain with
 * MSG_DONTWAIT until EAGAIN, wait again. Every record of a trickle must
 * bring an edge: a reader that drained asks to be told of the next
 * record, whether it sleeps or not. The trickle is in lockstep: the agent
 * sends each record 50 ms after the reader acknowledged the one before
 * (a record back), so no later record can stand in for a missed edge: a
 * missed edge is a wait that never ends, bounded by SETTLE_MS, which a
 * loaded host's scheduling never comes near; the longest is printed.
 */
TEST(edge_triggered_epoll_sees_every_record)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET }, out;
	unsigned int got = 0, v;
	uint64_t t0, worst = 0;
	int fd = serve("trickle 20 50", NULL), ep, n;

	ASSERT_LE(0, fd);
	ep = epoll_create1(0);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	while (got < 20) {
		t0 = ivshm_now_ms();
		n = epoll_wait(ep, &out, 1, SETTLE_MS);
		if (ivshm_now_ms() - t0 > worst)
			worst = ivshm_now_ms() - t0;
		ASSERT_EQ(1, n) TH_LOG("no edge within %d ms after %u records",
				       SETTLE_MS, got);
		ASSERT_TRUE(out.events & EPOLLIN);
		ASSERT_EQ((ssize_t)sizeof(v), recv(fd, &v, sizeof(v), MSG_DONTWAIT))
			TH_LOG("an edge without a record: %s", strerror(errno));
		ASSERT_EQ(got, v);
		/* One record at a time: the next waits for our word. */
		EXPECT_EQ(-1, recv(fd, &v, sizeof(v), MSG_DONTWAIT));
		ASSERT_EQ(EAGAIN, errno);
		ASSERT_EQ((ssize_t)sizeof(got), send(fd, &got, sizeof(got), 0));
		got++;
	}
	TH_LOG("20 records, longest wait for an edge %llu ms",
	       (unsigned long long)worst);
	close(ep);
	close(fd);
}

/* The same for room: a writer that filled the ring until EAGAIN gets an
 * EPOLLOUT edge once the reader frees room.
 */
TEST(edge_triggered_epoll_sees_room)
{
	struct epoll_event ev = { .events = EPOLLOUT | EPOLLET }, out;
	static unsigned char buf[4096];
	int fd = serve("sink 300", NULL), ep, sent = 0;

	ASSERT_LE(0, fd);
	while (send(fd, buf, sizeof(buf), MSG_DONTWAIT) == sizeof(buf))
		sent++;
	ASSERT_EQ(EAGAIN, errno);
	ASSERT_LT(0, sent);
	ep = epoll_create1(0);
	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	/* The sink starts reading after 300 ms. */
	ASSERT_EQ(1, epoll_wait(ep, &out, 1, SETTLE_MS));
	EXPECT_TRUE(out.events & EPOLLOUT);
	EXPECT_EQ((ssize_t)sizeof(buf),
		  send(fd, buf, sizeof(buf), MSG_DONTWAIT));
	close(ep);
	close(fd);
}

TEST(nonblocking_connect)
{
	unsigned int port = test_port();
	struct pollfd p;
	socklen_t len = sizeof(int);
	int fd, err = -1, ret;

	ASSERT_EQ(0, agent_cmd("serve %u echo", port));
	fd = socket(af, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
	ASSERT_LE(0, fd);
	ret = do_connect(fd, agent_vm, port);
	if (ret) {
		ASSERT_EQ(EINPROGRESS, errno);
		ret = do_connect(fd, agent_vm, port);
		EXPECT_TRUE(ret == 0 || errno == EALREADY || errno == EISCONN);
	}
	p.fd = fd;
	p.events = POLLOUT;
	ASSERT_EQ(1, poll(&p, 1, 10000));
	EXPECT_TRUE(p.revents & POLLOUT);
	ASSERT_EQ(0, getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
	EXPECT_EQ(0, err);
	EXPECT_EQ(-1, do_connect(fd, agent_vm, port));
	EXPECT_EQ(EISCONN, errno);
	close(fd);
}

TEST(nonblocking_connect_refused)
{
	struct pollfd p;
	socklen_t len = sizeof(int);
	int fd, err = 0, ret;

	fd = socket(af, SOCK_SEQPACKET | SOCK_NONBLOCK, 0);
	ASSERT_LE(0, fd);
	ret = do_connect(fd, agent_vm, test_port());
	ASSERT_EQ(-1, ret);
	ASSERT_EQ(EINPROGRESS, errno);
	p.fd = fd;
	p.events = POLLOUT;
	ASSERT_EQ(1, poll(&p, 1, 10000));
	EXPECT_TRUE(p.revents & POLLERR);
	ASSERT_EQ(0, getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len));
	EXPECT_EQ(ECONNREFUSED, err);
	close(fd);
}

TEST(flow_control_blocks_and_loses_nothing)
{
	unsigned char buf[4096];
	unsigned long long count = 0, s = 0, rc, rs;
	char reply[64];
	unsigned int i;
	ssize_t n;
	int fd = serve("sink 1000", NULL), eagain = 0;

	ASSERT_LE(0, fd);
	/* The sink sleeps first: the ring fills and the sender is told. */
	for (i = 0; i < 200; i++) {
		fill(buf, sizeof(buf), i);
		n = send(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0) {
			ASSERT_EQ(EAGAIN, errno);
			eagain++;
			/* Then wait for room, as a blocking sender does. */
			ASSERT_EQ(4096, send(fd, buf, sizeof(buf), 0));
		}
		count++;
		s = sum(buf, sizeof(buf), s);
	}
	EXPECT_LT(0, eagain);
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	n = recv(fd, reply, sizeof(reply) - 1, 0);
	ASSERT_LT(0, n);
	reply[n] = 0;
	ASSERT_EQ(2, sscanf(reply, "%llu %llu", &rc, &rs));
	EXPECT_EQ(count, rc);
	EXPECT_EQ(s, rs);
	close(fd);
}

/*
 * The largest records through a receiver that starts late: every send
 * waits for the whole ring to drain, and the receiver's notification must
 * come each time.
 */
TEST(largest_records_wait_for_a_slow_receiver)
{
	unsigned char *buf = malloc(MAX_REC);
	unsigned long long count = 0, s = 0, rc, rs;
	char reply[64];
	unsigned int i;
	ssize_t n;
	int fd = serve("sink 500", NULL);

	ASSERT_LE(0, fd);
	ASSERT_NE(NULL, buf);
	set_timeo(fd, SO_SNDTIMEO, 20000);
	for (i = 0; i < 16; i++) {
		fill(buf, MAX_REC, i);
		ASSERT_EQ(MAX_REC, send(fd, buf, MAX_REC, 0));
		count++;
		s = sum(buf, MAX_REC, s);
	}
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	n = recv(fd, reply, sizeof(reply) - 1, 0);
	ASSERT_LT(0, n);
	reply[n] = 0;
	ASSERT_EQ(2, sscanf(reply, "%llu %llu", &rc, &rs));
	EXPECT_EQ(count, rc);
	EXPECT_EQ(s, rs);
	free(buf);
	close(fd);
}

TEST(sndtimeo_bounds_a_blocked_send)
{
	unsigned char buf[4096] = { 0 };
	uint64_t t0;
	int fd = serve("hold 30000", NULL);	/* open while we look */
	ssize_t n;

	ASSERT_LE(0, fd);
	while ((n = send(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	ASSERT_EQ(EAGAIN, errno);
	set_timeo(fd, SO_SNDTIMEO, 200);
	t0 = ivshm_now_ms();
	EXPECT_EQ(-1, send(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_LE(150, ivshm_now_ms() - t0);
	close(fd);
}

static void on_alarm(int sig)
{
	(void)sig;
}

TEST(signal_interrupts_blocking_recv)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	char c;
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	sigaction(SIGALRM, &sa, NULL);		/* no SA_RESTART */
	ualarm(200000, 0);
	EXPECT_EQ(-1, recv(fd, &c, 1, 0));
	EXPECT_EQ(EINTR, errno);
	close(fd);
}

static void *late_send(void *arg)
{
	usleep(400000);
	send(*(int *)arg, "late", 4, 0);
	return NULL;
}

TEST(sa_restart_restarts_blocking_recv)
{
	struct sigaction sa = { .sa_handler = on_alarm,
				.sa_flags = SA_RESTART };
	pthread_t t;
	char buf[8];
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	sigaction(SIGALRM, &sa, NULL);
	ASSERT_EQ(0, pthread_create(&t, NULL, late_send, &fd));
	ualarm(100000, 0);
	EXPECT_EQ(4, recv(fd, buf, sizeof(buf), 0));
	pthread_join(t, NULL);
	close(fd);
}

TEST(descriptor_shared_across_fork)
{
	char buf[8];
	int status, fd = serve("echo", NULL);
	pid_t pid;

	ASSERT_LE(0, fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		_exit(send(fd, "kid", 3, 0) == 3 ? 0 : 1);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_EQ(0, WEXITSTATUS(status));
	ASSERT_EQ(3, recv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(0, memcmp(buf, "kid", 3));
	close(fd);
}

struct thr {
	int fd;
	unsigned int id;
	int ok;
};

static void *thread_send(void *arg)
{
	struct thr *t = arg;
	unsigned char buf[64];
	unsigned int i;

	t->ok = 1;
	for (i = 0; i < 1000; i++) {
		buf[0] = (unsigned char)t->id;
		memcpy(buf + 1, &i, sizeof(i));
		if (send(t->fd, buf, sizeof(buf), 0) != sizeof(buf))
			t->ok = 0;
	}
	return NULL;
}

TEST(threads_share_a_socket)
{
	unsigned int next[2] = { 0, 0 }, i, seq;
	struct thr t[2];
	pthread_t th[2];
	unsigned char buf[64];
	int fd = serve("echo", NULL);

	ASSERT_LE(0, fd);
	for (i = 0; i < 2; i++) {
		t[i].fd = fd;
		t[i].id = i;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, thread_send, &t[i]));
	}
	for (i = 0; i < 2000; i++) {
		ASSERT_EQ(64, recv(fd, buf, sizeof(buf), 0));
		ASSERT_GT(2, buf[0]);
		memcpy(&seq, buf + 1, sizeof(seq));
		/* Each thread's records arrive in its order. */
		ASSERT_EQ(next[buf[0]], seq);
		next[buf[0]]++;
	}
	for (i = 0; i < 2; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(1, t[i].ok);
	}
	close(fd);
}

TEST(full_accept_queue_refuses)
{
	unsigned int port = test_port();
	int a, b, c;

	ASSERT_EQ(0, agent_cmd("noaccept %u 1 30000", port));
	a = sock_new();
	b = sock_new();
	c = sock_new();
	ASSERT_LE(0, c);
	/* Backlog 1 queues two, as the kernel's other families do. */
	EXPECT_EQ(0, do_connect(a, agent_vm, port));
	EXPECT_EQ(0, do_connect(b, agent_vm, port));
	EXPECT_EQ(-1, do_connect(c, agent_vm, port));
	EXPECT_EQ(ECONNREFUSED, errno);
	close(a);
	close(b);
	close(c);
}

TEST(listener_close_resets_queued_connections)
{
	unsigned int port = test_port();
	uint64_t t0;
	char c;
	int fd;

	ASSERT_EQ(0, agent_cmd("noaccept %u 4 300", port));
	fd = sock_new();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, do_connect(fd, agent_vm, port));
	/* The listener goes away with us in its queue. */
	t0 = ivshm_now_ms();
	set_timeo(fd, SO_RCVTIMEO, SETTLE_MS);
	EXPECT_EQ(0, recv(fd, &c, 1, 0));
	EXPECT_GT(SETTLE_MS, ivshm_now_ms() - t0);
	close(fd);
}

TEST(accept4_flags_and_addresses)
{
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);
	unsigned int port = test_port();
	char buf[8];
	int lfd = sock_new(), fd;

	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, do_bind(lfd, IVSHMEM_VM_ANY, port, 0));
	ASSERT_EQ(0, listen(lfd, 2));
	ASSERT_EQ(0, agent_cmd("connect %u %u echo", own_vm(), port));
	set_timeo(lfd, SO_RCVTIMEO, 10000);
	fd = accept4(lfd, (struct sockaddr *)&a, &len,
		     SOCK_NONBLOCK | SOCK_CLOEXEC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(agent_vm, a.sivshm_vm);
	EXPECT_TRUE(fcntl(fd, F_GETFL) & O_NONBLOCK);
	EXPECT_TRUE(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(-1, recv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ(EAGAIN, errno);
	ASSERT_EQ(3, send(fd, "abc", 3, 0));
	fcntl(fd, F_SETFL, 0);
	ASSERT_EQ(3, recv(fd, buf, sizeof(buf), 0));
	close(fd);
	close(lfd);
}

/* Eight: a 4 MiB region has room for 15 connections of 2 x 128 KiB. */
TEST(many_connections_at_once)
{
	int fd[8], i;
	char buf[8];

	for (i = 0; i < 8; i++) {
		fd[i] = serve("echo", NULL);
		ASSERT_LE(0, fd[i]);
	}
	for (i = 0; i < 8; i++)
		ASSERT_EQ(1, send(fd[i], &"abcdefgh"[i], 1, 0));
	for (i = 0; i < 8; i++) {
		ASSERT_EQ(1, recv(fd[i], buf, sizeof(buf), 0));
		EXPECT_EQ("abcdefgh"[i], buf[0]);
	}
	for (i = 0; i < 8; i++)
		close(fd[i]);
}

TEST(msg_more_batches_until_the_last)
{
	char buf[8];
	int fd = serve("echo", NULL), i;

	ASSERT_LE(0, fd);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(1, send(fd, "m", 1, MSG_MORE));
	ASSERT_EQ(1, send(fd, "e", 1, 0));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(1, recv(fd, buf, sizeof(buf), 0));
		EXPECT_EQ('m', buf[0]);
	}
	ASSERT_EQ(1, recv(fd, buf, sizeof(buf), 0));
	EXPECT_EQ('e', buf[0]);
	close(fd);
}

/* ---- main ---- */

/* Find the agent: the VM (not us) that answers on CTRL_PORT. */
static int find_agent(void)
{
	uint64_t deadline = ivshm_now_ms() + AGENT_WAIT_S * 1000ull;
	unsigned int vm, me = own_vm();
	int fd;

	do {
		for (vm = 0; vm < 64; vm++) {
			if (vm == me)
				continue;
			fd = sock_new();
			if (fd < 0)
				return -1;
			if (!do_connect(fd, vm, CTRL_PORT)) {
				close(fd);
				agent_vm = vm;
				return 0;
			}
			close(fd);
		}
		ivshm_sleep_ms(200);
	} while (ivshm_now_ms() < deadline);
	return -1;
}

static long module_refs(void)
{
	return ivshm_module_refs("af_ivshmem");
}

static long refs_before;
static pid_t main_pid;

/*
 * Tell the agent to quit; with dev_shm, wait for it and check that every
 * socket is gone: the module's reference count is back below what it was
 * while the agent listened. A leak fails the run.
 */
static void stop_agent(void)
{
	uint64_t deadline = ivshm_now_ms() + 5000;

	if (getpid() != main_pid)
		return;		/* a test's child process */
	agent_cmd("quit");
	if (agent_pid <= 0)
		return;
	waitpid(agent_pid, NULL, 0);
	while (module_refs() >= refs_before && ivshm_now_ms() < deadline)
		ivshm_sleep_ms(50);
	if (module_refs() >= refs_before) {
		fprintf(stderr, "socket_test: sockets left behind: module references %ld with the agent up, %ld after every socket closed\n",
			refs_before, module_refs());
		_exit(1);
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "devshm";

	af = ivshm_family();
	if (af < 0) {
		fprintf(stderr, "socket_test: af_ivshmem is not loaded\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!strcmp(mode, "agent"))
		return agent_main();
	if (!strcmp(mode, "remote")) {
		if (find_agent()) {
			fprintf(stderr, "socket_test: no agent answers\n");
			return 1;
		}
	} else {
		/* dev_shm: the agent is virtual peer 1 (ivshm1, dev 2). */
		agent_vm = 1;
		agent_dev = 2;
		agent_pid = fork();
		if (agent_pid < 0)
			return 1;
		if (!agent_pid)
			_exit(agent_main());
		agent_dev = IVSHMEM_DEV_ANY;
		if (find_agent()) {
			fprintf(stderr, "socket_test: the agent did not start\n");
			return 1;
		}
	}
	fprintf(stderr, "socket_test: agent is VM %u\n", agent_vm);
	refs_before = module_refs();
	main_pid = getpid();
	/* The harness ends the process with exit(): clean up from there. */
	atexit(stop_agent);
	return test_harness_run(argc > 1 ? 1 : argc, argv);
}
