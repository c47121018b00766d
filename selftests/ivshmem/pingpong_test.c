// SPDX-License-Identifier: GPL-2.0
/*
 * Wakeups on the data path: round trips that must never stall (a lost
 * wakeup shows as a round that does not come back), and a flood of
 * doorbells that must cost the guest bounded work.
 *
 * Usage: pingpong_test          dev_shm, one guest: an echo process on
 *                               virtual peer 1 (ivshm1), the tests on peer 0
 *        pingpong_test serve    across guests: the echo side, which also
 *                               floods the other guest when asked to
 *        pingpong_test remote   across guests: the tests
 *
 * Round trips: 20000 through dev_shm (ivshm.rounds= on the kernel command
 * line sets another number: the runner's pingpong placement asks for
 * 10^6), 20000 between doorbell guests and 5000 between plain guests
 * (polled, slower under TCG); every record
 * carries its round number and comes back whole. Each round must finish
 * within ROUND_LIMIT_MS, far beyond any round trip here even on a loaded
 * host, and far below "forever" (nothing but the doorbell wakes a reader
 * that waits for a record, so a lost wakeup is a round that never comes
 * back); with doorbells, the doorbell counters must show that the
 * rounds were carried by doorbells, not by some poll that would hide a
 * lost wakeup. With SO_BUSY_POLL on both ends a record that finds its
 * reader spinning needs no doorbell, and a signal or the peer's close
 * still ends a spin.
 *
 * Moderation (napi.c): a single record waiting, however large, is a
 * request or an answer and starts no bulk period, so round trips of 16
 * and 64 KiB records keep the doorbell; a reader that lags behind its
 * sender by more than one record, with at least coalesce_bulk bytes
 * waiting, does start one. The echo side also listens on FIXED_PORT,
 * whose rings are never resized, for these two tests.
 *
 * How fast the rounds go, and how many doorbells a loaded host still
 * costs a busy poller, are figures for the benchmarks (make bench); the
 * tests print them and assert only what holds whatever the load.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/ivshmem.h>

#include "kselftest_harness.h"
#include "ivshm_test.h"

#define PP_PORT		7100
#define FIXED_PORT	7101		/* the echo side, on rings of FIXED_RING */
#define FIXED_SNDBUF	(64 << 10)	/* SO_SNDBUF, which the kernel doubles */
#define FIXED_RING	(128 << 10)	/* into a ring that is never resized */
#define ECHO_MAX	FIXED_RING	/* > any record on such a ring */
#define ROUND_LIMIT_MS	10000
#define FLOOD_MS	8000		/* > 2 * SLEEP_LATE_MS and the sleeps */
#define LOCAL_ROUNDS	20000
#define DOORBELL_ROUNDS	20000
#define PLAIN_ROUNDS	5000
#define SLEEPS		50
#define SLEEP_MS	10
#define SLEEP_LATE_MS	3000		/* a 10 ms sleep, under the flood */
#define BUSY_US		200000		/* a spin outlasts any leg here, loaded or not */
#define BUSY_ROUNDS	2000
#define BUSY_PAUSE_US	2000		/* before each record: readers are back in recv */
#define BUSY_LONG_US	60000000	/* a budget no test may wait out */
#define SPIN_END_MS	20000		/* a signal or close ends a spin before this */
#define LARGE_ROUNDS	200		/* of each large record size */
#define BURST_RECORDS	4		/* a lagging reader's: see its test */
#define BURST_LEN	5120

static int af;
static bool remote;		/* across guests (else dev_shm in one guest) */
static unsigned int peer_vm;	/* where the echo side is */

static struct sockaddr_ivshmem addr(unsigned int vm, unsigned int port,
				    unsigned int dev)
{
	return ivshm_addr(af, vm, port, dev);
}

static void set_rcvtimeo(int fd, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int set_busy_poll(int fd, int us)
{
	return setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &us, sizeof(us));
}

static bool doorbell_mode(void)
{
	char mode[16];

	return !ivshm_dev_attr("ivshm0", "info", "mode", mode, sizeof(mode)) &&
	       !strcmp(mode, "doorbell");
}

/* Doorbells both ends rang: with dev_shm both ends are here. */
static long long rings(void)
{
	long long r = ivshm_dev_attr_ll("ivshm0", "doorbells", "rings_sent");

	if (!remote)
		r += ivshm_dev_attr_ll("ivshm1", "doorbells", "rings_sent");
	return r;
}

/* Record @seq of @len bytes: its number, then a pattern of its own. */
static void fill_record(unsigned char *buf, size_t len, unsigned int seq)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (unsigned char)(seq * 31 + i);
	if (len >= sizeof(seq))
		memcpy(buf, &seq, sizeof(seq));
}

/* ---- the echo side ---- */

/*
 * Ring @vm's vectors as fast as the kernel lets us, for @ms. A flood that
 * cannot start says why here; the flooded side fails on seeing none.
 */
static void flood_peer(unsigned int vm, unsigned int ms)
{
	uint64_t end = ivshm_now_ms() + ms;
	char cmd[48];
	unsigned int v;
	int ret;

	while (ivshm_now_ms() < end)
		for (v = 0; v < 2; v++) {
			snprintf(cmd, sizeof(cmd), "%u %u 20000", vm, v);
			ret = ivshm_write_file(IVSHM_DEBUGFS "/ivshm0/ring",
					       cmd);
			if (ret) {
				fprintf(stderr, "# flood of VM %u: %s\n", vm,
					strerror(-ret));
				return;
			}
		}
}

struct sock_counts {
	long long records, rang, suppressed;
	int found;
};

