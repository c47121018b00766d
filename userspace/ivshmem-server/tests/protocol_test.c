// SPDX-License-Identifier: GPL-2.0
/*
 * Protocol tests for ivshmem-server.
 *
 * Each test starts its own server (the binary named by $IVS_SERVER,
 * optionally prefixed by the words of $IVS_SERVER_WRAPPER, e.g. a
 * valgrind command line) on a socket in a fresh temporary directory and
 * plays fake QEMU clients against it.  The server's stderr (it runs with
 * -v) goes to a log file that is dumped when a test fails.  Every test
 * ends by stopping the server with SIGTERM and requiring exit status 0,
 * which with the sanitizer build also means "no leaks, no memory errors".
 */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <endian.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "kselftest_harness.h"

#define MAX_VEC		64
#define MAX_IDS		128	/* peer ids the fake clients keep track of */
#define MAX_CLIENTS	96
#define WAIT_MS		10000	/* generous: the server may run under valgrind */
#define QUIET_MS	200

struct client {
	int sock;
	int id;
	int nvec;
	int shm;
	int nown;
	int own[MAX_VEC];
	int npeer[MAX_IDS];
	int peer[MAX_IDS][MAX_VEC];
};

struct server {
	pid_t pid;
	int vectors;
	char dir[64];
	char sock[100];
	char pidfile[128];
	char log[128];
	char shm[64];		/* empty: memfd */
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/*
 * Receive one protocol message: 8 bytes, little endian, at most one fd.
 * Returns 1 on success, 0 on EOF, -1 on timeout, -2 on anything malformed.
 */
static int recv_msg(int sock, int64_t *val, int *fd, int tmo_ms)
{
	unsigned char buf[8];
	size_t got = 0;
	int64_t deadline = now_ms() + tmo_ms;

	*fd = -1;
	while (got < sizeof(buf)) {
		union {
			struct cmsghdr align;
			char b[CMSG_SPACE(4 * sizeof(int))];
		} ctl;
		struct iovec iov = { buf + got, sizeof(buf) - got };
		struct msghdr msg = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.b, .msg_controllen = sizeof(ctl.b),
		};
		struct pollfd pfd = { .fd = sock, .events = POLLIN };
		struct cmsghdr *cm;
		int64_t left = deadline - now_ms();
		ssize_t n;

		if (left < 0 || poll(&pfd, 1, (int)left) == 0)
			return -1;
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return errno == ECONNRESET ? 0 : -2;
		if (n == 0)
			return got ? -2 : 0;
		for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
			int nfd, i, fds[4];

			if (cm->cmsg_level != SOL_SOCKET ||
			    cm->cmsg_type != SCM_RIGHTS)
				return -2;
			nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(fds, CMSG_DATA(cm), nfd * sizeof(int));
			for (i = 0; i < nfd; i++) {
				if (*fd >= 0) {
					close(fds[i]);
					return -2;
				}
				*fd = fds[i];
			}
		}
		if (msg.msg_flags & MSG_CTRUNC)
			return -2;
		got += n;
	}
	*val = (int64_t)le64toh(*(uint64_t *)buf);
	return 1;
}

static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void dump_log(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	fprintf(stderr, "# ---- server log %s ----\n", path);
	while (fgets(line, sizeof(line), f))
		fprintf(stderr, "# %s", line);
	fprintf(stderr, "# ---- end of server log ----\n");
	fclose(f);
}

FIXTURE(ivs) {
	struct server srv;
	int ncl;
	struct client *cl[MAX_CLIENTS];
};

FIXTURE_VARIANT(ivs) {
	bool use_shm;
	int vectors;
};

FIXTURE_VARIANT_ADD(ivs, memfd) {
	.use_shm = false,
	.vectors = 2,
};

FIXTURE_VARIANT_ADD(ivs, shm) {
	.use_shm = true,
	.vectors = 3,
};

