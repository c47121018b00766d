// SPDX-License-Identifier: GPL-2.0
/*
 * region_bench: what the region itself gives two guests, without
 * af_ivshmem, for `make bench` (the bench-raw placement: two guests with
 * ivshmem-plain devices on one region, the module not loaded). Both map
 * BAR2 through the PCI resource file in sysfs and run, side by side:
 *
 *   raw-ring     the ceiling: the region core's ring (the very sources the
 *                module compiles: layout.c, alloc.c, ring.c) from user
 *                space, one channel per sender and one back, each end
 *                spinning as bench_ring does natively: no system call, no
 *                doorbell, no socket, no wake-up. AF_IVSHMEM / raw-ring is
 *                what the socket layer costs under the same emulation.
 *   lock-buffer  the design the seed replaces: one buffer in the region
 *                guarded by one lock word, records copied in and out with
 *                the lock held. The lock spins (test and test-and-set): a
 *                futex cannot wake a waiter in another VM. Every sender of
 *                a scale run shares the one buffer, as the seed's
 *                producers share theirs.
 *
 * Tests, as net_bench's, with the same record sizes and the same
 * ivshm.bench_ms, ivshm.bench_warmup_ms and ivshm.bench_reps:
 *
 *   stream  one sender, records of one size as fast as it can;
 *   rtt-busy  one record each way at a time (p50, p99), both ends
 *           spinning: reported beside AF_IVSHMEM's round trips with busy
 *           polling on both ends, the like for like;
 *   scale   1 and 8 senders (threads) of 4 KiB records at once.
 *
 * Senders copy each record in from a private buffer and the receiver
 * copies it out into one, as sendmsg and recvmsg would. Every record
 * starts with its phase (warm-up, timed, end) and its sender's number;
 * the receiver checks both and the length, and times the timed records
 * from the first to the last end marker.
 *
 *   region_bench a  the receiving (and echoing) guest: initialises the
 *                   region, makes the channels and the lock buffers, and
 *                   serves the commands b writes in the control block
 *   region_bench b  the driving guest: prints "benchcsv,..." lines (the
 *                   fields of RAW_FIELDS in scripts/bench-report.py)
 *
 * The two guests trust each other here: this measures, it does not
 * defend. Every wait still has a deadline (WAIT_S), so a guest that
 * stops makes the other fail instead of spinning forever.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#include "core.h"
#include "proto.h"

/*
 * From selftests/ivshmem/ivshm_test.c, whose header would bring the
 * kernel's types in beside the region core's user-space ones.
 */
unsigned long long ivshm_cmdline_ull(const char *key, unsigned long long def);
const char *ivshm_pci_device(void);
void *ivshm_map_bar(int bar, size_t *len);
int ivshm_family(void);

#define MAX_SIZE	65536
#define SCALE_SIZE	4096
#define MAX_PROD	8
#define RTT_WARMUP	50
#define RTT_MIN		100
#define RTT_MAX		5000
#define WAIT_S		120
#define SPINS		64	/* cpu_relax() rounds before a sched_yield() */
#define RING_BYTES	(2u << 20)
#define LOCK_BYTES	(2u << 20)
#define REC_HDR		8	/* lock-buffer record header: the length */
#define CTL_MAGIC	0x52424e43u	/* "RBNC" */

enum kind { K_RAW, K_LOCK };
enum { OP_STREAM = 1, OP_ECHO = 2, OP_QUIT = 3 };
enum { PH_WARM = 0, PH_TIMED = 1, PH_END = 2 };

static const char *const kind_name[] = { "raw-ring", "lock-buffer" };
static const unsigned int sizes[] = { 64, 256, 1024, 4096, 16384, 65536 };
static const unsigned int prod_counts[] = { 1, MAX_PROD };

/*
 * The lock buffer: a byte ring of records (an 8-byte length, then the
 * payload, padded to 8 bytes), head and tail counting bytes ever written
 * and read. Records, head and tail are written only with the lock held;
 * head and tail are stored with release and may be looked at without the
 * lock (acquire), so that a reader with nothing to read and a writer with
 * no room wait without taking the lock from the other side, as a careful
 * user of such a buffer would.
 */
