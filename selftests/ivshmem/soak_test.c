// SPDX-License-Identifier: GPL-2.0
/*
 * Data-integrity soak across two guests, with peers restarting now and
 * then.
 *
 *   soak_test a     in one guest (listens for the control connection)
 *   soak_test b     in the other (finds it; otherwise the same)
 *
 * Both guests listen on DATA_PORT and both connect: each keeps NCONN
 * connections open to the other, so 2 * NCONN in all, and every one
 * carries records both ways at once. A connection is served by a worker
 * process of its own (a sender and a receiver thread); the parent accepts,
 * forks, and every second or few picks a worker of its own and
 * restarts it: SIGKILL, an abrupt _exit() from inside (SIGUSR2), or a
 * graceful end (SIGUSR1). A connector whose connection ended, however, is
 * replaced by a new one with a new connection id.
 *
 * Every record's length and bytes are a function of (connection id,
 * direction, sequence number), so the receiver regenerates and compares
 * them: from 1 byte (shorter than the header: hash bytes only) to the
 * sender's IVSHMEM_MAX_RECORD, most of them small. A record of at least
 * the header's size carries connection, direction, sequence number,
 * length and a checksum of it all; a short one is recognised by its
 * bytes. Receivers require sequence numbers to be strictly consecutive,
 * on every connection for as long as it lasts: a gap is a loss (a
 * reordering if the missing record shows up later), a repeat a
 * duplicate.
 *
 * A graceful end is an END record carrying the count of records sent,
 * then shutdown(SHUT_WR); the other side answers the same way, and each
 * checks that it received exactly END's count and then end of file. An
 * abrupt end (end of file without END, or ECONNRESET) is a restart only
 * if the other guest says, at the end of the run, that it killed that
 * connection's worker; anything else (a timeout, another error, an abrupt
 * end nobody caused) fails. Every blocking call is bounded (SO_RCVTIMEO,
 * SO_SNDTIMEO, poll timeouts), so a hang is a failure, not a stuck guest.
 *
 * The two guests start together and wind down together over a control
 * connection (CTRL_PORT): b finds a, and after ivshm.soak_s seconds
 * (default 60) each side stops restarting, ends its workers gracefully,
 * says when its connectors are gone, and finally sends the list of the
 * connections it killed. Then everything is closed and both sides check
 * that the module holds no socket and that the data area is whole again.
 *
 * Output: TAP, and a summary line per guest:
 *   soak: N records checked (B bytes) on C connections, R restarts
 *   (K killed, G graceful), 0 lost, 0 duplicated, 0 reordered
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>

#include "ivshm_nl.h"
#include "ivshm_test.h"

#define CTRL_PORT	7700
#define DATA_PORT	7701
#define NCONN		12		/* connections each guest opens */
#define MAX_WORKERS	4096		/* worker slots for a whole run */
#define MAX_IDS		MAX_WORKERS	/* killed connections reported */
#define PEER_WAIT_MS	120000		/* for the other guest, at both ends */
#define IO_MS		60000		/* longest silence on a live socket */
#define CONNECT_MS	60000		/* retrying refused/ENOBUFS connects */
#define WIND_DOWN_MS	180000		/* from the deadline to the end */
#define SETTLE_MS	40000		/* refs and free blocks after close */
#define SELF_EXIT	42		/* a worker's _exit() on SIGUSR2 */
#define GAPW		4096		/* classification window, records */
#define ID_B		0x80000000u	/* connection ids made by guest b */

/* ---- records ---- */

enum { K_DATA = 1, K_END, K_HELLO };
#define MAGIC		0x534b		/* "SK" */

/* Every record of at least this size starts with it. */
struct soak_hdr {
	uint16_t magic;
	uint8_t kind;
	uint8_t dir;		/* 0: connector to acceptor, 1: back */
	uint32_t conn;
	uint32_t seq;		/* DATA: number; END: records sent */
	uint32_t len;		/* the whole record */
	uint32_t aux;		/* HELLO: the sender's IVSHMEM_MAX_RECORD */
	uint32_t sum;		/* checksum of all of it, with sum = 0 */
};
#define HDR		((uint32_t)sizeof(struct soak_hdr))

static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t rec_key(uint32_t conn, uint32_t dir, uint32_t seq)
{
	return mix64(mix64(((uint64_t)conn << 1) | dir) ^ seq);
}

/*
 * The length of record @seq: 5% shorter than the header, 65% up to 256
 * bytes, 25% up to 8 KiB, 4% up to @max, 1% exactly @max. The receiver
 * computes it too, so a truncated or padded record is caught.
 */
static uint32_t rec_len(uint32_t conn, uint32_t dir, uint32_t seq,
			uint32_t max)
{
	uint64_t h = rec_key(conn, dir, seq);
	uint32_t r = (uint32_t)(h % 1000), u = (uint32_t)(h >> 32), len;

	if (r < 50)
		len = 1 + u % (HDR - 1);
	else if (r < 700)
		len = HDR + u % (256 - HDR + 1);
	else if (r < 950)
		len = 257 + u % (8192 - 257 + 1);
	else if (r < 990 && max > 8193)
		len = 8193 + u % (max - 8193 + 1);
	else
		len = max;
	return len < max ? len : max;
}

/* Pseudo-random bytes from @key, 8 at a time (xorshift64*). */
static void gen_bytes(unsigned char *p, size_t n, uint64_t key)
{
	uint64_t s = key | 1, v;

	while (n) {
		size_t k = n < 8 ? n : 8;

		s ^= s >> 12;
		s ^= s << 25;
		s ^= s >> 27;
		v = s * 0x2545f4914f6cdd1dull;
		memcpy(p, &v, k);
		p += k;
		n -= k;
	}
}

