// SPDX-License-Identifier: GPL-2.0
/*
 * Channels that follow their traffic: growth under backpressure, idle
 * channels shrinking, a peer dying in the middle of a move, and many
 * connections resized all the time while every record is checked.
 *
 *   rebalance_test bulk     dev_shm with a 4 MiB region: one bulk
 *                           connection beside four idle ones; a peer
 *                           stopping while a move is pending
 *   rebalance_test stress   dev_shm: 64 connections for STRESS_S seconds
 *                           (ivshm.stress_s=, default 60), rebalancing
 *                           every 10 doorbells
 *   rebalance_test serve    the same stress across two guests: this side
 *   rebalance_test remote   accepts (serve) or connects (remote)
 *
 * Every record carries its connection, sequence number, length and a
 * checksum; receivers check each one, so a record lost, duplicated,
 * reordered or damaged by a move fails the test. After each run, once
 * every connection is closed, the region's free space must be its whole
 * data area again, as free_blocks and as the bitmap say.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>

#include "kselftest_harness.h"
#include "ivshm_nl.h"
#include "ivshm_test.h"

/* A guard against hangs, not a time limit (the debug kernel is slow). */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	600

#define STRESS_PORT	7300
#define NCONN		64
#define BULK_REC	65536
#define MAX_REC		(128 * 1024 - 8)

static int af;
static const char *mode = "";

struct rec_hdr {
	uint32_t conn;
	uint32_t seq;
	uint32_t len;
	uint32_t pad;
	uint64_t sum;
};

static int listen_on(unsigned int port, unsigned int dev)
{
	return ivshm_listen_on(af, port, dev, NCONN);
}

static int connect_to(unsigned int vm, unsigned int port, unsigned int dev)
{
	return ivshm_connect_to(af, vm, port, dev);
}

static void set_timeo(int fd, int opt, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

/* Set a parameter (IVSHMEM_PARAM_*) of every device, over netlink. */
static int set_param(int attr, unsigned long v)
{
	return ivshm_nl_set_param(NULL, attr, (uint32_t)v);
}

static uint64_t fill(unsigned char *p, uint32_t len, uint32_t conn,
		     uint32_t seq)
{
	uint64_t s = 0;
	uint32_t i;

	for (i = 0; i < len; i++) {
		p[i] = (unsigned char)(seq * 7 + conn * 3 + i * 13 + (i >> 9));
		s = s * 31 + p[i];
	}
	return s;
}

/* Write record @seq of connection @conn, @len bytes, into @buf. */
static void make_rec(unsigned char *buf, uint32_t conn, uint32_t seq,
		     uint32_t len)
{
	struct rec_hdr h = { .conn = conn, .seq = seq, .len = len };

	h.sum = fill(buf + sizeof(h), len - sizeof(h), conn, seq);
	memcpy(buf, &h, sizeof(h));
}

/* Is @buf, @n bytes, record @seq of @conn? */
static bool check_rec(const unsigned char *buf, ssize_t n, uint32_t conn,
		      uint32_t seq, unsigned char *scratch)
{
	struct rec_hdr h;

	if (n < (ssize_t)sizeof(h))
		return false;
	memcpy(&h, buf, sizeof(h));
	return h.conn == conn && h.seq == seq && h.len == (uint32_t)n &&
	       h.sum == fill(scratch, h.len - sizeof(h), conn, seq) &&
	       !memcmp(scratch, buf + sizeof(h), h.len - sizeof(h));
}

/* One side of a channel as the device's "channels" file shows it. */
struct chan_view {
	unsigned int ring, old, moving, full;
	unsigned long long offset, records;
};

/*
 * Find the line of @dev for the @dir ("tx" or "rx") side of the socket
 * whose local port is @port and whose peer port is @peer_port (0: any).
 */
static int chan_view(const char *dev, const char *dir, unsigned int port,
		     unsigned int peer_port, struct chan_view *v)
{
	char path[128], line[1024], want[64];
	unsigned int ch, lp, pvm, pp;
	int ret = -ENOENT;
	const char *p;
	FILE *f;

	snprintf(path, sizeof(path), IVSHM_DEBUGFS "/%s/channels", dev);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "chan %u %63s port %u peer %u:%u", &ch, want,
			   &lp, &pvm, &pp) != 5)
			continue;
		if (strcmp(want, dir) || lp != port ||
		    (peer_port && pp != peer_port))
			continue;
		p = strstr(line, " ring ");
		if (!p || sscanf(p, " ring %u", &v->ring) != 1)
			continue;
		p = strstr(line, " old ");
		if (!p || sscanf(p, " old %u moving %u full %u", &v->old,
				 &v->moving, &v->full) != 3)
			continue;
		p = strstr(line, " offset ");
		if (!p || sscanf(p, " offset %llu", &v->offset) != 1)
			continue;
		p = strstr(line, " records ");
		if (!p || sscanf(p, " records %llu", &v->records) != 1)
			continue;
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* Ring size of that channel, or 0 if it is not there. */
static unsigned int ring_of(const char *dev, const char *dir,
			    unsigned int port, unsigned int peer_port)
{
	struct chan_view v;

	return chan_view(dev, dir, port, peer_port, &v) ? 0 : v.ring;
}

