// SPDX-License-Identifier: GPL-2.0
/*
 * bench_ring: how fast is the region core's record ring, and how does it
 * compare with the physical limit and with the designs it replaces?
 *
 * Everything runs natively on this machine, in one run, against the very
 * same core sources the kernel module compiles (layout.c, alloc.c, ring.c),
 * built with portable -O2. Each figure is the median of --reps repetitions
 * (5) of about --seconds (0.4 s) each; the repetitions of the transports
 * being compared are interleaved, so that a slow drift of the machine hits
 * them all alike. Processes, not threads, as between two VMs: every
 * transport runs between separate processes that share nothing but the
 * mapping (or socket) under test, pinned with sched_setaffinity to the
 * first two CPUs we may use: the consumer on the first, the producer(s) on
 * the second.
 *
 * Every record is a payload of the nominal size (64 B, 1 KiB, 4 KiB,
 * 64 KiB) which the producer copies in from a private buffer and the
 * consumer copies out into a private buffer, as a socket's sendmsg and
 * recvmsg would. Each payload starts with a sequence number and the
 * producer's id and ends with a trailer word derived from both; the consumer
 * checks all three for every timed record, so a lost, repeated, reordered
 * or torn record fails the run. Before the timed repetitions of every
 * configuration, a verification pass sends a fixed number of records (at
 * least three times the ring's capacity, so it wraps) whose every byte is a
 * function of (sequence, producer, offset), and the consumer checks every
 * byte. Each run ends with an end-marker record per producer; the consumer
 * must have received exactly what the producers report having sent.
 *
 * The figures (bytes/s always count payload bytes only):
 *
 *   ring        the core's ring: a memfd region (4 MiB, or larger to hold
 *               the ring) initialised with ivshm_region_open() in the
 *               parent, one channel and its run taken under the control
 *               lock; the producer and the consumer map the memfd
 *               themselves, attach and ivshm_ring_init() from the
 *               descriptor. Producer: ivshm_tx_reserve(),
 *               ivshm_span_write(), ivshm_tx_commit(), which publishes
 *               every record, as one send() per record does; consumer:
 *               ivshm_rx_peek(), ivshm_span_read(), ivshm_rx_release().
 *               Both spin with cpu_relax() (PAUSE) on -EAGAIN and never
 *               sleep.
 *   ring-more   the same, but the producer queues with ivshm_tx_queue(),
 *               as a socket does for sendmsg(MSG_MORE) and for all but
 *               the last message of a sendmmsg(): the head is published
 *               once per batch (a quarter of the ring, at most 16 KiB) or
 *               when the ring is full, not once per record.
 *   memcpy      one process, one memcpy() per record of the same size, the
 *               source and destination cycling through one buffer of the
 *               ring's size (source in the first half, destination in the
 *               second, at the ring's record stride): the same working set
 *               as the ring, with no second core and no synchronisation.
 *               The ring copies twice per record, but on two cores at
 *               once, so a perfect ring would approach 1.0 of this.
 * Buffers: the ring, the mutex buffer, spsc-ref and the memcpy area all
 * have the same size: --ring (1 MiB), except that point to point the ring
 * holds at least 64 records (8 MiB for 64 KiB records), as the rebalancer
 * gives a channel that streams large records a larger run.
 *
 *   mutex-spin, the design being replaced: a buffer in a memfd shared
 *   mutex-cond  mapping as well, holding the same record format,
 *               guarded by one process-shared pthread mutex; records are
 *               copied in and out with the mutex held. mutex-spin polls:
 *               lock, find no room or no record, unlock, cpu_relax(),
 *               retry. mutex-cond sleeps on process-shared condition
 *               variables (not_full, not_empty) signalled on every record.
 *               Ratios use whichever of the two was faster in that
 *               configuration, to compare with the strongest baseline.
 *   AF_UNIX     socketpair(AF_UNIX, SOCK_SEQPACKET) between the same two
 *               processes, one send() and one recv() per record, blocking,
 *               SO_SNDBUF/SO_RCVBUF raised to net.core.[wr]mem_max (or
 *               --unix-buf with SO_*BUFFORCE).
 *   spsc-ref    a reference, not a target: the smallest ring that does
 *               the same job between trusting peers, written here (cached
 *               peer counter, payload then header, one release store per
 *               record, no validation, no descriptor bookkeeping), in the
 *               same kind of memfd buffer. ring / spsc-ref near 1
 *               means the core's own per-record work costs nothing
 *               measurable and the rest is the machine's coherence
 *               traffic.
 *
 * Scaling: N = 1, 2, 4, 8 producer processes, each with its own channel
 * (ring) and one consumer process draining every channel round-robin (up
 * to 64 records per channel per visit), against N producers sharing the
 * mutex buffer with one consumer. The rings together have the mutex
 * buffer's 1 MiB (1 MiB / N each), the same memory. With two CPUs every
 * producer runs on the second one, time-shared: a producer that finds its
 * ring (or the buffer) full then spins for a while and calls sched_yield()
 * every 256 attempts so the others can run; the consumer has a CPU of its
 * own and only spins. This is reported as is: aggregate records/s.
 *
 * Context printed with the figures, since on a shared or virtual machine
 * they move a lot: the round trip of one cache line between the two CPUs
 * (a ping-pong between two pinned processes) before and after the run, and
 * how many CPUs other processes and the host (steal time) kept busy during
 * each repetition, from /proc/stat minus our own rusage. A repetition
 * during which others used more than 0.1 CPU (or three clock ticks' worth)
 * is run again, up to twice; figures still disturbed are marked '!'.
 * The spread column, (max - min) / median, shows how stable each one is.
 *
 * --quick: 1 repetition of 0.05 s and shorter verification, for sanitizer
 * runs. The exit status is 0 whatever the targets say, 1 on a verification
 * failure, 2 on a setup error (including a child process or a file
 * descriptor left behind).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include "core.h"
#include "bench_util.h"

#define EXIT_VERIFY		1
#define EXIT_SETUP		2

#define REGION_SIZE		(4u << 20)	/* at least */
#define RING_BYTES		(1024u << 10)	/* default --ring */
#define MBUF_HDR		4096u
#define MAX_PROD		8
#define RR_BATCH		64		/* consumer: records per visit */
#define P2P_RECORDS		64		/* point to point: ring holds this many */
#define SHARED_YIELD		256		/* spins between sched_yield() */

#define END_SEQ			(~0ull)
#define TRAILER_TAG		0x5a17c0debe7cafe5ull

enum transport {
	T_RING,
	T_RING_MORE,
	T_MEMCPY,
	T_MUTEX_SPIN,
	T_MUTEX_COND,
	T_UNIX,
	T_SPSC,
	T_PINGPONG,
	T_NR,
};

static const char * const tname[T_NR] = {
	[T_RING] = "ring",
	[T_RING_MORE] = "ring-more",
	[T_MEMCPY] = "memcpy",
	[T_MUTEX_SPIN] = "mutex-spin",
	[T_MUTEX_COND] = "mutex-cond",
	[T_UNIX] = "AF_UNIX",
	[T_SPSC] = "spsc-ref",
	[T_PINGPONG] = "ping-pong",
};

static const uint32_t p2p_sizes[] = { 64, 1024, 4096, 65536 };
static const uint32_t scale_sizes[] = { 64, 4096 };
static const int scale_counts[] = { 1, 2, 4, 8 };

/* What the parent and its children share; one line per hot flag. */
struct ctl {
	__aligned(64) uint32_t ready;
	__aligned(64) uint32_t go;
	__aligned(64) uint32_t stop;
	__aligned(64) uint32_t abort;
	__aligned(64) uint64_t start_ns;		/* consumer */
	uint64_t end_ns;
	uint64_t received;
	uint64_t sent[MAX_PROD];		/* producers */
	uint32_t failed;
	char msg[256];

	/* calibration */
	__aligned(64) uint64_t ping;
	__aligned(64) uint64_t pong;
};

struct run_cfg {
	enum transport t;
	uint32_t len;			/* payload bytes per record */
	int nprod;
	bool verify;			/* fixed count, every byte checked */
	uint64_t count;			/* verify: records per producer */
	double seconds;			/* timed: producing time */
	unsigned int yield_every;	/* producers; 0: spin only */
};

/* The mutex buffer; the data follows at MBUF_HDR. */
struct mbuf {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	uint64_t head;			/* bytes written, under the lock */
	uint64_t tail;			/* bytes read, under the lock */
	uint32_t size;
};

struct bench {
	struct ctl *ctl;
	const struct run_cfg *cfg;
	int cpu_cons, cpu_prod;
	int prod_idx;			/* which producer a child is */
	uint32_t buf_bytes;		/* ring (all channels), buffers */
	uint32_t region_size;
	uint32_t ring_min;		/* --ring */
	/* ring and mutex buffer */
	int fd;
	uint32_t ring_bytes;		/* per channel */
	u32 chan[MAX_PROD];
	struct mbuf *mbuf;		/* the parent's mapping */
	/* AF_UNIX */
	int sv[2];
	int unix_buf;			/* 0: sysctl maximum */
	int sndbuf, rcvbuf;		/* effective */
	/* CPUs kept busy by others (and stolen) during the last run */
	double foreign;
	unsigned long spawned;		/* child processes, in all */
};