/* FNV-1a over 64-bit words (and the tail bytes), folded to 32 bits. */
static uint64_t fnv_add(uint64_t h, const unsigned char *p, size_t n)
{
	uint64_t w;

	for (; n >= 8; p += 8, n -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ w) * 0x100000001b3ull;
	}
	while (n--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

static uint32_t fnv_fold(uint64_t h)
{
	return (uint32_t)(h ^ (h >> 32));
}

#define FNV_INIT	0xcbf29ce484222325ull

static uint32_t rec_sum(struct soak_hdr h, const unsigned char *payload,
			size_t n)
{
	h.sum = 0;
	return fnv_fold(fnv_add(fnv_add(FNV_INIT, (unsigned char *)&h,
					sizeof(h)), payload, n));
}

/* Write record @seq (@len bytes) of @conn's direction @dir into @buf. */
static void make_rec(unsigned char *buf, uint32_t conn, uint32_t dir,
		     uint32_t seq, uint32_t len)
{
	uint64_t key = rec_key(conn, dir, seq);
	struct soak_hdr h = { .magic = MAGIC, .kind = K_DATA,
			      .dir = (uint8_t)dir, .conn = conn, .seq = seq,
			      .len = len };

	if (len < HDR) {
		gen_bytes(buf, len, ~key);
		return;
	}
	gen_bytes(buf + HDR, len - HDR, key);
	h.sum = rec_sum(h, buf + HDR, len - HDR);
	memcpy(buf, &h, HDR);
}

/* A header-only record: HELLO or END. */
static void make_ctl_rec(unsigned char *buf, unsigned int kind, uint32_t conn,
			 uint32_t dir, uint32_t seq, uint32_t aux)
{
	struct soak_hdr h = { .magic = MAGIC, .kind = (uint8_t)kind,
			      .dir = (uint8_t)dir, .conn = conn, .seq = seq,
			      .len = HDR, .aux = aux };

	h.sum = rec_sum(h, NULL, 0);
	memcpy(buf, &h, HDR);
}

/* Is @buf a well-formed record (header valid, checksum right)? */
static bool rec_valid(const unsigned char *buf, size_t n, struct soak_hdr *h)
{
	if (n < HDR)
		return false;
	memcpy(h, buf, HDR);
	return h->magic == MAGIC && h->len == n &&
	       h->sum == rec_sum(*h, buf + HDR, n - HDR);
}

/* ---- shared state: one slot per worker, written by the worker ---- */

enum { W_STARTING, W_ESTABLISHED, W_ENDING, W_DONE };
enum { O_NONE, O_GRACEFUL, O_EOF, O_RESET, O_NOHELLO, O_NEVER };

struct wslot {
	_Atomic int state;
	uint32_t conn;
	int outcome;
	_Atomic uint64_t rx_records, rx_bytes, tx_records, tx_bytes;
	_Atomic uint32_t lost, dup, reord, corrupt;
	uint32_t connect_retries, connect_timeouts;
	_Atomic uint32_t enobufs;
	_Atomic bool failed;
	char err[320];
};

static struct wslot *slots;

/* ---- the parent's view ---- */

enum { A_NONE, A_KILL, A_SELF, A_GRACE };
struct worker {
	pid_t pid;
	int cslot;		/* connector slot, or -1: an acceptor */
	int action;		/* what we did to it */
	bool wound;		/* told to end by the wind-down */
	bool live;
};

static int af;
static char role;			/* 'a' or 'b' */
static unsigned int me, peer_vm;
static uint64_t seed;
static struct worker workers[MAX_WORKERS];
static int nworkers;
static int lfd = -1, ctl = -1;		/* data listener, control socket */
static bool failed;

/* ---- helpers ---- */

static void set_timeo(int fd, int opt, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
}

static uint64_t rnd(uint64_t *s)
{
	*s = mix64(*s);
	return *s;
}

static const char *dir_name(uint32_t conn, uint32_t dir)
{
	bool from_b = (conn & ID_B) != 0;

	/* dir 0 goes from the connector, which made the id. */
	return from_b == !dir ? "b->a" : "a->b";
}

/* First error of a worker wins; later ones only count. */
static void wfail(struct wslot *w, const char *fmt, ...)
{
	bool was = false;
	va_list ap;

	if (!atomic_compare_exchange_strong(&w->failed, &was, true))
		return;
	va_start(ap, fmt);
	vsnprintf(w->err, sizeof(w->err), fmt, ap);
	va_end(ap);
}

static void tap(bool ok, int n, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d ", ok ? "ok" : "not ok", n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		failed = true;
}

static void diag(const char *fmt, ...)
{
	va_list ap;

	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* ---- a worker: one connection, both directions ---- */

struct conn_ctx {
	int fd;
	struct wslot *w;
	uint32_t conn, tx_dir, rx_dir, tx_max, rx_max;
	uint64_t seed;
	atomic_bool stop;	/* the sender ends with END */
	atomic_bool rx_done, tx_done;
	bool end_sent, tx_broken;
	int rx_result;		/* O_GRACEFUL, O_EOF or O_RESET */
};

/*
 * Send one record, retrying ENOBUFS (a ring that shrank while idle and
 * found no room to grow back: nothing was sent, a later try may succeed).
 * 0 sent, 1 the peer is gone (EPIPE, ECONNRESET), -1 failed.
 */
static int send_rec(struct conn_ctx *c, const unsigned char *buf,
		    uint32_t len, uint32_t seq)
{
	uint64_t end = ivshm_now_ms() + IO_MS;
	ssize_t n;

	for (;;) {
		n = send(c->fd, buf, len, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0) {
			wfail(c->w, "conn %u (%s): send of record %u (%u bytes) returned %zd",
			      c->conn, dir_name(c->conn, c->tx_dir), seq, len,
			      n);
			return -1;
		}
		if (errno == EPIPE || errno == ECONNRESET)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno == ENOBUFS && ivshm_now_ms() < end) {
			atomic_fetch_add(&c->w->enobufs, 1);
			ivshm_sleep_ms(20);
			continue;
		}
		wfail(c->w, "conn %u (%s): send of record %u (%u bytes): %s%s",
		      c->conn, dir_name(c->conn, c->tx_dir), seq, len,
		      strerror(errno),
		      errno == EAGAIN ? " (blocked for 60 s: a hang)" : "");
		return -1;
	}
}

static void *sender(void *arg)
{
	struct conn_ctx *c = arg;
	unsigned char *buf = malloc(c->tx_max > HDR ? c->tx_max : HDR);
	uint64_t s = c->seed;
	/* Each direction its own pace: busy, moderate or slow. */
	unsigned int pace = (unsigned int)(rnd(&s) % 3), burst = 0;
	uint32_t seq = 0, len;
	int r = 0;

	if (!buf) {
		wfail(c->w, "conn %u: out of memory", c->conn);
		goto out;
	}
	while (!atomic_load(&c->stop)) {
		len = rec_len(c->conn, c->tx_dir, seq, c->tx_max);
		make_rec(buf, c->conn, c->tx_dir, seq, len);
		r = send_rec(c, buf, len, seq);
		if (r)
			break;
		seq++;
		atomic_store(&c->w->tx_records, seq);
		atomic_fetch_add(&c->w->tx_bytes, len);
		if (!burst--) {
			burst = (unsigned int)(rnd(&s) % 32);
			if (pace)
				usleep((unsigned int)(rnd(&s) %
						      (pace * pace * 5000)));
		}
	}
	if (!r) {
		make_ctl_rec(buf, K_END, c->conn, c->tx_dir, seq, 0);
		r = send_rec(c, buf, HDR, seq);
		if (!r && shutdown(c->fd, SHUT_WR)) {
			wfail(c->w, "conn %u: shutdown: %s", c->conn,
			      strerror(errno));
			r = -1;
		}
		c->end_sent = !r;
	}
	c->tx_broken = r == 1;
out:
	free(buf);
	atomic_store(&c->tx_done, true);
	return NULL;
}

/*
 * Which record of this direction is @buf (@n bytes)? A long one says so in
 * its header; a short one is looked for among the records near @expected
 * with that length. -1 if it is none.
 */
static int64_t identify(struct conn_ctx *c, const unsigned char *buf,
			size_t n, uint32_t expected, unsigned char *scratch)
{
	struct soak_hdr h;
	int64_t s;
	int d;

	if (n >= HDR)
		return rec_valid(buf, n, &h) && h.kind == K_DATA &&
		       h.conn == c->conn && h.dir == c->rx_dir ? (int64_t)h.seq : -1;
	/* Nearest first: expected, expected - 1, expected + 1, ... */
	for (d = 0; d <= 2 * 256; d++) {
		s = (int64_t)expected + (d % 2 ? -(d + 1) / 2 : d / 2);
		if (s < 0 || s > UINT32_MAX ||
		    rec_len(c->conn, c->rx_dir, (uint32_t)s, c->rx_max) != n)
			continue;
		make_rec(scratch, c->conn, c->rx_dir, (uint32_t)s,
			 (uint32_t)n);
		if (!memcmp(scratch, buf, n))
			return s;
	}
	return -1;
}

/* Missing records of the last GAPW, to tell reordering from loss. */
struct gaps {
	uint64_t bits[GAPW / 64];
};

static bool gap_test(struct gaps *g, uint32_t s)
{
	return g->bits[(s % GAPW) / 64] & (1ull << (s % 64));
}

static void gap_set(struct gaps *g, uint32_t s, bool v)
{
	uint64_t bit = 1ull << (s % 64);

	if (v)
		g->bits[(s % GAPW) / 64] |= bit;
	else
		g->bits[(s % GAPW) / 64] &= ~bit;
}

static void *receiver(void *arg)
{
	struct conn_ctx *c = arg;
	struct wslot *w = c->w;
	size_t cap = (size_t)c->rx_max + 1;
	unsigned char *buf = malloc(cap), *want = malloc(cap);
	struct gaps *g = calloc(1, sizeof(*g));
	const char *dn = dir_name(c->conn, c->rx_dir);
	uint32_t expected = 0, t;
	bool got_end = false;
	struct soak_hdr h;
	uint64_t s = c->seed ^ 0x55;
	int64_t got;
	ssize_t n;

	c->rx_result = O_RESET;
	if (!buf || !want || !g) {
		wfail(w, "conn %u: out of memory", c->conn);
		goto out;
	}
	for (;;) {
		struct iovec iov = { buf, cap };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };

		n = recvmsg(c->fd, &msg, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNRESET) {
				c->rx_result = O_RESET;
				break;
			}
			wfail(w, "conn %u (%s): recv after record %u: %s%s",
			      c->conn, dn, expected, strerror(errno),
			      errno == EAGAIN ? " (nothing for 60 s: a hang)" :
			      "");
			break;
		}
		if (!n && !(msg.msg_flags & MSG_EOR)) {
			c->rx_result = got_end ? O_GRACEFUL : O_EOF;
			break;
		}
		if (got_end) {
			wfail(w, "conn %u (%s): a record of %zd bytes after END",
			      c->conn, dn, n);
			continue;
		}
		if ((size_t)n > c->rx_max || (msg.msg_flags & MSG_TRUNC)) {
			atomic_fetch_add(&w->corrupt, 1);
			wfail(w, "conn %u (%s): after record %u, a record longer than the largest, %u bytes",
			      c->conn, dn, expected, c->rx_max);
			continue;
		}
		if ((size_t)n >= HDR && rec_valid(buf, n, &h) &&
		    h.kind == K_END && h.conn == c->conn &&
		    h.dir == c->rx_dir) {
			got_end = true;
			if (h.seq > expected) {
				/* The missing ones are lost for good. */
				atomic_fetch_add(&w->lost, h.seq - expected);
				wfail(w, "conn %u (%s): END says %u records were sent, %u came: lost",
				      c->conn, dn, h.seq, expected);
			} else if (h.seq < expected) {
				atomic_fetch_add(&w->corrupt, 1);
				wfail(w, "conn %u (%s): END says %u records were sent, records up to %u came",
				      c->conn, dn, h.seq, expected);
			}
			/* Answer with our own END. */
			atomic_store(&c->stop, true);
			continue;
		}
		got = identify(c, buf, (size_t)n, expected, want);
		if (got < 0) {
			atomic_fetch_add(&w->corrupt, 1);
			wfail(w, "conn %u (%s): expected record %u (%u bytes), got %zd bytes that are no record of this connection",
			      c->conn, dn, expected,
			      rec_len(c->conn, c->rx_dir, expected, c->rx_max),
			      n);
			/* Most likely the expected one, damaged. */
			gap_set(g, expected, false);
			expected++;
			continue;
		}
		if (got == expected) {
			uint32_t len = rec_len(c->conn, c->rx_dir, expected,
					       c->rx_max);

			make_rec(want, c->conn, c->rx_dir, expected, len);
			if ((size_t)n != len || memcmp(want, buf, len)) {
				atomic_fetch_add(&w->corrupt, 1);
				wfail(w, "conn %u (%s): record %u: %zd bytes, want %u, or its bytes differ",
				      c->conn, dn, expected, n, len);
			} else if (!atomic_load(&w->failed)) {
				/* Checked: counted while the run is clean. */
				atomic_store(&w->rx_records, expected + 1);
				atomic_fetch_add(&w->rx_bytes, (uint64_t)n);
			}
			gap_set(g, expected, false);
			expected++;
		} else if (got > expected) {
			atomic_fetch_add(&w->lost, (uint32_t)got - expected);
			wfail(w, "conn %u (%s): expected record %u, got %lld: %lld missing (lost, or reordered if they come later)",
			      c->conn, dn, expected, (long long)got,
			      (long long)got - expected);
			t = (uint32_t)got - expected > GAPW ?
			    (uint32_t)got - GAPW : expected;
			for (; t <= (uint32_t)got; t++)
				gap_set(g, t, t != got);
			expected = (uint32_t)got + 1;
		} else if (expected - (uint32_t)got <= GAPW &&
			   gap_test(g, (uint32_t)got)) {
			/* Counted as lost when skipped: it came late. */
			atomic_fetch_sub(&w->lost, 1);
			atomic_fetch_add(&w->reord, 1);
			gap_set(g, (uint32_t)got, false);
			wfail(w, "conn %u (%s): record %lld came after %u: reordered",
			      c->conn, dn, (long long)got, expected - 1);
		} else {
			atomic_fetch_add(&w->dup, 1);
			wfail(w, "conn %u (%s): expected record %u, got %lld again: duplicated",
			      c->conn, dn, expected, (long long)got);
		}
		/* A slow reader now and then: backpressure, ring growth. */
		if (!(rnd(&s) % 128))
			usleep(5000);
	}
