// SPDX-License-Identifier: GPL-2.0
/*
 * net_bench: AF_IVSHMEM against what users would pick instead, in the
 * guests of `make bench` (scripts/bench.sh; selftests/runner/run.sh
 * --placements bench-one,bench-doorbell,bench-plain).
 *
 *   net_bench one-guest        dev_shm in one guest: AF_IVSHMEM (virtual
 *                              peer 0 to peer 1) against AF_UNIX
 *                              SOCK_SEQPACKET, between the same two
 *                              processes
 *   net_bench server           the other guest's end: AF_IVSHMEM on every
 *                              region, TCP on port 6100
 *   net_bench client-doorbell  AF_IVSHMEM on an ivshmem-doorbell region
 *                              against TCP over virtio-net to 192.168.100.1
 *   net_bench client-plain     AF_IVSHMEM on an ivshmem-plain region
 *   net_bench stages-server    the server, AF_IVSHMEM only
 *   net_bench stages-client    round trips on an ivshmem-doorbell region,
 *                              untraced then traced (placement
 *                              bench-stages; scripts/bench-stages.py)
 *
 * Three tests, each on every transport, repetitions interleaved across
 * transports so that a slow moment of the machine hits all of them:
 *
 *   stream  one connection sends records of one size as fast as it can
 *           for ivshm.bench_ms (1000), after a warm-up of
 *           ivshm.bench_warmup_ms (2000) in which rebalancing grows the
 *           channel to what the traffic needs, as it would for a
 *           long-lived connection; the receiver counts the timed records
 *           and times them from the first to the end marker, so the rate
 *           is what was delivered.
 *   rtt     one record echoed at a time: p50 and p99 of the round trips.
 *   rtt-busy  the same with busy polling on both ends: SO_BUSY_POLL of
 *           ivshm.bench_busy_us (1000; 0 skips the test) on the client's
 *           and the server's socket alike, so each reader spins before it
 *           sleeps. AF_UNIX has no busy polling: the option changes
 *           nothing there.
 *   scale   1, 8 and 64 connections streaming 4 KiB records at once, in
 *           one window shared by all; the aggregate is all their timed
 *           records over the time from the first timed record of any to
 *           the last end marker, as region_bench counts its senders.
 *
 * Every record carries its phase in its first byte (warm-up, timed, end),
 * and the receiver checks its length. TCP (a byte stream) carries each
 * record behind its length, written in one call and read through a buffer
 * until whole (struct link), with TCP_NODELAY on both ends. Doorbells and NAPI polls per record
 * come from the af_ivshmem debugfs counters of the guest's devices; in two
 * guests each side counts its own.
 *
 * Output, on stdout: "benchcsv,..." lines (the fields of RAW_FIELDS in
 * scripts/bench-report.py) and "bench-progress: ..." lines. Figures are
 * never judged here: the exit status is 0 unless a connection or a record
 * went wrong.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "ivshmem.h"
#include "ivshm_test.h"
#include "tracefs.h"

#define BENCH_PORT	6000
#define TCP_PORT	6100
#define SERVER_ADDR	"192.168.100.1"
#define UNIX_NAME	"ivshm-net-bench"
#define MAX_SIZE	65536
#define SCALE_SIZE	4096
#define MAX_CONNS	64
#define RTT_WARMUP	50
#define RTT_MIN		100
#define RTT_MAX		5000
/* Traced round trips per size: what the trace buffer and the console
 * carry in a few seconds, and enough for a p99.
 */
#define STAGE_ROUNDS	2000
#define CONNECT_S	60
#define IDLE_S		120

enum kind { K_IVSHMEM, K_UNIX, K_TCP };

struct transport {
	const char *name;	/* as in the CSV */
	enum kind kind;
	bool counters;		/* has doorbell and poll counters */
};

/* OP_ECHO_TRACED: an echo during which the server's guest traces too. */
enum { OP_STREAM = 1, OP_ECHO = 2, OP_QUIT = 3, OP_ECHO_TRACED = 4 };
enum { PH_WARM = 0, PH_TIMED = 1, PH_END = 2 };

struct cmd {
	uint32_t op;
	uint32_t size;
	uint32_t busy_us;	/* SO_BUSY_POLL for the server's end, or 0 */
};