static long long stat_of(const char *dev, const char *name)
{
	return ivshm_dev_attr_ll(dev, "doorbells", name);
}

/*
 * Once every connection is closed, the free space is the whole data area:
 * the counter, the bitmap and the channel count all say so (within @ms,
 * for acknowledgments still under way).
 */
static bool accounting_exact(const char *dev, unsigned int ms, char *why,
			     size_t len)
{
	uint64_t end = ivshm_now_ms() + ms;
	long long total = ivshm_dev_attr_ll(dev, "info", "data_blocks");
	long long fb, bf, act;

	do {
		fb = ivshm_dev_attr_ll(dev, "info", "free_blocks");
		bf = ivshm_dev_attr_ll(dev, "info", "bitmap_free");
		act = ivshm_dev_attr_ll(dev, "info", "active_channels");
		if (total > 0 && fb == total && bf == total && !act)
			return true;
		ivshm_sleep_ms(100);
	} while (ivshm_now_ms() < end);
	snprintf(why, len, "%s: data_blocks %lld, free_blocks %lld, bitmap_free %lld, active_channels %lld",
		 dev, total, fb, bf, act);
	return false;
}

/* ---- one bulk connection beside four idle ones (4 MiB region) ---- */

struct bulk {
	int tx, rx;
	atomic_bool stop;
	atomic_uint sent, got;
	char err[160];
};

static void *bulk_sender(void *arg)
{
	struct bulk *b = arg;
	unsigned char *buf = malloc(BULK_REC);
	uint32_t seq = 0;

	while (buf && !atomic_load(&b->stop)) {
		make_rec(buf, 0, seq, BULK_REC);
		if (send(b->tx, buf, BULK_REC, MSG_NOSIGNAL) != BULK_REC) {
			snprintf(b->err, sizeof(b->err), "send %u: %s", seq,
				 strerror(errno));
			break;
		}
		atomic_store(&b->sent, ++seq);
	}
	free(buf);
	return NULL;
}

/* A reader slower than the writer now and then, so the ring fills. */
static void *bulk_receiver(void *arg)
{
	struct bulk *b = arg;
	unsigned char *buf = malloc(BULK_REC + 1), *want = malloc(BULK_REC);
	uint32_t seq = 0;
	ssize_t n;

	while (buf && want) {
		n = recv(b->rx, buf, BULK_REC + 1, 0);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN)
				snprintf(b->err, sizeof(b->err),
					 "recv after %u: %s", seq,
					 strerror(errno));
			break;
		}
		if (!check_rec(buf, n, 0, seq, want)) {
			snprintf(b->err, sizeof(b->err),
				 "record %u wrong (%zd bytes)", seq, n);
			break;
		}
		atomic_store(&b->got, ++seq);
		if (!(seq % 8))
			usleep(2000);
	}
	free(buf);
	free(want);
	return NULL;
}

/* Wait up to @ms for @dev's tx channel (@port, @peer) to satisfy @cond. */
#define WAIT_RING(dev, port, peer, ms, cond) ({				\
	uint64_t __end = ivshm_now_ms() + (ms);				\
	unsigned int ring;						\
	for (;;) {							\
		ring = ring_of(dev, "tx", port, peer);			\
		if ((cond) || ivshm_now_ms() > __end)			\
			break;						\
		ivshm_sleep_ms(100);					\
	}								\
	ring; })