out:
	free(buf);
	free(want);
	free(g);
	atomic_store(&c->rx_done, true);
	return NULL;
}

/* Send a header-only record and read the peer's, for the hello. */
static bool hello_send(struct conn_ctx *c, uint32_t dir)
{
	unsigned char b[HDR];

	make_ctl_rec(b, K_HELLO, c->conn, dir, 0, c->tx_max);
	return send(c->fd, b, HDR, MSG_NOSIGNAL) == HDR;
}

/* The peer's hello: 1 read, 0 end of file or reset first, -1 failed. */
static int hello_recv(struct conn_ctx *c, uint32_t dir, bool any_conn)
{
	unsigned char b[HDR + 1];
	struct soak_hdr h;
	ssize_t n = recv(c->fd, b, sizeof(b), 0);

	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return 0;
	if (n < 0) {
		wfail(c->w, "hello: recv: %s", strerror(errno));
		return -1;
	}
	if (!rec_valid(b, (size_t)n, &h) || h.kind != K_HELLO ||
	    h.dir != dir || (!any_conn && h.conn != c->conn) ||
	    h.aux < HDR || h.aux > IVSHMEM_RING_MAX) {
		wfail(c->w, "hello: a bad record of %zd bytes", n);
		return -1;
	}
	c->conn = h.conn;
	c->rx_max = h.aux;
	return 1;
}