static void tx_counts(void *arg, unsigned int dev, bool ours,
		      const char *line)
{
	struct sock_counts *c = arg;
	const char *p = strstr(line, " records ");
	unsigned int ch;
	long long b, notifies;
	char dir[8];

	(void)dev;
	if (ours && sscanf(line, "chan %u %7s", &ch, dir) == 2 &&
	    !strcmp(dir, "tx") && p &&
	    sscanf(p, " records %lld bytes %lld notifies %lld rings %lld suppressed %lld",
		   &c->records, &b, &notifies, &c->rang, &c->suppressed) == 5)
		c->found++;
}

/*
 * The counters of the connection @fd is one end of, as this end's sender:
 * records it sent, and of those, how many rang a doorbell and how many
 * found the reader not waiting for one (debugfs channels); 0 or -1.
 */
static int sock_counters(int fd, long long *records, long long *rang,
			 long long *suppressed)
{
	struct sock_counts c = { 0 };
	struct ivshm_conn_ends e;

	if (ivshm_conn_ends(fd, &e))
		return -1;
	ivshm_conn_channels(&e, tx_counts, &c);
	if (c.found != 1)
		return -1;
	*records = c.records;
	*rang = c.rang;
	*suppressed = c.suppressed;
	return 0;
}

/* Polls that kept the data doorbell disarmed, on every device here. */
static long long moderated_here(void)
{
	long long m = 0, v;
	char name[16];
	unsigned int d;

	for (d = 0; d < 8; d++) {
		snprintf(name, sizeof(name), "ivshm%u", d);
		v = ivshm_dev_attr_ll(name, "doorbells", "moderated_polls");
		if (v > 0)
			m += v;
	}
	return m;
}

/*
 * "burst N LEN": say "ready"; once told "go", send N records of LEN bytes
 * (fill_record()), all but the last with MSG_MORE, so that they are
 * published together (see lagging_reader_starts_bulk_period). 0 or -1.
 */
static int send_burst(int fd, unsigned char *buf, unsigned int count,
		      unsigned int len)
{
	unsigned int i;
	ssize_t n;

	if (!count || len > ECHO_MAX ||
	    send(fd, "ready", 5, MSG_NOSIGNAL) != 5)
		return -1;
	n = recv(fd, buf, ECHO_MAX, 0);
	if (n != 2 || memcmp(buf, "go", 2))
		return -1;
	for (i = 0; i < count; i++) {
		fill_record(buf, len, i);
		if (send(fd, buf, len,
			 MSG_NOSIGNAL | (i + 1 < count ? MSG_MORE : 0)) !=
		    (ssize_t)len)
			return -1;
	}
	return 0;
}

/* Serve one connection: its first record says how. */
static int serve_one(int fd)
{
	static unsigned char buf[ECHO_MAX];
	unsigned int vm, ms, us, pause_us = 0, count, len;
	pid_t flooder = -1;
	ssize_t n;

	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;	/* a look, or a test that gave up */
	buf[n] = 0;
	if (!strcmp((char *)buf, "quit"))
		return 1;
	if (sscanf((char *)buf, "busy %u %u", &us, &pause_us) >= 1 &&
	    set_busy_poll(fd, (int)us)) {
		perror("pingpong_test: SO_BUSY_POLL");
		return 0;
	}
	if (sscanf((char *)buf, "burst %u %u", &count, &len) == 2 &&
	    send_burst(fd, buf, count, len)) {
		fprintf(stderr, "pingpong_test: the burst was not sent\n");
		return 0;
	}
	if (sscanf((char *)buf, "flood %u %u", &vm, &ms) == 2) {
		flooder = fork();
		if (!flooder) {
			flood_peer(vm, ms);
			_exit(0);
		}
	}
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) {
		long long recs, rang, supp;

		if (n == 5 && !memcmp(buf, "stats", 5)) {
			/* Our end's counters, for a test of busy polling. */
			if (sock_counters(fd, &recs, &rang, &supp))
				recs = rang = supp = -1;
			n = snprintf((char *)buf, sizeof(buf), "%lld %lld %lld",
				     recs, rang, supp);
		} else if (n == 9 && !memcmp(buf, "moderated", 9)) {
			/* Our moderated polls, for a test across guests. */
			n = snprintf((char *)buf, sizeof(buf), "%lld",
				     moderated_here());
		} else if (pause_us) {
			usleep(pause_us);
		}
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	}
	if (flooder > 0)
		waitpid(flooder, NULL, 0);
	return 0;
}

/* A listener on @port of device @dev; with @sndbuf, rings of that size. */
static int listen_on(unsigned int port, unsigned int dev, int sndbuf)
{
	struct sockaddr_ivshmem a = addr(IVSHMEM_VM_ANY, port, dev);
	int lfd = socket(af, SOCK_SEQPACKET, 0);

	if (lfd < 0)
		return -1;
	if ((sndbuf && setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
				  sizeof(sndbuf))) ||
	    bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 8)) {
		close(lfd);
		return -1;
	}
	return lfd;
}

/*
 * Echo whatever connects to PP_PORT on device @dev, or to FIXED_PORT (rings
 * of FIXED_RING that are never resized), one connection at a time, until
 * told to quit. FIXED_PORT listens first: once PP_PORT answers, both do.
 */
static int serve(unsigned int dev)
{
	struct pollfd pfd[2] = {
		{ .fd = listen_on(FIXED_PORT, dev, FIXED_SNDBUF),
		  .events = POLLIN },
		{ .fd = -1, .events = POLLIN },
	};
	int fd, i, ret = 0;

	if (pfd[0].fd >= 0)
		pfd[1].fd = listen_on(PP_PORT, dev, 0);
	if (pfd[0].fd < 0 || pfd[1].fd < 0) {
		perror("pingpong_test: listen");
		return 1;
	}
	while (!ret) {
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("pingpong_test: poll");
			return 1;
		}
		for (i = 0; i < 2 && !ret; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			fd = accept(pfd[i].fd, NULL, NULL);
			if (fd < 0) {
				perror("pingpong_test: accept");
				return 1;
			}
			ret = serve_one(fd);
			close(fd);
		}
	}
	close(pfd[0].fd);
	close(pfd[1].fd);
	return ret < 0;
}