struct lock_buf {
	uint32_t lock;
	uint32_t size;
	uint64_t head;
	uint64_t tail;
	uint8_t pad[40];
	uint8_t data[];
};

/*
 * The control block, in the first block of the data area (offset 0). b writes a
 * command and then bumps cmd_seq (release); a answers with ack_seq when
 * it is ready to receive, and done_seq once the results are in.
 */
struct ctl {
	uint32_t magic;			/* CTL_MAGIC once a has set up */
	uint32_t cmd_seq, ack_seq, done_seq;
	uint32_t op, kind, size, nprod;
	uint64_t records, ns;		/* a's results */
	uint32_t chan[MAX_PROD + 1];	/* [i] sender i to a; [MAX_PROD] back */
	uint64_t lock_off[2];		/* b to a, a to b; data-area offsets */
};

struct side {
	struct ivshm_layout l;
	uint8_t *base;
	size_t len;
	struct ctl *ctl;
	struct ivshm_ring ring[MAX_PROD + 1];
	struct lock_buf *lb[2];
};

static struct side me;
static unsigned long long bench_ms, warmup_ms, reps;

static void die(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fflush(stdout);
	fprintf(stderr, "region_bench: %s\n", msg);
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void relax(unsigned int *spins)
{
	if (++*spins % SPINS)
		__builtin_ia32_pause();
	else
		sched_yield();
}

/*
 * relax() for a wait that began at @since: die once it has lasted WAIT_S,
 * the other guest being gone. The clock is read every 4096 spins.
 */
static void relax_until(unsigned int *spins, uint64_t *since,
			const char *what)
{
	relax(spins);
	if (*spins % 4096)
		return;
	if (!*since)
		*since = now_ns();
	else if (now_ns() - *since > WAIT_S * 1000000000ull)
		die("%s: nothing for %d s", what, WAIT_S);
}

/* Spin until *@p equals @want; die after WAIT_S. */
static void wait_u32(const uint32_t *p, uint32_t want, const char *what)
{
	unsigned int spins = 0;
	uint64_t since = 0;

	while (__atomic_load_n(p, __ATOMIC_ACQUIRE) != want)
		relax_until(&spins, &since, what);
}

/* --- the lock buffer ----------------------------------------------------- */

static void lb_lock(struct lock_buf *b)
{
	unsigned int spins = 0;
	uint64_t since = 0;

	for (;;) {
		if (!__atomic_exchange_n(&b->lock, 1, __ATOMIC_ACQUIRE))
			return;
		while (__atomic_load_n(&b->lock, __ATOMIC_RELAXED))
			relax_until(&spins, &since, "lock buffer: the lock");
	}
}

static void lb_unlock(struct lock_buf *b)
{
	__atomic_store_n(&b->lock, 0, __ATOMIC_RELEASE);
}

/* Copy @len bytes at ring position @pos of @b, wrapping. */
static void lb_copy_in(struct lock_buf *b, uint64_t pos, const void *src,
		       size_t len)
{
	size_t off = pos % b->size, first = b->size - off;

	if (first > len)
		first = len;
	memcpy(b->data + off, src, first);
	memcpy(b->data, (const uint8_t *)src + first, len - first);
}

static void lb_copy_out(struct lock_buf *b, uint64_t pos, void *dst,
			size_t len)
{
	size_t off = pos % b->size, first = b->size - off;

	if (first > len)
		first = len;
	memcpy(dst, b->data + off, first);
	memcpy((uint8_t *)dst + first, b->data, len - first);
}

static uint64_t lb_span(size_t len)
{
	return REC_HDR + ((len + 7) & ~(uint64_t)7);
}

static void lb_send(struct lock_buf *b, const void *src, size_t len)
{
	uint64_t hdr = len, need = lb_span(len), since = 0;
	unsigned int spins = 0;

	for (;;) {
		/* Full: wait for room without the lock. */
		if (b->size - (__atomic_load_n(&b->head, __ATOMIC_RELAXED) -
			       __atomic_load_n(&b->tail, __ATOMIC_ACQUIRE)) < need) {
			relax_until(&spins, &since, "lock buffer: room");
			continue;
		}
		lb_lock(b);
		if (b->size - (b->head - b->tail) >= need) {
			lb_copy_in(b, b->head, &hdr, sizeof(hdr));
			lb_copy_in(b, b->head + REC_HDR, src, len);
			__atomic_store_n(&b->head, b->head + need,
					 __ATOMIC_RELEASE);
			lb_unlock(b);
			return;
		}
		lb_unlock(b);
		relax_until(&spins, &since, "lock buffer: room");
	}
}

/* The next record into @dst (@cap bytes): its length, or -1 if none. */
static long lb_recv(struct lock_buf *b, void *dst, size_t cap)
{
	uint64_t hdr;

	/* Empty: look again later, without taking the lock. */
	if (__atomic_load_n(&b->head, __ATOMIC_ACQUIRE) ==
	    __atomic_load_n(&b->tail, __ATOMIC_RELAXED))
		return -1;
	lb_lock(b);
	if (b->head == b->tail) {
		lb_unlock(b);
		return -1;
	}
	lb_copy_out(b, b->tail, &hdr, sizeof(hdr));
	if (hdr > cap || lb_span(hdr) > b->head - b->tail) {
		lb_unlock(b);
		die("lock buffer: a record of %llu bytes", (unsigned long long)hdr);
	}
	lb_copy_out(b, b->tail + REC_HDR, dst, hdr);
	__atomic_store_n(&b->tail, b->tail + lb_span(hdr), __ATOMIC_RELEASE);
	lb_unlock(b);
	return (long)hdr;
}

/* --- one record, either way ------------------------------------------------ */

static void raw_send(struct ivshm_ring *r, const void *src, uint32_t len)
{
	struct ivshm_span span;
	unsigned int spins = 0;
	uint64_t since = 0;
	int ret;

	while ((ret = ivshm_tx_reserve(r, len, IVSHM_REC_DATA, 0, &span)) ==
	       -EAGAIN)
		relax_until(&spins, &since, "raw ring: room");
	if (ret)
		die("ivshm_tx_reserve: %d", ret);
	ivshm_span_write(&span, src);
	ivshm_tx_commit(r);
}

static long raw_recv(struct ivshm_ring *r, void *dst, size_t cap)
{
	struct ivshm_rec rec;
	int ret = ivshm_rx_peek(r, &rec);

	if (ret == -EAGAIN)
		return -1;
	if (ret || rec.type != IVSHM_REC_DATA || rec.len > cap)
		die("ivshm_rx_peek: %d, type %u, %u bytes", ret, rec.type,
		    rec.len);
	ivshm_span_read(&rec.span, dst);
	ivshm_rx_release(r);
	return rec.len;
}

static void send_rec(enum kind k, int lane, const void *src, uint32_t len)
{
	if (k == K_RAW)
		raw_send(&me.ring[lane], src, len);
	else
		lb_send(me.lb[lane == MAX_PROD], src, len);
}

/* Spin until a record comes on @lane; its length. */
static long recv_rec(enum kind k, int lane, void *dst, size_t cap)
{
	unsigned int spins = 0;
	uint64_t since = 0;
	long n;

	for (;;) {
		n = k == K_RAW ? raw_recv(&me.ring[lane], dst, cap) :
				 lb_recv(me.lb[lane == MAX_PROD], dst, cap);
		if (n >= 0)
			return n;
		relax_until(&spins, &since, kind_name[k]);
	}
}

/* --- a: set up, then serve ------------------------------------------------ */

static uint32_t new_chan(uint32_t from, uint32_t to, uint32_t bytes)
{
	struct ivshm_chan *ch;
	uint32_t idx;
	uint64_t off;

	if (ivshm_chan_alloc(&me.l, &idx) ||
	    ivshm_blocks_alloc(&me.l, bytes >> IVSHM_BLOCK_SHIFT, &off))
		die("no room for a channel of %u bytes", bytes);
	ch = ivshm_chan(&me.l, idx);
	ivshm_put16(&ch->sender_vm, (uint16_t)from);
	ivshm_put16(&ch->receiver_vm, (uint16_t)to);
	ivshm_put64(&ch->buff_offset, off);
	ivshm_put32(&ch->buff_size, bytes);
	ivshm_put32(&ch->state, IVSHM_CHAN_OPEN);
	return idx;
}

static uint64_t new_lock_buf(void)
{
	uint64_t off;
	struct lock_buf *b;

	if (ivshm_blocks_alloc(&me.l, (LOCK_BYTES >> IVSHM_BLOCK_SHIFT) + 1,
			       &off))
		die("no room for a lock buffer");
	b = (struct lock_buf *)(me.base + me.l.data_off + off);
	memset(b, 0, sizeof(*b));
	b->size = LOCK_BYTES;
	return off;
}

static void attach_all(void)
{
	int i;

	for (i = 0; i <= MAX_PROD; i++) {
		struct ivshm_chan *ch = ivshm_chan(&me.l, me.ctl->chan[i]);

		if (ivshm_ring_init(&me.ring[i], &me.l, me.ctl->chan[i],
				    ivshm_get64(&ch->buff_offset),
				    ivshm_get32(&ch->buff_size)) ||
		    ivshm_ring_max_record(&me.ring[i]) < MAX_SIZE)
			die("channel %u: no ring for %u-byte records",
			    me.ctl->chan[i], MAX_SIZE);
	}
	for (i = 0; i < 2; i++)
		me.lb[i] = (struct lock_buf *)(me.base + me.l.data_off +
					       me.ctl->lock_off[i]);
}

static void setup_a(void)
{
	const char *why;
	uint64_t off;
	int i, ret;

	ret = ivshm_region_open(&me.l, me.base, me.len, 0, &why);
	if (ret != IVSHM_OPEN_INITIALISED)
		die("the region is not fresh: %d (%s)", ret, why);
	if (ivshm_ctrl_trylock(&me.l, 0, 1, NULL))
		die("the control lock of a fresh region is taken");
	if (ivshm_blocks_alloc(&me.l, 1, &off) || off)
		die("the control block is not the first of the data area");
	me.ctl = (struct ctl *)(me.base + me.l.data_off);
	memset(me.ctl, 0, sizeof(*me.ctl));
	for (i = 0; i < MAX_PROD; i++)
		me.ctl->chan[i] = new_chan(1, 0, RING_BYTES);
	me.ctl->chan[MAX_PROD] = new_chan(0, 1, RING_BYTES);
	me.ctl->lock_off[0] = new_lock_buf();
	me.ctl->lock_off[1] = new_lock_buf();
	ivshm_ctrl_unlock(&me.l, 0, 1);
	attach_all();
	__atomic_store_n(&me.ctl->magic, CTL_MAGIC, __ATOMIC_RELEASE);
}

/*
 * Receive until every sender's end marker: the timed records and the time
 * from the first of them to the last end marker. Echo each back on
 * OP_ECHO.
 */
static void serve_one(uint8_t *buf)
{
	struct ctl *c = me.ctl;
	enum kind k = c->kind;
	uint32_t n = c->nprod, size = c->size, ended = 0, i, next = 0;
	uint64_t records = 0, t0 = 0, since = 0;
	bool end[MAX_PROD] = { false };
	unsigned int spins = 0;
	long len;

	while (ended < n) {
		/* Round robin over the rings; the lock buffer is one. */
		if (k == K_RAW) {
			i = next++ % n;
			if (end[i])
				continue;
		} else {
			i = 0;
		}
		len = k == K_RAW ? raw_recv(&me.ring[i], buf, MAX_SIZE) :
				   lb_recv(me.lb[0], buf, MAX_SIZE);
		if (len < 0) {
			relax_until(&spins, &since, kind_name[k]);
			continue;
		}
		since = 0;
		if ((uint32_t)len != size || buf[1] >= n ||
		    (k == K_RAW && buf[1] != i))
			die("%s: a record of %ld bytes from sender %u",
			    kind_name[k], len, buf[1]);
		if (buf[0] == PH_TIMED && !records++)
			t0 = now_ns();
		if (c->op == OP_ECHO)
			send_rec(k, MAX_PROD, buf, size);
		if (buf[0] == PH_END) {
			if (end[buf[1]])
				die("%s: two end markers from sender %u",
				    kind_name[k], buf[1]);
			end[buf[1]] = true;
			ended++;
		} else if (buf[0] != PH_TIMED && buf[0] != PH_WARM) {
			die("%s: a record of phase %u", kind_name[k], buf[0]);
		}
	}
	c->records = records;
	c->ns = records ? now_ns() - t0 : 0;
}

static int serve(void)
{
	uint8_t *buf = malloc(MAX_SIZE);
	uint32_t seq = 0;

	if (!buf)
		die("malloc");
	setup_a();
	for (;;) {
		/* b may still be booting before its first command. */
		uint64_t deadline = now_ns() + (seq ? 1 : 3) * WAIT_S *
					       1000000000ull;
		unsigned int spins = 0;

		while (__atomic_load_n(&me.ctl->cmd_seq, __ATOMIC_ACQUIRE) == seq) {
			/* Between commands b may be busy for a while: sleep. */
			if (++spins > 1000)
				usleep(1000);
			if (now_ns() > deadline)
				die("no command in time");
		}
		seq++;
		if (me.ctl->op == OP_QUIT)
			break;
		if (me.ctl->kind > K_LOCK || !me.ctl->nprod ||
		    me.ctl->nprod > MAX_PROD || me.ctl->size < 2 ||
		    me.ctl->size > MAX_SIZE)
			die("a bad command");
		__atomic_store_n(&me.ctl->ack_seq, seq, __ATOMIC_RELEASE);
		serve_one(buf);
		__atomic_store_n(&me.ctl->done_seq, seq, __ATOMIC_RELEASE);
	}
	__atomic_store_n(&me.ctl->done_seq, seq, __ATOMIC_RELEASE);
	free(buf);
	return 0;
}

/* --- b: drive, measure, print --------------------------------------------- */

static uint32_t seq;

static void command(uint32_t op, enum kind k, uint32_t size, uint32_t nprod)
{
	me.ctl->op = op;
	me.ctl->kind = k;
	me.ctl->size = size;
	me.ctl->nprod = nprod;
	__atomic_store_n(&me.ctl->cmd_seq, ++seq, __ATOMIC_RELEASE);
	if (op != OP_QUIT)
		wait_u32(&me.ctl->ack_seq, seq, "acknowledgement");
}

static void emit(enum kind k, const char *test, unsigned int size,
		 unsigned int conns, unsigned int rep, uint64_t records,
		 double seconds, double p50, double p99)
{
	double rate = seconds > 0 ? (double)records / seconds : 0;
	char f[2][32] = { "", "" };

	if (p50 >= 0) {
		snprintf(f[0], sizeof(f[0]), "%.4f", p50);
		snprintf(f[1], sizeof(f[1]), "%.4f", p99);
	}
	printf("benchcsv,two-guests,%s,%s,%u,%u,%u,%llu,%.6f,%.1f,%.1f,%s,%s,,\n",
	       kind_name[k], test, size, conns, rep,
	       (unsigned long long)records, seconds, rate, rate * size, f[0],
	       f[1]);
	if (p50 >= 0)
		printf("bench-progress: two-guests %s %s %u B x%u rep %u: p50 %.1f us, p99 %.1f us\n",
		       test, kind_name[k], size, conns, rep + 1, p50, p99);
	else
		printf("bench-progress: two-guests %s %s %u B x%u rep %u: %.0f records/s, %.1f MB/s\n",
		       test, kind_name[k], size, conns, rep + 1, rate,
		       rate * size / 1e6);
	fflush(stdout);
}

struct sender {
	pthread_t thread;
	enum kind k;
	unsigned int idx, size;
	uint64_t t_timed, t_end;
};

static void *sender(void *arg)
{
	struct sender *s = arg;
	uint8_t *buf = calloc(1, s->size);
	uint64_t t;

	if (!buf)
		die("malloc");
	buf[1] = (uint8_t)s->idx;
	/*
	 * At least one timed record, even when one send outlasted the whole
	 * window (a lock holder preempted on a busy host): the receiver then
	 * times what did arrive instead of failing.
	 */
	for (;;) {
		t = now_ns();
		if (t >= s->t_end && buf[0] == PH_TIMED)
			break;
		buf[0] = t >= s->t_timed ? PH_TIMED : PH_WARM;
		send_rec(s->k, (int)s->idx, buf, s->size);
	}
	buf[0] = PH_END;
	send_rec(s->k, (int)s->idx, buf, s->size);
	free(buf);
	return NULL;
}

static void run_stream(enum kind k, const char *test, unsigned int size,
		       unsigned int n, unsigned int rep)
{
	struct sender s[MAX_PROD];
	uint64_t t_timed, t_end;
	unsigned int i;

	command(OP_STREAM, k, size, n);
	t_timed = now_ns() + warmup_ms * 1000000ull;
	t_end = t_timed + bench_ms * 1000000ull;
	for (i = 0; i < n; i++) {
		s[i] = (struct sender){ .k = k, .idx = i, .size = size,
					.t_timed = t_timed, .t_end = t_end };
		if (pthread_create(&s[i].thread, NULL, sender, &s[i]))
			die("pthread_create");
	}
	for (i = 0; i < n; i++)
		pthread_join(s[i].thread, NULL);
	wait_u32(&me.ctl->done_seq, seq, "results");
	if (!me.ctl->records || !me.ctl->ns)
		die("%s: no timed record arrived", kind_name[k]);
	emit(k, test, size, n, rep, me.ctl->records,
	     (double)me.ctl->ns / 1e9, -1, -1);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void run_rtt(enum kind k, unsigned int size, unsigned int rep)
{
	static uint64_t ns[RTT_MAX];
	uint8_t *buf = calloc(1, MAX_SIZE), *back = malloc(MAX_SIZE);
	uint64_t t, t1, t_end = 0;
	unsigned int i, n = 0;
	double sum = 0;

	if (!buf || !back)
		die("malloc");
	command(OP_ECHO, k, size, 1);
	for (i = 0; n < RTT_MAX; i++) {
		buf[0] = i < RTT_WARMUP ? PH_WARM : PH_TIMED;
		if (i == RTT_WARMUP)
			t_end = now_ns() + bench_ms * 1000000ull;
		t = now_ns();
		send_rec(k, 0, buf, size);
		if (recv_rec(k, MAX_PROD, back, MAX_SIZE) != (long)size ||
		    back[0] != buf[0])
			die("%s: a wrong echo of %u bytes", kind_name[k], size);
		t1 = now_ns();
		if (i >= RTT_WARMUP) {
			ns[n++] = t1 - t;
			sum += (double)(t1 - t);
			if (t1 >= t_end && n >= RTT_MIN)
				break;
		}
	}
	buf[0] = PH_END;
	send_rec(k, 0, buf, size);
	if (recv_rec(k, MAX_PROD, back, MAX_SIZE) != (long)size ||
	    back[0] != PH_END)
		die("%s: no echo of the end marker", kind_name[k]);
	wait_u32(&me.ctl->done_seq, seq, "results");
	if (me.ctl->records != n)
		die("%s: %u round trips, %llu echoed", kind_name[k], n,
		    (unsigned long long)me.ctl->records);
	qsort(ns, n, sizeof(ns[0]), cmp_u64);
	/* Both ends spin: the counterpart of AF_IVSHMEM's busy polling. */
	emit(k, "rtt-busy", size, 1, rep, n, sum / 1e9,
	     (double)ns[n / 2] / 1e3, (double)ns[(n * 99) / 100] / 1e3);
	free(buf);
	free(back);
}

static void setup_b(void)
{
	/* a may still be booting. */
	uint64_t deadline = now_ns() + 3 * WAIT_S * 1000000000ull;
	const char *why;
	int ret;

	if (ivshm_layout_compute(&me.l, me.base, me.len))
		die("a region of %zu bytes", me.len);
	me.ctl = (struct ctl *)(me.base + me.l.data_off);
	/* Only a initialises: look, and open once it has. */
	while (__atomic_load_n(&me.ctl->magic, __ATOMIC_ACQUIRE) != CTL_MAGIC) {
		if (now_ns() > deadline)
			die("guest a set nothing up in %d s", 3 * WAIT_S);
		usleep(10000);
	}
	ret = ivshm_region_open(&me.l, me.base, me.len, 1, &why);
	if (ret != IVSHM_OPEN_ATTACHED)
		die("cannot attach: %d (%s)", ret, why);
	attach_all();
}

static int drive(void)
{
	const unsigned int nsz = sizeof(sizes) / sizeof(sizes[0]);
	unsigned int r, i, k;

	setup_b();
	printf("bench-progress: region: %u measurements of %llu ms (streams after %llu ms of warm-up), %llu repetitions\n",
	       (unsigned int)reps * 2 * (2 * nsz + 2), bench_ms, warmup_ms,
	       reps);
	for (r = 0; r < reps; r++) {
		for (i = 0; i < nsz; i++)
			for (k = K_RAW; k <= K_LOCK; k++)
				run_stream(k, "stream", sizes[i], 1, r);
		for (i = 0; i < nsz; i++)
			for (k = K_RAW; k <= K_LOCK; k++)
				run_rtt(k, sizes[i], r);
		for (i = 0; i < 2; i++)
			for (k = K_RAW; k <= K_LOCK; k++)
				run_stream(k, "scale", SCALE_SIZE,
					   prod_counts[i], r);
	}
	command(OP_QUIT, K_RAW, 2, 1);
	wait_u32(&me.ctl->done_seq, seq, "the end");
	return 0;
}

/*
 * BAR2, write-combining (resource2_wc, where the kernel has PAT) or else
 * uncached (resource2). The module maps it write-back (memremap), which
 * sysfs does not offer user space. TCG does not emulate the difference;
 * under KVM an uncached mapping would make a poor ceiling.
 */
static void *map_region(size_t *len)
{
	const char *dev = ivshm_pci_device();
	char path[600];
	off_t size;
	void *p;
	int fd;

	if (dev) {
		snprintf(path, sizeof(path), "%s/resource2_wc", dev);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd >= 0) {
			p = MAP_FAILED;
			/* sysfs gives the file the BAR's size. */
			size = lseek(fd, 0, SEEK_END);
			if (size > 0)
				p = mmap(NULL, (size_t)size,
					 PROT_READ | PROT_WRITE, MAP_SHARED,
					 fd, 0);
			close(fd);
			if (p != MAP_FAILED) {
				*len = (size_t)size;
				printf("region_bench: BAR2 through resource2_wc\n");
				return p;
			}
		}
	}
	printf("region_bench: BAR2 through resource2\n");
	return ivshm_map_bar(2, len);
}

int main(int argc, char **argv)
{
	const char *role = argc == 2 ? argv[1] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_ms = ivshm_cmdline_ull("bench_ms", 1000);
	warmup_ms = ivshm_cmdline_ull("bench_warmup_ms", 2000);
	reps = ivshm_cmdline_ull("bench_reps", 3);
	if (!bench_ms || !reps || (strcmp(role, "a") && strcmp(role, "b"))) {
		fprintf(stderr, "usage: region_bench a|b (ivshm.bench_ms and ivshm.bench_reps positive)\n");
		return 2;
	}
	if (ivshm_family() >= 0)
		die("af_ivshmem is loaded: the region is the module's");
	me.base = map_region(&me.len);
	if (!me.base)
		die("cannot map BAR2 of the ivshmem device: %s", strerror(errno));
	return strcmp(role, "a") ? drive() : serve();
}