static bool usr1_pending(void)
{
	sigset_t p;

	return !sigpending(&p) && sigismember(&p, SIGUSR1);
}

/* A connected socket to the other guest's DATA_PORT, or -1. */
static int connect_peer(struct wslot *w)
{
	struct sockaddr_ivshmem a = ivshm_addr(af, peer_vm, DATA_PORT,
					       IVSHMEM_DEV_ANY);
	uint64_t end = ivshm_now_ms() + CONNECT_MS;
	int fd;

	for (;;) {
		/* Winding down before we got through: nothing to end. */
		if (usr1_pending())
			return -2;
		fd = socket(af, SOCK_SEQPACKET, 0);
		if (fd < 0) {
			wfail(w, "socket: %s", strerror(errno));
			return -1;
		}
		set_timeo(fd, SO_SNDTIMEO, IO_MS);
		set_timeo(fd, SO_RCVTIMEO, IO_MS);
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a)))
			return fd;
		close(fd);
		/*
		 * The region full (ENOBUFS), the accept queue full
		 * (ECONNREFUSED), the other kernel slow to answer
		 * (ETIMEDOUT): all pass; try again for a while.
		 */
		if (errno == ETIMEDOUT)
			w->connect_timeouts++;
		else if (errno == ENOBUFS || errno == ECONNREFUSED)
			w->connect_retries++;
		else
			break;
		if (ivshm_now_ms() > end)
			break;
		ivshm_sleep_ms(100);
	}
	wfail(w, "connect to VM %u port %u: %s", peer_vm, DATA_PORT,
	      strerror(errno));
	return -1;
}

/*
 * A worker process: @fd an accepted socket, or -1 to connect as @conn.
 * SIGUSR1 and SIGUSR2 are blocked (inherited from the parent), so that a
 * signal sent right after fork() waits for sigtimedwait() below.
 */