/* ---- the testing side ---- */

/*
 * A connection to the echo side on @port, its first record @hello sent;
 * with @sndbuf, our ring of that size.
 */
static int connect_port(unsigned int port, int sndbuf, const char *hello)
{
	struct sockaddr_ivshmem a = addr(peer_vm, port,
					 remote ? IVSHMEM_DEV_ANY : 1);
	uint64_t end = ivshm_now_ms() + 60000;
	int fd;

	do {
		fd = socket(af, SOCK_SEQPACKET, 0);
		if (fd < 0)
			return -1;
		if (sndbuf && setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf,
					 sizeof(sndbuf))) {
			close(fd);
			return -1;
		}
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
			break;
		close(fd);
		fd = -1;
		ivshm_sleep_ms(200);
	} while (ivshm_now_ms() < end);
	if (fd < 0)
		return -1;
	if (send(fd, hello, strlen(hello), 0) != (ssize_t)strlen(hello)) {
		close(fd);
		return -1;
	}
	set_rcvtimeo(fd, ROUND_LIMIT_MS);
	return fd;
}

static int connect_echo(const char *hello)
{
	return connect_port(PP_PORT, 0, hello);
}

/*
 * The same on rings of FIXED_RING both ways, which rebalancing leaves
 * alone: no MOVED record ever waits in front of a record.
 */
static int connect_fixed(const char *hello)
{
	return connect_port(FIXED_PORT, FIXED_SNDBUF, hello);
}

struct rounds {
	unsigned int done;
	uint64_t slowest_ms;
	uint64_t total_ms;
	int err;		/* errno of the round that failed, 0 */
};

/* A pause before each record round_trips() sends, in microseconds. */
static unsigned int send_pause_us;

/* @n round trips of a 64 B record carrying its round number. */
static void round_trips(int fd, unsigned int n, struct rounds *r)
{
	uint64_t start = ivshm_now_ms();
	unsigned char buf[64];

	memset(r, 0, sizeof(*r));
	memset(buf, 0x5a, sizeof(buf));
	for (r->done = 0; r->done < n; r->done++) {
		uint64_t t0, dt;
		unsigned int got;
		ssize_t k;

		if (send_pause_us)
			usleep(send_pause_us);
		t0 = ivshm_now_ms();

		memcpy(buf, &r->done, sizeof(r->done));
		if (send(fd, buf, sizeof(buf), 0) != sizeof(buf)) {
			r->err = errno;
			break;
		}
		k = recv(fd, buf, sizeof(buf), 0);
		if (k != sizeof(buf)) {
			r->err = k < 0 ? errno : EPROTO;
			break;
		}
		memcpy(&got, buf, sizeof(got));
		if (got != r->done) {
			r->err = EILSEQ;
			break;
		}
		dt = ivshm_now_ms() - t0;
		if (dt > r->slowest_ms)
			r->slowest_ms = dt;
	}
	r->total_ms = ivshm_now_ms() - start;
}

static unsigned int rounds_wanted(void)
{
	if (!remote)
		return (unsigned int)ivshm_cmdline_ull("rounds", LOCAL_ROUNDS);
	return doorbell_mode() ? DOORBELL_ROUNDS : PLAIN_ROUNDS;
}

/* No state: a fixture only for the harness's per-test timeouts. */
FIXTURE(pp) {
	int unused;
};

FIXTURE_SETUP(pp)
{
}

FIXTURE_TEARDOWN(pp)
{
}

/* Polls that kept the data doorbell disarmed (bulk periods), here. */
static long long moderated(void)
{
	long long m = ivshm_dev_attr_ll("ivshm0", "doorbells",
					"moderated_polls");

	if (!remote)
		m += ivshm_dev_attr_ll("ivshm1", "doorbells",
				       "moderated_polls");
	return m;
}

TEST_F_TIMEOUT(pp, round_trips_lose_no_wakeup, 3600)
{
	unsigned int n = rounds_wanted();
	long long r0 = rings(), r1, m0 = moderated(), m1;
	struct rounds r;
	int fd = connect_echo("echo");

	ASSERT_LE(0, fd);
	round_trips(fd, n, &r);
	r1 = rings();
	m1 = moderated();
	close(fd);
	TH_LOG("%u round trips in %llu ms (%.1f us each), slowest %llu ms, %lld doorbells (%lld rung here; %lld then %lld received on vectors 0 and 1)",
	       r.done, (unsigned long long)r.total_ms,
	       r.done ? r.total_ms * 1000.0 / r.done : 0.0,
	       (unsigned long long)r.slowest_ms, r1 - r0,
	       ivshm_dev_attr_ll("ivshm0", "doorbells", "rings_sent"),
	       ivshm_doorbells("ivshm0", 0), ivshm_doorbells("ivshm0", 1));
	ASSERT_EQ(0, r.err) TH_LOG("round %u failed: %s (a round longer than %d ms is a lost wakeup)",
				   r.done, strerror(r.err), ROUND_LIMIT_MS);
	ASSERT_EQ(n, r.done);
	if (doorbell_mode() || !remote) {
		/*
		 * Small records never start a bulk period, so no poll
		 * carried them: doorbells did, and the arm-and-check path ran
		 * for every one. Through dev_shm, where both ends count, both
		 * hops of every round ring; across guests, where the far
		 * end's rings are not seen, at least one hop of two does.
		 */
		EXPECT_EQ(0, m1 - m0);
		ASSERT_LE((long long)(remote ? n / 2 : n), r1 - r0);
	}
}