struct reply {
	uint64_t records;	/* timed records received */
	uint64_t t0;		/* the first timed record, server's clock */
	uint64_t ns;		/* first timed record to the end marker */
	int64_t rings;		/* doorbells rung meanwhile, -1: unknown */
	int64_t polls;		/* NAPI polls meanwhile, -1: unknown */
};

static const unsigned int sizes[] = { 64, 256, 1024, 4096, 16384, 65536 };
static const unsigned int conn_counts[] = { 1, 8, 64 };

static const char *setup;	/* "one-guest" or "two-guests" */
static bool one_guest;
static unsigned int server_vm = IVSHMEM_VM_ANY;
static int af;			/* AF_IVSHMEM's number */
static unsigned long long bench_ms, warmup_ms, reps, busy_us;
static unsigned int stage_rounds;	/* rtt: exactly this many, traced */

/* One write, so that the line cannot interleave with the other process. */
static void die(const char *fmt, ...)
{
	char msg[256], line[400];
	int err = errno, n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	n = snprintf(line, sizeof(line), "net_bench: %s: %s\n", msg,
		     strerror(err));
	fflush(stdout);
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		exit(1);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * Doorbells rung and NAPI polls run by every af_ivshmem device of this
 * guest: with dev_shm both ends of a connection are here, and both count.
 */
static void counters(int64_t *rings, int64_t *polls)
{
	DIR *d = opendir(IVSHM_DEBUGFS);
	struct dirent *e;

	*rings = 0;
	*polls = 0;
	if (!d) {
		*rings = *polls = -1;
		return;
	}
	while ((e = readdir(d))) {
		long long r, p;

		if (strncmp(e->d_name, "ivshm", 5))
			continue;
		r = ivshm_dev_attr_ll(e->d_name, "doorbells", "rings_sent");
		p = ivshm_dev_attr_ll(e->d_name, "doorbells", "napi_polls");
		if (r < 0 || p < 0) {
			*rings = *polls = -1;
			break;
		}
		*rings += r;
		*polls += p;
	}
	closedir(d);
}

static int set_busy_poll(int fd, uint32_t us)
{
	int v = (int)us;

	return setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &v, sizeof(v));
}

/*
 * One connection of any transport. SOCK_SEQPACKET keeps record boundaries
 * itself. TCP is a byte stream, so records are framed there as a careful
 * user frames them: a 4-byte length in network byte order before the
 * payload, both handed to the kernel in one sendmsg() (with TCP_NODELAY
 * set, so that no record waits for an acknowledgement), and read through
 * a buffer that takes whatever the stream holds and reads on until a
 * whole record is in. A record is used where it lies in that buffer.
 */
struct link {
	enum kind kind;
	int fd;
	unsigned char *rbuf;	/* received bytes, the next record first */
	size_t rcap;		/* rbuf's size */
	size_t rhead, rtail;	/* TCP: the unread bytes are rbuf[rhead, rtail) */
};

#define FRAME_HDR	4
#define TCP_RBUF	(2 * (FRAME_HDR + MAX_SIZE))

static void link_init(struct link *l, enum kind kind, int fd)
{
	*l = (struct link){ .kind = kind, .fd = fd };
	l->rcap = kind == K_TCP ? TCP_RBUF : MAX_SIZE + 1;
	l->rbuf = malloc(l->rcap);
	if (!l->rbuf)
		die("malloc");
}

static void link_close(struct link *l)
{
	close(l->fd);
	free(l->rbuf);
	l->rbuf = NULL;
	l->fd = -1;
}

/* Send all of @iov (@n entries), however many calls the kernel needs. */
static int send_iov(int fd, struct iovec *iov, int n)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };

	while (mh.msg_iovlen) {
		ssize_t done = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (done < 0 && errno == EINTR)
			continue;
		if (!done)
			errno = EIO;
		if (done <= 0)
			return -1;
		while (mh.msg_iovlen && (size_t)done >= mh.msg_iov->iov_len) {
			done -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + done;
			mh.msg_iov->iov_len -= (size_t)done;
		}
	}
	return 0;
}