FIXTURE_SETUP(ivs)
{
	static int seq;
	struct server *s = &self->srv;

	snprintf(s->dir, sizeof(s->dir), "/tmp/ivs-test-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(s->dir));
	snprintf(s->sock, sizeof(s->sock), "%s/sock", s->dir);
	snprintf(s->pidfile, sizeof(s->pidfile), "%s/pid", s->dir);
	snprintf(s->log, sizeof(s->log), "%s/server.log", s->dir);
	if (variant->use_shm)
		snprintf(s->shm, sizeof(s->shm), "/ivs-test-%d-%d",
			 getpid(), ++seq);
	s->vectors = variant->vectors;
}

/* SIGTERM the server and insist on a clean exit. */
static int srv_stop(struct server *s, int *status)
{
	int64_t deadline = now_ms() + WAIT_MS;
	pid_t r;

	if (!s->pid)
		return -1;
	kill(s->pid, SIGTERM);
	while ((r = waitpid(s->pid, status, WNOHANG)) == 0 &&
	       now_ms() < deadline)
		sleep_ms(10);
	if (r == 0) {
		kill(s->pid, SIGKILL);
		waitpid(s->pid, status, 0);
		s->pid = 0;
		return -1;
	}
	s->pid = 0;
	return 0;
}

FIXTURE_TEARDOWN(ivs)
{
	struct server *s = &self->srv;
	int i, j, k, status = 0;

	for (i = 0; i < self->ncl; i++) {
		struct client *c = self->cl[i];

		if (c->sock >= 0)
			close(c->sock);
		if (c->shm >= 0)
			close(c->shm);
		for (j = 0; j < c->nown; j++)
			close(c->own[j]);
		for (j = 0; j < MAX_IDS; j++)
			for (k = 0; k < c->npeer[j]; k++)
				close(c->peer[j][k]);
		free(c);
	}
	if (s->pid) {
		EXPECT_EQ(0, srv_stop(s, &status));
		EXPECT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status));
		EXPECT_NE(0, access(s->sock, F_OK));
	}
	if (!_metadata->passed)
		dump_log(s->log);
	if (s->shm[0] && shm_unlink(s->shm) == 0)
		TH_LOG("server left shm object %s behind", s->shm);
	unlink(s->sock);
	unlink(s->pidfile);
	unlink(s->log);
	rmdir(s->dir);
}

/* Build the server command line; extra options come NULL-terminated. */
static void srv_exec(struct server *s, const char *size, int max_peers,
		     const char *sock)
{
	const char *argv[64];
	char vec[16], peers[16];
	char *wrap = getenv("IVS_SERVER_WRAPPER");
	const char *bin = getenv("IVS_SERVER");
	int n = 0, fd;

	if (!bin)
		bin = "./ivshmem-server";
	if (wrap && *wrap) {
		char *tok, *save = NULL;

		wrap = strdup(wrap);
		for (tok = strtok_r(wrap, " ", &save); tok && n < 40;
		     tok = strtok_r(NULL, " ", &save))
			argv[n++] = tok;
	}
	argv[n++] = bin;
	argv[n++] = "-v";
	argv[n++] = "-S";
	argv[n++] = sock;
	argv[n++] = "--pidfile";
	argv[n++] = s->pidfile;
	snprintf(vec, sizeof(vec), "%d", s->vectors);
	argv[n++] = "-n";
	argv[n++] = vec;
	if (size) {
		argv[n++] = "-l";
		argv[n++] = size;
	}
	if (max_peers) {
		snprintf(peers, sizeof(peers), "%d", max_peers);
		argv[n++] = "-p";
		argv[n++] = peers;
	}
	if (s->shm[0]) {
		argv[n++] = "-m";
		argv[n++] = s->shm;
	} else {
		argv[n++] = "-M";
	}
	argv[n] = NULL;

	fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		close(fd);
	}
	execvp(argv[0], (char **)argv);
	fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* Start the server and wait until its pidfile says it is listening. */
static void srv_start(struct __test_metadata *_metadata, struct server *s,
		      const char *size, int max_peers)
{
	int64_t deadline = now_ms() + WAIT_MS;
	struct stat st;
	int status;

	unlink(s->pidfile);
	s->pid = fork();
	ASSERT_LE(0, s->pid);
	if (s->pid == 0)
		srv_exec(s, size, max_peers, s->sock);
	while (stat(s->pidfile, &st) != 0 || st.st_size == 0) {
		if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
			s->pid = 0;
			dump_log(s->log);
			ASSERT_TRUE(0) TH_LOG("server exited during start-up");
		}
		ASSERT_LT(now_ms(), deadline) TH_LOG("server did not start");
		sleep_ms(5);
	}
}

static bool srv_alive(struct server *s)
{
	int status;

	return s->pid && waitpid(s->pid, &status, WNOHANG) == 0;
}

/*
 * The server's descriptor count once it has come back to @base, or what
 * it still is after WAIT_MS (or once the server is gone).
 */
static int wait_fds(struct server *s, int base)
{
	int64_t deadline = now_ms() + WAIT_MS;
	int n;

	while ((n = count_fds(s->pid)) != base && now_ms() < deadline &&
	       srv_alive(s))
		sleep_ms(10);
	return n;
}

static int sock_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static struct client *cl_new(struct __test_metadata *_metadata,
			     FIXTURE_DATA(ivs) *self)
{
	struct client *c;

	ASSERT_LT(self->ncl, MAX_CLIENTS);
	c = calloc(1, sizeof(*c));
	ASSERT_NE(NULL, c);
	c->sock = -1;
	c->shm = -1;
	c->id = -1;
	c->nvec = self->srv.vectors;
	self->cl[self->ncl++] = c;
	c->sock = sock_connect(self->srv.sock);
	ASSERT_LE(0, c->sock);
	return c;
}