TEST(bulk_grows_idle_ones_shrink)
{
	unsigned int port = 7400, cport[5], lport = port, i, data, big;
	unsigned int minb, ring;
	int lfd, c[5], a[5];
	struct bulk b = { 0 };
	pthread_t st, rt;
	char why[200];
	unsigned char *rec;

	if (strcmp(mode, "bulk"))
		SKIP(return, "runs as \"rebalance_test bulk\"");
	data = (unsigned int)ivshm_dev_attr_ll("ivshm0", "info",
					       "data_blocks") * 4096u;
	ASSERT_LT(0u, data);
	ASSERT_GE(4u << 20, data);
	minb = 16384;
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_CHAN_MIN, minb));
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE_IDLE_MS, 100));

	lfd = listen_on(port, 2);			/* ivshm1, VM 1 */
	ASSERT_LE(0, lfd);
	for (i = 0; i < 5; i++) {
		char x = 'x';

		c[i] = connect_to(1, port, 1);		/* from ivshm0 */
		ASSERT_LE(0, c[i]);
		a[i] = accept(lfd, NULL, NULL);
		ASSERT_LE(0, a[i]);
		cport[i] = ivshm_local_port(c[i]);
		ASSERT_EQ(1, send(c[i], &x, 1, 0));
		ASSERT_EQ(1, recv(a[i], &x, 1, 0));
		ASSERT_EQ(131072u, ring_of("ivshm0", "tx", cport[i], 0));
	}

	/* Connection 0 carries the bulk transfer, 1 to 4 stay idle. */
	b.tx = c[0];
	b.rx = a[0];
	set_timeo(b.rx, SO_RCVTIMEO, 30000);
	ASSERT_EQ(0, pthread_create(&rt, NULL, bulk_receiver, &b));
	ASSERT_EQ(0, pthread_create(&st, NULL, bulk_sender, &b));
	ring = WAIT_RING("ivshm0", cport[0], 0, 120000, ring >= data / 2);
	EXPECT_LE(data / 2, ring) {
		TH_LOG("bulk channel grew to %u of %u, %lld growths failed; where the channels are:",
		       ring, data, stat_of("ivshm0", "grow_failed"));
		fflush(stdout);
		if (system("/tests/ivshm chan show 2>&1 | sed 's/^/#   /'"))
			TH_LOG("(ivshm chan show failed)");
	}
	TH_LOG("bulk channel: 131072 -> %u bytes of a %u-byte data area, %lld growths",
	       ring, data, stat_of("ivshm0", "grown"));
	for (i = 1; i < 5; i++) {
		EXPECT_EQ(minb, WAIT_RING("ivshm0", cport[i], 0, 10000,
					  ring == minb));
		EXPECT_EQ(minb, WAIT_RING("ivshm1", lport, cport[i], 10000,
					  ring == minb));
	}
	/* The bulk connection's quiet direction shrinks too. */
	EXPECT_EQ(minb, WAIT_RING("ivshm1", lport, cport[0], 10000,
				  ring == minb));

	/* The bulk one goes idle: everything arrives, then it shrinks back. */
	atomic_store(&b.stop, true);
	pthread_join(st, NULL);
	while (atomic_load(&b.got) < atomic_load(&b.sent) && !b.err[0])
		ivshm_sleep_ms(50);
	EXPECT_EQ(atomic_load(&b.sent), atomic_load(&b.got));
	EXPECT_EQ(minb, WAIT_RING("ivshm0", cport[0], 0, 30000,
				  ring == minb));
	/* A record larger than the shrunk run still goes through: the
	 * channel grows back for it.
	 */
	big = MAX_REC;
	rec = malloc(big + 1);
	ASSERT_NE(NULL, rec);
	make_rec(rec, 9, 9, big);
	EXPECT_EQ((ssize_t)big, send(c[1], rec, big, 0));
	memset(rec, 0, big);
	EXPECT_EQ((ssize_t)big, recv(a[1], rec, big + 1, 0));
	{
		unsigned char *want = malloc(big);

		ASSERT_NE(NULL, want);
		EXPECT_TRUE(check_rec(rec, big, 9, 9, want));
		free(want);
	}
	free(rec);
	/* (Waiting for the reader to follow counts as backpressure: a
	 * pass may have grown it further since.)
	 */
	EXPECT_LE(131072u, ring_of("ivshm0", "tx", cport[1], 0));

	for (i = 0; i < 5; i++)
		close(c[i]);
	pthread_join(rt, NULL);
	EXPECT_EQ(0, b.err[0]) TH_LOG("%s", b.err);
	TH_LOG("%u records of 64 KiB, checked", atomic_load(&b.got));
	for (i = 0; i < 5; i++)
		close(a[i]);
	close(lfd);
	EXPECT_TRUE(accounting_exact("ivshm0", 10000, why, sizeof(why)))
		TH_LOG("%s", why);
	set_param(IVSHMEM_PARAM_REBALANCE_IDLE_MS, 1000);
}

/* One connection from ivshm0 to VM 1 on ivshm1, and record buffers. */
struct shrunk {
	unsigned char *rec, *want;
	unsigned int cport;		/* ivshm0's port, its channel's id */
	int lfd, c, a;
};

/*
 * Channels may shrink to @minb; the listener's are @sndbuf bytes when
 * that is not 0. The receiving end waits up to 30 s for a record.
 */
static void shrunk_open(struct __test_metadata *_metadata, struct shrunk *s,
			unsigned int port, unsigned int minb, int sndbuf)
{
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_CHAN_MIN, minb));
	s->rec = malloc(MAX_REC + 1);
	s->want = malloc(MAX_REC);
	ASSERT_NE(NULL, s->rec);
	ASSERT_NE(NULL, s->want);
	s->lfd = listen_on(port, 2);			/* ivshm1, VM 1 */
	ASSERT_LE(0, s->lfd);
	if (sndbuf)
		ASSERT_EQ(0, setsockopt(s->lfd, SOL_SOCKET, SO_SNDBUF,
					&sndbuf, sizeof(sndbuf)));
	s->c = connect_to(1, port, 1);			/* from ivshm0 */
	ASSERT_LE(0, s->c);
	s->a = accept(s->lfd, NULL, NULL);
	ASSERT_LE(0, s->a);
	s->cport = ivshm_local_port(s->c);
	set_timeo(s->a, SO_RCVTIMEO, 30000);
}

/* Closed; once it is, the region's free space is all there again. */
static void shrunk_close(struct __test_metadata *_metadata, struct shrunk *s)
{
	char why[200];

	close(s->c);
	close(s->a);
	close(s->lfd);
	free(s->rec);
	free(s->want);
	EXPECT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE, 1));
	EXPECT_TRUE(accounting_exact("ivshm0", 10000, why, sizeof(why)))
		TH_LOG("%s", why);
	set_param(IVSHMEM_PARAM_REBALANCE_IDLE_MS, 1000);
}

/*
 * Rebalance as often as it goes until ivshm0's channel of @s is its
 * smallest, with no move pending, and (@at_start) at the start of the
 * data area; then no pass comes for a minute, so that it stays put.
 */