/* The echo side's moderated polls (moderated_here() there), or -1. */
static long long echo_moderated(int fd)
{
	char buf[32], *end;
	long long m;
	ssize_t n;

	if (send(fd, "moderated", 9, 0) != 9)
		return -1;
	n = recv(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	m = strtoll(buf, &end, 10);
	return end == buf || *end ? -1 : m;
}

/*
 * @n round trips of a @len B record (fill_record(), its round number
 * first): each must come back whole, that record and no other.
 */
static void large_round_trips(int fd, unsigned int n, size_t len,
			      struct rounds *r)
{
	unsigned char *out = malloc(len), *in = malloc(len + 1);
	uint64_t start = ivshm_now_ms();

	memset(r, 0, sizeof(*r));
	if (!out || !in) {
		r->err = ENOMEM;
		goto out;
	}
	for (r->done = 0; r->done < n; r->done++) {
		uint64_t t0 = ivshm_now_ms(), dt;
		ssize_t k;

		fill_record(out, len, r->done);
		if (send(fd, out, len, 0) != (ssize_t)len) {
			r->err = errno;
			break;
		}
		/* One byte more: a longer record would show. */
		k = recv(fd, in, len + 1, 0);
		if (k != (ssize_t)len) {
			r->err = k < 0 ? errno : EPROTO;
			break;
		}
		if (memcmp(in, out, len)) {
			r->err = EILSEQ;
			break;
		}
		dt = ivshm_now_ms() - t0;
		if (dt > r->slowest_ms)
			r->slowest_ms = dt;
	}
out:
	r->total_ms = ivshm_now_ms() - start;
	free(out);
	free(in);
}

/* Our largest record: FIXED_RING less a header, on a connect_fixed() ring. */
static int max_record(int fd)
{
	socklen_t len = sizeof(int);
	int max = -1;

	if (getsockopt(fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &max, &len))
		return -1;
	return max;
}

/*
 * A single record waiting, however large, is a request or an answer: it
 * starts no bulk period, or its answer would wait for the moderation
 * timer (coalesce_us) instead of the doorbell, each way (napi.c). So
 * LARGE_ROUNDS round trips of 16 KiB records, then as many of 64 KiB,
 * each at least coalesce_bulk (16 KiB by default) on its own, all come
 * back whole and in order, and no poll kept the doorbell disarmed:
 * through dev_shm both ends count, across guests the echo side reports
 * its own. A reader never has more than one record waiting here: the
 * echo side answers once per request, and on rings that are never
 * resized (connect_fixed()) no MOVED record waits in front of an answer.
 * Moderation that counted bytes alone, as it once did, fails this: a
 * reader asleep when its answer comes is woken by a poll that finds at
 * least 16 KiB waiting. lagging_reader_starts_bulk_period shows that
 * moderation is on at all.
 */
TEST_F_TIMEOUT(pp, large_round_trips_start_no_bulk_period, 600)
{
	static const size_t lens[] = { 16 << 10, 64 << 10 };
	long long m0, m1, e0 = 0, e1 = 0;
	struct rounds r;
	unsigned int i;
	int fd = connect_fixed("echo");

	ASSERT_LE(0, fd);
	ASSERT_EQ(FIXED_RING - 8, max_record(fd));
	m0 = moderated();
	if (remote) {
		e0 = echo_moderated(fd);
		ASSERT_LE(0, e0);
	}
	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		large_round_trips(fd, LARGE_ROUNDS, lens[i], &r);
		TH_LOG("%u round trips of %zu B in %llu ms (%.1f us each), slowest %llu ms",
		       r.done, lens[i], (unsigned long long)r.total_ms,
		       r.done ? r.total_ms * 1000.0 / r.done : 0.0,
		       (unsigned long long)r.slowest_ms);
		ASSERT_EQ(0, r.err) TH_LOG("%zu B, round %u: %s", lens[i],
					   r.done, strerror(r.err));
		ASSERT_EQ(LARGE_ROUNDS, r.done);
	}
	m1 = moderated();
	if (remote) {
		e1 = echo_moderated(fd);
		ASSERT_LE(0, e1);
	}
	close(fd);
	TH_LOG("moderated polls: %lld here, %lld on the echo side",
	       m1 - m0, remote ? e1 - e0 : 0);
	if (doorbell_mode() || !remote) {
		EXPECT_EQ(0, m1 - m0);
		EXPECT_EQ(0, e1 - e0);
	}
}

/*
 * The counterpart, so that the test above cannot pass with moderation off
 * or broken: a reader that lags behind its sender by more than one record,
 * with at least coalesce_bulk bytes waiting, starts a bulk period.
 *
 * Deterministically, loaded host or not:
 *  - Our reader asks for a notification (a recv that finds nothing sets
 *    IVSHM_RXF_WAIT and rx_event at its tail, and both stay until a recv
 *    finds a record) before it tells the echo side to go, and it reads
 *    nothing more until the poll has counted; so the publication of the
 *    burst must notify, and the poll that takes the notification's bit
 *    finds every record of it still waiting, however late it runs.
 *  - The echo side queues BURST_RECORDS records of BURST_LEN bytes with
 *    MSG_MORE but the last, whose send publishes them all at once, with
 *    one notification: a queue publishes itself early only once it holds
 *    IVSHM_TX_BATCH (16 KiB) on a ring of 64 KiB or more (ring.c,
 *    ivshm_tx_queue()), and the three queued records, 3 * 5128 B with
 *    their headers, stay below that. The ring is FIXED_RING, never
 *    resized: nothing else is published in between.
 *  - So that poll finds four records waiting, 20512 B with their
 *    headers, more than coalesce_bulk (16384 by default), and nothing
 *    else notifies our device meanwhile to cut it short before it
 *    decides: it starts a bulk period and counts a moderated poll.
 * Only the wait for that poll is bounded (ROUND_LIMIT_MS, as for a round
 * trip): it fails only if no such poll comes.
 */