/*
 * Connect and check the whole greeting: version, id, shm, the other
 * peers' eventfds, then our own, in exactly that order.
 */
static struct client *cl_join(struct __test_metadata *_metadata,
			      FIXTURE_DATA(ivs) *self, int want_id)
{
	struct client *c = cl_new(_metadata, self);
	int nvec = self->srv.vectors;
	int64_t v;
	int fd, i;

	ASSERT_EQ(1, recv_msg(c->sock, &v, &fd, WAIT_MS));
	ASSERT_EQ(0, v) TH_LOG("protocol version");
	ASSERT_EQ(-1, fd) TH_LOG("fd sent with the version");

	ASSERT_EQ(1, recv_msg(c->sock, &v, &fd, WAIT_MS));
	ASSERT_EQ(-1, fd) TH_LOG("fd sent with the id");
	ASSERT_TRUE(v >= 0 && v < MAX_IDS);
	c->id = (int)v;
	if (want_id >= 0)
		ASSERT_EQ(want_id, c->id);

	ASSERT_EQ(1, recv_msg(c->sock, &v, &fd, WAIT_MS));
	ASSERT_EQ(-1, v);
	ASSERT_LE(0, fd) TH_LOG("no shm fd");
	c->shm = fd;

	while (c->nown < nvec) {
		ASSERT_EQ(1, recv_msg(c->sock, &v, &fd, WAIT_MS));
		ASSERT_LE(0, fd) TH_LOG("message %lld without fd in greeting",
					(long long)v);
		ASSERT_TRUE(v >= 0 && v < MAX_IDS);
		if (v == c->id) {
			c->own[c->nown++] = fd;
			continue;
		}
		/* Other peers' fds must all come before our own. */
		ASSERT_EQ(0, c->nown) TH_LOG("peer %lld after own vectors",
					     (long long)v);
		ASSERT_LT(c->npeer[v], nvec);
		c->peer[v][c->npeer[v]++] = fd;
	}
	for (i = 0; i < MAX_IDS; i++)
		if (c->npeer[i])
			ASSERT_EQ(nvec, c->npeer[i]) TH_LOG("peer %d", i);
	return c;
}

static void cl_close(struct client *c)
{
	close(c->sock);
	c->sock = -1;
}

static int cl_npeers(struct client *c)
{
	int i, n = 0;

	for (i = 0; i < MAX_IDS; i++)
		n += c->npeer[i] != 0;
	return n;
}

/*
 * Apply one announcement to @c's view of the other peers.  Returns the
 * peer id, or a negative recv_msg() code (-1 timeout, 0 EOF...) - 10.
 */
static int64_t cl_step(struct client *c, int tmo, bool *join)
{
	int64_t v;
	int fd, i, r;

	r = recv_msg(c->sock, &v, &fd, tmo);
	if (r != 1)
		return r - 10;
	if (v < 0 || v >= MAX_IDS || v == c->id ||
	    (fd >= 0 && c->npeer[v] >= c->nvec)) {
		if (fd >= 0)
			close(fd);
		return -100;
	}
	*join = fd >= 0;
	if (fd >= 0) {
		c->peer[v][c->npeer[v]++] = fd;
	} else {
		for (i = 0; i < c->npeer[v]; i++)
			close(c->peer[v][i]);
		c->npeer[v] = 0;
	}
	return v;
}

static void cl_expect_join(struct __test_metadata *_metadata,
			   struct client *c, int id)
{
	bool join = false;
	int v;

	ASSERT_EQ(0, c->npeer[id]);
	for (v = 0; v < c->nvec; v++) {
		ASSERT_EQ(id, cl_step(c, WAIT_MS, &join))
			TH_LOG("client %d: vector %d of peer %d", c->id, v, id);
		ASSERT_TRUE(join);
	}
}

static void cl_expect_leave(struct __test_metadata *_metadata,
			    struct client *c, int id)
{
	bool join = true;

	ASSERT_EQ(c->nvec, c->npeer[id]);
	ASSERT_EQ(id, cl_step(c, WAIT_MS, &join))
		TH_LOG("client %d: departure of %d", c->id, id);
	ASSERT_FALSE(join) TH_LOG("departure came with an fd");
}

static void cl_expect_quiet(struct __test_metadata *_metadata,
			    struct client *c)
{
	bool join;

	ASSERT_EQ(-11, cl_step(c, QUIET_MS, &join))
		TH_LOG("client %d got an unexpected message", c->id);
}

/* Drain everything the server still sends, then require EOF. */
static void cl_expect_eof(struct __test_metadata *_metadata, int sock,
			  int tmo)
{
	int64_t deadline = now_ms() + tmo, v;
	int r, fd;

	do {
		r = recv_msg(sock, &v, &fd, (int)(deadline - now_ms()));
		if (fd >= 0)
			close(fd);
	} while (r == 1);
	ASSERT_EQ(0, r) TH_LOG("expected the server to close the connection");
}