static void __attribute__((noreturn)) worker_main(struct wslot *w, int fd,
						  uint32_t conn)
{
	struct conn_ctx c = { .fd = fd, .w = w, .conn = conn };
	bool connector = fd < 0;
	struct timespec tick = { 0, 50 * 1000000L };
	pthread_t st, rt;
	sigset_t set;
	socklen_t olen = sizeof(int);
	int max = 0, r, sig;

	/* Only the parent holds these: a killed worker must free its own
	 * connection and nothing else.
	 */
	close(lfd);
	close(ctl);
	w->conn = conn;
	if (connector) {
		c.fd = connect_peer(w);
		if (c.fd == -2) {
			w->outcome = O_NEVER;
			atomic_store(&w->state, W_DONE);
			_exit(0);
		}
		if (c.fd < 0)
			_exit(1);
	} else {
		set_timeo(c.fd, SO_SNDTIMEO, IO_MS);
		set_timeo(c.fd, SO_RCVTIMEO, IO_MS);
	}
	if (getsockopt(c.fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &max, &olen) ||
	    max < (int)HDR) {
		wfail(w, "IVSHMEM_MAX_RECORD: %d, %s", max, strerror(errno));
		_exit(1);
	}
	c.tx_max = (uint32_t)max;
	c.tx_dir = connector ? 0 : 1;
	c.rx_dir = !c.tx_dir;
	/* The connector speaks first; the acceptor learns the id. */
	if (connector) {
		if (!hello_send(&c, 0)) {
			wfail(w, "conn %u: hello: send: %s", conn,
			      strerror(errno));
			_exit(1);
		}
		r = hello_recv(&c, 1, false);
	} else {
		r = hello_recv(&c, 0, true);
		if (r > 0 && !hello_send(&c, 1)) {
			/* It may have gone since: that is a restart. */
			if (errno != EPIPE && errno != ECONNRESET) {
				wfail(w, "conn %u: hello: send: %s", c.conn,
				      strerror(errno));
				_exit(1);
			}
			r = 0;
		}
	}
	if (r <= 0) {
		if (r < 0)
			_exit(1);
		/*
		 * Gone before the hello: the connector never got that far
		 * (its connect timed out and the late connection was closed
		 * for it), or, for a connector, its acceptor was killed
		 * before answering, which the other side never does.
		 */
		w->outcome = connector ? O_EOF : O_NOHELLO;
		w->conn = c.conn;
		close(c.fd);
		atomic_store(&w->state, W_DONE);
		_exit(0);
	}
	w->conn = c.conn;
	atomic_store(&w->state, W_ESTABLISHED);
	c.seed = mix64(seed ^ c.conn ^ ((uint64_t)c.tx_dir << 40));

	if (pthread_create(&rt, NULL, receiver, &c)) {
		wfail(w, "pthread_create");
		_exit(1);
	}
	if (pthread_create(&st, NULL, sender, &c)) {
		wfail(w, "pthread_create");
		_exit(1);
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	while (!atomic_load(&c.rx_done)) {
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGUSR2)
			_exit(SELF_EXIT);	/* abrupt: no END, no close */
		if (sig == SIGUSR1) {
			atomic_store(&w->state, W_ENDING);
			atomic_store(&c.stop, true);
		}
	}
	/* The receiver is done: whatever the sender does, it can stop. */
	atomic_store(&c.stop, true);
	pthread_join(rt, NULL);
	pthread_join(st, NULL);
	close(c.fd);
	if (c.rx_result == O_GRACEFUL && !(c.end_sent && !c.tx_broken))
		w->outcome = O_EOF;	/* ours did not get through */
	else
		w->outcome = c.rx_result;
	atomic_store(&w->state, W_DONE);
	_exit(atomic_load(&w->failed) ? 1 : 0);
}

/* ---- the parent ---- */

static struct {
	uint64_t records, bytes;
	unsigned int conns, killed, graceful, failures;
	unsigned int lost, dup, reord, corrupt;
	unsigned int peer_abrupt, peer_reset, peer_graceful, nohello, never;
	unsigned int connect_retries, connect_timeouts, enobufs;
	uint32_t kill_ids[MAX_IDS];		/* connections we killed */
	unsigned int nkill_ids;
	uint32_t abrupt_ids[MAX_IDS];		/* ended under us */
	unsigned int nabrupt_ids;
} st;

static uint32_t next_conn;

static int start_worker(int fd, int cslot, bool wind_down)
{
	int i = nworkers;
	uint32_t conn = 0;
	pid_t pid;

	if (i == MAX_WORKERS)
		return -1;
	if (fd < 0)
		conn = (role == 'b' ? ID_B : 0) | ++next_conn;
	memset(&slots[i], 0, sizeof(slots[i]));
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		diag("fork: %s", strerror(errno));
		return -1;
	}
	if (!pid)
		worker_main(&slots[i], fd, conn);
	nworkers++;
	workers[i] = (struct worker){ .pid = pid, .cslot = cslot,
				      .live = true };
	if (wind_down) {
		workers[i].wound = true;
		kill(pid, SIGUSR1);
	}
	return i;
}

static int live_workers(bool connectors_only)
{
	int i, n = 0;

	for (i = 0; i < nworkers; i++)
		n += workers[i].live &&
		     (!connectors_only || workers[i].cslot >= 0);
	return n;
}