static void wait_shrunk(struct __test_metadata *_metadata,
			const struct shrunk *s, unsigned int minb,
			bool at_start, struct chan_view *v)
{
	uint64_t end = ivshm_now_ms() + 30000;

	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE, 1));
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE_IDLE_MS, 100));
	do {
		ivshm_sleep_ms(100);
		ASSERT_EQ(0, chan_view("ivshm0", "tx", s->cport, 0, v));
	} while ((v->ring != minb || v->old || (at_start && v->offset)) &&
		 ivshm_now_ms() < end);
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE_IDLE_MS, 60000));
	ASSERT_EQ(0, chan_view("ivshm0", "tx", s->cport, 0, v));
	ASSERT_EQ(minb, v->ring);
	ASSERT_EQ(0u, v->old);
	if (at_start)
		ASSERT_EQ(0ull, v->offset);
}

/*
 * A record larger than a shrunk run, sent when the ring's last record ends
 * 16 or 8 bytes before the end of the run: the channel cannot extend in
 * place, since its MOVED record would wrap, and must move instead, even
 * with the blocks after it free. The reverse channel keeps its size
 * (SO_SNDBUF), so the shrinking one settles at the start of the data area
 * with free blocks after it. Once it has, passes come seldom enough that
 * the sizes the test looks at stay put.
 */
TEST(record_larger_than_a_shrunk_run_at_its_end)
{
	unsigned int minb = 16384, gap, len, i;
	const unsigned int gaps[2] = { 16, 8 };
	struct chan_view v, rv;
	struct shrunk s;

	if (strcmp(mode, "bulk"))
		SKIP(return, "runs as \"rebalance_test bulk\"");
	shrunk_open(_metadata, &s, 7450, minb, (int)minb / 2);
	set_timeo(s.c, SO_SNDTIMEO, 30000);

	for (i = 0; i < 2; i++) {
		gap = gaps[i];
		len = minb - gap - 8;
		/* Shrunk, then moved as low as it goes: a ring that starts
		 * at the start of its run.
		 */
		wait_shrunk(_metadata, &s, minb, true, &v);
		/* The case: the run starts the data area, and the blocks of
		 * an extension to 128 KiB after it are free.
		 */
		ASSERT_EQ(0, chan_view("ivshm1", "tx", 7450, s.cport, &rv));
		ASSERT_LE(131072ull, rv.offset) TH_LOG("gap %u", gap);
		/* One record ends @gap bytes before the end of the run. */
		make_rec(s.rec, 1, 2 * i, len);
		ASSERT_EQ((ssize_t)len, send(s.c, s.rec, len, 0));
		ASSERT_EQ((ssize_t)len, recv(s.a, s.rec, MAX_REC + 1, 0));
		EXPECT_TRUE(check_rec(s.rec, len, 1, 2 * i, s.want));
		/* The next is larger than the run: it must move to grow. */
		make_rec(s.rec, 1, 2 * i + 1, MAX_REC);
		EXPECT_EQ((ssize_t)MAX_REC, send(s.c, s.rec, MAX_REC, 0))
			TH_LOG("gap %u: %s", gap, strerror(errno));
		EXPECT_EQ((ssize_t)MAX_REC, recv(s.a, s.rec, MAX_REC + 1, 0))
			TH_LOG("gap %u: %s", gap, strerror(errno));
		EXPECT_TRUE(check_rec(s.rec, MAX_REC, 1, 2 * i + 1, s.want));
		EXPECT_LE(131072u, ring_of("ivshm0", "tx", s.cport, 0));
	}
	shrunk_close(_metadata, &s);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* Control lock takeovers and losses of every device, summed. */
static long long lock_events(void)
{
	long long n = 0;
	char dev[8];
	int d;

	for (d = 0; d < 4; d++) {
		snprintf(dev, sizeof(dev), "ivshm%d", d);
		n += stat_of(dev, "lock_breaks") + stat_of(dev, "lock_lost");
	}
	return n;
}

struct held_try {
	unsigned int nonblock, intr;	/* sends that failed as they should */
	int nb_err, err;		/* how the others ended */
	ssize_t n;			/* the blocking send's result */
	bool undisturbed;		/* the hold lasted, and nobody took it */
};

/*
 * Shrink the idle channel of @s on ivshm0, hold the region's control lock
 * 2.5 s in a child, and meanwhile send record @seq without waiting for a
 * second, then blocking with SIGALRM every 50 ms until it goes.
 */
static void held_try(struct __test_metadata *_metadata, struct shrunk *s,
		     unsigned int minb, uint32_t seq, struct held_try *t)
{
	struct itimerval every = { { 0, 50000 }, { 0, 50000 } }, stop = { 0 };
	struct sigaction sa = { .sa_handler = on_alarm }, old_sa;
	long long events;
	uint64_t end, word = 0;
	struct chan_view v;
	int fd, status;
	pid_t holder;

	memset(t, 0, sizeof(*t));
	/* Shrunk while idle; then nothing but the sender wants the lock. */
	wait_shrunk(_metadata, s, minb, false, &v);
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE, 0));

	events = lock_events();
	fd = open(DEVSHM_DEBUGFS "/region", O_RDWR);
	ASSERT_LE(0, fd);
	holder = fork();
	ASSERT_LE(0, holder);
	if (!holder)
		_exit(ivshm_hold_ctrl_lock(fd, 2500) ? 0 : 1);
	end = ivshm_now_ms() + 10000;
	while (!word && ivshm_now_ms() < end) {
		ASSERT_EQ((ssize_t)sizeof(word),
			  pread(fd, &word, sizeof(word), IVSHM_REGION_CTRL_OFF));
		if (!word)
			ivshm_sleep_ms(1);
	}
	ASSERT_NE(0ull, word);

	make_rec(s->rec, 1, seq, MAX_REC);
	/* Nonblocking, for a second of the lock's 2.5. */
	end = ivshm_now_ms() + 1000;
	while (ivshm_now_ms() < end) {
		t->n = send(s->c, s->rec, MAX_REC, MSG_DONTWAIT);
		if (t->n != -1 || errno != EAGAIN) {
			t->nb_err = t->n < 0 ? errno : 0;
			break;
		}
		t->nonblock++;
	}
	/* Blocking, interrupted every 50 ms, until the lock is free. */
	if (!t->nb_err && t->n < 0) {
		ASSERT_EQ(0, sigaction(SIGALRM, &sa, &old_sa));
		ASSERT_EQ(0, setitimer(ITIMER_REAL, &every, NULL));
		while ((t->n = send(s->c, s->rec, MAX_REC, 0)) == -1 &&
		       errno == EINTR)
			t->intr++;
		t->err = t->n < 0 ? errno : 0;
		setitimer(ITIMER_REAL, &stop, NULL);
		sigaction(SIGALRM, &old_sa, NULL);
	}
	ASSERT_EQ(holder, waitpid(holder, &status, 0));
	close(fd);
	t->undisturbed = WIFEXITED(status) && !WEXITSTATUS(status) &&
			 lock_events() == events;
}