TEST_F_TIMEOUT(pp, lagging_reader_starts_bulk_period, 120)
{
	unsigned char buf[BURST_LEN + 1], want[BURST_LEN];
	long long m0, m1;
	uint64_t t0, waited;
	char hello[48];
	unsigned int i;
	ssize_t n;
	int fd, err;

	if (remote && !doorbell_mode())
		SKIP(return, "a polled device has no bulk periods");
	snprintf(hello, sizeof(hello), "burst %d %d", BURST_RECORDS,
		 BURST_LEN);
	fd = connect_fixed(hello);
	ASSERT_LE(0, fd);
	/* The echo side's ring to us is attached and the echo side waits. */
	n = recv(fd, buf, sizeof(buf), 0);
	ASSERT_EQ(5, n) TH_LOG("recv: %s", n < 0 ? strerror(errno) : "-");
	ASSERT_EQ(0, memcmp(buf, "ready", 5));
	/* Nothing waits: this asks for a notification and returns. */
	n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	err = errno;
	ASSERT_EQ(-1, n);
	ASSERT_EQ(EAGAIN, err);
	m0 = moderated();
	ASSERT_EQ(2, send(fd, "go", 2, 0));
	t0 = ivshm_now_ms();
	do {
		ivshm_sleep_ms(10);
		m1 = moderated();
	} while (m1 == m0 && ivshm_now_ms() < t0 + ROUND_LIMIT_MS);
	waited = ivshm_now_ms() - t0;
	for (i = 0; i < BURST_RECORDS; i++) {
		fill_record(want, BURST_LEN, i);
		n = recv(fd, buf, sizeof(buf), 0);
		ASSERT_EQ(BURST_LEN, n) TH_LOG("record %u: %s", i,
					       n < 0 ? strerror(errno) : "-");
		ASSERT_EQ(0, memcmp(buf, want, BURST_LEN))
			TH_LOG("record %u is not the one sent", i);
	}
	close(fd);
	TH_LOG("%d records of %d B at once: %lld moderated polls after %llu ms",
	       BURST_RECORDS, BURST_LEN, m1 - m0,
	       (unsigned long long)waited);
	ASSERT_LT(m0, m1) TH_LOG("no bulk period within %d ms", ROUND_LIMIT_MS);
}

/*
 * Busy polling: readers that spin (SO_BUSY_POLL) on both ends. Every record
 * still comes back whole and in order. A reader that spins has not asked
 * for a doorbell, so the writer that finds it so rings none (the record
 * is counted "suppressed"); a reader asks for one only once its spin ended
 * without a record: the budget ran out, it was to give up the CPU, or a
 * signal came. Without busy polling every reader asks before it sleeps,
 * and (see above) at least half the hops of the rounds ring.
 *
 * The budget is far longer than any leg, so that a spin runs out only if
 * the writer's vCPU stood still that long; on a loaded host a spinner is
 * still told to give up its CPU now and then (a kworker wakes on it), and
 * that hop rings, as it should.
 *
 * A record also finds no request for a doorbell when its reader has not
 * come back to recv() yet, spinning or not: a reader that does not spin
 * would look like one that does if the writer were quicker. So each
 * writer waits BUSY_PAUSE_US before each record (far less than the spin
 * budget, far more than the way back into recv()): a reader that spins is
 * spinning then, one that does not has asked for a doorbell and sleeps.
 * And the hops are counted per direction, each by its writer's own
 * connection counters (debugfs channels; the echo side reports its own
 * when asked, also from the other guest), so that busy polling that works
 * on only one end fails: in each direction more than half of the records
 * found their reader spinning and fewer than half rang, where without
 * busy polling nearly all ring. Load only makes a spinner ring more
 * rarely than that margin, or a sleeper look like a spinner (a pass that
 * would be wrong, never a failure that is).
 */
TEST_F_TIMEOUT(pp, busy_poll_round_trips_ring_no_doorbell, 600)
{
	long long cr, crang, csupp, er = -1, erang = -1, esupp = -1;
	struct rounds r;
	char hello[48], stats[64];
	ssize_t n;
	int fd;

	snprintf(hello, sizeof(hello), "busy %d %d", BUSY_US, BUSY_PAUSE_US);
	fd = connect_echo(hello);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, set_busy_poll(fd, BUSY_US))
		TH_LOG("SO_BUSY_POLL: %s", strerror(errno));
	/* The echo side spins too once it has answered once. */
	round_trips(fd, 1, &r);
	ASSERT_EQ(0, r.err);
	send_pause_us = BUSY_PAUSE_US;
	round_trips(fd, BUSY_ROUNDS, &r);
	send_pause_us = 0;
	ASSERT_EQ(0, r.err) TH_LOG("round %u failed: %s", r.done,
				   strerror(r.err));
	ASSERT_EQ(BUSY_ROUNDS, r.done);
	/* Ours (the hello, the first round and BUSY_ROUNDS more), then the
	 * echo side's (BUSY_ROUNDS + 1 answers), read before it answers.
	 */
	ASSERT_EQ(0, sock_counters(fd, &cr, &crang, &csupp));
	ASSERT_EQ(5, send(fd, "stats", 5, 0));
	n = recv(fd, stats, sizeof(stats) - 1, 0);
	ASSERT_LT(0, n);
	stats[n] = 0;
	ASSERT_EQ(3, sscanf(stats, "%lld %lld %lld", &er, &erang, &esupp));
	close(fd);
	TH_LOG("%u round trips with SO_BUSY_POLL %d us and %d us before each record in %llu ms (%.1f us each), slowest %llu ms; to the echo side %lld records, %lld found it spinning, %lld rang; back %lld records, %lld found us spinning, %lld rang",
	       r.done, BUSY_US, BUSY_PAUSE_US,
	       (unsigned long long)r.total_ms,
	       r.done ? r.total_ms * 1000.0 / r.done : 0.0,
	       (unsigned long long)r.slowest_ms, cr, csupp, crang,
	       er, esupp, erang);
	ASSERT_LE(0, er) TH_LOG("the echo side found no counters");
	ASSERT_LE(BUSY_ROUNDS + 1, cr);
	ASSERT_LE(BUSY_ROUNDS + 1, er);
	if (doorbell_mode() || !remote) {
		/* In each direction most records found their reader
		 * spinning...
		 */
		ASSERT_LT(cr / 2, csupp)
			TH_LOG("the echo side did not keep spinning");
		ASSERT_LT(er / 2, esupp)
			TH_LOG("our reader did not keep spinning");
		/* ... and rang nothing. */
		ASSERT_GT(cr / 2, crang)
			TH_LOG("the echo side, spinning, was rung");
		ASSERT_GT(er / 2, erang)
			TH_LOG("our reader, spinning, was rung");
	}
}