/* Account for worker @i, which has exited with wait status @ws. */
static void reaped(int i, int ws)
{
	struct worker *wk = &workers[i];
	struct wslot *w = &slots[i];
	bool by_us = wk->action == A_KILL || wk->action == A_SELF;

	wk->live = false;
	st.records += atomic_load(&w->rx_records);
	st.bytes += atomic_load(&w->rx_bytes);
	st.lost += atomic_load(&w->lost);
	st.dup += atomic_load(&w->dup);
	st.reord += atomic_load(&w->reord);
	st.corrupt += atomic_load(&w->corrupt);
	st.connect_retries += w->connect_retries;
	st.connect_timeouts += w->connect_timeouts;
	st.enobufs += atomic_load(&w->enobufs);
	if (atomic_load(&w->state) >= W_ESTABLISHED)
		st.conns++;
	/* A violation it found before we killed it still counts. */
	if (atomic_load(&w->failed)) {
		st.failures++;
		diag("worker %d (pid %d): %s", i, wk->pid, w->err);
		return;
	}
	if (by_us && ((WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL) ||
		      (WIFEXITED(ws) && WEXITSTATUS(ws) == SELF_EXIT)))
		return;		/* counted when we did it */
	if (WIFSIGNALED(ws) || !WIFEXITED(ws) ||
	    (WEXITSTATUS(ws) != 0 && WEXITSTATUS(ws) != 1)) {
		st.failures++;
		diag("worker %d (pid %d, conn %u): died, wait status 0x%x%s%s",
		     i, wk->pid, w->conn, ws, w->err[0] ? ": " : "", w->err);
		return;
	}
	if (WEXITSTATUS(ws) == 1) {
		st.failures++;
		diag("worker %d (pid %d): failed", i, wk->pid);
		return;
	}
	switch (w->outcome) {
	case O_GRACEFUL:
		if (wk->action != A_GRACE && !wk->wound)
			st.peer_graceful++;
		break;
	case O_EOF:
	case O_RESET:
		/* Fine only if the other guest killed it: checked later. */
		st.peer_abrupt++;
		st.peer_reset += w->outcome == O_RESET;
		if (st.nabrupt_ids < MAX_IDS)
			st.abrupt_ids[st.nabrupt_ids++] = w->conn;
		break;
	case O_NOHELLO:
		st.nohello++;
		break;
	case O_NEVER:
		st.never++;
		break;
	default:
		st.failures++;
		diag("worker %d (conn %u): no outcome", i, w->conn);
	}
}

/* Reap what has exited; replace connectors while @replace. */
static void reap_all(bool replace)
{
	int ws, i;
	pid_t pid;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
		for (i = 0; i < nworkers && workers[i].pid != pid; i++)
			;
		if (i == nworkers)
			continue;
		reaped(i, ws);
		if (replace && workers[i].cslot >= 0 &&
		    start_worker(-1, workers[i].cslot, false) < 0)
			st.failures++;
	}
}

/*
 * Restart one of our established workers. The actions take turns, so
 * that a short run has both kinds: kill, graceful, abrupt exit, graceful.
 */
static void restart_one(uint64_t *rs, unsigned int turn)
{
	int cand[MAX_WORKERS], n = 0, i;
	struct worker *wk;

	for (i = 0; i < nworkers; i++)
		if (workers[i].live && workers[i].action == A_NONE &&
		    atomic_load(&slots[i].state) == W_ESTABLISHED)
			cand[n++] = i;
	if (!n)
		return;
	i = cand[rnd(rs) % (unsigned int)n];
	wk = &workers[i];
	switch (turn % 4) {
	case 0:
	case 2:
		wk->action = turn % 4 ? A_SELF : A_KILL;
		kill(wk->pid, turn % 4 ? SIGUSR2 : SIGKILL);
		st.killed++;
		if (st.nkill_ids < MAX_IDS)
			st.kill_ids[st.nkill_ids++] = slots[i].conn;
		break;
	default:
		wk->action = A_GRACE;
		kill(wk->pid, SIGUSR1);
		st.graceful++;
	}
}

/* ---- control connection ---- */

enum { C_HELLO = 1, C_GO, C_CONN_DONE, C_DONE };

struct ctl_msg {
	uint32_t magic, type, a, n;
	uint32_t ids[MAX_IDS];
};
#define CTL_MAGIC	0x534f414bu	/* "SOAK" */
#define CTL_LEN(n)	(offsetof(struct ctl_msg, ids) + (n) * sizeof(uint32_t))

static bool ctl_send(uint32_t type, uint32_t a, const uint32_t *ids,
		     unsigned int n)
{
	static struct ctl_msg m;
	size_t len = CTL_LEN(n);

	m.magic = CTL_MAGIC;
	m.type = type;
	m.a = a;
	m.n = n;
	if (n)
		memcpy(m.ids, ids, n * sizeof(uint32_t));
	return send(ctl, &m, len, MSG_NOSIGNAL) == (ssize_t)len;
}

/* One message from the other guest: its type, 0 on EOF/reset, -1 bad. */
static int ctl_recv(struct ctl_msg *m)
{
	ssize_t n = recv(ctl, m, sizeof(*m), 0);

	if (n == 0 || (n < 0 && errno == ECONNRESET))
		return 0;
	if (n < (ssize_t)CTL_LEN(0) || m->magic != CTL_MAGIC ||
	    m->n > MAX_IDS || (size_t)n != CTL_LEN(m->n)) {
		diag("control: bad message (%zd bytes): %s", n,
		     n < 0 ? strerror(errno) : "");
		return -1;
	}
	return (int)m->type;
}