/*
 * A record that must grow a shrunk channel while another VM holds the
 * region's control lock: a nonblocking send fails with EAGAIN without
 * waiting for the lock, a blocking one is interrupted by a signal as any
 * wait for room, and neither sends anything. Once the lock is free the
 * record goes, whole. Counted, not timed: the lock is held 2.5 s, and a
 * send that waited for it (a second each) would fail a few times only.
 * The holder names virtual peers of this kernel, whose audit may take a
 * word naming them over: such a try says nothing, and is made again.
 */
TEST(growth_behind_a_held_lock_honours_nonblocking_and_signals)
{
	unsigned int minb = 16384, k;
	struct held_try t;
	struct shrunk s;
	ssize_t n;

	if (strcmp(mode, "bulk"))
		SKIP(return, "runs as \"rebalance_test bulk\"");
	shrunk_open(_metadata, &s, 7460, minb, 0);

	for (k = 0; k < 3; k++) {
		held_try(_metadata, &s, minb, k, &t);
		if (t.undisturbed)
			break;
		TH_LOG("try %u: the hold was disturbed; again", k);
		/* Whatever went meanwhile is read and dropped. */
		while (recv(s.a, s.rec, MAX_REC + 1, MSG_DONTWAIT) > 0)
			;
	}
	ASSERT_TRUE(t.undisturbed);
	TH_LOG("%u nonblocking sends failed, %u blocking ones interrupted",
	       t.nonblock, t.intr);
	EXPECT_EQ(0, t.nb_err) TH_LOG("nonblocking send: %s",
				      strerror(t.nb_err));
	EXPECT_EQ((ssize_t)MAX_REC, t.n) TH_LOG("send: %s", strerror(t.err));
	EXPECT_LE(5u, t.nonblock);
	EXPECT_LE(5u, t.intr);

	/* The record once, whole; nothing of the failed sends. */
	n = recv(s.a, s.rec, MAX_REC + 1, 0);
	EXPECT_EQ((ssize_t)MAX_REC, n);
	EXPECT_TRUE(check_rec(s.rec, n, 1, k, s.want));
	EXPECT_EQ(-1, recv(s.a, s.rec, MAX_REC + 1, MSG_DONTWAIT));
	EXPECT_EQ(EAGAIN, errno);
	EXPECT_LE(131072u, ring_of("ivshm0", "tx", s.cport, 0));
	shrunk_close(_metadata, &s);
}

/*
 * A full region: connect fails at once with ENOBUFS (whether our channel
 * or the acceptor's found no room), the connections made go on, and a
 * closed one makes room again. Rebalancing is off meanwhile, so that idle
 * channels keep their size.
 */