static __printf(3, 4) int fail(struct bench *b, int code, const char *fmt,
				 ...);

static int fail(struct bench *b, int code, const char *fmt, ...)
{
	struct ctl *ctl = b->ctl;
	va_list ap;

	if (!__atomic_exchange_n(&ctl->failed, 1, __ATOMIC_ACQ_REL)) {
		va_start(ap, fmt);
		vsnprintf(ctl->msg, sizeof(ctl->msg), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&ctl->abort, 1, __ATOMIC_RELEASE);
	return code;
}

static bool aborted(const struct bench *b)
{
	return __atomic_load_n(&b->ctl->abort, __ATOMIC_RELAXED);
}

/* Wait for a peer: spin, and yield now and then if the CPU is shared.
 * Returns true when the run was aborted.
 */
static bool backoff(const struct bench *b, unsigned int *spins,
		    unsigned int yield_every)
{
	cpu_relax();
	++*spins;
	if (yield_every && *spins % yield_every == 0)
		sched_yield();
	return (*spins & 1023) == 0 && aborted(b);
}

/* Announce readiness, then wait for the start. */
static int child_ready(struct bench *b)
{
	struct ctl *ctl = b->ctl;

	__atomic_fetch_add(&ctl->ready, 1, __ATOMIC_ACQ_REL);
	while (!__atomic_load_n(&ctl->go, __ATOMIC_ACQUIRE)) {
		if (aborted(b))
			return -1;
		sched_yield();
	}
	return 0;
}

static bool stopping(const struct bench *b)
{
	return __atomic_load_n(&b->ctl->stop, __ATOMIC_RELAXED);
}

static uint32_t rec_stride(uint32_t len)
{
	return IVSHM_REC_HDR + ALIGN(len, (uint32_t)IVSHM_REC_ALIGN);
}

/* Records: seq, producer id, pattern words, trailer. */
static inline uint64_t pattern(uint64_t seq, uint64_t id, uint64_t k)
{
	return (seq * 0x9e3779b97f4a7c15ull) ^ (k * 0xbf58476d1ce4e5b9ull) ^
	       (id << 56);
}

static inline uint64_t trailer(uint64_t seq, uint64_t id)
{
	return seq ^ TRAILER_TAG ^ (id << 40);
}

static inline void rec_stamp(uint8_t *buf, uint32_t len, uint64_t id,
			     uint64_t seq, bool full)
{
	uint64_t w = trailer(seq, id), k;

	memcpy(buf, &seq, 8);
	memcpy(buf + 8, &id, 8);
	if (full) {
		for (k = 2; k < len / 8 - 1; k++) {
			uint64_t p = pattern(seq, id, k);

			memcpy(buf + 8 * k, &p, 8);
		}
	}
	memcpy(buf + len - 8, &w, 8);
}

static void rec_init(uint8_t *buf, uint32_t len, uint64_t id)
{
	rec_stamp(buf, len, id, 0, true);
}

static inline uint64_t rec_id(const uint8_t *buf)
{
	uint64_t id;

	memcpy(&id, buf + 8, 8);
	return id;
}

/*
 * 0: record @want of producer @id; 1: its end marker; -1: anything else,
 * described in @why.
 */
static int rec_check(const uint8_t *buf, uint32_t len, uint64_t id,
		     uint64_t want, bool full, char *why, size_t whylen)
{
	uint64_t seq, who, tail, k;

	memcpy(&seq, buf, 8);
	memcpy(&who, buf + 8, 8);
	memcpy(&tail, buf + len - 8, 8);
	if (who != id || tail != trailer(seq, id)) {
		snprintf(why, whylen,
			 "producer %llu: torn record (id %llu, seq %llu, trailer %#llx), expected seq %llu",
			 (unsigned long long)id, (unsigned long long)who,
			 (unsigned long long)seq, (unsigned long long)tail,
			 (unsigned long long)want);
		return -1;
	}
	if (seq == END_SEQ)
		return 1;
	if (seq != want) {
		snprintf(why, whylen,
			 "producer %llu: expected seq %llu, got %llu",
			 (unsigned long long)id, (unsigned long long)want,
			 (unsigned long long)seq);
		return -1;
	}
	if (!full)
		return 0;
	for (k = 2; k < len / 8 - 1; k++) {
		uint64_t w;

		memcpy(&w, buf + 8 * k, 8);
		if (w != pattern(seq, id, k)) {
			snprintf(why, whylen,
				 "producer %llu seq %llu: payload word %llu is %#llx, expected %#llx",
				 (unsigned long long)id,
				 (unsigned long long)seq,
				 (unsigned long long)k,
				 (unsigned long long)w,
				 (unsigned long long)pattern(seq, id, k));
			return -1;
		}
	}
	return 0;
}

/* The transports' record functions, defined below. */
static int ring_send(struct bench *b, void *st, const uint8_t *src,
		     uint32_t len);
static int mbuf_send(struct bench *b, void *st, const uint8_t *src,
		     uint32_t len);
static int spsc_send(struct bench *b, void *st, const uint8_t *src,
		     uint32_t len);
static int unix_send(struct bench *b, void *st, const uint8_t *src,
		     uint32_t len);
static int mbuf_recv(struct bench *b, void *st, uint8_t *dst, uint32_t max,
		     uint32_t *len);
static int spsc_recv(struct bench *b, void *st, uint8_t *dst, uint32_t max,
		     uint32_t *len);
static int unix_recv(struct bench *b, void *st, uint8_t *dst, uint32_t max,
		     uint32_t *len);

/* Send one record: direct calls, so that the compiler may inline them. */
static inline int send_rec(struct bench *b, void *st, const uint8_t *src,
			   uint32_t len)
{
	switch (b->cfg->t) {
	case T_RING:
	case T_RING_MORE:
		return ring_send(b, st, src, len);
	case T_SPSC:
		return spsc_send(b, st, src, len);
	case T_UNIX:
		return unix_send(b, st, src, len);
	default:
		return mbuf_send(b, st, src, len);
	}
}

static inline int recv_rec(struct bench *b, void *st, uint8_t *dst,
			   uint32_t max, uint32_t *len)
{
	switch (b->cfg->t) {
	case T_SPSC:
		return spsc_recv(b, st, dst, max, len);
	case T_UNIX:
		return unix_recv(b, st, dst, max, len);
	default:
		return mbuf_recv(b, st, dst, max, len);
	}
}

/* The producer's outer loop, common to all transports. */
static int produce(struct bench *b, uint64_t id, void *st)
{
	const struct run_cfg *c = b->cfg;
	uint8_t *src = xalloc(c->len);
	uint64_t seq;
	int ret;

	rec_init(src, c->len, id);
	if (child_ready(b)) {
		free(src);
		return EXIT_SETUP;
	}
	for (seq = 0;; seq++) {
		if (c->verify ? seq == c->count : (seq & 15) == 0 && stopping(b))
			break;
		rec_stamp(src, c->len, id, seq, c->verify);
		ret = send_rec(b, st, src, c->len);
		if (ret) {
			free(src);
			return ret;
		}
	}
	__atomic_store_n(&b->ctl->sent[id], seq, __ATOMIC_RELEASE);
	rec_stamp(src, c->len, id, END_SEQ, false);
	ret = send_rec(b, st, src, c->len);
	free(src);
	return ret;
}

static void consumer_done(struct bench *b, uint64_t start, uint64_t n)
{
	struct ctl *ctl = b->ctl;

	ctl->end_ns = now_ns();
	ctl->start_ns = start;
	ctl->received = n;
}

/* The consumer's loop for transports with one queue: records come in
 * producer order, interleaved between producers.
 */
static int consume(struct bench *b, void *st)
{
	const struct run_cfg *c = b->cfg;
	uint64_t expect[MAX_PROD] = { 0 }, start, total = 0;
	uint8_t *dst = xalloc(c->len + 8);
	int i, left = c->nprod, ret;
	char why[200];

	if (child_ready(b)) {
		ret = EXIT_SETUP;
		goto out;
	}
	start = now_ns();
	while (left) {
		uint32_t len = 0;
		uint64_t id;

		ret = recv_rec(b, st, dst, c->len, &len);
		if (ret)
			goto out;
		id = rec_id(dst);
		if (len != c->len || id >= (uint64_t)c->nprod) {
			ret = fail(b, EXIT_VERIFY,
				   "%s: record of %u bytes from producer %llu",
				   tname[c->t], len, (unsigned long long)id);
			goto out;
		}
		ret = rec_check(dst, len, id, expect[id], c->verify, why,
				sizeof(why));
		if (ret < 0) {
			ret = fail(b, EXIT_VERIFY, "%s: %s", tname[c->t], why);
			goto out;
		}
		if (ret > 0)
			left--;
		else
			expect[id]++;
	}
	for (i = 0; i < c->nprod; i++)
		total += expect[i];
	consumer_done(b, start, total);
	ret = 0;
out:
	free(dst);
	return ret;
}

/* ---- ring ---- */

struct ring_side {
	void *base;
	struct ivshm_layout l;
	struct ivshm_ring r[MAX_PROD];
	unsigned int yield_every;
};

static int ring_prepare(struct bench *b)
{
	const struct run_cfg *c = b->cfg;
	struct ivshm_layout l;
	const char *why;
	void *base;
	int ret, i;

	b->fd = memfd_create("ivshm-bench-ring", 0);
	if (b->fd < 0 || ftruncate(b->fd, b->region_size)) {
		fprintf(stderr, "bench: memfd: %s\n", strerror(errno));
		return EXIT_SETUP;
	}
	base = mmap(NULL, b->region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		    b->fd, 0);
	if (base == MAP_FAILED) {
		fprintf(stderr, "bench: mmap: %s\n", strerror(errno));
		return EXIT_SETUP;
	}
	/* Fault every page in now, not while timing. */
	memset(base, 0, b->region_size);
	ret = ivshm_region_open(&l, base, b->region_size, 0, &why);
	if (ret != IVSHM_OPEN_INITIALISED) {
		fprintf(stderr, "bench: ivshm_region_open: %d (%s)\n", ret, why);
		ret = -1;
		goto out;
	}
	/* 1 MiB in all, or the largest whole-block share that fits. */
	b->ring_bytes = b->buf_bytes / (uint32_t)c->nprod;
	if ((u64)b->ring_bytes * (u64)c->nprod >
	    (u64)l.nr_blocks << IVSHM_BLOCK_SHIFT)
		b->ring_bytes = l.nr_blocks / (u32)c->nprod << IVSHM_BLOCK_SHIFT;
	b->ring_bytes &= ~(IVSHM_BLOCK_SIZE - 1);
	ret = ivshm_ctrl_trylock(&l, 0, 1, NULL);
	if (ret) {
		fprintf(stderr, "bench: ivshm_ctrl_trylock: %d\n", ret);
		ret = -1;
		goto out;
	}
	for (i = 0; i < c->nprod; i++) {
		struct ivshm_chan *ch;
		u64 off;

		ret = ivshm_chan_alloc(&l, &b->chan[i]);
		if (!ret)
			ret = ivshm_blocks_alloc(&l, b->ring_bytes >>
						 IVSHM_BLOCK_SHIFT, &off);
		if (ret) {
			fprintf(stderr, "bench: channel %d: %d\n", i, ret);
			break;
		}
		ch = ivshm_chan(&l, b->chan[i]);
		ivshm_put16(&ch->sender_vm, (u16)(2 + i));
		ivshm_put16(&ch->receiver_vm, 1);
		ivshm_put64(&ch->buff_offset, off);
		ivshm_put32(&ch->buff_size, b->ring_bytes);
		ivshm_put32(&ch->state, IVSHM_CHAN_OPEN);
	}
	ivshm_ctrl_unlock(&l, 0, 1);
out:
	munmap(base, b->region_size);
	return ret ? EXIT_SETUP : 0;
}

/* Map the memfd, attach, and set up @n rings from the descriptors. */
static int ring_attach(struct bench *b, u32 vm, struct ring_side *s,
		       int first, int n)
{
	const char *why;
	int ret, i;

	s->base = mmap(NULL, b->region_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, b->fd, 0);
	if (s->base == MAP_FAILED)
		return fail(b, EXIT_SETUP, "mmap: %s", strerror(errno));
	ret = ivshm_region_open(&s->l, s->base, b->region_size, vm, &why);
	if (ret != IVSHM_OPEN_ATTACHED)
		return fail(b, EXIT_SETUP, "attach: %d (%s)", ret, why);
	for (i = 0; i < n; i++) {
		u32 idx = b->chan[first + i];
		struct ivshm_chan *ch = ivshm_chan(&s->l, idx);

		ret = ivshm_ring_init(&s->r[i], &s->l, idx,
				      ivshm_get64(&ch->buff_offset),
				      ivshm_get32(&ch->buff_size));
		if (ret)
			return fail(b, EXIT_SETUP, "ivshm_ring_init: %d", ret);
		if (ivshm_ring_max_record(&s->r[i]) < b->cfg->len)
			return fail(b, EXIT_SETUP, "record too large for the ring");
	}
	return 0;
}

static int ring_send(struct bench *b, void *st, const uint8_t *src,
		     uint32_t len)
{
	struct ring_side *s = st;
	struct ivshm_span span;
	unsigned int spins = 0;
	int ret;

	while ((ret = ivshm_tx_reserve(&s->r[0], len, IVSHM_REC_DATA, 0,
				       &span)) == -EAGAIN) {
		if (backoff(b, &spins, s->yield_every))
			return EXIT_SETUP;
	}
	if (ret)
		return fail(b, EXIT_VERIFY, "ivshm_tx_reserve: %d", ret);
	ivshm_span_write(&span, src);
	if (b->cfg->t == T_RING_MORE)
		ivshm_tx_queue(&s->r[0]);
	else
		ivshm_tx_commit(&s->r[0]);
	return 0;
}

static int ring_producer(void *arg)
{
	struct bench *b = arg;
	struct ring_side s;
	int ret;

	memset(&s, 0, sizeof(s));
	s.yield_every = b->cfg->yield_every;
	if (pin_to_cpu(b->cpu_prod))
		return fail(b, EXIT_SETUP, "sched_setaffinity: %s",
			    strerror(errno));
	ret = ring_attach(b, 2 + (u32)b->prod_idx, &s, b->prod_idx, 1);
	if (!ret)
		ret = produce(b, (uint64_t)b->prod_idx, &s);
	if (!ret)
		ivshm_tx_flush(&s.r[0]);	/* the end marker, if queued */
	if (s.base && s.base != MAP_FAILED)
		munmap(s.base, b->region_size);
	return ret;
}

static int ring_consumer(void *arg)
{
	struct bench *b = arg;
	const struct run_cfg *c = b->cfg;
	uint64_t expect[MAX_PROD] = { 0 }, start, total = 0;
	bool done[MAX_PROD] = { false };
	int i, left = c->nprod, ret;
	struct ring_side s;
	struct ivshm_rec rec;
	unsigned int spins = 0;
	uint8_t *dst;
	char why[200];

	memset(&s, 0, sizeof(s));
	if (pin_to_cpu(b->cpu_cons))
		return fail(b, EXIT_SETUP, "sched_setaffinity: %s",
			    strerror(errno));
	ret = ring_attach(b, 1, &s, 0, c->nprod);
	if (ret)
		goto out_unmap;
	dst = xalloc(c->len);
	if (child_ready(b)) {
		ret = EXIT_SETUP;
		goto out;
	}
	start = now_ns();
	while (left) {
		bool any = false;

		for (i = 0; i < c->nprod; i++) {
			int n;

			if (done[i])
				continue;
			for (n = 0; n < RR_BATCH; n++) {
				ret = ivshm_rx_peek(&s.r[i], &rec);
				if (ret == -EAGAIN)
					break;
				if (ret || rec.type != IVSHM_REC_DATA ||
				    rec.len != c->len) {
					ret = fail(b, EXIT_VERIFY,
						   "channel %d: ivshm_rx_peek %d, type %u, len %u",
						   i, ret, rec.type, rec.len);
					goto out;
				}
				ivshm_span_read(&rec.span, dst);
				ivshm_rx_release(&s.r[i]);
				ret = rec_check(dst, c->len, (uint64_t)i,
						expect[i], c->verify, why,
						sizeof(why));
				if (ret < 0) {
					ret = fail(b, EXIT_VERIFY, "ring: %s",
						   why);
					goto out;
				}
				if (ret > 0) {
					done[i] = true;
					left--;
					break;
				}
				expect[i]++;
				any = true;
			}
		}
		if (!any && left && backoff(b, &spins, 0)) {
			ret = EXIT_SETUP;
			goto out;
		}
	}
	for (i = 0; i < c->nprod; i++)
		total += expect[i];
	consumer_done(b, start, total);
	ret = 0;
out:
	free(dst);
out_unmap:
	if (s.base && s.base != MAP_FAILED)
		munmap(s.base, b->region_size);
	return ret;
}

/* ---- shared buffers: the mutex buffer and the reference SPSC ring ---- */

/*
 * A memfd of MBUF_HDR + buf_bytes, faulted in. The parent keeps its mapping
 * in *map when @map is not NULL.
 */
static int memfd_prepare(struct bench *b, const char *name, void **map)
{
	size_t len = MBUF_HDR + b->buf_bytes;
	void *p;

	b->fd = memfd_create(name, 0);
	if (b->fd < 0 || ftruncate(b->fd, (off_t)len)) {
		fprintf(stderr, "bench: memfd: %s\n", strerror(errno));
		return EXIT_SETUP;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "bench: mmap: %s\n", strerror(errno));
		return EXIT_SETUP;
	}
	memset(p, 0, len);
	if (map)
		*map = p;
	else
		munmap(p, len);
	return 0;
}