/* An echo connection whose reads spin for up to BUSY_LONG_US. */
static int connect_spinning(void)
{
	int fd = connect_echo("echo");

	if (fd < 0)
		return -1;
	set_rcvtimeo(fd, 2 * SPIN_END_MS);
	if (set_busy_poll(fd, BUSY_LONG_US)) {
		perror("pingpong_test: SO_BUSY_POLL");
		close(fd);
		return -1;
	}
	return fd;
}

static void on_signal(int sig)
{
	(void)sig;
}

/* A spinning reader is a reader: a signal interrupts it at once (EINTR),
 * not after its budget, and the connection loses nothing.
 */
TEST_F_TIMEOUT(pp, busy_poll_ends_on_signal, 120)
{
	struct sigaction sa = { .sa_handler = on_signal };	/* no restart */
	unsigned char buf[64];
	uint64_t t0, dt;
	struct rounds r;
	int fd, err, st;
	pid_t kicker;
	ssize_t n;

	fd = connect_spinning();
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sigaction(SIGUSR1, &sa, NULL));
	t0 = ivshm_now_ms();
	kicker = fork();
	ASSERT_LE(0, kicker);
	if (!kicker) {
		ivshm_sleep_ms(200);
		kill(getppid(), SIGUSR1);
		_exit(0);
	}
	n = recv(fd, buf, sizeof(buf), 0);
	err = errno;
	dt = ivshm_now_ms() - t0;
	ASSERT_EQ(kicker, waitpid(kicker, &st, 0));
	TH_LOG("recv returned %zd (%s) after %llu ms", n,
	       n < 0 ? strerror(err) : "-", (unsigned long long)dt);
	ASSERT_EQ(-1, n);
	ASSERT_EQ(EINTR, err);
	ASSERT_GT(SPIN_END_MS, dt) TH_LOG("the spin outlived the signal");
	round_trips(fd, 10, &r);
	ASSERT_EQ(0, r.err) TH_LOG("after the signal: %s", strerror(r.err));
	close(fd);
}

/* The peer's close ends a spin: the reader gets the last record, then end
 * of file, long before its budget runs out.
 */
TEST_F_TIMEOUT(pp, busy_poll_sees_close, 120)
{
	unsigned char buf[64];
	uint64_t t0, dt;
	ssize_t n;
	int fd;

	fd = connect_spinning();
	ASSERT_LE(0, fd);
	memset(buf, 0x3c, sizeof(buf));
	ASSERT_EQ((ssize_t)sizeof(buf), send(fd, buf, sizeof(buf), 0));
	/* The echo side answers, reads end of file and closes. */
	ASSERT_EQ(0, shutdown(fd, SHUT_WR));
	t0 = ivshm_now_ms();
	memset(buf, 0, sizeof(buf));
	ASSERT_EQ((ssize_t)sizeof(buf), recv(fd, buf, sizeof(buf), 0));
	ASSERT_EQ(0x3c, buf[0]);
	ASSERT_EQ(0x3c, buf[sizeof(buf) - 1]);
	n = recv(fd, buf, sizeof(buf), 0);
	dt = ivshm_now_ms() - t0;
	TH_LOG("end of file (%zd) after %llu ms", n, (unsigned long long)dt);
	ASSERT_EQ(0, n) TH_LOG("recv: %s", strerror(errno));
	ASSERT_GT(SPIN_END_MS, dt) TH_LOG("the spin outlived the close");
	close(fd);
}

/*
 * The counters of our connection in debugfs "channels": the line of the
 * side that sends (@dir "tx") or receives ("rx"); records and bytes.
 */
static int chan_counters(const char *dir, long long *records,
			 long long *bytes)
{
	char line[1024], want[8];
	int found = 0;
	FILE *f = fopen(IVSHM_DEBUGFS "/ivshm0/channels", "r");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), " %s ", dir);
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, " records ");

		if (!strstr(line, want) || !p ||
		    sscanf(p, " records %lld bytes %lld", records, bytes) != 2)
			continue;
		found++;
	}
	fclose(f);
	return found == 1 ? 0 : -1;	/* ours is the only connection */
}

/* The device's counters (as debugfs shows them; netlink and "ivshm -s
 * dev" report the same) are our records and bytes: exactly what we sent
 * and got; and so are our connection's own counters.
 */