/* Send one record of @len bytes. */
static int link_send(struct link *l, const void *buf, size_t len)
{
	uint32_t hdr = htonl((uint32_t)len);
	struct iovec iov[2] = {
		{ .iov_base = &hdr, .iov_len = sizeof(hdr) },
		{ .iov_base = (void *)buf, .iov_len = len },
	};

	if (l->kind != K_TCP)
		return send_iov(l->fd, &iov[1], 1);
	return send_iov(l->fd, iov, 2);
}

/*
 * Receive one record, which must be @len bytes long: 0 with *@rec
 * pointing at it (valid until the next call), 1 at end of file, or -1
 * (EPROTO: a record of another length).
 */
static int link_recv(struct link *l, size_t len, const unsigned char **rec)
{
	size_t need = FRAME_HDR, have;
	uint32_t hdr;
	ssize_t n;

	if (l->kind != K_TCP) {
		do {
			n = recv(l->fd, l->rbuf, l->rcap, 0);
		} while (n < 0 && errno == EINTR);
		if (n <= 0)
			return n ? -1 : 1;
		if ((size_t)n != len) {
			errno = EPROTO;
			return -1;
		}
		*rec = l->rbuf;
		return 0;
	}
	for (;;) {
		have = l->rtail - l->rhead;
		if (have >= FRAME_HDR) {
			memcpy(&hdr, l->rbuf + l->rhead, sizeof(hdr));
			if (ntohl(hdr) != len) {
				errno = EPROTO;
				return -1;
			}
			need = FRAME_HDR + len;
			if (have >= need) {
				*rec = l->rbuf + l->rhead + FRAME_HDR;
				l->rhead += need;
				return 0;
			}
		}
		/* Room for the whole record behind what is already in. */
		if (l->rhead + need > l->rcap) {
			memmove(l->rbuf, l->rbuf + l->rhead, have);
			l->rhead = 0;
			l->rtail = have;
		}
		n = recv(l->fd, l->rbuf + l->rtail, l->rcap - l->rtail, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n ? -1 : 1;
		l->rtail += (size_t)n;
	}
}

/* --- the receiving end --------------------------------------------------- */

struct conn {
	struct link l;
};

static atomic_bool quit;
static atomic_int active;

/*
 * One connection: a command, then the records it announces until the end
 * marker, then the reply. Stream records are counted; echo records are
 * sent back.
 */
static void *serve(void *arg)
{
	struct conn *c = arg;
	struct reply rep = { 0 };
	int64_t r0 = 0, p0 = 0, r1, p1;
	const unsigned char *rec;
	uint64_t t0 = 0;
	struct cmd cmd;
	char tag[32];
	bool echo;
	int ret;

	if (link_recv(&c->l, sizeof(cmd), &rec))
		die("server: command");
	memcpy(&cmd, rec, sizeof(cmd));
	if (cmd.op == OP_QUIT) {
		atomic_store(&quit, true);
		goto out;
	}
	echo = cmd.op == OP_ECHO || cmd.op == OP_ECHO_TRACED;
	if ((cmd.op != OP_STREAM && !echo) || !cmd.size ||
	    cmd.size > MAX_SIZE || cmd.busy_us > INT32_MAX) {
		errno = EPROTO;
		die("server: command %u of %u bytes", cmd.op, cmd.size);
	}
	if (cmd.op == OP_ECHO_TRACED && tracefs_start())
		die("server: tracing");
	if (cmd.busy_us && set_busy_poll(c->l.fd, cmd.busy_us))
		die("server: SO_BUSY_POLL %u", cmd.busy_us);
	for (;;) {
		ret = link_recv(&c->l, cmd.size, &rec);
		if (ret)
			die("server: record of %u bytes%s", cmd.size,
			    ret > 0 ? " (end of file)" : "");
		if (rec[0] == PH_END)
			break;
		if (rec[0] == PH_TIMED) {
			if (!rep.records++) {
				counters(&r0, &p0);
				t0 = now_ns();
				rep.t0 = t0;
			}
		} else if (rec[0] != PH_WARM) {
			errno = EPROTO;
			die("server: record of phase %u", rec[0]);
		}
		if (echo && link_send(&c->l, rec, cmd.size))
			die("server: echo");
	}
	if (cmd.op == OP_ECHO_TRACED) {
		tracefs_stop();
		snprintf(tag, sizeof(tag), "server-%u", cmd.size);
		if (tracefs_dump(stdout, tag) < 0)
			die("server: reading the trace");
	}
	counters(&r1, &p1);
	rep.ns = rep.records ? now_ns() - t0 : 0;
	rep.rings = r0 < 0 || r1 < 0 ? -1 : r1 - r0;
	rep.polls = p0 < 0 || p1 < 0 ? -1 : p1 - p0;
	if (link_send(&c->l, &rep, sizeof(rep)))
		die("server: reply");
out:
	link_close(&c->l);
	free(c);
	atomic_fetch_sub(&active, 1);
	return NULL;
}

/*
 * Accept on every listener of @lfd (@kinds) until a QUIT command; give up
 * after IDLE_S without a connection, when the client is gone.
 */
static int server(const int *lfd, const enum kind *kinds, int n)
{
	uint64_t idle_since = now_ns();
	struct pollfd pfd[3];
	pthread_attr_t attr;
	int i;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	for (i = 0; i < n; i++)
		pfd[i] = (struct pollfd){ .fd = lfd[i], .events = POLLIN };
	while (!atomic_load(&quit) || atomic_load(&active)) {
		if (poll(pfd, (nfds_t)n, 100) < 0 && errno != EINTR)
			die("server: poll");
		if (atomic_load(&active))
			idle_since = now_ns();
		else if (now_ns() - idle_since > IDLE_S * 1000000000ull) {
			errno = ETIMEDOUT;
			die("server: no client for %d s", IDLE_S);
		}
		for (i = 0; i < n; i++) {
			struct conn *c;
			pthread_t t;
			int fd, one = 1;

			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept4(lfd[i], NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				die("server: accept");
			if (kinds[i] == K_TCP &&
			    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				       sizeof(one)))
				die("server: TCP_NODELAY");
			c = malloc(sizeof(*c));
			if (!c)
				die("malloc");
			link_init(&c->l, kinds[i], fd);
			atomic_fetch_add(&active, 1);
			if (pthread_create(&t, &attr, serve, c)) {
				errno = EAGAIN;
				die("server: thread");
			}
		}
	}
	for (i = 0; i < n; i++)
		close(lfd[i]);
	pthread_attr_destroy(&attr);
	return 0;
}

static int listen_unix(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	/* An abstract name: nothing to remove afterwards. */
	memcpy(a.sun_path + 1, UNIX_NAME, strlen(UNIX_NAME));
	if (fd < 0 ||
	    bind(fd, (struct sockaddr *)&a,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
			     strlen(UNIX_NAME))) ||
	    listen(fd, MAX_CONNS))
		die("AF_UNIX listen");
	return fd;
}