static int mbuf_prepare(struct bench *b)
{
	pthread_mutexattr_t ma;
	pthread_condattr_t ca;
	struct mbuf *m;
	void *p;

	if (memfd_prepare(b, "ivshm-bench-mutex", &p))
		return EXIT_SETUP;
	m = p;
	if (pthread_mutexattr_init(&ma) ||
	    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED) ||
	    pthread_mutex_init(&m->lock, &ma) ||
	    pthread_condattr_init(&ca) ||
	    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED) ||
	    pthread_cond_init(&m->not_empty, &ca) ||
	    pthread_cond_init(&m->not_full, &ca)) {
		fprintf(stderr, "bench: process-shared mutex setup failed\n");
		munmap(p, MBUF_HDR + b->buf_bytes);
		return EXIT_SETUP;
	}
	pthread_mutexattr_destroy(&ma);
	pthread_condattr_destroy(&ca);
	m->size = b->buf_bytes;
	b->mbuf = m;
	return 0;
}

static void mbuf_teardown(struct bench *b)
{
	struct mbuf *m = b->mbuf;

	if (!m)
		return;
	pthread_cond_destroy(&m->not_full);
	pthread_cond_destroy(&m->not_empty);
	pthread_mutex_destroy(&m->lock);
	munmap(m, MBUF_HDR + b->buf_bytes);
	b->mbuf = NULL;
}