static void efd_signal(struct __test_metadata *_metadata, int fd)
{
	uint64_t one = 1;

	ASSERT_EQ((ssize_t)sizeof(one), write(fd, &one, sizeof(one)));
}

static bool efd_pending(int fd, int tmo)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, tmo) == 1 && (pfd.revents & POLLIN);
}

static void efd_consume(struct __test_metadata *_metadata, int fd)
{
	uint64_t val = 0;

	ASSERT_TRUE(efd_pending(fd, WAIT_MS));
	ASSERT_EQ((ssize_t)sizeof(val), read(fd, &val, sizeof(val)));
	ASSERT_EQ(1ULL, val);
}

/*
 * Ring every vector of @to through the fds @from received for it, and
 * check that exactly the matching vector of @to fires, and nothing else.
 */
static void check_doorbell(struct __test_metadata *_metadata,
			   FIXTURE_DATA(ivs) *self,
			   struct client *from, struct client *to)
{
	int v, w, i;

	ASSERT_EQ(to->nvec, from->npeer[to->id]);
	for (v = 0; v < to->nvec; v++) {
		efd_signal(_metadata, from->peer[to->id][v]);
		efd_consume(_metadata, to->own[v]);
		for (w = 0; w < to->nvec; w++)
			ASSERT_FALSE(efd_pending(to->own[w], 0))
				TH_LOG("vector %d fired for %d", w, v);
		for (i = 0; i < self->ncl; i++) {
			struct client *o = self->cl[i];

			for (w = 0; w < o->nown; w++)
				ASSERT_FALSE(efd_pending(o->own[w], 0))
					TH_LOG("client %d vector %d fired",
					       o->id, w);
		}
	}
}

TEST_F(ivs, greeting_and_ids)
{
	struct client *a, *b, *c;
	struct stat st;

	srv_start(_metadata, &self->srv, NULL, 0);
	a = cl_join(_metadata, self, 0);
	ASSERT_EQ(0, cl_npeers(a));
	b = cl_join(_metadata, self, 1);
	ASSERT_EQ(1, cl_npeers(b));
	ASSERT_EQ(variant->vectors, b->npeer[0]);
	cl_expect_join(_metadata, a, 1);
	c = cl_join(_metadata, self, 2);
	ASSERT_EQ(2, cl_npeers(c));
	ASSERT_EQ(variant->vectors, c->npeer[0]);
	ASSERT_EQ(variant->vectors, c->npeer[1]);
	cl_expect_join(_metadata, a, 2);
	cl_expect_join(_metadata, b, 2);
	cl_expect_quiet(_metadata, a);
	cl_expect_quiet(_metadata, b);
	cl_expect_quiet(_metadata, c);

	/* Default size is 4M. */
	ASSERT_EQ(0, fstat(a->shm, &st));
	ASSERT_EQ(4 << 20, st.st_size);
}

TEST_F(ivs, shared_memory)
{
	struct client *a, *b;
	unsigned char *pa, *pb;
	const size_t size = 64 << 10;
	char path[64], link[128];
	struct stat st;
	ssize_t n;

	srv_start(_metadata, &self->srv, "64K", 0);
	a = cl_join(_metadata, self, 0);
	b = cl_join(_metadata, self, 1);

	ASSERT_EQ(0, fstat(a->shm, &st));
	ASSERT_EQ(size, st.st_size);
	ASSERT_EQ(0, fstat(b->shm, &st));
	ASSERT_EQ(size, st.st_size);

	pa = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, a->shm, 0);
	ASSERT_NE(MAP_FAILED, pa);
	pb = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, b->shm, 0);
	ASSERT_NE(MAP_FAILED, pb);
	pa[0] = 0x5a;
	pa[size - 1] = 0xa5;
	EXPECT_EQ(0x5a, pb[0]);
	EXPECT_EQ(0xa5, pb[size - 1]);
	pb[4096] = 0x42;
	EXPECT_EQ(0x42, pa[4096]);
	munmap(pa, size);
	munmap(pb, size);

	snprintf(path, sizeof(path), "/proc/self/fd/%d", a->shm);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_LT(0, n);
	link[n] = '\0';
	if (variant->use_shm) {
		/* The named object exists while the server runs. */
		int fd = shm_open(self->srv.shm, O_RDONLY, 0);

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, fstat(fd, &st));
		EXPECT_EQ(size, st.st_size);
		close(fd);
	} else {
		ASSERT_EQ(0, strncmp(link, "/memfd:", 7)) TH_LOG("%s", link);
		/* Sealed so that no client can shrink it under the others. */
		EXPECT_NE(0, ftruncate(a->shm, size / 2));
	}
}