TEST(full_region_gives_enobufs)
{
	int lfd, c[64], a[64], n = 0, i, fd;
	char x = 'x', why[200];

	if (strcmp(mode, "bulk"))
		SKIP(return, "runs as \"rebalance_test bulk\"");
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE, 0));
	lfd = listen_on(7600, 2);
	ASSERT_LE(0, lfd);
	for (;;) {
		ASSERT_GT(64, n);
		c[n] = connect_to(1, 7600, 1);
		if (c[n] < 0)
			break;
		a[n] = accept(lfd, NULL, NULL);
		ASSERT_LE(0, a[n]);
		n++;
	}
	EXPECT_EQ(ENOBUFS, errno);
	TH_LOG("%d connections of 2 x 128 KiB fill the region", n);
	EXPECT_LE(10, n);
	for (i = 0; i < n; i++) {
		EXPECT_EQ(1, send(c[i], &x, 1, 0));
		EXPECT_EQ(1, recv(a[i], &x, 1, 0));
	}
	close(c[0]);
	close(a[0]);
	fd = -1;
	/* Room once both ends have let go: soon, up to 20 s on a loaded host. */
	for (i = 0; i < 200 && fd < 0; i++) {
		fd = connect_to(1, 7600, 1);
		if (fd < 0)
			ivshm_sleep_ms(100);
	}
	EXPECT_LE(0, fd);
	if (fd >= 0) {
		c[0] = fd;
		a[0] = accept(lfd, NULL, NULL);
		EXPECT_LE(0, a[0]);
	} else {
		c[0] = a[0] = -1;
	}
	for (i = 0; i < n; i++) {
		close(c[i]);
		close(a[i]);
	}
	close(lfd);
	set_param(IVSHMEM_PARAM_REBALANCE, 1);
	EXPECT_TRUE(accounting_exact("ivshm0", 10000, why, sizeof(why)))
		TH_LOG("%s", why);
}

/*
 * Fill a channel from device @from (VM @from - 1) to a listener on device
 * @to, without reading, until a rebalance has moved it and the reader has
 * not followed: a move is pending. Returns the connector, or -1.
 */
static int pending_move(struct __test_metadata *_metadata, unsigned int from,
			unsigned int to, unsigned int port, int *acc)
{
	unsigned char *buf = calloc(1, BULK_REC);
	char dev[16];
	struct chan_view v = { 0 };
	uint64_t end;
	int lfd, c;

	snprintf(dev, sizeof(dev), "ivshm%u", from - 1);
	*acc = -1;
	lfd = listen_on(port, to);
	if (lfd < 0 || !buf)
		return -1;
	/* A VM that was just declared dead and came back takes a moment
	 * to be known again as its new incarnation.
	 */
	end = ivshm_now_ms() + 10000;
	while ((c = connect_to(to - 1, port, from)) < 0 &&
	       ivshm_now_ms() < end)
		ivshm_sleep_ms(100);
	if (c < 0) {
		TH_LOG("connect from %s: %s", dev, strerror(errno));
		close(lfd);
		free(buf);
		return -1;
	}
	set_timeo(lfd, SO_RCVTIMEO, 10000);
	*acc = accept(lfd, NULL, NULL);
	close(lfd);
	if (*acc < 0) {
		close(c);
		free(buf);
		return -1;
	}
	end = ivshm_now_ms() + 30000;
	while (ivshm_now_ms() < end) {
		/* Keep it full: each refusal counts as backpressure. */
		while (send(c, buf, BULK_REC, MSG_DONTWAIT) == BULK_REC)
			;
		if (!chan_view(dev, "tx", ivshm_local_port(c), 0, &v) && v.moving)
			break;
		ivshm_sleep_ms(50);
	}
	free(buf);
	TH_LOG("%s: channel of %u bytes, old run %u, move pending: %u", dev,
	       v.ring, v.old, v.moving);
	return v.moving ? c : -1;
}

/*
 * A move is pending when a VM stops: k = 0, the reader's (VM 2, reading
 * VM 0's channel); k = 1, the sender's (VM 2 sending to VM 0). Its peer
 * resets the connection and frees or reaps both runs; the stopped VM,
 * started again, finds its channels gone and frees nothing twice.
 */
TEST(peer_dying_mid_resize_leaks_nothing)
{
	unsigned int from[2] = { 1, 3 }, to[2] = { 3, 1 };
	char why[200], buf[8];
	int k, c, a, alive, stopped;

	if (strcmp(mode, "bulk"))
		SKIP(return, "runs as \"rebalance_test bulk\"");
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE_IDLE_MS, 100));
	/* VM 2 stops below: declared dead 1.5 s after its last beat. */
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_PEER_TIMEOUT_MS, 1500));
	for (k = 0; k < 2; k++) {
		c = pending_move(_metadata, from[k], to[k], 7500 + k, &a);
		ASSERT_LE(0, c);
		alive = k ? a : c;
		stopped = k ? c : a;
		ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 1"));
		/* The side still running sees the reset (after the records
		 * it had, when it reads).
		 */
		set_timeo(alive, SO_RCVTIMEO, 10000);
		while (recv(alive, buf, sizeof(buf), MSG_TRUNC) > 0)
			;
		EXPECT_EQ(ECONNRESET, errno);
		ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "2 0"));
		set_timeo(stopped, SO_RCVTIMEO, 10000);
		while (recv(stopped, buf, sizeof(buf), MSG_TRUNC) > 0)
			;
		EXPECT_EQ(ECONNRESET, errno);
		close(c);
		close(a);
		EXPECT_TRUE(accounting_exact("ivshm0", 10000, why,
					     sizeof(why)))
			TH_LOG("VM 2 stopped as the %s: %s",
			       k ? "sender" : "reader", why);
	}
	set_param(IVSHMEM_PARAM_REBALANCE_IDLE_MS, 1000);
}

/* ---- 64 connections, random sizes and rates ---- */

struct flow {
	int fd;
	uint32_t conn;
	bool sends;
	unsigned int seed;
	uint64_t until;
	unsigned int count;
	char err[160];
};