/* The reference ring: two counters on their own lines, then the data. */
struct spsc_hdr {
	__aligned(64) uint64_t head;
	__aligned(64) uint64_t tail;
};

/* Either side of a shared buffer, as mapped by a child. */
struct shm_side {
	void *map;
	struct mbuf *m;			/* mutex buffer */
	struct spsc_hdr *h;		/* reference ring */
	uint8_t *data;
	uint32_t size;
	bool cond;
	unsigned int yield_every;
	uint64_t pos;			/* reference ring: own counter */
	uint64_t peer;			/* and the peer's, last seen */
};

static int shm_attach(struct bench *b, struct shm_side *s)
{
	void *p = mmap(NULL, MBUF_HDR + b->buf_bytes, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, b->fd, 0);

	memset(s, 0, sizeof(*s));
	if (p == MAP_FAILED)
		return fail(b, EXIT_SETUP, "mmap: %s", strerror(errno));
	s->map = p;
	s->m = p;
	s->h = p;
	s->data = (uint8_t *)p + MBUF_HDR;
	s->size = b->buf_bytes;
	s->cond = b->cfg->t == T_MUTEX_COND;
	s->yield_every = b->cfg->yield_every;
	return 0;
}

static void shm_detach(struct bench *b, struct shm_side *s)
{
	if (s->map)
		munmap(s->map, MBUF_HDR + b->buf_bytes);
	s->map = NULL;
}

/* Copy a record in or out at byte counter @pos; headers never wrap. */
static void shm_put(struct shm_side *s, uint64_t pos, const uint8_t *src,
		    uint32_t len)
{
	uint32_t off = (uint32_t)(pos & (s->size - 1)) + 8, first;
	uint64_t hdr = len;

	if (off == s->size)
		off = 0;
	first = s->size - off < len ? s->size - off : len;
	memcpy(s->data + off, src, first);
	memcpy(s->data, src + first, len - first);
	memcpy(s->data + (pos & (s->size - 1)), &hdr, 8);
}

static int shm_get(struct bench *b, struct shm_side *s, uint64_t pos,
		   uint64_t avail, uint8_t *dst, uint32_t max, uint32_t *len)
{
	uint32_t off = (uint32_t)(pos & (s->size - 1)), first;
	uint64_t hdr;

	memcpy(&hdr, s->data + off, 8);
	if (hdr > max || rec_stride((uint32_t)hdr) > avail)
		return fail(b, EXIT_VERIFY, "%s: bad header %llu",
			    tname[b->cfg->t], (unsigned long long)hdr);
	*len = (uint32_t)hdr;
	off += 8;
	if (off == s->size)
		off = 0;
	first = s->size - off < *len ? s->size - off : *len;
	memcpy(dst, s->data + off, first);
	memcpy(dst + first, s->data, *len - first);
	return 0;
}