TEST_F(ivs, eventfd_routing)
{
	struct client *c[3];
	int i, j;

	srv_start(_metadata, &self->srv, "4K", 0);
	for (i = 0; i < 3; i++) {
		c[i] = cl_join(_metadata, self, i);
		ASSERT_EQ(variant->vectors, c[i]->nown);
		for (j = 0; j < i; j++)
			cl_expect_join(_metadata, c[j], i);
	}
	for (i = 0; i < 3; i++)
		for (j = 0; j < 3; j++)
			if (i != j)
				check_doorbell(_metadata, self, c[i], c[j]);
}

/* Peers 0, 1 and 2 join in order; each sees those that come after it. */
static void join_three(struct __test_metadata *_metadata,
		       FIXTURE_DATA(ivs) *self, struct client **a,
		       struct client **b, struct client **c)
{
	*a = cl_join(_metadata, self, 0);
	*b = cl_join(_metadata, self, 1);
	*c = cl_join(_metadata, self, 2);
	cl_expect_join(_metadata, *a, 1);
	cl_expect_join(_metadata, *a, 2);
	cl_expect_join(_metadata, *b, 2);
}

TEST_F(ivs, departure_announced)
{
	struct client *a, *b, *c;
	int base;

	srv_start(_metadata, &self->srv, "1M", 0);
	base = count_fds(self->srv.pid);
	ASSERT_LT(0, base);
	join_three(_metadata, self, &a, &b, &c);

	cl_close(b);
	cl_expect_leave(_metadata, a, 1);
	cl_expect_leave(_metadata, c, 1);
	cl_expect_quiet(_metadata, a);
	cl_expect_quiet(_metadata, c);
	check_doorbell(_metadata, self, a, c);
	check_doorbell(_metadata, self, c, a);

	cl_close(c);
	cl_expect_leave(_metadata, a, 2);
	cl_close(a);
	/* Every socket and eventfd of the departed peers is released. */
	ASSERT_EQ(base, wait_fds(&self->srv, base));
}

static void put32(unsigned char *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

/*
 * In a region laid out by af_ivshmem, a departed peer's slot is marked
 * DEAD and the others' vector 0 rings; any other region is left alone.
 */
TEST_F(ivs, region_peer_marked_dead)
{
	const size_t size = 1 << 20;
	struct client *a, *b, *c;
	unsigned char *p;
	uint64_t off = htole64(4096);
	int64_t deadline;

	/* Two ids only, so that c takes b's again. */
	srv_start(_metadata, &self->srv, "1M", 2);
	a = cl_join(_metadata, self, 0);
	b = cl_join(_metadata, self, 1);
	cl_expect_join(_metadata, a, 1);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, a->shm, 0);
	ASSERT_NE(MAP_FAILED, p);
	put32(p, 0x4d485349);		/* magic */
	put32(p + 4, 1);		/* version 1 (and header size 0) */
	put32(p + 8, 2);		/* READY */
	put32(p + 24, 64);		/* max_peers */
	memcpy(p + 32, &off, sizeof(off));	/* peers_off */
	put32(p + 4096, 1);		/* a ALIVE */
	put32(p + 4096 + 64, 1);	/* b ALIVE */

	cl_close(b);
	cl_expect_leave(_metadata, a, 1);
	deadline = now_ms() + WAIT_MS;
	while (get32(p + 4096 + 64) != 2 && now_ms() < deadline)
		sleep_ms(10);
	EXPECT_EQ(2, get32(p + 4096 + 64));
	EXPECT_EQ(1, get32(p + 4096));
	if (variant->vectors) {
		EXPECT_TRUE(efd_pending(a->own[0], WAIT_MS));
		efd_consume(_metadata, a->own[0]);
	}

	/* Not an af_ivshmem region any more: nothing is written. */
	put32(p, 0);
	c = cl_join(_metadata, self, 1);
	cl_expect_join(_metadata, a, 1);
	put32(p + 4096 + 64, 1);
	cl_close(c);
	cl_expect_leave(_metadata, a, 1);
	sleep_ms(100);
	EXPECT_EQ(1, get32(p + 4096 + 64));
	if (variant->vectors)
		EXPECT_FALSE(efd_pending(a->own[0], 100));
	munmap(p, size);
}

/*
 * Fresh ids first (QEMU 7.2 corrupts its heap when a departed peer's id
 * connects again), the lowest free one once all were given out.
 */