TEST_F(pp, device_counts_records_and_bytes)
{
	static const char *const names[4] = {
		"tx_records", "tx_bytes", "rx_records", "rx_bytes",
	};
	const long long want[4] = { 100, 6400, 100, 6400 };
	long long before[4], recs, bytes;
	struct rounds r;
	int fd = connect_echo("echo"), i;

	ASSERT_LE(0, fd);
	/* The greeting's record is counted once its round trips start. */
	round_trips(fd, 1, &r);
	ASSERT_EQ(0, r.err);
	for (i = 0; i < 4; i++) {
		before[i] = ivshm_dev_attr_ll("ivshm0", "doorbells", names[i]);
		ASSERT_LE(0, before[i]) TH_LOG("no %s for ivshm0", names[i]);
	}
	round_trips(fd, 100, &r);
	ASSERT_EQ(0, r.err);
	/* The greeting, the first round and 100 more; 64 B each but 4. */
	ASSERT_EQ(0, chan_counters("tx", &recs, &bytes));
	EXPECT_EQ(102, recs);
	EXPECT_EQ(4 + 101 * 64, bytes);
	ASSERT_EQ(0, chan_counters("rx", &recs, &bytes));
	EXPECT_EQ(101, recs);
	EXPECT_EQ(101 * 64, bytes);
	close(fd);
	for (i = 0; i < 4; i++) {
		long long got = ivshm_dev_attr_ll("ivshm0", "doorbells",
						  names[i]) - before[i];

		if (got != want[i])
			TH_LOG("ivshm0 %s: %lld, want %lld", names[i], got,
			       want[i]);
		EXPECT_EQ(want[i], got);
	}
}

struct flood_view {
	long long napi_polls, ctrl_polls, ctrl_floods, doorbells;
};

static void flood_view(struct flood_view *v)
{
	v->napi_polls = ivshm_dev_attr_ll("ivshm0", "doorbells", "napi_polls");
	v->ctrl_polls = ivshm_dev_attr_ll("ivshm0", "doorbells", "ctrl_polls");
	v->ctrl_floods = ivshm_dev_attr_ll("ivshm0", "doorbells",
					   "ctrl_floods");
	v->doorbells = ivshm_doorbells("ivshm0", 0) +
		       ivshm_doorbells("ivshm0", 1);
}

/* Start the flood of our ivshm0: dev_shm peer 2 here, or the echo guest. */
static pid_t start_flood(int *fd)
{
	char hello[64];
	pid_t pid;

	if (remote) {
		long long me = ivshm_dev_attr_ll("ivshm0", "info", "own_id");

		snprintf(hello, sizeof(hello), "flood %lld %d", me, FLOOD_MS);
		*fd = connect_echo(hello);
		return *fd < 0 ? -1 : 0;
	}
	*fd = connect_echo("echo");
	if (*fd < 0)
		return -1;
	pid = fork();
	if (!pid) {
		int ret;

		snprintf(hello, sizeof(hello), "2 0 %d", FLOOD_MS);
		ret = ivshm_write_file(DEVSHM_DEBUGFS "/flood", hello);
		if (ret)
			fprintf(stderr, "# dev_shm flood: %s\n", strerror(-ret));
		_exit(ret ? 1 : 0);
	}
	return pid;
}

/*
 * A doorbell flood (every pending bit set, every vector rung, for
 * FLOOD_MS) costs bounded work: while it runs, records cross and a
 * sleeping process wakes on time. The sleeps start once the flood is seen
 * and must end before it can have ended (it started after t0), so that
 * every one of them is asleep under it; each may be late by a loaded
 * host's scheduling, but not by the flood's length (FLOOD_MS, more than
 * twice SLEEP_LATE_MS).
 */