static int mbuf_send(struct bench *b, void *st, const uint8_t *src,
		     uint32_t len)
{
	struct shm_side *s = st;
	struct mbuf *m = s->m;
	uint32_t need = rec_stride(len);
	unsigned int spins = 0;

	pthread_mutex_lock(&m->lock);
	while (m->size - (m->head - m->tail) < need) {
		if (s->cond) {
			pthread_cond_wait(&m->not_full, &m->lock);
			continue;
		}
		pthread_mutex_unlock(&m->lock);
		if (backoff(b, &spins, s->yield_every))
			return EXIT_SETUP;
		pthread_mutex_lock(&m->lock);
	}
	shm_put(s, m->head, src, len);
	m->head += need;
	if (s->cond)
		pthread_cond_signal(&m->not_empty);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int mbuf_recv(struct bench *b, void *st, uint8_t *dst, uint32_t max,
		     uint32_t *len)
{
	struct shm_side *s = st;
	struct mbuf *m = s->m;
	unsigned int spins = 0;
	int ret;

	pthread_mutex_lock(&m->lock);
	while (m->head == m->tail) {
		if (s->cond) {
			pthread_cond_wait(&m->not_empty, &m->lock);
			continue;
		}
		pthread_mutex_unlock(&m->lock);
		if (backoff(b, &spins, 0))
			return EXIT_SETUP;
		pthread_mutex_lock(&m->lock);
	}
	ret = shm_get(b, s, m->tail, m->head - m->tail, dst, max, len);
	if (!ret) {
		m->tail += rec_stride(*len);
		if (s->cond)
			pthread_cond_signal(&m->not_full);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/*
 * The reference ring: what the core's ring does, minus everything that is
 * not strictly needed between trusting peers (validation, descriptor
 * bookkeeping, spans): cached peer counter, payload then header, one
 * release store per record.
 */
static int spsc_send(struct bench *b, void *st, const uint8_t *src,
		     uint32_t len)
{
	struct shm_side *s = st;
	uint32_t need = rec_stride(len);
	unsigned int spins = 0;

	while (s->size - (s->pos - s->peer) < need) {
		s->peer = __atomic_load_n(&s->h->tail, __ATOMIC_ACQUIRE);
		if (s->size - (s->pos - s->peer) >= need)
			break;
		if (backoff(b, &spins, s->yield_every))
			return EXIT_SETUP;
	}
	shm_put(s, s->pos, src, len);
	s->pos += need;
	__atomic_store_n(&s->h->head, s->pos, __ATOMIC_RELEASE);
	return 0;
}

static int spsc_recv(struct bench *b, void *st, uint8_t *dst, uint32_t max,
		     uint32_t *len)
{
	struct shm_side *s = st;
	unsigned int spins = 0;
	int ret;

	while (s->peer == s->pos) {
		s->peer = __atomic_load_n(&s->h->head, __ATOMIC_ACQUIRE);
		if (s->peer != s->pos)
			break;
		if (backoff(b, &spins, 0))
			return EXIT_SETUP;
	}
	ret = shm_get(b, s, s->pos, s->peer - s->pos, dst, max, len);
	if (ret)
		return ret;
	s->pos += rec_stride(*len);
	__atomic_store_n(&s->h->tail, s->pos, __ATOMIC_RELEASE);
	return 0;
}

static int shm_producer(void *arg)
{
	struct bench *b = arg;
	struct shm_side s;
	int ret;

	if (pin_to_cpu(b->cpu_prod))
		return fail(b, EXIT_SETUP, "sched_setaffinity: %s",
			    strerror(errno));
	ret = shm_attach(b, &s);
	if (!ret)
		ret = produce(b, (uint64_t)b->prod_idx, &s);
	shm_detach(b, &s);
	return ret;
}

static int shm_consumer(void *arg)
{
	struct bench *b = arg;
	struct shm_side s;
	int ret;

	if (pin_to_cpu(b->cpu_cons))
		return fail(b, EXIT_SETUP, "sched_setaffinity: %s",
			    strerror(errno));
	ret = shm_attach(b, &s);
	if (!ret)
		ret = consume(b, &s);
	shm_detach(b, &s);
	return ret;
}

/* ---- AF_UNIX ---- */

static int sysctl_int(const char *path)
{
	FILE *f = fopen(path, "r");
	int v = 0;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v;
}

static void sock_buf(int fd, int opt, int force, int want)
{
	if (want <= 0)
		return;
	/* The forced variant needs CAP_NET_ADMIN; fall back quietly. */
	if (force && !setsockopt(fd, SOL_SOCKET, force, &want, sizeof(want)))
		return;
	setsockopt(fd, SOL_SOCKET, opt, &want, sizeof(want));
}

static int unix_prepare(struct bench *b)
{
	socklen_t sl = sizeof(int);
	int snd, rcv;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, b->sv)) {
		fprintf(stderr, "bench: socketpair: %s\n", strerror(errno));
		return EXIT_SETUP;
	}
	if (b->unix_buf) {
		snd = b->unix_buf;
		rcv = b->unix_buf;
		sock_buf(b->sv[0], SO_SNDBUF, SO_SNDBUFFORCE, snd);
		sock_buf(b->sv[1], SO_RCVBUF, SO_RCVBUFFORCE, rcv);
	} else {
		snd = sysctl_int("/proc/sys/net/core/wmem_max");
		rcv = sysctl_int("/proc/sys/net/core/rmem_max");
		sock_buf(b->sv[0], SO_SNDBUF, 0, snd);
		sock_buf(b->sv[1], SO_RCVBUF, 0, rcv);
	}
	getsockopt(b->sv[0], SOL_SOCKET, SO_SNDBUF, &b->sndbuf, &sl);
	sl = sizeof(int);
	getsockopt(b->sv[1], SOL_SOCKET, SO_RCVBUF, &b->rcvbuf, &sl);
	return 0;
}

static int unix_send(struct bench *b, void *st, const uint8_t *src,
		     uint32_t len)
{
	int fd = *(int *)st;
	ssize_t n;

	do {
		n = send(fd, src, len, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)len)
		return fail(b, EXIT_SETUP, "send: %zd (%s)", n,
			    n < 0 ? strerror(errno) : "short");
	return 0;
}

static int unix_recv(struct bench *b, void *st, uint8_t *dst, uint32_t max,
		     uint32_t *len)
{
	int fd = *(int *)st;
	ssize_t n;

	/* The buffer has room for one more word, to see oversized messages. */
	do {
		n = recv(fd, dst, max + 8, 0);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(b, EXIT_SETUP, "recv: %s", strerror(errno));
	if (n == 0 || n > max)
		return fail(b, EXIT_VERIFY, "recv: %zd bytes", n);
	*len = (uint32_t)n;
	return 0;
}

static int unix_producer(void *arg)
{
	struct bench *b = arg;
	int fd = b->sv[0];

	close(b->sv[1]);
	if (pin_to_cpu(b->cpu_prod))
		return fail(b, EXIT_SETUP, "sched_setaffinity: %s",
			    strerror(errno));
	return produce(b, 0, &fd);
}

static int unix_consumer(void *arg)
{
	struct bench *b = arg;
	int fd = b->sv[1];

	close(b->sv[0]);
	if (pin_to_cpu(b->cpu_cons))
		return fail(b, EXIT_SETUP, "sched_setaffinity: %s",
			    strerror(errno));
	return consume(b, &fd);
}

/* ---- memcpy ---- */

static int memcpy_child(void *arg)
{
	struct bench *b = arg;
	uint32_t len = b->cfg->len, stride = rec_stride(len);
	uint32_t half = b->buf_bytes / 2, p = 0;
	uint64_t n = 0, start;
	uint8_t *buf;
	int i;

	if (pin_to_cpu(b->cpu_cons))
		return fail(b, EXIT_SETUP, "sched_setaffinity: %s",
			    strerror(errno));
	buf = shared_alloc(b->buf_bytes);
	if (!buf)
		return fail(b, EXIT_SETUP, "mmap: %s", strerror(errno));
	if (child_ready(b)) {
		munmap(buf, b->buf_bytes);
		return EXIT_SETUP;
	}
	start = now_ns();
	do {
		for (i = 0; i < 64; i++) {
			memcpy(buf + half + p, buf + p, len);
			p += stride;
			if (p + len > half)
				p = 0;
		}
		n += 64;
	} while (!stopping(b));
	consumer_done(b, start, n);
	munmap(buf, b->buf_bytes);
	return 0;
}

/* ---- calibration: one cache line there and back between the CPUs ---- */

#define PINGPONG_ROUNDS		20000

static int pingpong_wait(struct bench *b, uint64_t *line, uint64_t v)
{
	unsigned int spins = 0;

	while (__atomic_load_n(line, __ATOMIC_ACQUIRE) != v)
		if (backoff(b, &spins, 0))
			return -1;
	return 0;
}

static int pingpong_cons(void *arg)
{
	struct bench *b = arg;
	struct ctl *ctl = b->ctl;
	uint64_t i, start;

	if (pin_to_cpu(b->cpu_cons))
		return fail(b, EXIT_SETUP, "sched_setaffinity: %s",
			    strerror(errno));
	if (child_ready(b))
		return EXIT_SETUP;
	start = now_ns();
	for (i = 1; i <= PINGPONG_ROUNDS; i++) {
		__atomic_store_n(&ctl->ping, i, __ATOMIC_RELEASE);
		if (pingpong_wait(b, &ctl->pong, i))
			return EXIT_SETUP;
	}
	consumer_done(b, start, PINGPONG_ROUNDS);
	return 0;
}

static int pingpong_prod(void *arg)
{
	struct bench *b = arg;
	struct ctl *ctl = b->ctl;
	uint64_t i;

	if (pin_to_cpu(b->cpu_prod))
		return fail(b, EXIT_SETUP, "sched_setaffinity: %s",
			    strerror(errno));
	if (child_ready(b))
		return EXIT_SETUP;
	for (i = 1; i <= PINGPONG_ROUNDS; i++) {
		if (pingpong_wait(b, &ctl->ping, i))
			return EXIT_SETUP;
		__atomic_store_n(&ctl->pong, i, __ATOMIC_RELEASE);
	}
	ctl->sent[0] = PINGPONG_ROUNDS;
	return 0;
}

/* ---- running ---- */

static void abort_run(void *arg)
{
	struct bench *b = arg;

	__atomic_store_n(&b->ctl->abort, 1, __ATOMIC_RELEASE);
}

static void teardown(struct bench *b)
{
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
	mbuf_teardown(b);
	if (b->sv[0] >= 0) {
		close(b->sv[0]);
		close(b->sv[1]);
	}
	b->sv[0] = -1;
	b->sv[1] = -1;
}

/*
 * One run: set the transport up, start the consumer and producers, let
 * them go, stop the producers after the duration, reap everyone. Returns
 * records/s, or a negative exit status.
 */
static double run_once(struct bench *b, const struct run_cfg *c)
{
	int (*cons)(void *) = NULL, (*prod)(void *) = NULL;
	pid_t pids[MAX_PROD + 1] = { 0 };
	struct ctl *ctl = b->ctl;
	int i, n = 0, ret;
	uint64_t sent = 0, deadline;
	struct cpu_snap snap[2];
	double steal;

	memset(ctl, 0, sizeof(*ctl));
	b->cfg = c;
	b->fd = -1;
	b->sv[0] = -1;
	b->sv[1] = -1;
	switch (c->t) {
	case T_RING:
	case T_RING_MORE:
		ret = ring_prepare(b);
		cons = ring_consumer;
		prod = ring_producer;
		break;
	case T_MUTEX_SPIN:
	case T_MUTEX_COND:
		ret = mbuf_prepare(b);
		cons = shm_consumer;
		prod = shm_producer;
		break;
	case T_SPSC:
		ret = memfd_prepare(b, "ivshm-bench-spsc", NULL);
		cons = shm_consumer;
		prod = shm_producer;
		break;
	case T_UNIX:
		ret = unix_prepare(b);
		cons = unix_consumer;
		prod = unix_producer;
		break;
	case T_MEMCPY:
		ret = 0;
		cons = memcpy_child;
		break;
	case T_PINGPONG:
		ret = 0;
		cons = pingpong_cons;
		prod = pingpong_prod;
		break;
	default:
		ret = EXIT_SETUP;
	}
	if (ret) {
		teardown(b);
		return -ret;
	}

	cpu_snapshot(&snap[0]);
	pids[n++] = spawn(cons, b);
	for (i = 0; prod && i < c->nprod; i++) {
		b->prod_idx = i;
		pids[n++] = spawn(prod, b);
	}
	b->spawned += (unsigned long)n;
	for (i = 0; i < n; i++) {
		if (pids[i] < 0) {
			fprintf(stderr, "bench: fork: %s\n", strerror(errno));
			abort_run(b);
			pids[i] = 0;
		}
	}

	/* Everyone set up and pinned, then go. */
	deadline = now_ns() + 20000000000ull;
	while (__atomic_load_n(&ctl->ready, __ATOMIC_ACQUIRE) < (uint32_t)n &&
	       !__atomic_load_n(&ctl->abort, __ATOMIC_RELAXED) &&
	       now_ns() < deadline)
		usleep(200);
	__atomic_store_n(&ctl->go, 1, __ATOMIC_RELEASE);
	if (!c->verify && !__atomic_load_n(&ctl->abort, __ATOMIC_RELAXED)) {
		sleep_s(c->seconds);
		__atomic_store_n(&ctl->stop, 1, __ATOMIC_RELEASE);
	}
	ret = reap_all(pids, n, now_ns() + 60000000000ull, abort_run, b);
	cpu_snapshot(&snap[1]);
	b->foreign = cpu_foreign(&snap[0], &snap[1], &steal);
	b->foreign += steal;
	teardown(b);
	if (ret || ctl->failed) {
		const char *what = ctl->failed ? ctl->msg :
				   ret == 124 ? "timed out" :
				   "a process failed";

		fprintf(stderr, "bench: %s %u B x%d%s: %s\n", tname[c->t],
			c->len, c->nprod, c->verify ? " (verification)" : "",
			what);
		return ret == EXIT_VERIFY ? -EXIT_VERIFY : -EXIT_SETUP;
	}
	for (i = 0; prod && i < c->nprod; i++)
		sent += ctl->sent[i];
	if (prod && sent != ctl->received) {
		fprintf(stderr,
			"bench: %s %u B x%d: producers sent %llu records, the consumer got %llu\n",
			tname[c->t], c->len, c->nprod,
			(unsigned long long)sent,
			(unsigned long long)ctl->received);
		return -EXIT_VERIFY;
	}
	if (ctl->end_ns <= ctl->start_ns || !ctl->received) {
		fprintf(stderr, "bench: %s %u B x%d: nothing measured\n",
			tname[c->t], c->len, c->nprod);
		return -EXIT_SETUP;
	}
	return (double)ctl->received * 1e9 /
	       (double)(ctl->end_ns - ctl->start_ns);
}

/* ---- results ---- */

struct meas {
	enum transport t;
	uint32_t len;
	int nprod;
	bool scale;
	int n;
	double v[16];
	double med, min, max;		/* records/s */
	double foreign;			/* most CPUs others used in a rep */
};

#define MAX_MEAS		96

/*
 * Others using more than this many CPUs during a run disturb it (or less
 * than /proc/stat can resolve, three ticks per run); disturbed repetitions
 * are retried, up to MAX_RETRIES times per invocation.
 */
#define FOREIGN_WARN		0.10
#define MAX_RETRIES		40

struct results {
	struct meas m[MAX_MEAS];
	int n;
	double threshold;		/* CPUs */
	double foreign_sum;
	int runs, disturbed, retries;
};

static struct meas *meas_find(struct results *r, enum transport t,
			      uint32_t len, int nprod, bool scale, bool add)
{
	int i;

	for (i = 0; i < r->n; i++) {
		struct meas *m = &r->m[i];

		if (m->t == t && m->len == len && m->nprod == nprod &&
		    m->scale == scale)
			return m;
	}
	if (!add || r->n == MAX_MEAS)
		return NULL;
	r->m[r->n] = (struct meas){ .t = t, .len = len, .nprod = nprod,
				    .scale = scale };
	return &r->m[r->n++];
}

static void meas_finish(struct results *r)
{
	int i;

	for (i = 0; i < r->n; i++) {
		struct meas *m = &r->m[i];

		if (m->n)
			m->med = stats_median(m->v, m->n, &m->min, &m->max);
	}
}

/* The median records/s, 0 when not measured. */
static double med(struct results *r, enum transport t, uint32_t len,
		  int nprod, bool scale)
{
	struct meas *m = meas_find(r, t, len, nprod, scale, false);

	return m && m->n ? m->med : 0;
}

/* The faster of the two mutex designs: the strongest baseline. */
static double med_mutex(struct results *r, uint32_t len, int nprod,
			bool scale)
{
	double s = med(r, T_MUTEX_SPIN, len, nprod, scale);
	double c = med(r, T_MUTEX_COND, len, nprod, scale);

	return s > c ? s : c;
}

static double ratio(double a, double b)
{
	return a > 0 && b > 0 ? a / b : 0;
}

struct opts {
	int reps;
	double seconds;
	bool quick;
	bool verbose;			/* every repetition on stderr */
	const char *csv;
	uint32_t size;			/* only this record size */
	const char *only;		/* only this section */
	const char *transport;		/* only this transport */
};

static const char *fmt_size(uint32_t len, char *buf, size_t n)
{
	if (len >= 1024 && len % 1024 == 0)
		snprintf(buf, n, "%u KiB", len / 1024);
	else
		snprintf(buf, n, "%u B", len);
	return buf;
}

static const char *fmt_rate(double v, char *buf, size_t n)
{
	if (v <= 0)
		snprintf(buf, n, "-");
	else if (v >= 1e6)
		snprintf(buf, n, "%.2f M/s", v / 1e6);
	else
		snprintf(buf, n, "%.1f k/s", v / 1e3);
	return buf;
}

static const char *fmt_bw(double v, char *buf, size_t n)
{
	if (v <= 0)
		snprintf(buf, n, "-");
	else if (v >= 1e9)
		snprintf(buf, n, "%.2f GB/s", v / 1e9);
	else
		snprintf(buf, n, "%.1f MB/s", v / 1e6);
	return buf;
}

static const char *fmt_ratio(double v, char *buf, size_t n)
{
	if (v <= 0)
		snprintf(buf, n, "-");
	else
		snprintf(buf, n, "%.2f", v);
	return buf;
}

/* Records per producer for the verification pass: each producer's share of
 * the buffer wraps at least 3 (quick: 2) times; at least 1000 (quick: 200).
 */
static uint64_t verify_count(const struct bench *b, uint32_t len, int nprod,
			     bool quick)
{
	uint64_t share = b->buf_bytes / (uint32_t)nprod;
	uint64_t n = (quick ? 2 : 3) * share / rec_stride(len) + 1;
	uint64_t floor = quick ? 200 : 1000;

	return n > floor ? n : floor;
}

/*
 * The buffer size for one configuration: --ring, but point to point at
 * least P2P_RECORDS records of the size, as the rebalancer gives a bulk
 * channel a larger ring. Every transport, memcpy included, gets the same.
 */
static void size_buffers(struct bench *b, uint32_t len, bool scale)
{
	uint64_t want = (uint64_t)P2P_RECORDS * rec_stride(len);

	b->buf_bytes = b->ring_min;
	while (!scale && b->buf_bytes < want)
		b->buf_bytes *= 2;
	/* The region: 4 MiB, or the power of two that fits the ring. */
	for (b->region_size = REGION_SIZE;
	     b->region_size - b->region_size / 8 < b->buf_bytes;
	     b->region_size *= 2)
		;
}

static uint32_t p2p_ring_kib(const struct bench *b, uint32_t len)
{
	struct bench t = *b;

	size_buffers(&t, len, false);
	return t.buf_bytes >> 10;
}

/* Verify, then time, a set of transports for one size and count. */
static int measure(struct bench *b, struct results *res,
		   const struct opts *o, const enum transport *ts, int nt,
		   uint32_t len, int nprod, bool scale)
{
	struct run_cfg c = {
		.len = len,
		.nprod = nprod,
		.seconds = o->seconds,
		/* Producers share a CPU when there are several. */
		.yield_every = nprod > 1 || b->cpu_cons == b->cpu_prod ?
			       SHARED_YIELD : 0,
	};
	char sz[32];
	int i, rep;
	double v;

	size_buffers(b, len, scale);
	fmt_size(len, sz, sizeof(sz));
	fprintf(stderr, "  %-14s %-6s %d producer%s: verifying",
		scale ? "scaling" : "point to point", sz, nprod,
		nprod > 1 ? "s" : "");
	for (i = 0; i < nt; i++) {
		if (ts[i] == T_MEMCPY ||
		    (o->transport && strcmp(o->transport, tname[ts[i]])))
			continue;
		c.t = ts[i];
		c.verify = true;
		c.count = verify_count(b, len, nprod, o->quick);
		v = run_once(b, &c);
		if (v < 0) {
			fprintf(stderr, "\n");
			return (int)-v;
		}
	}
	fprintf(stderr, ", timing");
	c.verify = false;
	c.count = 0;
	for (rep = 0; rep < o->reps; rep++) {
		for (i = 0; i < nt; i++) {
			double best = 0, best_foreign = 1e9;
			struct meas *m;
			int try;

			if (o->transport && strcmp(o->transport, tname[ts[i]]))
				continue;
			m = meas_find(res, ts[i], len, nprod, scale, true);
			c.t = ts[i];
			/* A repetition disturbed by others is run again, up
			 * to twice (and at most MAX_RETRIES times in all);
			 * the least disturbed attempt counts.
			 */
			for (try = 0;; try++) {
				v = run_once(b, &c);
				if (v < 0) {
					fprintf(stderr, "\n");
					return (int)-v;
				}
				if (o->verbose)
					fprintf(stderr,
						"\n    %-11s %12.0f records/s (others %.2f CPUs)",
						tname[ts[i]], v, b->foreign);
				if (b->foreign < best_foreign) {
					best = v;
					best_foreign = b->foreign;
				}
				if (best_foreign <= res->threshold || try == 2 ||
				    res->retries >= MAX_RETRIES)
					break;
				res->retries++;
			}
			if (m && m->n < (int)ARRAY_SIZE(m->v))
				m->v[m->n++] = best;
			if (m && best_foreign > m->foreign)
				m->foreign = best_foreign;
			res->foreign_sum += best_foreign;
			res->runs++;
			if (best_foreign > res->threshold)
				res->disturbed++;
		}
		fprintf(stderr, " %d", rep + 1);
	}
	fprintf(stderr, "\n");
	return 0;
}

/* Median cache-line round trip between the two CPUs, in ns, or 0. */
static double calibrate(struct bench *b)
{
	struct run_cfg c = { .t = T_PINGPONG, .len = 64, .nprod = 1,
			     .verify = true };
	double v[3], lo, hi;
	int i;

	for (i = 0; i < 3; i++) {
		v[i] = run_once(b, &c);
		if (v[i] <= 0)
			return 0;
		v[i] = 1e9 / v[i];
	}
	return stats_median(v, 3, &lo, &hi);
}

struct target {
	char what[96];
	double value;			/* 0: not measured */
	double target;
	bool strict;			/* > rather than >= */
	const char *unit;
};

static __printf(7, 8) void target_add(struct target *tg, int *n,
				       double value, double want, bool strict,
				       const char *unit, const char *fmt, ...);

static void target_add(struct target *tg, int *n, double value, double want,
		       bool strict, const char *unit, const char *fmt, ...)
{
	struct target *t = &tg[(*n)++];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->what, sizeof(t->what), fmt, ap);
	va_end(ap);
	t->value = value;
	t->target = want;
	t->strict = strict;
	t->unit = unit;
}

static const char *target_status(const struct target *t)
{
	if (t->value <= 0)
		return "not measured";
	if (t->strict ? t->value > t->target : t->value >= t->target)
		return "met";
	return "NOT met";
}

static int write_csv(const char *path, struct results *r,
		     const struct target *tg, int ntg, const char *machine,
		     const char *date)
{
	FILE *f;
	int i;

	if (mkdir_parents(path) < 0)
		return -1;
	f = fopen(path, "w");
	if (!f)
		return -1;
	fprintf(f, "kind,section,transport,size_bytes,producers,reps,records_per_s,bytes_per_s,records_per_s_min,records_per_s_max,others_cpus,what,value,target,status\n");
	fprintf(f, "meta,,,,,,,,,,,date,\"%s\",,\n", date);
	fprintf(f, "meta,,,,,,,,,,,machine,\"%s\",,\n", machine);
	for (i = 0; i < r->n; i++) {
		const struct meas *m = &r->m[i];

		if (!m->n)
			continue;
		fprintf(f, "measure,%s,%s,%u,%d,%d,%.0f,%.0f,%.0f,%.0f,%.2f,,,,\n",
			m->scale ? "scaling" : "p2p", tname[m->t], m->len,
			m->nprod, m->n, m->med, m->med * m->len, m->min,
			m->max, m->foreign);
	}
	for (i = 0; i < ntg; i++)
		fprintf(f, "target,,,,,,,,,,,\"%s\",%.4g,%s%g,%s\n", tg[i].what,
			tg[i].value, tg[i].strict ? ">" : ">=", tg[i].target,
			target_status(&tg[i]));
	return fclose(f) ? -1 : 0;
}

static void help(FILE *f)
{
	fprintf(f,
		"usage: bench_ring [--quick] [--reps N] [--seconds S] [--csv FILE]\n"
		"                  [--ring KIB] [--unix-buf BYTES] [--only p2p|scaling]\n"
		"                  [--size BYTES] [--transport NAME] [--verbose]\n"
		"  --quick        1 repetition of 0.05 s, short verification\n"
		"  --reps N       repetitions per figure (default 5)\n"
		"  --seconds S    producing time per repetition (default 0.4)\n"
		"  --csv FILE     CSV output (default build/bench/ring.csv)\n"
		"  --ring KIB     ring, buffers and memcpy area (default 1024;\n"
		"                 a power of two)\n"
		"  --unix-buf B   AF_UNIX buffers of B bytes with SO_*BUFFORCE\n"
		"                 (default: net.core.wmem_max/rmem_max)\n"
		"  --only, --size, --transport   run a subset\n"
		"  --verbose      every repetition on stderr\n");
}

static void print_p2p(struct results *res, const enum transport *ts, int nt)
{
	static const char * const rn[] = {
		"memcpy (bytes/s)", "mutex", "AF_UNIX", "spsc-ref",
	};
	char sz[32], b0[32], b1[32];
	size_t si;
	int t, r;

	printf("  %-7s %-11s %12s %11s %7s %7s\n", "size", "transport",
	       "records/s", "bytes/s", "spread", "others");
	for (si = 0; si < ARRAY_SIZE(p2p_sizes); si++) {
		uint32_t len = p2p_sizes[si];
		bool first = true;

		for (t = 0; t < nt; t++) {
			struct meas *m = meas_find(res, ts[t], len, 1, false,
						   false);

			if (!m || !m->n)
				continue;
			printf("  %-7s %-11s %12s %11s %6.0f%% %6.2f%s\n",
			       first ? fmt_size(len, sz, sizeof(sz)) : "",
			       tname[ts[t]], fmt_rate(m->med, b0, sizeof(b0)),
			       fmt_bw(m->med * len, b1, sizeof(b1)),
			       100 * (m->max - m->min) / m->med, m->foreign,
			       m->foreign > res->threshold ? "!" : "");
			first = false;
		}
	}

	printf("\nRatios (same size; mutex = the faster of mutex-spin and mutex-cond)\n\n");
	printf("  %-28s", "");
	for (si = 0; si < ARRAY_SIZE(p2p_sizes); si++)
		printf(" %8s", fmt_size(p2p_sizes[si], sz, sizeof(sz)));
	printf("\n");
	for (r = 0; r < 2; r++) {
		enum transport rt = r ? T_RING_MORE : T_RING;

		for (t = 0; t < (int)ARRAY_SIZE(rn); t++) {
			snprintf(b1, sizeof(b1), "%s / %s", tname[rt], rn[t]);
			printf("  %-28s", b1);
			for (si = 0; si < ARRAY_SIZE(p2p_sizes); si++) {
				uint32_t len = p2p_sizes[si];
				double ring = med(res, rt, len, 1, false);
				double other;

				switch (t) {
				case 0:
					other = med(res, T_MEMCPY, len, 1, false);
					break;
				case 1:
					other = med_mutex(res, len, 1, false);
					break;
				case 2:
					other = med(res, T_UNIX, len, 1, false);
					break;
				default:
					other = med(res, T_SPSC, len, 1, false);
				}
				printf(" %8s", fmt_ratio(ratio(ring, other), b0,
							 sizeof(b0)));
			}
			printf("\n");
		}
	}
}

static void print_scaling(struct results *res)
{
	char sz[32], b0[32], b1[32], b2[32], b3[32], b4[32], b5[32];
	size_t si, i;

	printf("  %-7s %2s %12s %12s %12s %12s %11s %11s %7s\n", "size", "N",
	       "ring", "ring-more", "mutex-spin", "mutex-cond", "ring/mutex",
	       "more/mutex", "others");
	for (si = 0; si < ARRAY_SIZE(scale_sizes); si++) {
		uint32_t len = scale_sizes[si];
		bool first = true;

		for (i = 0; i < ARRAY_SIZE(scale_counts); i++) {
			int n = scale_counts[i];
			double ring = med(res, T_RING, len, n, true);
			double more = med(res, T_RING_MORE, len, n, true);
			double mx = med_mutex(res, len, n, true);
			double ms = med(res, T_MUTEX_SPIN, len, n, true);
			double mc = med(res, T_MUTEX_COND, len, n, true);

			double other = 0;
			int t;

			if (!ring && !more && !ms && !mc)
				continue;
			for (t = 0; t < T_NR; t++) {
				struct meas *m = meas_find(res, t, len, n, true,
							   false);

				if (m && m->foreign > other)
					other = m->foreign;
			}
			printf("  %-7s %2d %12s %12s %12s %12s %11s %11s %6.2f%s\n",
			       first ? fmt_size(len, sz, sizeof(sz)) : "", n,
			       fmt_rate(ring, b0, sizeof(b0)),
			       fmt_rate(more, b4, sizeof(b4)),
			       fmt_rate(ms, b1, sizeof(b1)),
			       fmt_rate(mc, b2, sizeof(b2)),
			       fmt_ratio(ratio(ring, mx), b3, sizeof(b3)),
			       fmt_ratio(ratio(more, mx), b5, sizeof(b5)),
			       other, other > res->threshold ? "!" : "");
			first = false;
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "reps", required_argument, NULL, 'r' },
		{ "seconds", required_argument, NULL, 's' },
		{ "csv", required_argument, NULL, 'c' },
		{ "ring", required_argument, NULL, 'R' },
		{ "unix-buf", required_argument, NULL, 'u' },
		{ "size", required_argument, NULL, 'z' },
		{ "only", required_argument, NULL, 'o' },
		{ "transport", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const enum transport p2p_t[] = {
		T_RING, T_RING_MORE, T_MEMCPY, T_MUTEX_SPIN, T_MUTEX_COND,
		T_UNIX, T_SPSC,
	};
	static const enum transport scale_t[] = {
		T_RING, T_RING_MORE, T_MUTEX_SPIN, T_MUTEX_COND,
	};
	struct opts o = { .reps = 5, .seconds = 0.4,
			  .csv = "build/bench/ring.csv" };
	struct bench b = { .fd = -1, .sv = { -1, -1 },
			   .buf_bytes = RING_BYTES };
	char machine[512], date[64], sz[32];
	double rt_start, rt_end;
	struct results *res;
	struct target tg[32];
	struct utsname un;
	uint64_t t_start = now_ns();
	int ntg = 0, ret = 0, opt, fds, r;
	size_t si, i;

	while ((opt = getopt_long(argc, argv, "qr:s:c:R:u:z:o:t:vh", lopts,
				  NULL)) != -1) {
		switch (opt) {
		case 'q':
			o.quick = true;
			break;
		case 'r':
			o.reps = atoi(optarg);
			break;
		case 's':
			o.seconds = atof(optarg);
			break;
		case 'c':
			o.csv = optarg;
			break;
		case 'R':
			b.buf_bytes = (uint32_t)strtoul(optarg, NULL, 0) << 10;
			break;
		case 'u':
			b.unix_buf = atoi(optarg);
			break;
		case 'z':
			o.size = (uint32_t)strtoul(optarg, NULL, 0);
			break;
		case 'o':
			o.only = optarg;
			break;
		case 't':
			o.transport = optarg;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			help(stdout);
			return 0;
		default:
			help(stderr);
			return EXIT_SETUP;
		}
	}
	if (o.quick) {
		o.reps = 1;
		o.seconds = 0.05;
	}
	if (optind != argc || o.reps < 1 || o.reps > 16 || o.seconds <= 0 ||
	    o.seconds > 60 || !is_power_of_2(b.buf_bytes) ||
	    b.buf_bytes < (128u << 10) || b.buf_bytes > (256u << 20)) {
		help(stderr);
		return EXIT_SETUP;
	}
	b.ring_min = b.buf_bytes;
	size_buffers(&b, 64, true);
	if (pick_cpus(&b.cpu_cons, &b.cpu_prod)) {
		fprintf(stderr, "bench: no CPU to run on\n");
		return EXIT_SETUP;
	}
	b.ctl = shared_alloc(sizeof(struct ctl));
	res = calloc(1, sizeof(*res));
	if (!b.ctl || !res) {
		fprintf(stderr, "bench: out of memory\n");
		free(res);
		return EXIT_SETUP;
	}

	machine_describe(machine, sizeof(machine));
	date_describe(date, sizeof(date));
	if (uname(&un))
		snprintf(un.release, sizeof(un.release), "?");
	res->threshold = 3 / (double)sysconf(_SC_CLK_TCK) / o.seconds;
	if (res->threshold < FOREIGN_WARN)
		res->threshold = FOREIGN_WARN;
	fds = count_fds();
	rt_start = calibrate(&b);
	printf("AF_IVSHMEM ring benchmark (bench_ring)\n");
	printf("date:    %s\n", date);
	printf("machine: %s, Linux %s\n", machine, un.release);
	printf("build:   gcc %s, -O2 (portable)\n", __VERSION__);
	printf("method:  median of %d x %.2f s per figure; consumer on CPU %d, producer(s) on CPU %d;\n"
	       "         ring %u KiB (point to point: at least %u records, 64 KiB: %u KiB);\n"
	       "         mutex buffer, spsc-ref and memcpy area the same size as the ring\n",
	       o.reps, o.seconds, b.cpu_cons, b.cpu_prod, b.ring_min >> 10,
	       P2P_RECORDS, p2p_ring_kib(&b, 65536));
	if (b.cpu_cons == b.cpu_prod)
		printf("WARNING: only one CPU available; every process shares it\n");
	fflush(stdout);

	for (si = 0; si < ARRAY_SIZE(p2p_sizes) && !ret; si++) {
		if ((o.size && o.size != p2p_sizes[si]) ||
		    (o.only && strcmp(o.only, "p2p")))
			continue;
		ret = measure(&b, res, &o, p2p_t, ARRAY_SIZE(p2p_t),
			      p2p_sizes[si], 1, false);
	}
	for (si = 0; si < ARRAY_SIZE(scale_sizes) && !ret; si++) {
		if ((o.size && o.size != scale_sizes[si]) ||
		    (o.only && strcmp(o.only, "scaling")))
			continue;
		for (i = 0; i < ARRAY_SIZE(scale_counts) && !ret; i++)
			ret = measure(&b, res, &o, scale_t, ARRAY_SIZE(scale_t),
				      scale_sizes[si], scale_counts[i], true);
	}
	if (ret) {
		fprintf(stderr, "bench: %s\n", ret == EXIT_VERIFY ?
			"VERIFICATION FAILED" : "setup error");
		munmap(b.ctl, sizeof(struct ctl));
		free(res);
		return ret;
	}
	rt_end = calibrate(&b);
	meas_finish(res);
	/* Everything started was reaped and closed. */
	if (waitpid(-1, NULL, WNOHANG) != -1 || errno != ECHILD) {
		fprintf(stderr, "bench: a child process was left behind\n");
		ret = EXIT_SETUP;
	}
	if (count_fds() != fds) {
		fprintf(stderr, "bench: %d file descriptors left open\n",
			count_fds() - fds);
		ret = EXIT_SETUP;
	}

	printf("cleanup: %lu child processes, all reaped; no file descriptor left open\n",
	       b.spawned);
	printf("cross-CPU cache-line round trip (CPU %d <-> %d): %.0f ns before, %.0f ns after\n",
	       b.cpu_cons, b.cpu_prod, rt_start, rt_end);
	printf("others:  other processes and the host (steal) kept %.2f CPUs busy on average during\n"
	       "         the timed repetitions; %d repeated for that; %d of %d still had more than\n"
	       "         %.2f CPUs (figures marked !)\n",
	       res->runs ? res->foreign_sum / res->runs : 0, res->retries,
	       res->disturbed, res->runs, res->threshold);
	printf("\nPoint to point: 1 producer -> 1 consumer; records/s, payload bytes/s (1 GB = 1e9 B);\n"
	       "spread = (max - min) / median over the repetitions; others = the most CPUs other\n"
	       "processes or the host used during one of them\n");
	if (b.sndbuf)
		printf("AF_UNIX SOCK_SEQPACKET: SO_SNDBUF %d, SO_RCVBUF %d (as reported)\n",
		       b.sndbuf, b.rcvbuf);
	printf("\n");
	print_p2p(res, p2p_t, ARRAY_SIZE(p2p_t));

	printf("\nScaling: N producers (all on CPU %d, one channel each, %u KiB / N rings) -> 1 consumer\n"
	       "(CPU %d, round-robin); mutex: N producers share one %u KiB buffer; aggregate records/s\n\n",
	       b.cpu_prod, b.ring_min >> 10, b.cpu_cons, b.ring_min >> 10);
	print_scaling(res);

	for (r = 0; r < 2; r++) {
		enum transport rt = r ? T_RING_MORE : T_RING;
		const char *rn = tname[rt];

		target_add(tg, &ntg, ratio(med(res, rt, 65536, 1, false),
					   med(res, T_MEMCPY, 65536, 1, false)),
			   0.5, false, "", "%s/memcpy bandwidth at 64 KiB", rn);
		target_add(tg, &ntg, med(res, rt, 64, 1, false) / 1e6, 10,
			   false, " M/s", "%s records/s at 64 B", rn);
		for (si = 0; si < ARRAY_SIZE(p2p_sizes); si++) {
			uint32_t len = p2p_sizes[si];

			target_add(tg, &ntg,
				   ratio(med(res, rt, len, 1, false),
					 med(res, T_UNIX, len, 1, false)),
				   1, true, "", "%s/AF_UNIX at %s", rn,
				   fmt_size(len, sz, sizeof(sz)));
		}
		for (si = 0; si < ARRAY_SIZE(scale_sizes); si++) {
			uint32_t len = scale_sizes[si];

			target_add(tg, &ntg,
				   ratio(med(res, rt, len, 8, true),
					 med_mutex(res, len, 8, true)),
				   3, false, "", "%s/mutex, 8 channels, %s", rn,
				   fmt_size(len, sz, sizeof(sz)));
		}
	}
	printf("\nTargets\n\n");
	for (i = 0; i < (size_t)ntg; i++)
		printf("  %-38s %8.2f%-4s %2s %-4g %s\n", tg[i].what,
		       tg[i].value, tg[i].unit, tg[i].strict ? ">" : ">=",
		       tg[i].target, target_status(&tg[i]));

	if (write_csv(o.csv, res, tg, ntg, machine, date))
		fprintf(stderr, "bench: cannot write %s: %s\n", o.csv,
			strerror(errno));
	else
		printf("\nCSV: %s\n", o.csv);
	printf("total time: %.1f s\n", (double)(now_ns() - t_start) / 1e9);
	munmap(b.ctl, sizeof(struct ctl));
	free(res);
	return ret;
}