TEST_F(ivs, id_reuse)
{
	struct client *a, *b, *c, *d, *e, *f;

	srv_start(_metadata, &self->srv, "1M", 4);
	join_three(_metadata, self, &a, &b, &c);

	cl_close(b);
	cl_expect_leave(_metadata, a, 1);
	cl_expect_leave(_metadata, c, 1);

	d = cl_join(_metadata, self, 3);	/* never used before */
	ASSERT_EQ(2, cl_npeers(d));
	ASSERT_EQ(variant->vectors, d->npeer[0]);
	ASSERT_EQ(variant->vectors, d->npeer[2]);
	cl_expect_join(_metadata, a, 3);
	cl_expect_join(_metadata, c, 3);
	check_doorbell(_metadata, self, a, d);
	check_doorbell(_metadata, self, d, c);

	e = cl_join(_metadata, self, 1);	/* all used: lowest free */
	cl_expect_join(_metadata, a, 1);
	cl_expect_join(_metadata, c, 1);
	cl_expect_join(_metadata, d, 1);

	cl_close(a);
	cl_expect_leave(_metadata, c, 0);
	cl_expect_leave(_metadata, d, 0);
	cl_expect_leave(_metadata, e, 0);
	f = cl_join(_metadata, self, 0);
	ASSERT_EQ(3, cl_npeers(f));
	cl_expect_join(_metadata, c, 0);
	cl_expect_join(_metadata, d, 0);
	cl_expect_join(_metadata, e, 0);
	check_doorbell(_metadata, self, f, e);
	check_doorbell(_metadata, self, e, f);
}

TEST_F(ivs, sigterm_cleans_up)
{
	struct client *a, *b;
	int status = -1;
	int64_t v;
	int fd;

	srv_start(_metadata, &self->srv, "1M", 0);
	a = cl_join(_metadata, self, 0);
	b = cl_join(_metadata, self, 1);
	cl_expect_join(_metadata, a, 1);
	ASSERT_EQ(0, access(self->srv.sock, F_OK));
	ASSERT_EQ(0, access(self->srv.pidfile, F_OK));

	ASSERT_EQ(0, srv_stop(&self->srv, &status));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_NE(0, access(self->srv.sock, F_OK));
	ASSERT_NE(0, access(self->srv.pidfile, F_OK));
	if (variant->use_shm) {
		ASSERT_GT(0, shm_open(self->srv.shm, O_RDONLY, 0));
		ASSERT_EQ(ENOENT, errno);
	}
	/*
	 * Clients are closed without departure messages, so that they can
	 * go on interrupting each other as the spec allows.
	 */
	ASSERT_EQ(0, recv_msg(a->sock, &v, &fd, WAIT_MS));
	ASSERT_EQ(0, recv_msg(b->sock, &v, &fd, WAIT_MS));
	check_doorbell(_metadata, self, a, b);
}

TEST_F(ivs, sigint_stops_too)
{
	int64_t deadline;
	int status = -1;

	srv_start(_metadata, &self->srv, "1M", 0);
	kill(self->srv.pid, SIGINT);
	deadline = now_ms() + WAIT_MS;
	while (waitpid(self->srv.pid, &status, WNOHANG) == 0) {
		ASSERT_LT(now_ms(), deadline);
		sleep_ms(10);
	}
	self->srv.pid = 0;
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_NE(0, access(self->srv.sock, F_OK));
}

TEST_F(ivs, early_close)
{
	struct client *a, *b, *c;
	int i, fd, want;
	int64_t v;
	bool join;

	srv_start(_metadata, &self->srv, "1M", 0);
	a = cl_join(_metadata, self, 0);

	/* Gone before the server even accepts. */
	for (i = 0; i < 20; i++) {
		fd = sock_connect(self->srv.sock);
		ASSERT_LE(0, fd);
		close(fd);
	}
	/* Gone in the middle of the greeting. */
	for (i = 0; i < 5; i++) {
		fd = sock_connect(self->srv.sock);
		ASSERT_LE(0, fd);
		ASSERT_EQ(1, recv_msg(fd, &v, &want, WAIT_MS));
		close(fd);
	}
	/* Talks, which the one-way protocol forbids: gets disconnected. */
	for (i = 0; i < 3; i++) {
		fd = sock_connect(self->srv.sock);
		ASSERT_LE(0, fd);
		ASSERT_EQ(4, write(fd, "junk", 4));
		cl_expect_eof(_metadata, fd, WAIT_MS);
		close(fd);
	}
	/* Half-closed: shuts down its side, counts as gone. */
	fd = sock_connect(self->srv.sock);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	cl_expect_eof(_metadata, fd, WAIT_MS);
	close(fd);

	ASSERT_TRUE(srv_alive(&self->srv));
	b = cl_join(_metadata, self, -1);
	want = b->id;
	/* a may see transient peers come and go; in the end only b stays. */
	while (a->npeer[want] < a->nvec) {
		v = cl_step(a, WAIT_MS, &join);
		ASSERT_LE(0, v) TH_LOG("client 0 stream broken: %lld",
				       (long long)v);
	}
	while ((v = cl_step(a, QUIET_MS, &join)) >= 0)
		;
	ASSERT_EQ(-11, v);
	ASSERT_EQ(1, cl_npeers(a));
	ASSERT_EQ(1, cl_npeers(b)) TH_LOG("b sees stale peers");
	check_doorbell(_metadata, self, a, b);
	check_doorbell(_metadata, self, b, a);

	/* The transient ids are gone; the next client gets a fresh one. */
	c = cl_join(_metadata, self, -1);
	ASSERT_NE(0, c->id);
	ASSERT_NE(want, c->id);
	cl_expect_join(_metadata, a, c->id);
	cl_expect_join(_metadata, b, c->id);
}