/* a: accept the control connection; b: find a and connect. */
static bool join_peer(unsigned int soak_s)
{
	static struct ctl_msg m;
	uint64_t end = ivshm_now_ms() + PEER_WAIT_MS;
	struct ivshmem_peer p;
	socklen_t plen = sizeof(p);
	unsigned int vm;
	int cl;

	if (role == 'a') {
		struct pollfd pfd;

		cl = ivshm_listen_on(af, CTRL_PORT, IVSHMEM_DEV_ANY, 1);
		if (cl < 0) {
			diag("control: listen: %s", strerror(errno));
			return false;
		}
		pfd = (struct pollfd){ .fd = cl, .events = POLLIN };
		if (poll(&pfd, 1, PEER_WAIT_MS) == 1)
			ctl = accept(cl, NULL, NULL);
		close(cl);
		if (ctl < 0) {
			diag("control: guest b did not connect within %d s",
			     PEER_WAIT_MS / 1000);
			return false;
		}
	} else {
		while (ctl < 0 && ivshm_now_ms() < end) {
			for (vm = 0; vm < 64 && ctl < 0; vm++)
				if (vm != me)
					ctl = ivshm_connect_to(af, vm,
							       CTRL_PORT,
							       IVSHMEM_DEV_ANY);
			if (ctl < 0)
				ivshm_sleep_ms(200);
		}
		if (ctl < 0) {
			diag("control: no guest a answered within %d s",
			     PEER_WAIT_MS / 1000);
			return false;
		}
	}
	set_timeo(ctl, SO_RCVTIMEO, PEER_WAIT_MS);
	set_timeo(ctl, SO_SNDTIMEO, PEER_WAIT_MS);
	if (getsockopt(ctl, SOL_IVSHMEM, IVSHMEM_PEER, &p, &plen)) {
		diag("control: IVSHMEM_PEER: %s", strerror(errno));
		return false;
	}
	peer_vm = p.vm;
	/* b says hello, a says go: both listen on DATA_PORT by now. */
	if (role == 'b') {
		if (!ctl_send(C_HELLO, soak_s, NULL, 0) ||
		    ctl_recv(&m) != C_GO) {
			diag("control: no go from guest a");
			return false;
		}
	} else {
		if (ctl_recv(&m) != C_HELLO || !ctl_send(C_GO, 0, NULL, 0)) {
			diag("control: no hello from guest b");
			return false;
		}
		if (m.a != soak_s)
			diag("guest b soaks for %u s, we for %u", m.a, soak_s);
	}
	return true;
}

/*
 * The soak itself and its wind-down. Returns with every worker reaped, or
 * false when the other guest or the wind-down failed.
 */
static bool soak(unsigned int soak_s, struct ctl_msg *peer_done)
{
	uint64_t rs = seed, now = ivshm_now_ms();
	uint64_t deadline = now + soak_s * 1000ull, next_restart;
	uint64_t give_up = deadline + WIND_DOWN_MS;
	bool winding = false, conn_done_sent = false, peer_conn_done = false;
	bool done_sent = false, peer_done_got = false;
	unsigned int turn = 0;
	struct pollfd pfd[2];
	int i, fd, t;

	next_restart = now + 1000 + rnd(&rs) % 2000;
	for (i = 0; i < NCONN; i++)
		if (start_worker(-1, i, false) < 0)
			return false;
	for (;;) {
		now = ivshm_now_ms();
		if (!winding && now >= deadline) {
			/* Stop restarting; end every worker gracefully. */
			winding = true;
			for (i = 0; i < nworkers; i++) {
				if (!workers[i].live)
					continue;
				workers[i].wound = true;
				kill(workers[i].pid, SIGUSR1);
			}
		}
		if (!winding && now >= next_restart) {
			restart_one(&rs, turn++);
			next_restart = now + 1000 + rnd(&rs) % 2000;
		}
		reap_all(!winding);
		if (winding && !conn_done_sent && !live_workers(true)) {
			if (!ctl_send(C_CONN_DONE, 0, NULL, 0)) {
				diag("control: send: %s", strerror(errno));
				return false;
			}
			conn_done_sent = true;
		}
		pfd[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = ctl, .events = POLLIN };
		if (poll(pfd, 2, 100) < 0 && errno != EINTR)
			return false;
		if (pfd[0].revents & POLLIN) {
			fd = accept(lfd, NULL, NULL);
			if (fd >= 0) {
				if (start_worker(fd, -1, winding) < 0)
					st.failures++;
				/* Only the worker may hold it. */
				close(fd);
			} else if (errno != EAGAIN) {
				diag("accept: %s", strerror(errno));
				st.failures++;
			}
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			t = ctl_recv(peer_done);
			if (t == C_CONN_DONE) {
				peer_conn_done = true;
			} else if (t == C_DONE) {
				peer_done_got = true;
			} else {
				diag("control: the other guest went away (%d) %s",
				     t, winding ? "while winding down" :
				     "during the soak");
				return false;
			}
		}
		/*
		 * The other guest's connectors are gone, so no connection
		 * will come; ours are gone and our acceptors too; and the
		 * accept queue is empty (a late connection whose connect
		 * timed out would be there): we are done.
		 */
		if (!done_sent && conn_done_sent && peer_conn_done &&
		    !live_workers(false) && !(pfd[0].revents & POLLIN)) {
			if (!ctl_send(C_DONE, st.connect_timeouts, st.kill_ids,
				      st.nkill_ids)) {
				diag("control: send: %s", strerror(errno));
				return false;
			}
			done_sent = true;
		}
		if (done_sent && peer_done_got)
			return true;
		if (now > give_up) {
			diag("wind-down took longer than %d s: %d workers left, connectors done %d/%d",
			     WIND_DOWN_MS / 1000, live_workers(false),
			     conn_done_sent, peer_conn_done);
			for (i = 0; i < nworkers; i++)
				if (workers[i].live)
					diag("  worker %d pid %d conn %u state %d",
					     i, workers[i].pid, slots[i].conn,
					     atomic_load(&slots[i].state));
			return false;
		}
	}
}

/* Every connection that ended abruptly under us was killed over there. */
static unsigned int unexplained(const struct ctl_msg *peer_done)
{
	unsigned int i, j, bad = 0;

	for (i = 0; i < st.nabrupt_ids; i++) {
		for (j = 0; j < peer_done->n; j++)
			if (peer_done->ids[j] == st.abrupt_ids[i])
				break;
		if (j == peer_done->n) {
			if (bad < 10)
				diag("conn %u ended abruptly, but the other guest did not kill it",
				     st.abrupt_ids[i]);
			bad++;
		}
	}
	return bad;
}

/*
 * Once everything is closed on both sides: the module holds no socket
 * more than before we started, and the data area is all free again.
 */