static int listen_tcp(void)
{
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons(TCP_PORT),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, MAX_CONNS))
		die("TCP listen");
	return fd;
}

/* --- the sending end ----------------------------------------------------- */

/* The first connection finds the server's VM id; it may still be booting. */
static int connect_ivshmem(void)
{
	uint64_t deadline = now_ns() + CONNECT_S * 1000000000ull;
	unsigned int vm;
	int fd;

	if (one_guest)
		/* From virtual peer 0 (ivshm0) to peer 1's listener. */
		return ivshm_connect_to(af, 1, BENCH_PORT, 1);
	if (server_vm != IVSHMEM_VM_ANY)
		return ivshm_connect_to(af, server_vm, BENCH_PORT,
					IVSHMEM_DEV_ANY);
	do {
		for (vm = 0; vm < 64; vm++) {
			fd = ivshm_connect_to(af, vm, BENCH_PORT,
					      IVSHMEM_DEV_ANY);
			if (fd >= 0) {
				server_vm = vm;
				return fd;
			}
		}
		usleep(200000);
	} while (now_ns() < deadline);
	return -1;
}

static int connect_unix(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	memcpy(a.sun_path + 1, UNIX_NAME, strlen(UNIX_NAME));
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a,
		    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
				strlen(UNIX_NAME)))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The server guest's TCP port; it may not listen yet. */
static int connect_tcp(void)
{
	uint64_t deadline = now_ns() + CONNECT_S * 1000000000ull;
	struct sockaddr_in a = {
		.sin_family = AF_INET,
		.sin_port = htons(TCP_PORT),
	};
	int fd, one = 1;

	inet_pton(AF_INET, SERVER_ADDR, &a.sin_addr);
	do {
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				       sizeof(one))) {
				close(fd);
				return -1;
			}
			return fd;
		}
		close(fd);
		usleep(200000);
	} while (now_ns() < deadline);
	return -1;
}