TEST_F_TIMEOUT(pp, doorbell_flood_costs_bounded_work, 120)
{
	struct flood_view before, during, after, later;
	uint64_t t0, t1, slept_ms, late, late_max = 0, end;
	long long d0, d1;
	struct rounds r, worst = { 0 };
	unsigned int i, rounds = 0;
	pid_t flooder;
	int fd, st = 0;

	if (!doorbell_mode())
		SKIP(return, "a polled device has no doorbells to flood");
	flood_view(&before);
	t0 = ivshm_now_ms();
	flooder = start_flood(&fd);
	ASSERT_LE(0, flooder);

	/* The flood has begun... */
	do {
		ivshm_sleep_ms(10);
		flood_view(&during);
	} while (during.doorbells - before.doorbells < 10 &&
		 ivshm_now_ms() < t0 + FLOOD_MS);
	ASSERT_LE(10, during.doorbells - before.doorbells)
		TH_LOG("no flood seen within %d ms", FLOOD_MS);
	/* ... and a sleeping process wakes on time under it... */
	d0 = during.doorbells;
	t1 = ivshm_now_ms();
	for (i = 0; i < SLEEPS; i++) {
		uint64_t s0 = ivshm_now_ms();

		ivshm_sleep_ms(SLEEP_MS);
		late = ivshm_now_ms() - s0 - SLEEP_MS;
		if (late > late_max)
			late_max = late;
	}
	slept_ms = ivshm_now_ms() - t1;
	flood_view(&during);
	d1 = during.doorbells;
	/* (still there after the last sleep: the flood outlasted them) */
	if (flooder > 0)
		ASSERT_EQ(0, waitpid(flooder, &st, WNOHANG))
			TH_LOG("the flood ended before the sleeps did");
	ASSERT_GT(t0 + FLOOD_MS, ivshm_now_ms())
		TH_LOG("the sleeps took %llu ms: the flood may have ended",
		       (unsigned long long)slept_ms);
	/* ... and records still cross in bounded time. */
	end = t0 + FLOOD_MS - 1000;
	do {
		round_trips(fd, 20, &r);
		ASSERT_EQ(0, r.err) TH_LOG("round %u under the flood: %s",
					   rounds + r.done, strerror(r.err));
		rounds += r.done;
		if (r.slowest_ms > worst.slowest_ms)
			worst.slowest_ms = r.slowest_ms;
	} while (ivshm_now_ms() < end);
	flood_view(&during);

	if (flooder > 0) {
		ASSERT_EQ(flooder, waitpid(flooder, &st, 0));
		ASSERT_TRUE(WIFEXITED(st) && !WEXITSTATUS(st));
	} else if (ivshm_now_ms() < t0 + FLOOD_MS + 1000) {
		ivshm_sleep_ms(t0 + FLOOD_MS + 1000 - ivshm_now_ms());
	}
	TH_LOG("under the flood: %u round trips, slowest %llu ms; %d sleeps of %d ms took %llu ms, the latest %llu ms late, %lld doorbells meanwhile; %lld doorbells, %lld NAPI polls, %lld control runs (%lld cut short)",
	       rounds, (unsigned long long)worst.slowest_ms, SLEEPS, SLEEP_MS,
	       (unsigned long long)slept_ms, (unsigned long long)late_max,
	       d1 - d0, during.doorbells - before.doorbells,
	       during.napi_polls - before.napi_polls,
	       during.ctrl_polls - before.ctrl_polls,
	       during.ctrl_floods - before.ctrl_floods);
	ASSERT_LT(0, rounds);
	/* On time, that is: not held up for the flood's length, which a
	 * loaded host's scheduling alone never comes near.
	 */
	ASSERT_GT(SLEEP_LATE_MS, late_max);
	ASSERT_LT(0, d1 - d0) TH_LOG("no doorbell while the sleeps ran");
	/* It was a flood, and it was recognised as one. */
	ASSERT_LT(remote ? 100 : 1000, during.doorbells - before.doorbells);
	if (!remote)
		ASSERT_LT(0, during.ctrl_floods - before.ctrl_floods);

	/* Once it stops, the device goes quiet and works as before (the
	 * work the flood left queued given time to run, loaded host or not).
	 */
	ivshm_sleep_ms(2000);
	flood_view(&after);
	ivshm_sleep_ms(1000);
	flood_view(&later);
	ASSERT_GE(5, later.napi_polls - after.napi_polls);
	ASSERT_GE(5, later.ctrl_polls - after.ctrl_polls);
	round_trips(fd, 100, &r);
	ASSERT_EQ(0, r.err);
	close(fd);
}

static pid_t echo_pid, main_pid;
static long refs_before;

/*
 * Tell the echo side to quit; with dev_shm, wait for it and check that no
 * socket is left behind. The harness ends the process with exit(), so this
 * runs from atexit().
 */
static void stop_echo(void)
{
	uint64_t end = ivshm_now_ms() + 5000;
	int fd;

	if (getpid() != main_pid)
		return;		/* a test's child */
	fd = connect_echo("quit");
	if (fd >= 0)
		close(fd);
	if (echo_pid <= 0)
		return;
	waitpid(echo_pid, NULL, 0);
	while (ivshm_module_refs("af_ivshmem") >= refs_before &&
	       ivshm_now_ms() < end)
		ivshm_sleep_ms(50);
	if (ivshm_module_refs("af_ivshmem") >= refs_before) {
		fprintf(stderr, "pingpong_test: sockets left behind: module references %ld with the echo up, %ld after every socket closed\n",
			refs_before, ivshm_module_refs("af_ivshmem"));
		_exit(1);
	}
}

/* Across guests: the echo side is the other guest; find it by its port. */
static int find_echo(void)
{
	long long me = ivshm_dev_attr_ll("ivshm0", "info", "own_id");
	uint64_t end = ivshm_now_ms() + 60000;
	unsigned int vm;

	do {
		for (vm = 0; vm < 64; vm++) {
			struct sockaddr_ivshmem a = addr(vm, PP_PORT,
							 IVSHMEM_DEV_ANY);
			int fd, ret;

			if (vm == me)
				continue;
			fd = socket(af, SOCK_SEQPACKET, 0);
			if (fd < 0)
				return -1;
			ret = connect(fd, (struct sockaddr *)&a, sizeof(a));
			/* A connection that says nothing is a look. */
			close(fd);
			if (!ret) {
				peer_vm = vm;
				return 0;
			}
		}
		ivshm_sleep_ms(200);
	} while (ivshm_now_ms() < end);
	return -1;
}

int main(int argc, char **argv)
{
	int fd;

	af = ivshm_family();
	if (af < 0) {
		fprintf(stderr, "pingpong_test: af_ivshmem is not loaded\n");
		return 1;
	}
	if (argc > 1 && !strcmp(argv[1], "serve"))
		return serve(IVSHMEM_DEV_ANY);
	if (argc > 1 && !strcmp(argv[1], "remote")) {
		remote = true;
		if (find_echo()) {
			fprintf(stderr, "pingpong_test: no echo side answers on port %d\n",
				PP_PORT);
			return 1;
		}
	} else {
		/* dev_shm: the echo side on virtual peer 1, device 2. */
		peer_vm = 1;
		echo_pid = fork();
		if (echo_pid < 0)
			return 1;
		if (!echo_pid)
			_exit(serve(2));
		/* Up once it answers; then count its sockets' references. */
		fd = connect_echo("");
		if (fd < 0)
			return 1;
		close(fd);
		refs_before = ivshm_module_refs("af_ivshmem");
	}
	main_pid = getpid();
	atexit(stop_echo);
	return test_harness_run(argc > 1 ? 1 : argc, argv);
}