TEST_F(ivs, max_peers_refused)
{
	struct client *a, *b, *d;
	int64_t v;
	int fd, x;

	srv_start(_metadata, &self->srv, "1M", 2);
	a = cl_join(_metadata, self, 0);
	b = cl_join(_metadata, self, 1);
	cl_expect_join(_metadata, a, 1);

	/* The third one is closed without a single message. */
	x = sock_connect(self->srv.sock);
	ASSERT_LE(0, x);
	ASSERT_EQ(0, recv_msg(x, &v, &fd, WAIT_MS));
	close(x);
	cl_expect_quiet(_metadata, a);
	cl_expect_quiet(_metadata, b);
	check_doorbell(_metadata, self, a, b);

	cl_close(b);
	cl_expect_leave(_metadata, a, 1);
	d = cl_join(_metadata, self, 1);
	cl_expect_join(_metadata, a, 1);
	check_doorbell(_metadata, self, d, a);
}

/*
 * Every wait of its own is bounded by WAIT_MS; the harness's bound only
 * has to catch a hang. The 40 peers' join and leave announcements, some
 * 800, took a server under valgrind on a host with two CPU hogs more
 * than the default 30 s.
 */
TEST_F_TIMEOUT(ivs, many_peers, 300)
{
	enum { N = 40 };
	struct client *c[N];
	int base, i, j;

	srv_start(_metadata, &self->srv, "1M", N);
	base = count_fds(self->srv.pid);
	for (i = 0; i < N; i++) {
		c[i] = cl_join(_metadata, self, i);
		ASSERT_EQ(i, cl_npeers(c[i]));
		for (j = 0; j < i; j++)
			cl_expect_join(_metadata, c[j], i);
	}
	check_doorbell(_metadata, self, c[0], c[N - 1]);
	check_doorbell(_metadata, self, c[N - 1], c[0]);
	check_doorbell(_metadata, self, c[N / 2], c[N / 3]);

	/*
	 * Half of them leave at once; the server may notice in any order,
	 * but each survivor must hear about each of them exactly once.
	 */
	for (i = 0; i < N; i += 2)
		cl_close(c[i]);
	for (i = 1; i < N; i += 2) {
		for (j = 0; j < N / 2; j++) {
			bool join = true;
			int64_t v = cl_step(c[i], WAIT_MS, &join);

			ASSERT_TRUE(v >= 0 && v % 2 == 0 && !join)
				TH_LOG("client %d got %lld", i, (long long)v);
		}
		ASSERT_EQ(N / 2 - 1, cl_npeers(c[i]));
	}
	cl_expect_quiet(_metadata, c[1]);
	cl_expect_quiet(_metadata, c[N - 1]);
	for (i = 1; i < N; i += 2)
		cl_close(c[i]);
	ASSERT_EQ(base, wait_fds(&self->srv, base));
}

/*
 * A client that never reads fills its socket buffer; the server must
 * drop it after a bounded wait instead of hanging, and everyone else
 * keeps being served.
 */
TEST_F_TIMEOUT(ivs, slow_client_dropped, 120)
{
	struct client *a, *x;
	int slow, slow_id = -1, i, fd;
	int64_t v, t0, worst = 0;
	bool join, gone = false;

	self->srv.vectors = MAX_VEC;
	srv_start(_metadata, &self->srv, "1M", 8);
	a = cl_join(_metadata, self, 0);
	slow = sock_connect(self->srv.sock);
	ASSERT_LE(0, slow);
	/* a learns the slow client's id from its join announcement. */
	v = cl_step(a, WAIT_MS, &join);
	ASSERT_LE(0, v);
	slow_id = (int)v;
	for (i = 1; i < a->nvec; i++)
		ASSERT_EQ(slow_id, cl_step(a, WAIT_MS, &join));

	for (i = 0; i < 400 && !gone; i++) {
		t0 = now_ms();
		x = cl_join(_metadata, self, -1);
		cl_close(x);
		/* a: x joins, maybe the slow one is dropped, x leaves. */
		for (;;) {
			v = cl_step(a, WAIT_MS, &join);
			ASSERT_LE(0, v);
			if (v == slow_id && !join)
				gone = true;
			if (v == x->id && !join)
				break;
		}
		if (now_ms() - t0 > worst)
			worst = now_ms() - t0;
		/* Keep the test's own fd usage flat. */
		self->ncl--;
		close(x->shm);
		for (fd = 0; fd < x->nown; fd++)
			close(x->own[fd]);
		for (fd = 0; fd < MAX_IDS; fd++)
			while (x->npeer[fd])
				close(x->peer[fd][--x->npeer[fd]]);
		free(x);
	}
	TH_LOG("slow client dropped after %d rounds, slowest round %lld ms",
	       i, (long long)worst);
	ASSERT_TRUE(gone);
	/* One wait of the server's send timeout, plus slack for valgrind. */
	ASSERT_LT(worst, 8000);
	ASSERT_TRUE(srv_alive(&self->srv));
	cl_expect_eof(_metadata, slow, WAIT_MS);
	close(slow);
	x = cl_join(_metadata, self, 1);
	cl_expect_join(_metadata, a, 1);
}