static int connect_transport(const struct transport *tp)
{
	int fd;

	switch (tp->kind) {
	case K_IVSHMEM:
		fd = connect_ivshmem();
		break;
	case K_UNIX:
		fd = connect_unix();
		break;
	default:
		fd = connect_tcp();
		break;
	}
	if (fd < 0)
		die("%s: connect", tp->name);
	return fd;
}

/* A connection of @tp's, ready for records. */
static void connect_link(const struct transport *tp, struct link *l)
{
	link_init(l, tp->kind, connect_transport(tp));
}

static void send_cmd(const struct transport *tp, struct link *l, uint32_t op,
		     uint32_t size, uint32_t busy)
{
	struct cmd c = { .op = op, .size = size, .busy_us = busy };

	if (link_send(l, &c, sizeof(c)))
		die("%s: command", tp->name);
}

static void recv_reply(const struct transport *tp, struct link *l,
		       struct reply *rep)
{
	const unsigned char *rec;

	if (link_recv(l, sizeof(*rep), &rec))
		die("%s: reply", tp->name);
	memcpy(rep, rec, sizeof(*rep));
}

/* One row of the raw CSV; a negative figure is an empty field. */
static void emit(const struct transport *tp, const char *test,
		 unsigned int size, unsigned int conns, unsigned int rep,
		 uint64_t records, double seconds, double p50, double p99,
		 double rings, double polls)
{
	double rate = seconds > 0 ? (double)records / seconds : 0;
	char f[4][32];
	double v[4] = { p50, p99, rings, polls };
	int i;

	for (i = 0; i < 4; i++) {
		if (v[i] < 0)
			f[i][0] = '\0';
		else
			snprintf(f[i], sizeof(f[i]), "%.4f", v[i]);
	}
	printf("benchcsv,%s,%s,%s,%u,%u,%u,%llu,%.6f,%.1f,%.1f,%s,%s,%s,%s\n",
	       setup, tp->name, test, size, conns, rep,
	       (unsigned long long)records, seconds, rate, rate * size,
	       f[0], f[1], f[2], f[3]);
}

static unsigned int done_points, total_points;