static bool all_released(long refs0, char *why, size_t len)
{
	uint64_t end = ivshm_now_ms() + SETTLE_MS;
	long long total = ivshm_dev_attr_ll("ivshm0", "info", "data_blocks");
	long long fb, bf, act;
	long refs;

	do {
		refs = ivshm_module_refs("af_ivshmem");
		fb = ivshm_dev_attr_ll("ivshm0", "info", "free_blocks");
		bf = ivshm_dev_attr_ll("ivshm0", "info", "bitmap_free");
		act = ivshm_dev_attr_ll("ivshm0", "info", "active_channels");
		if (refs == refs0 && total > 0 && fb == total &&
		    bf == total && !act)
			return true;
		ivshm_sleep_ms(200);
	} while (ivshm_now_ms() < end);
	snprintf(why, len, "module references %ld (%ld before), data_blocks %lld, free_blocks %lld, bitmap_free %lld, active_channels %lld",
		 refs, refs0, total, fb, bf, act);
	return false;
}

/* Channels of ours resized so far (rebalancing), or -1. */
static long long resizes(void)
{
	long long g = ivshm_dev_attr_ll("ivshm0", "doorbells", "grown");
	long long s = ivshm_dev_attr_ll("ivshm0", "doorbells", "shrunk");

	return g < 0 || s < 0 ? -1 : g + s;
}

int main(int argc, char **argv)
{
	static struct ctl_msg peer_done;
	unsigned int soak_s = (unsigned int)ivshm_cmdline_ull("soak_s", 60);
	/*
	 * A floor far below what even the debug kernel moves (about 1000
	 * records a second per guest under TCG), far above a stall.
	 */
	unsigned int bad, min_records = 50 * soak_s;
	long long resized;
	uint64_t start = ivshm_now_ms();
	long refs0;
	bool ok;
	sigset_t set;
	char why[256];
	int i;

	if (argc != 2 || (strcmp(argv[1], "a") && strcmp(argv[1], "b"))) {
		fprintf(stderr, "usage: soak_test a|b\n");
		return 2;
	}
	role = argv[1][0];
	af = ivshm_family();
	if (af < 0) {
		fprintf(stderr, "soak_test: af_ivshmem is not loaded\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	/* Workers inherit these blocked; they take them by sigtimedwait. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	slots = mmap(NULL, MAX_WORKERS * sizeof(*slots),
		     PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (slots == MAP_FAILED) {
		perror("soak_test: mmap");
		return 1;
	}
	me = (unsigned int)ivshm_dev_attr_ll("ivshm0", "info", "own_id");
	seed = mix64(ivshm_cmdline_ull("token", 1) ^ (uint64_t)role << 56);
	refs0 = ivshm_module_refs("af_ivshmem");

	printf("1..5\n");
	diag("soak: guest %c, VM %u, %u s, seed 0x%llx", role, me, soak_s,
	     (unsigned long long)seed);
	/*
	 * Rebalance often, so that channels are resized (moved) all the
	 * time while their peers are killed: every 10 doorbells.
	 */
	if (ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE_INTERVAL, 10))
		diag("cannot set rebalance-interval");
	lfd = ivshm_listen_on(af, DATA_PORT, IVSHMEM_DEV_ANY, 64);
	if (lfd < 0) {
		tap(false, 1, "soak: listen on port %d: %s", DATA_PORT,
		    strerror(errno));
		return 1;
	}
	ok = join_peer(soak_s);
	tap(ok, 1, "soak: the other guest joined (VM %u), within %llu s",
	    peer_vm, (unsigned long long)(ivshm_now_ms() - start) / 1000);
	if (!ok)
		return 1;

	start = ivshm_now_ms();
	resized = resizes();
	ok = soak(soak_s, &peer_done);
	resized = resizes() - resized;
	if (!ok) {
		/* Take everything down, bounded, before reporting. */
		for (i = 0; i < nworkers; i++)
			if (workers[i].live)
				kill(workers[i].pid, SIGKILL);
		for (i = 0; i < nworkers; i++) {
			int ws;

			if (workers[i].live &&
			    waitpid(workers[i].pid, &ws, 0) == workers[i].pid)
				reaped(i, ws);
		}
	}
	close(lfd);
	close(ctl);

	printf("soak: %llu records checked (%llu bytes) on %u connections, %u restarts (%u killed, %u graceful), %u lost, %u duplicated, %u reordered\n",
	       (unsigned long long)st.records, (unsigned long long)st.bytes,
	       st.conns, st.killed + st.graceful, st.killed, st.graceful,
	       st.lost, st.dup, st.reord);
	diag("soak: %llu s; the other guest's restarts ended %u of our connections abruptly (%u ECONNRESET, %u end of file), %u gracefully; %u damaged records; %u workers failed",
	     (unsigned long long)(ivshm_now_ms() - start) / 1000,
	     st.peer_abrupt, st.peer_reset, st.peer_abrupt - st.peer_reset,
	     st.peer_graceful, st.corrupt, st.failures);
	diag("soak: connects retried %u times (refused or ENOBUFS), %u timed out; %u accepted connections closed before their hello; %u connectors never connected; %u sends retried after ENOBUFS; %lld channel resizes",
	     st.connect_retries, st.connect_timeouts, st.nohello, st.never,
	     st.enobufs, resized);
	tap(ok && !st.failures && !st.lost && !st.dup && !st.reord &&
	    !st.corrupt, 2,
	    "soak: every record on every connection came whole, once and in order; graceful ends matched their END counts");
	bad = ok ? unexplained(&peer_done) : 0;
	/* A connection closed before its hello: the other side's connect
	 * timed out, and it says how often that happened.
	 */
	tap(ok && !bad && st.nohello <= peer_done.a, 3,
	    "soak: every connection that ended abruptly was killed by the other guest (%u unexplained, %u closed before their hello)",
	    bad, st.nohello);
	tap(ok && st.records >= min_records && st.killed && st.graceful &&
	    st.peer_abrupt + st.peer_graceful, 4,
	    "soak: at least %u records checked, restarts of both kinds here and by the other guest",
	    min_records);
	ok = all_released(refs0, why, sizeof(why));
	tap(ok, 5, "soak: no socket left, the data area whole again%s%s",
	    ok ? "" : ": ", ok ? "" : why);
	ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE_INTERVAL, 100);
	munmap(slots, MAX_WORKERS * sizeof(*slots));
	return failed ? 1 : 0;
}