static void dump_line(void *who, unsigned int dev, bool ours,
		      const char *line)
{
	(void)ours;
	fprintf(stderr, "#  %s: ivshm%u: %s", (const char *)who, dev, line);
}

/*
 * Both ends of the connection on @fd, as the devices' debugfs shows them,
 * on stderr: rings, counters and event indexes tell a record that was
 * never published from a notification that was lost. A diagnostic for a
 * flow that stalls.
 */
static void dump_conn(int fd, const char *who)
{
	struct ivshm_conn_ends e;

	if (!ivshm_conn_ends(fd, &e))
		ivshm_conn_channels(&e, dump_line, (void *)who);
}

/* Mostly small records, some medium, a few up to @max. */
static uint32_t pick_len(unsigned int *seed, uint32_t max)
{
	unsigned int r = (unsigned int)rand_r(seed) % 100;
	uint32_t room = max - sizeof(struct rec_hdr);

	if (r < 70)
		room = room < 512 ? room : 512;
	else if (r < 95)
		room = room < 16384 ? room : 16384;
	return sizeof(struct rec_hdr) + (unsigned int)rand_r(seed) % room;
}

static void *flow_sender(void *arg)
{
	struct flow *f = arg;
	unsigned char *buf = malloc(MAX_REC);
	/* Each connection its own pace: some busy, some mostly idle. */
	unsigned int pause = (unsigned int)rand_r(&f->seed) % 4;
	uint32_t max = MAX_REC;
	socklen_t olen = sizeof(max);

	if (getsockopt(f->fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &max, &olen) ||
	    max > MAX_REC)
		max = MAX_REC;
	/* A receiver that reads nothing for this long is a stalled flow. */
	set_timeo(f->fd, SO_SNDTIMEO, 120000);
	while (buf && ivshm_now_ms() < f->until) {
		unsigned int burst = 1 + (unsigned int)rand_r(&f->seed) % 32;

		while (burst--) {
			uint32_t len = pick_len(&f->seed, max);

			make_rec(buf, f->conn, f->count, len);
			if (send(f->fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
				snprintf(f->err, sizeof(f->err),
					 "conn %u: send %u: %s", f->conn,
					 f->count, strerror(errno));
				dump_conn(f->fd, "sender");
				goto out;
			}
			f->count++;
		}
		if (pause)
			usleep((unsigned int)rand_r(&f->seed) %
			       (pause * pause * 20000));
	}
out:
	shutdown(f->fd, SHUT_WR);
	free(buf);
	return NULL;
}

static void *flow_receiver(void *arg)
{
	struct flow *f = arg;
	unsigned char *buf = malloc(MAX_REC + 1), *want = malloc(MAX_REC);
	ssize_t n;

	set_timeo(f->fd, SO_RCVTIMEO, 120000);
	while (buf && want) {
		n = recv(f->fd, buf, MAX_REC + 1, 0);
		if (!n)
			break;
		if (n < 0) {
			snprintf(f->err, sizeof(f->err),
				 "conn %u: recv after %u: %s", f->conn,
				 f->count, strerror(errno));
			dump_conn(f->fd, "receiver");
			break;
		}
		if (!check_rec(buf, n, f->conn, f->count, want)) {
			snprintf(f->err, sizeof(f->err),
				 "conn %u: record %u wrong (%zd bytes)",
				 f->conn, f->count, n);
			break;
		}
		f->count++;
		/* A slow reader now and then: backpressure. */
		if (!((unsigned int)rand_r(&f->seed) % 64))
			usleep(5000);
	}
	free(buf);
	free(want);
	return NULL;
}

/*
 * Run a flow on each of @n sockets: a sender where @sends says so, else a
 * receiver, all at once, for @secs seconds. Fails through the harness.
 */
static void run_flows(struct __test_metadata *_metadata, const int *fds,
		      const uint32_t *conn, const bool *sends, unsigned int n,
		      unsigned int secs)
{
	struct flow *f = calloc(n, sizeof(*f));
	pthread_t *t = calloc(n, sizeof(*t));
	uint64_t until = ivshm_now_ms() + secs * 1000ull;
	unsigned long checked = 0, sent = 0;
	unsigned int i;

	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, t);
	for (i = 0; i < n; i++) {
		f[i].fd = fds[i];
		f[i].conn = conn[i];
		f[i].sends = sends[i];
		f[i].seed = conn[i] * 2654435761u + sends[i];
		f[i].until = until;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, sends[i] ?
					    flow_sender : flow_receiver,
					    &f[i]));
	}
	for (i = 0; i < n; i++) {
		pthread_join(t[i], NULL);
		EXPECT_EQ(0, f[i].err[0]) TH_LOG("%s", f[i].err);
		if (f[i].sends)
			sent += f[i].count;
		else
			checked += f[i].count;
	}
	TH_LOG("%u sockets: %lu records sent, %lu received and checked", n,
	       sent, checked);
	EXPECT_LT(0, checked);
	free(f);
	free(t);
}

static unsigned int stress_secs(void)
{
	return (unsigned int)ivshm_cmdline_ull("stress_s", 60);
}