static void progress(const struct transport *tp, const char *test,
		     unsigned int size, unsigned int conns, unsigned int rep,
		     const char *fmt, ...)
{
	va_list ap;

	printf("bench-progress: [%u/%u] %s %s %s %u B x%u rep %u: ",
	       ++done_points, total_points, setup, test, tp->name, size, conns,
	       rep + 1);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* A sending connection of a stream or scale run. */
struct sender {
	const struct transport *tp;
	pthread_t thread;
	pthread_barrier_t *ready;
	unsigned int size;
	struct link l;
	_Atomic uint64_t *t_timed, *t_end;	/* shared window, set by main */
	struct reply rep;
	int64_t rings, polls;	/* this side's counters (two guests) */
};

static void *stream_sender(void *arg)
{
	struct sender *s = arg;
	unsigned char *buf = calloc(1, s->size);
	int64_t r0 = 0, p0 = 0, r1, p1;
	uint64_t t_timed, t_end, t;
	bool timed = false;

	if (!buf)
		die("malloc");
	send_cmd(s->tp, &s->l, OP_STREAM, s->size, 0);
	pthread_barrier_wait(s->ready);
	pthread_barrier_wait(s->ready);
	t_timed = atomic_load(s->t_timed);
	t_end = atomic_load(s->t_end);
	for (;;) {
		t = now_ns();
		if (t >= t_end)
			break;
		if (!timed && t >= t_timed) {
			timed = true;
			buf[0] = PH_TIMED;
			counters(&r0, &p0);
		}
		if (link_send(&s->l, buf, s->size))
			die("%s: send", s->tp->name);
	}
	buf[0] = PH_END;
	if (link_send(&s->l, buf, s->size))
		die("%s: end marker", s->tp->name);
	counters(&r1, &p1);
	s->rings = r0 < 0 || r1 < 0 ? -1 : r1 - r0;
	s->polls = p0 < 0 || p1 < 0 ? -1 : p1 - p0;
	recv_reply(s->tp, &s->l, &s->rep);
	link_close(&s->l);
	free(buf);
	return NULL;
}

/*
 * Per-record counters: the receiver's (which, with dev_shm, are the whole
 * guest's) plus, across guests, the sender's own. -1 when unknown.
 */
static void per_record(const struct sender *s, double *rings, double *polls)
{
	*rings = -1;
	*polls = -1;
	if (!s->tp->counters || !s->rep.records || s->rep.rings < 0 ||
	    (!one_guest && s->rings < 0))
		return;
	*rings = (double)(s->rep.rings + (one_guest ? 0 : s->rings)) /
		 (double)s->rep.records;
	*polls = (double)(s->rep.polls + (one_guest ? 0 : s->polls)) /
		 (double)s->rep.records;
}

static void run_stream(const struct transport *tp, const char *test,
		       unsigned int size, unsigned int conns, unsigned int rep)
{
	static struct sender s[MAX_CONNS];
	_Atomic uint64_t t_timed, t_end;
	pthread_barrier_t ready;
	double seconds = 0, rate = 0, rings = -1, polls = -1;
	uint64_t records = 0, first = UINT64_MAX, last = 0;
	unsigned int i;

	pthread_barrier_init(&ready, NULL, conns + 1);
	for (i = 0; i < conns; i++) {
		s[i] = (struct sender){
			.tp = tp, .size = size, .ready = &ready,
			.t_timed = &t_timed, .t_end = &t_end,
		};
		connect_link(tp, &s[i].l);
		if (pthread_create(&s[i].thread, NULL, stream_sender, &s[i])) {
			errno = EAGAIN;
			die("thread");
		}
	}
	/* Every connection is up and has sent its command. */
	pthread_barrier_wait(&ready);
	atomic_store(&t_timed, now_ns() + warmup_ms * 1000000ull);
	atomic_store(&t_end, atomic_load(&t_timed) + bench_ms * 1000000ull);
	pthread_barrier_wait(&ready);
	for (i = 0; i < conns; i++) {
		pthread_join(s[i].thread, NULL);
		/*
		 * A connection starved by the others for the whole window
		 * delivered nothing: it adds nothing to the aggregate.
		 */
		if (!s[i].rep.records || !s[i].rep.ns) {
			if (conns > 1)
				continue;
			errno = EPROTO;
			die("%s: no timed record arrived", tp->name);
		}
		records += s[i].rep.records;
		if (s[i].rep.t0 < first)
			first = s[i].rep.t0;
		if (s[i].rep.t0 + s[i].rep.ns > last)
			last = s[i].rep.t0 + s[i].rep.ns;
	}
	pthread_barrier_destroy(&ready);
	/*
	 * The aggregate: every connection's timed records over one window,
	 * from the first timed record of any to the last end marker, on the
	 * server's clock (one connection: its own window).
	 */
	seconds = (double)(last - first) / 1e9;
	rate = (double)records / seconds;
	if (conns == 1)
		per_record(&s[0], &rings, &polls);
	emit(tp, test, size, conns, rep, records, seconds, -1, -1, rings,
	     polls);
	progress(tp, test, size, conns, rep, "%.0f records/s, %.1f MB/s",
		 rate, rate * size / 1e6);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Round trips; with @busy, busy polling of @busy us on both ends. */
static void run_rtt(const struct transport *tp, unsigned int size,
		    unsigned int rep, uint32_t busy)
{
	const char *test = busy ? "rtt-busy" : "rtt";
	static uint64_t ns[RTT_MAX];
	unsigned char *buf = calloc(1, MAX_SIZE + 1);
	struct sender s = { .tp = tp };
	int64_t r0 = 0, p0 = 0, r1, p1;
	uint64_t t_end, t, t1;
	double rings, polls, p50, p99, sum = 0;
	const unsigned char *echo;
	unsigned int i, n = 0;
	struct link l;

	if (!buf)
		die("malloc");
	connect_link(tp, &l);
	if (busy && set_busy_poll(l.fd, busy))
		die("%s: SO_BUSY_POLL %u", tp->name, busy);
	send_cmd(tp, &l, stage_rounds ? OP_ECHO_TRACED : OP_ECHO, size, busy);
	t_end = 0;
	for (i = 0; n < RTT_MAX; i++) {
		buf[0] = i < RTT_WARMUP ? PH_WARM : PH_TIMED;
		if (i == RTT_WARMUP) {
			counters(&r0, &p0);
			t_end = now_ns() + bench_ms * 1000000ull;
		}
		t = now_ns();
		if (link_send(&l, buf, size) || link_recv(&l, size, &echo) ||
		    echo[0] != buf[0])
			die("%s: echo of %u bytes", tp->name, size);
		t1 = now_ns();
		if (i >= RTT_WARMUP) {
			ns[n++] = t1 - t;
			sum += (double)(t1 - t);
			if (stage_rounds ? n >= stage_rounds :
			    t1 >= t_end && n >= RTT_MIN)
				break;
		}
	}
	counters(&r1, &p1);
	buf[0] = PH_END;
	if (link_send(&l, buf, size))
		die("%s: end marker", tp->name);
	recv_reply(tp, &l, &s.rep);
	link_close(&l);
	free(buf);
	if (s.rep.records != n) {
		errno = EPROTO;
		die("%s: %u round trips, the server echoed %llu", tp->name, n,
		    (unsigned long long)s.rep.records);
	}
	s.rings = r0 < 0 || r1 < 0 ? -1 : r1 - r0;
	s.polls = p0 < 0 || p1 < 0 ? -1 : p1 - p0;
	per_record(&s, &rings, &polls);
	/* A round trip is two records, one each way. */
	if (rings >= 0) {
		rings /= 2;
		polls /= 2;
	}
	qsort(ns, n, sizeof(ns[0]), cmp_u64);
	p50 = (double)ns[n / 2] / 1e3;
	p99 = (double)ns[(n * 99) / 100] / 1e3;
	if (!stage_rounds)
		emit(tp, test, size, 1, rep, n, sum / 1e9, p50, p99, rings,
		     polls);
	progress(tp, stage_rounds ? "rtt-traced" : test, size, 1, rep,
		 "p50 %.1f us, p99 %.1f us (%u rounds)", p50, p99, n);
	if (stage_rounds)
		printf("stagertt,%u,%.1f,%.1f,%u\n", size, p50, p99, n);
}

/* Stop the server; wait for it to close, lest the close undo the QUIT. */
static void quit_server(const struct transport *tp)
{
	struct link l;
	char c;

	connect_link(tp, &l);
	send_cmd(tp, &l, OP_QUIT, 0, 0);
	while (recv(l.fd, &c, 1, 0) > 0)
		;
	link_close(&l);
}

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static int client(const struct transport *tps, unsigned int ntp)
{
	const unsigned int nsz = ARRAY_SIZE(sizes), ncc = ARRAY_SIZE(conn_counts);
	unsigned int r, i, t;

	total_points = (unsigned int)reps * ntp * ((busy_us ? 3 : 2) * nsz + ncc);
	printf("bench-progress: %s: %u measurements of %llu ms (streams after %llu ms of warm-up), %llu repetitions, busy polling %llu us\n",
	       setup, total_points, bench_ms, warmup_ms, reps, busy_us);
	fflush(stdout);
	for (r = 0; r < reps; r++) {
		for (i = 0; i < nsz; i++)
			for (t = 0; t < ntp; t++)
				run_stream(&tps[t], "stream", sizes[i], 1, r);
		for (i = 0; i < nsz; i++)
			for (t = 0; t < ntp; t++)
				run_rtt(&tps[t], sizes[i], r, 0);
		for (i = 0; busy_us && i < nsz; i++)
			for (t = 0; t < ntp; t++)
				run_rtt(&tps[t], sizes[i], r,
					(uint32_t)busy_us);
		for (i = 0; i < ncc; i++)
			for (t = 0; t < ntp; t++)
				run_stream(&tps[t], "scale", SCALE_SIZE,
					   conn_counts[i], r);
	}
	/* One server process serves every transport: one QUIT stops it. */
	quit_server(&tps[0]);
	return 0;
}

/*
 * Where a round trip's time goes: for each size, round trips untraced (the
 * reference), then STAGE_ROUNDS traced, whose events are printed for
 * scripts/bench-stages.py. The server's guest traces the same round trips
 * (OP_ECHO_TRACED).
 */
static int stages_client(const struct transport *tp)
{
	static const unsigned int stage_sizes[] = { 64, 65536 };
	char tag[32];
	unsigned int i;

	total_points = 2 * ARRAY_SIZE(stage_sizes);
	for (i = 0; i < ARRAY_SIZE(stage_sizes); i++) {
		run_rtt(tp, stage_sizes[i], 0, 0);
		if (tracefs_start())
			return 1;
		stage_rounds = STAGE_ROUNDS;
		run_rtt(tp, stage_sizes[i], 0, 0);
		stage_rounds = 0;
		tracefs_stop();
		snprintf(tag, sizeof(tag), "client-%u", stage_sizes[i]);
		if (tracefs_dump(stdout, tag) < 0)
			return 1;
	}
	quit_server(tp);
	return 0;
}

/* The server of stages_client(): AF_IVSHMEM only, no network needed. */
static int stages_server(void)
{
	const enum kind kinds[] = { K_IVSHMEM };
	int lfd;

	lfd = ivshmem_listen(BENCH_PORT, MAX_CONNS);
	if (lfd < 0)
		die("AF_IVSHMEM listen");
	return server(&lfd, kinds, 1);
}

/* dev_shm in one guest: the server in a child process, on peer 1. */
static int one_guest_run(void)
{
	static const struct transport tps[] = {
		{ "af_ivshmem", K_IVSHMEM, true },
		{ "af_unix", K_UNIX, false },
	};
	const enum kind kinds[] = { K_IVSHMEM, K_UNIX };
	int lfd[2], status;
	pid_t pid;

	lfd[0] = ivshm_listen_on(af, BENCH_PORT, 2, MAX_CONNS);
	if (lfd[0] < 0)
		die("AF_IVSHMEM listen on ivshm1");
	lfd[1] = listen_unix();
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		die("fork");
	if (!pid) {
		/* The client's end is the run's end, however it comes. */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() == 1)
			_exit(1);
		_exit(server(lfd, kinds, 2));
	}
	close(lfd[0]);
	close(lfd[1]);
	client(tps, 2);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "net_bench: the server process failed\n");
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct transport doorbell[] = {
		{ "af_ivshmem-doorbell", K_IVSHMEM, true },
		{ "tcp-virtio", K_TCP, false },
	};
	static const struct transport plain[] = {
		{ "af_ivshmem-plain", K_IVSHMEM, true },
	};
	const char *mode = argc == 2 ? argv[1] : "";

	/* A line at a time, so the runner can show progress as it comes. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	bench_ms = ivshm_cmdline_ull("bench_ms", 1000);
	warmup_ms = ivshm_cmdline_ull("bench_warmup_ms", 2000);
	reps = ivshm_cmdline_ull("bench_reps", 3);
	busy_us = ivshm_cmdline_ull("bench_busy_us", 1000);
	if (!bench_ms || !reps) {
		fprintf(stderr, "net_bench: ivshm.bench_ms and ivshm.bench_reps must be positive\n");
		return 2;
	}
	if (busy_us > INT32_MAX) {
		fprintf(stderr, "net_bench: ivshm.bench_busy_us is too large\n");
		return 2;
	}
	af = ivshm_family();
	if (af < 0) {
		fprintf(stderr, "net_bench: af_ivshmem is not loaded\n");
		return 1;
	}
	setup = "two-guests";
	if (!strcmp(mode, "one-guest")) {
		setup = "one-guest";
		one_guest = true;
		return one_guest_run();
	}
	if (!strcmp(mode, "server")) {
		const enum kind kinds[] = { K_IVSHMEM, K_TCP };
		int lfd[2];

		lfd[0] = ivshmem_listen(BENCH_PORT, MAX_CONNS);
		if (lfd[0] < 0)
			die("AF_IVSHMEM listen");
		lfd[1] = listen_tcp();
		return server(lfd, kinds, 2);
	}
	if (!strcmp(mode, "client-doorbell"))
		return client(doorbell, ARRAY_SIZE(doorbell));
	if (!strcmp(mode, "client-plain"))
		return client(plain, ARRAY_SIZE(plain));
	if (!strcmp(mode, "stages-server"))
		return stages_server();
	if (!strcmp(mode, "stages-client"))
		return stages_client(&doorbell[0]);
	fprintf(stderr, "usage: net_bench one-guest|server|client-doorbell|client-plain|stages-server|stages-client\n");
	return 2;
}