/* Run a second server instance to completion; returns its wait status. */
static int srv_run_once(struct server *s, const char *sock)
{
	int64_t deadline = now_ms() + WAIT_MS;
	int status = -1;
	pid_t pid, r;

	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		srv_exec(s, NULL, 0, sock);
	while ((r = waitpid(pid, &status, WNOHANG)) == 0 &&
	       now_ms() < deadline)
		sleep_ms(10);
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return status;
}

static bool log_contains(const char *path, const char *needle)
{
	char line[512];
	bool found = false;
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, needle);
	fclose(f);
	return found;
}

TEST_F(ivs, live_socket_refused)
{
	struct server other = self->srv;
	struct client *a;
	int status;

	srv_start(_metadata, &self->srv, "1M", 0);
	a = cl_join(_metadata, self, 0);

	snprintf(other.pidfile, sizeof(other.pidfile), "%s/pid2",
		 self->srv.dir);
	other.shm[0] = '\0';
	status = srv_run_once(&other, self->srv.sock);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(1, WEXITSTATUS(status));
	ASSERT_TRUE(log_contains(self->srv.log, "in use by a running server"));
	unlink(other.pidfile);

	/* The first server is unharmed and still owns its socket. */
	ASSERT_TRUE(srv_alive(&self->srv));
	ASSERT_EQ(0, access(self->srv.sock, F_OK));
	ASSERT_NE(NULL, cl_join(_metadata, self, -1));
	ASSERT_LE(0, cl_step(a, WAIT_MS, &(bool){ 0 }));
}

TEST_F(ivs, stale_socket_replaced)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd;

	/* A socket file nobody listens on, as left by a killed server. */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ASSERT_LE(0, fd);
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", self->srv.sock);
	ASSERT_EQ(0, bind(fd, (struct sockaddr *)&addr, sizeof(addr)));
	close(fd);
	ASSERT_EQ(0, access(self->srv.sock, F_OK));

	srv_start(_metadata, &self->srv, "1M", 0);
	ASSERT_NE(NULL, cl_join(_metadata, self, 0));
}

TEST_F(ivs, non_socket_path_refused)
{
	int fd, status;

	fd = open(self->srv.sock, O_WRONLY | O_CREAT, 0644);
	ASSERT_LE(0, fd);
	close(fd);
	status = srv_run_once(&self->srv, self->srv.sock);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(1, WEXITSTATUS(status));
	ASSERT_TRUE(log_contains(self->srv.log, "not a socket"));
	/* Left alone. */
	ASSERT_EQ(0, access(self->srv.sock, F_OK));
}

TEST_F(ivs, existing_shm_object)
{
	int fd, status;

	if (!variant->use_shm)
		SKIP(return, "only meaningful with -m");

	/* Right size: adopted, and left in place on exit (not ours). */
	fd = shm_open(self->srv.shm, O_RDWR | O_CREAT | O_EXCL, 0600);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, ftruncate(fd, 1 << 20));
	srv_start(_metadata, &self->srv, "1M", 0);
	ASSERT_NE(NULL, cl_join(_metadata, self, 0));
	ASSERT_EQ(0, srv_stop(&self->srv, &status));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	close(fd);
	fd = shm_open(self->srv.shm, O_RDWR, 0);
	ASSERT_LE(0, fd) TH_LOG("server unlinked an object it did not create");

	/* Wrong size: refused rather than resized under its users. */
	ASSERT_EQ(0, ftruncate(fd, 2 << 20));
	close(fd);
	status = srv_run_once(&self->srv, self->srv.sock);
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(1, WEXITSTATUS(status));
	ASSERT_TRUE(log_contains(self->srv.log, "already exists with size"));
	ASSERT_NE(0, access(self->srv.sock, F_OK));
	/* Ours to remove, not the server's. */
	ASSERT_EQ(0, shm_unlink(self->srv.shm));
	self->srv.shm[0] = '\0';
}

TEST_HARNESS_MAIN