static long long resizes(void)
{
	long long n = 0;
	unsigned int d;
	char dev[16];

	for (d = 0; d < 4; d++) {
		snprintf(dev, sizeof(dev), "ivshm%u", d);
		if (stat_of(dev, "grown") >= 0)
			n += stat_of(dev, "grown") + stat_of(dev, "shrunk");
	}
	return n;
}

/* Through dev_shm: both ends of every connection in this process. */
TEST(sixty_four_connections_resized_all_the_time)
{
	int fds[2 * NCONN], lfd;
	uint32_t conn[2 * NCONN];
	bool sends[2 * NCONN];
	long long before;
	unsigned int i;
	char why[200];

	if (strcmp(mode, "stress"))
		SKIP(return, "runs as \"rebalance_test stress\"");
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE_INTERVAL, 10));
	lfd = listen_on(STRESS_PORT, 2);
	ASSERT_LE(0, lfd);
	for (i = 0; i < NCONN; i++) {
		fds[i] = connect_to(1, STRESS_PORT, 1);
		ASSERT_LE(0, fds[i]) TH_LOG("connection %u: %s", i,
					    strerror(errno));
		fds[NCONN + i] = accept(lfd, NULL, NULL);
		ASSERT_LE(0, fds[NCONN + i]);
		conn[i] = conn[NCONN + i] = i;
		/* Even connections send from VM 0, odd ones from VM 1. */
		sends[i] = !(i % 2);
		sends[NCONN + i] = i % 2;
	}
	close(lfd);
	before = resizes();
	run_flows(_metadata, fds, conn, sends, 2 * NCONN, stress_secs());
	TH_LOG("%lld channel resizes in %u s", resizes() - before,
	       stress_secs());
	EXPECT_LE(20, resizes() - before);
	for (i = 0; i < 2 * NCONN; i++)
		close(fds[i]);
	EXPECT_TRUE(accounting_exact("ivshm0", 10000, why, sizeof(why)))
		TH_LOG("%s", why);
	set_param(IVSHMEM_PARAM_REBALANCE_INTERVAL, 100);
}

/* Across two guests: "serve" accepts, "remote" connects. */
TEST(sixty_four_connections_across_guests)
{
	unsigned int me, vm = 0, i;
	int fds[NCONN], lfd = -1;
	uint32_t conn[NCONN];
	bool sends[NCONN];
	long long before;
	uint64_t end;
	char why[200];

	if (strcmp(mode, "serve") && strcmp(mode, "remote"))
		SKIP(return, "runs as \"rebalance_test serve|remote\"");
	me = (unsigned int)ivshm_dev_attr_ll("ivshm0", "info", "own_id");
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_REBALANCE_INTERVAL, 10));
	/* 128 channels start in a region of the guests' 4 MiB: small. */
	ASSERT_EQ(0, set_param(IVSHMEM_PARAM_CHAN_INITIAL, 16384));
	if (!strcmp(mode, "serve")) {
		lfd = listen_on(STRESS_PORT, 1);
		ASSERT_LE(0, lfd);
		set_timeo(lfd, SO_RCVTIMEO, 120000);
		for (i = 0; i < NCONN; i++) {
			fds[i] = accept(lfd, NULL, NULL);
			ASSERT_LE(0, fds[i]);
			set_timeo(fds[i], SO_RCVTIMEO, 30000);
			ASSERT_EQ(4, recv(fds[i], &conn[i], 4, 0));
			sends[i] = conn[i] % 2;
		}
		close(lfd);
	} else {
		/* The other guest: the VM id that accepts. */
		end = ivshm_now_ms() + 120000;
		fds[0] = -1;
		while (fds[0] < 0 && ivshm_now_ms() < end) {
			for (vm = 0; vm < 64 && fds[0] < 0; vm++)
				if (vm != me)
					fds[0] = connect_to(vm, STRESS_PORT, 1);
			if (fds[0] < 0)
				ivshm_sleep_ms(200);
		}
		ASSERT_LE(0, fds[0]);
		vm--;
		for (i = 0; i < NCONN; i++) {
			if (i)
				fds[i] = connect_to(vm, STRESS_PORT, 1);
			ASSERT_LE(0, fds[i]) TH_LOG("connection %u: %s", i,
						    strerror(errno));
			conn[i] = i;
			ASSERT_EQ(4, send(fds[i], &conn[i], 4, 0));
			sends[i] = !(i % 2);
		}
	}
	before = resizes();
	run_flows(_metadata, fds, conn, sends, NCONN, stress_secs());
	TH_LOG("VM %u: %lld resizes of its channels in %u s", me,
	       resizes() - before, stress_secs());
	EXPECT_LE(5, resizes() - before);
	for (i = 0; i < NCONN; i++)
		close(fds[i]);
	/* The other guest closes too; then the region is whole again. */
	EXPECT_TRUE(accounting_exact("ivshm0", 30000, why, sizeof(why)))
		TH_LOG("%s", why);
	set_param(IVSHMEM_PARAM_REBALANCE_INTERVAL, 100);
	set_param(IVSHMEM_PARAM_CHAN_INITIAL, 131072);
}

int main(int argc, char **argv)
{
	af = ivshm_family();
	if (af < 0) {
		fprintf(stderr, "rebalance_test: af_ivshmem is not loaded\n");
		return 1;
	}
	if (argc > 1)
		mode = argv[1];
	return test_harness_run(1, argv);
}
