// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile peer, for tests only. It runs as root in a guest that has no
 * af_ivshmem, maps the ivshmem device's BARs through sysfs and does to the
 * region what a buggy or malicious guest kernel could: first targeted
 * attacks on one connection of the victim at a time (hostile.h lists
 * them), then attacks on the whole region: forged connection requests,
 * fake peers, a header rewritten, a doorbell flood, the control lock held
 * forever by a fake owner that beats, the lock word naming the victim
 * itself, forged DEAD slots while the lock is held, a rebuild bomb (every
 * free channel slot naming a longest run that overlaps another, rebuilt
 * whenever the victim takes the lock from a dead owner), random bytes
 * flipped anywhere at a high rate, the victim's own peer slot taken from
 * it, and last the free data area filled with channels in the victim's
 * own name, which the victim must free while we still beat. All along it
 * watches the victim's heartbeat: a victim that stops beating for a
 * second (its liveness work held up) fails the run.
 * Then it stops: it no longer beats any heartbeat, so the victim declares
 * it and its fake peers dead, and the attack is over.
 *
 * It uses the region core (layout, allocator, ring) to find its way and to
 * make the one honest connection it needs, the report connection on which
 * it tells the victim when each targeted phase is over.
 *
 * Output: "hostile: attack KIND: N" for every kind, then TAP lines for the
 * runner. The random choices come from ivshm.token, printed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "proto.h"
#include "hostile.h"

/*
 * From ivshm_test.c. Its header pulls in the uapi headers, whose __le
 * types clash with the region core's user-space stand-ins.
 */
unsigned long long ivshm_cmdline_ull(const char *key, unsigned long long def);
void *ivshm_map_bar(int bar, size_t *len);
uint64_t ivshm_now_ms(void);
void ivshm_sleep_ms(unsigned int ms);

#define REG_IVPOSITION		(0x08 / 4)
#define REG_DOORBELL		(0x0c / 4)

#define WAIT_VICTIM_MS		240000	/* the victim boots a debug kernel */
#define WAIT_TARGET_MS		120000
#define PHASE_MS		5000	/* most a targeted phase attacks for */
#define SURVIVE_MS		2000	/* what a SURVIVE phase attacks for */
#define FAKE_PEERS		6

enum kind {
	K_HEAD_AHEAD, K_HEAD_BEHIND, K_TAIL_PAST, K_REC_LEN, K_REC_TYPE,
	K_REC_MOVED, K_STATE_FLIP, K_FORGED_CLOSE, K_DESC_REWRITE,
	K_FORGED_CONNECT, K_FAKE_PEER, K_LOCK_FOREVER, K_HEADER_REWRITE,
	K_DOORBELL_FLOOD, K_PENDING_FLOOD, K_RANDOM_FLIP, K_OWN_SLOT,
	K_MOVED_CHAIN, K_LOCK_NAMING_VICTIM, K_DEAD_SLOTS, K_REBUILD_BOMB,
	K_VICTIM_NAME_FILL,
	K_NR,
};

static const char *const kind_name[K_NR] = {
	"head-ahead", "head-behind", "tail-past", "record-length",
	"record-type", "record-moved", "state-flip", "forged-close",
	"descriptor-rewrite", "forged-connect", "fake-peer", "lock-forever",
	"header-rewrite", "doorbell-flood", "pending-flood", "random-flip",
	"own-slot", "moved-chain", "lock-naming-victim", "dead-slots",
	"rebuild-bomb", "victim-name-fill",
};

static unsigned long long count[K_NR];

/* The kind a targeted phase counts as: the first ones in the same order. */
static enum kind phase_kind(unsigned int phase)
{
	return phase == HP_MOVED_CHAIN ? K_MOVED_CHAIN : (enum kind)phase;
}
static struct ivshm_layout l;
static volatile uint32_t *regs;
static uint32_t own, own_inc, victim;
static uint64_t rng;

/* Fake peers, and whether the beater keeps them alive. */
static struct {
	uint32_t vm;
	volatile int beating;
} fake[FAKE_PEERS];
static volatile int stop_beating;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint32_t rnd_below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static void ring(uint32_t vm, uint32_t vector)
{
	regs[REG_DOORBELL] = vm << 16 | vector;
}

/* Tell the victim channel @idx has news in @set, as an honest peer would. */
static void notify(uint32_t idx, uint32_t set)
{
	ivshm_notify_mark(&l, victim, set, idx);
	ring(victim, set == IVSHM_PEND_CTRL ? IVSHM_VEC_CTRL : IVSHM_VEC_DATA);
}

static void notify_both(uint32_t idx)
{
	notify(idx, IVSHM_PEND_CTRL);
	notify(idx, IVSHM_PEND_DATA);
}

/*
 * The victim's heartbeat, as we see it: its longest gap while we attack.
 * A look of ours that comes late (this guest's vCPU held up by the host,
 * or by our attacks) cannot tell whose stall it was: the time it came
 * late by is taken off the gap (not the gap started again, which would
 * let a late look hide a stall of the victim's), and that stretch counts
 * as not watched. Watched must be at least half the attack, or the gap
 * says too little to pass.
 */
#define WATCH_EVERY_MS	100
#define WATCH_LATE_MS	300
static uint64_t victim_beat, victim_beat_at, victim_gap_max;
static uint64_t watched_at, watch_late, watch_first;
static uint64_t unwatched_ms, unwatched_since_beat;

static void watch_victim(void)
{
	uint64_t beat = ivshm_get64(&ivshm_peer(&l, victim)->heartbeat);
	uint64_t now = ivshm_now_ms(), gap;
	bool late = watched_at && now - watched_at > WATCH_LATE_MS;

	if (late) {
		watch_late++;
		unwatched_ms += now - watched_at - WATCH_EVERY_MS;
		unwatched_since_beat += now - watched_at - WATCH_EVERY_MS;
	}
	if (!watch_first)
		watch_first = now;
	watched_at = now;
	if (beat != victim_beat || !victim_beat_at) {
		victim_beat = beat;
		victim_beat_at = now;
		unwatched_since_beat = 0;
		return;
	}
	gap = now - victim_beat_at - unwatched_since_beat;
	if (gap > victim_gap_max)
		victim_gap_max = gap;
}

/* Our heartbeat and our beating fakes', every 100 ms until told to stop;
 * and a look at the victim's.
 */
static void *beater(void *arg)
{
	int i;

	(void)arg;
	while (!stop_beating) {
		struct ivshm_peer *me = ivshm_peer(&l, own);

		watch_victim();

		ivshm_put64(&me->heartbeat, ivshm_get64(&me->heartbeat) + 1);
		for (i = 0; i < FAKE_PEERS; i++) {
			struct ivshm_peer *p = ivshm_peer(&l, fake[i].vm);

			if (fake[i].beating)
				ivshm_put64(&p->heartbeat,
					    ivshm_get64(&p->heartbeat) + 1);
		}
		ivshm_sleep_ms(WATCH_EVERY_MS);
	}
	return NULL;
}

/* The victim: the first VM other than us that is alive. */
static int find_victim(void)
{
	uint64_t end = ivshm_now_ms() + WAIT_VICTIM_MS;
	uint32_t vm;

	while (ivshm_now_ms() < end) {
		for (vm = 0; vm < l.max_peers; vm++)
			if (vm != own && ivshm_peer_alive(&l, vm, NULL)) {
				victim = vm;
				return 0;
			}
		ivshm_sleep_ms(50);
	}
	return -1;
}

/* An OPEN channel the victim sends on from @src to @dst, other than the
 * one we had before (@skip, @skip_gen); -1 if none.
 */
static int find_chan(uint32_t src, uint32_t dst, uint32_t *gen,
		     int skip, uint32_t skip_gen)
{
	uint32_t i;

	for (i = 0; i < l.max_channels; i++) {
		struct ivshm_chan *c = ivshm_chan(&l, i);

		if (ivshm_load_acquire32(&c->state) == IVSHM_CHAN_OPEN &&
		    ivshm_get16(&c->sender_vm) == victim &&
		    ivshm_get32(&c->src_port) == src &&
		    ivshm_get32(&c->dst_port) == dst &&
		    ((int)i != skip || ivshm_get32(&c->generation) != skip_gen)) {
			*gen = ivshm_get32(&c->generation);
			return (int)i;
		}
	}
	return -1;
}

static int wait_chan(uint32_t src, uint32_t dst, uint32_t *gen,
		     unsigned int ms, int skip, uint32_t skip_gen)
{
	uint64_t end = ivshm_now_ms() + ms;
	int idx;

	do {
		idx = find_chan(src, dst, gen, skip, skip_gen);
		if (idx >= 0)
			return idx;
		ivshm_sleep_ms(20);
	} while (ivshm_now_ms() < end);
	return -1;
}

static int still_open(uint32_t idx, uint32_t gen)
{
	struct ivshm_chan *c = ivshm_chan(&l, idx);

	return ivshm_load_acquire32(&c->state) == IVSHM_CHAN_OPEN &&
	       ivshm_get32(&c->generation) == gen;
}

/* Take the control lock as an honest peer does; 0 on success. */
static int lock_take(unsigned int ms)
{
	uint64_t end = ivshm_now_ms() + ms;
	int ret;

	for (;;) {
		ret = ivshm_ctrl_trylock(&l, own, own_inc, NULL);
		if (ret == 1)
			ivshm_blocks_rebuild(&l);
		if (ret >= 0)
			return 0;
		if (ivshm_now_ms() >= end)
			return -1;
		usleep(200);
	}
}

static void lock_drop(void)
{
	ivshm_ctrl_unlock(&l, own, own_inc);
}

/* ---- the report connection: the protocol followed to the letter ---- */

static struct ivshm_ring report_ring;
static uint32_t report_idx;
static int report_up;

static int report_connect(void)
{
	const uint32_t size = 4 * IVSHM_BLOCK_SIZE;
	struct ivshm_chan *c, *rev;
	uint32_t rstate, ridx;
	uint64_t off, end;

	if (lock_take(2000))
		return -1;
	if (ivshm_chan_alloc(&l, &report_idx)) {
		lock_drop();
		return -1;
	}
	if (ivshm_blocks_alloc(&l, size / IVSHM_BLOCK_SIZE, &off)) {
		ivshm_chan_free(&l, report_idx);
		lock_drop();
		return -1;
	}
	c = ivshm_chan(&l, report_idx);
	ivshm_put16(&c->sender_vm, own);
	ivshm_put16(&c->receiver_vm, victim);
	ivshm_put32(&c->sender_pid, (uint32_t)getpid());
	ivshm_put32(&c->src_port, HOSTILE_PORT_REPORT);
	ivshm_put32(&c->dst_port, HOSTILE_PORT_REPORT);
	ivshm_put64(&c->buff_offset, off);
	ivshm_put32(&c->buff_size, size);
	ivshm_put32(&c->sender_inc, own_inc);
	lock_drop();
	ivshm_ring_init(&report_ring, &l, report_idx, off, size);
	ivshm_store_release32(&c->state, IVSHM_CHAN_CONNECT);
	notify(report_idx, IVSHM_PEND_CTRL);

	end = ivshm_now_ms() + 30000;
	while ((rstate = ivshm_load_acquire32(&c->rx_state)) == IVSHM_RX_NONE) {
		if (ivshm_now_ms() >= end)
			return -1;
		ivshm_sleep_ms(10);
	}
	if (rstate != IVSHM_RX_ACCEPTED)
		return -1;
	ridx = ivshm_get32(&c->rx_peer_chan);
	if (ridx >= l.max_channels)
		return -1;
	rev = ivshm_chan(&l, ridx);
	ivshm_put32(&rev->receiver_inc, own_inc);
	ivshm_store_release32(&rev->rx_state, IVSHM_RX_ACCEPTED);
	ivshm_store_release32(&c->state, IVSHM_CHAN_OPEN);
	notify(report_idx, IVSHM_PEND_CTRL);
	notify(ridx, IVSHM_PEND_CTRL);
	report_up = 1;
	return 0;
}

static void report(uint32_t phase, uint32_t round, uint32_t attacks,
		   uint32_t hit)
{
	struct hostile_report rep = {
		HOSTILE_REPORT_MAGIC, phase, round, attacks, hit,
	};
	struct ivshm_span span;
	uint64_t end = ivshm_now_ms() + 10000;
	int ret;

	printf("hostile: phase %s, target %u: %u attacks, target %s\n",
	       hostile_phase_name[phase], round, attacks,
	       hit ? "left OPEN" : "untouched");
	if (!report_up)
		return;
	while ((ret = ivshm_tx_reserve(&report_ring, sizeof(rep),
				       IVSHM_REC_DATA, 0, &span)) == -EAGAIN &&
	       ivshm_now_ms() < end)
		ivshm_sleep_ms(10);
	if (ret) {
		printf("hostile: report of phase %u not sent (%d)\n", phase, ret);
		return;
	}
	ivshm_span_write(&span, &rep);
	ivshm_tx_commit(&report_ring);
	notify(report_idx, IVSHM_PEND_DATA);
}

/* ---- targeted phases ---- */

struct target {
	uint32_t c, cgen;	/* the victim's connector channel */
	uint32_t a, agen;	/* and the acceptor's, the other way */
	uint8_t *ring;		/* @c's run, as @c says at the start */
	uint32_t size;
};

static struct ivshm_chan *tc(const struct target *t, int rev)
{
	return ivshm_chan(&l, rev ? t->a : t->c);
}

/* Write one header word where @c's reader will look next. */
static void forge_record(const struct target *t, uint64_t word,
			 const void *payload, uint32_t len)
{
	struct ivshm_chan *c = tc(t, 0);
	uint64_t tail = ivshm_get64(&c->tail);
	uint32_t pos = (uint32_t)(tail % t->size) & ~7u;
	uint32_t i;

	ivshm_put64((__le64 *)(t->ring + pos), word);
	for (i = 0; i < len; i++)
		t->ring[(pos + 8 + i) % t->size] = ((const uint8_t *)payload)[i];
	/* If the ring was empty, make the record visible. */
	if (ivshm_get64(&c->head) == tail)
		ivshm_put64(&c->head, tail + 8 + ((len + 7) & ~7u));
}

/* The state-flip phase's first two rounds each make one move backwards
 * that the victim must catch although the value itself is a valid one:
 * its connector's channel back to CONNECT, then the answer on it back to
 * NONE. Later rounds flip at random.
 */
enum { FLIP_RANDOM, FLIP_TO_CONNECT, FLIP_ANSWER_TO_NONE };

static void attack_once(unsigned int phase, const struct target *t,
			unsigned int forced)
{
	struct ivshm_chan *c = tc(t, 0), *a = tc(t, 1), *x;
	uint64_t head = ivshm_get64(&c->head), tail = ivshm_get64(&c->tail);
	struct ivshm_rec_moved mv;
	uint32_t v;

	switch (phase) {
	case HP_HEAD_AHEAD:
		ivshm_put64(&c->head, tail + t->size + 8 + (rnd() & 0xffff8));
		break;
	case HP_HEAD_BEHIND:
		ivshm_put64(&c->head, tail - 8 * (1 + rnd_below(64)));
		break;
	case HP_TAIL_PAST:
		ivshm_put64(&c->tail, head + 8 * (1 + rnd_below(4096)));
		break;
	case HP_REC_LEN:
		v = (uint32_t[]){ t->size, t->size - 7, 0xffffffffu,
				  0x80000000u, t->size + 4096 }[rnd_below(5)];
		forge_record(t, IVSHM_REC_WORD(v, IVSHM_REC_DATA, 0), NULL, 0);
		break;
	case HP_REC_TYPE:
		if (rnd() & 1) {
			v = (uint32_t[]){ 0, IVSHM_REC_NR_TYPES, 0x7fff,
					  0xffff }[rnd_below(4)];
			forge_record(t, IVSHM_REC_WORD(8, v, 0), NULL, 0);
		} else {
			v = 0x8000 | rnd_below(0x7fff);
			forge_record(t, IVSHM_REC_WORD(8, IVSHM_REC_DATA, v),
				     NULL, 0);
		}
		break;
	case HP_REC_MOVED:
		/* Out of the data area, misaligned, too small or too big, or
		 * an extension that would shrink the run.
		 */
		mv.buff_offset = (uint64_t)l.nr_blocks * IVSHM_BLOCK_SIZE;
		mv.buff_size = t->size;
		mv.flags = 0;
		switch (rnd_below(5)) {
		case 1:
			mv.buff_offset = 8;
			break;
		case 2:
			mv.buff_offset = 0;
			mv.buff_size = IVSHM_BLOCK_SIZE;
			break;
		case 3:
			mv.buff_offset = 0;
			mv.buff_size = 0xfffff000u;
			break;
		case 4:
			mv.buff_offset = 0;
			mv.buff_size = t->size / 2;
			mv.flags = IVSHM_MOVED_F_EXTEND;
			break;
		}
		mv.buff_offset = htole64(mv.buff_offset);
		mv.buff_size = htole32(mv.buff_size);
		mv.flags = htole32(mv.flags);
		forge_record(t, IVSHM_REC_WORD(sizeof(mv), IVSHM_REC_MOVED, 0),
			     &mv, sizeof(mv));
		break;
	case HP_STATE_FLIP:
		if (forced == FLIP_TO_CONNECT) {
			ivshm_put32(&c->state, IVSHM_CHAN_CONNECT);
			break;
		}
		if (forced == FLIP_ANSWER_TO_NONE) {
			ivshm_put32(&c->rx_state, IVSHM_RX_NONE);
			break;
		}
		x = rnd() & 1 ? c : a;
		v = (uint32_t)rnd();
		if (rnd() & 1)
			v &= 7;		/* near the real values, too */
		switch (rnd_below(5)) {
		case 0:
			ivshm_put32(&x->state, v);
			break;
		case 1:
			ivshm_put32(&x->rx_state, v);
			break;
		case 2:
			ivshm_put32(&x->generation, v);
			break;
		case 3:
			ivshm_put32(&x->tx_flags, v);
			break;
		default:
			ivshm_put32(&x->rx_flags, v);
			break;
		}
		break;
	case HP_FORGED_CLOSE:
		switch (rnd_below(3)) {
		case 0:
			ivshm_store_release32(&c->state, IVSHM_CHAN_CLOSED);
			break;
		case 1:
			ivshm_store_release32(&c->rx_state, IVSHM_RX_RESET);
			break;
		default:
			ivshm_store_release32(&a->rx_state, IVSHM_RX_CLOSED);
			break;
		}
		break;
	case HP_MOVED_CHAIN:
		/* The reader's next record names the run it is in, and so
		 * does that run's first record: three times in four the head
		 * covers just the one MOVED record (a new one for each look
		 * of the reader's), else the whole run (a chain under one
		 * head, which the reader must refuse).
		 */
		mv.buff_offset = htole64((uint64_t)(t->ring - l.base - l.data_off));
		mv.buff_size = htole32(t->size);
		mv.flags = 0;
		forge_record(t, IVSHM_REC_WORD(sizeof(mv), IVSHM_REC_MOVED, 0),
			     &mv, sizeof(mv));
		ivshm_put64((__le64 *)t->ring,
			    IVSHM_REC_WORD(sizeof(mv), IVSHM_REC_MOVED, 0));
		memcpy(t->ring + 8, &mv, sizeof(mv));
		ivshm_put64(&c->head, ivshm_get64(&c->tail) +
			    ((count[K_MOVED_CHAIN] & 3) == 3 ? t->size :
			     IVSHM_REC_HDR + sizeof(mv)));
		break;
	case HP_DESC_REWRITE:
		/* Values the victim read once, at connect, and keeps. */
		x = rnd() & 1 ? c : a;
		switch (rnd_below(8)) {
		case 0:
			ivshm_put64(&x->buff_offset, rnd());
			break;
		case 1:
			ivshm_put32(&x->buff_size, (uint32_t)rnd());
			break;
		case 2:
			ivshm_put64(&x->old_offset, rnd());
			break;
		case 3:
			ivshm_put32(&x->old_size, (uint32_t)rnd());
			break;
		case 4:
			ivshm_put32(&x->peer_chan, (uint32_t)rnd());
			break;
		case 5:
			ivshm_put32(&x->peer_gen, (uint32_t)rnd());
			break;
		case 6:
			ivshm_put32(&x->rx_peer_chan, (uint32_t)rnd());
			break;
		default:
			ivshm_put32(&x->sender_pid, (uint32_t)rnd());
			break;
		}
		break;
	}
	count[phase_kind(phase)]++;
	notify_both(t->c);
	notify_both(t->a);
}

/* The last target, which the next round must not take for the new one. */
static struct target last = { .c = -1u, .a = -1u };

static int targeted_round(unsigned int phase, unsigned int round)
{
	unsigned int ms = hostile_phase_fails(phase) ? PHASE_MS : SURVIVE_MS;
	unsigned int forced = phase == HP_STATE_FLIP && round < 2 ?
			      FLIP_TO_CONNECT + round : FLIP_RANDOM;
	unsigned long long before = count[phase_kind(phase)];
	struct target t;
	uint64_t off, end;
	int idx, hit = 0;

	idx = wait_chan(HOSTILE_PORT_TARGET + phase, HOSTILE_PORT_LISTEN,
			&t.cgen, WAIT_TARGET_MS, (int)last.c, last.cgen);
	if (idx < 0)
		return -1;
	t.c = (uint32_t)idx;
	idx = wait_chan(HOSTILE_PORT_LISTEN, HOSTILE_PORT_TARGET + phase,
			&t.agen, 10000, (int)last.a, last.agen);
	if (idx < 0)
		return -1;
	last = t;
	t.a = (uint32_t)idx;
	off = ivshm_get64(&tc(&t, 0)->buff_offset);
	t.size = ivshm_get32(&tc(&t, 0)->buff_size);
	if (!ivshm_run_valid(&l, off, t.size))
		return -1;
	t.ring = l.base + l.data_off + off;
	/* Let records flow first, so that there is something to spoil. */
	ivshm_sleep_ms(300);

	end = ivshm_now_ms() + ms;
	while (ivshm_now_ms() < end) {
		/* A forced move is made once; then only the victim acts. */
		if (forced == FLIP_RANDOM || count[phase_kind(phase)] == before)
			attack_once(phase, &t, forced);
		if (!still_open(t.c, t.cgen) || !still_open(t.a, t.agen)) {
			hit = 1;
			if (hostile_phase_fails(phase))
				break;
		}
		usleep(500);
	}
	report(phase, round, (uint32_t)(count[phase_kind(phase)] - before),
	       (uint32_t)hit);
	return 0;
}

static int targeted_phase(unsigned int phase)
{
	unsigned int round;

	for (round = 0; round < HOSTILE_ROUNDS; round++)
		if (targeted_round(phase, round))
			return -1;
	return 0;
}

/* ---- attacks on the whole region ---- */

/* A channel addressed to the victim's HOSTILE_PORT_FORGED, in one of
 * several shapes; some honest-looking, most not.
 */
static void forged_connect(uint32_t sender, uint32_t sender_inc)
{
	const uint32_t variant = rnd_below(10);
	uint32_t size = 4 * IVSHM_BLOCK_SIZE, idx, rx;
	uint64_t off = 0, end;
	struct ivshm_chan *c;
	int honest = variant < 2, locked = 0, i;

	if (honest || variant == 2) {
		/* Taken as the protocol says: lock, slot, run. */
		if (lock_take(200))
			return;
		locked = 1;
		if (ivshm_chan_alloc(&l, &idx)) {
			lock_drop();
			return;
		}
		if (honest && ivshm_blocks_alloc(&l, size / IVSHM_BLOCK_SIZE, &off)) {
			ivshm_chan_free(&l, idx);
			lock_drop();
			return;
		}
	} else {
		/* A FREE slot grabbed without the lock. */
		for (idx = rnd_below(l.max_channels), i = 0;
		     i < (int)l.max_channels; i++, idx = (idx + 1) % l.max_channels)
			if (ivshm_get32(&ivshm_chan(&l, idx)->state) == IVSHM_CHAN_FREE)
				break;
		if (i == (int)l.max_channels)
			return;
		c = ivshm_chan(&l, idx);
		ivshm_put32(&c->generation, ivshm_get32(&c->generation) + 1);
		memset(&c->head, 0, sizeof(*c) - offsetof(struct ivshm_chan, head));
	}
	c = ivshm_chan(&l, idx);
	ivshm_put16(&c->sender_vm, sender);
	ivshm_put16(&c->receiver_vm, victim);
	ivshm_put32(&c->src_port, 40000 + rnd_below(1000));
	ivshm_put32(&c->dst_port, HOSTILE_PORT_FORGED);
	ivshm_put32(&c->sender_inc, sender_inc);
	switch (variant) {
	case 2:		/* a run that overlaps whatever is at 0 */
		off = 0;
		break;
	case 3:		/* outside the data area */
		off = (uint64_t)l.nr_blocks * IVSHM_BLOCK_SIZE;
		break;
	case 4:		/* misaligned */
		off = 8;
		break;
	case 5:		/* too small */
		size = IVSHM_BLOCK_SIZE;
		break;
	case 6:		/* not whole blocks, or huge */
		size = rnd() & 1 ? 20000 : 0x80000000u;
		break;
	case 7:		/* a sender that does not exist */
		ivshm_put16(&c->sender_vm, 0xffff);
		break;
	case 8:		/* the wrong incarnation */
		ivshm_put32(&c->sender_inc, sender_inc + 1 + rnd_below(5));
		break;
	case 9:		/* addressed to nobody listening */
		ivshm_put32(&c->dst_port, 1 + rnd_below(5000));
		break;
	}
	ivshm_put64(&c->buff_offset, off);
	ivshm_put32(&c->buff_size, size);
	if (locked)
		lock_drop();
	ivshm_store_release32(&c->state, IVSHM_CHAN_CONNECT);
	notify(idx, IVSHM_PEND_CTRL);
	count[K_FORGED_CONNECT]++;

	end = ivshm_now_ms() + 300;
	while ((rx = ivshm_load_acquire32(&c->rx_state)) == IVSHM_RX_NONE &&
	       ivshm_now_ms() < end)
		usleep(1000);
	if (rx == IVSHM_RX_ACCEPTED && honest) {
		struct ivshm_ring r;
		struct ivshm_span span;
		uint8_t junk[64];

		/* Records the victim's reader takes, then one it must not. */
		ivshm_store_release32(&c->state, IVSHM_CHAN_OPEN);
		ivshm_ring_init(&r, &l, idx, off, size);
		for (i = 0; i < (int)sizeof(junk); i++)
			junk[i] = (uint8_t)rnd();
		if (!ivshm_tx_reserve(&r, sizeof(junk), IVSHM_REC_DATA, 0, &span)) {
			ivshm_span_write(&span, junk);
			ivshm_tx_commit(&r);
		}
		ivshm_put64((__le64 *)(l.base + l.data_off + off +
				       ivshm_get64(&c->head) % size),
			    IVSHM_REC_WORD(size * 2, IVSHM_REC_DATA, 0));
		ivshm_put64(&c->head, ivshm_get64(&c->head) + 8);
		notify(idx, IVSHM_PEND_DATA);
		ivshm_sleep_ms(20);
	}
	/* Leave as an honest sender would, so that the slot comes back. */
	ivshm_store_release32(&c->state, IVSHM_CHAN_CLOSED);
	notify(idx, IVSHM_PEND_CTRL);
	end = ivshm_now_ms() + 200;
	while (ivshm_now_ms() < end) {
		rx = ivshm_load_acquire32(&c->rx_state);
		if (rx == IVSHM_RX_CLOSED || rx == IVSHM_RX_RESET ||
		    rx == IVSHM_RX_REFUSED || rx == IVSHM_RX_NOBUFS)
			break;
		usleep(1000);
	}
	if (!lock_take(200)) {
		if (honest)
			ivshm_blocks_free(&l, off, size / IVSHM_BLOCK_SIZE);
		if (locked)
			ivshm_chan_free(&l, idx);
		else	/* never counted as active: just let it go */
			ivshm_store_release32(&c->state, IVSHM_CHAN_FREE);
		lock_drop();
	}
}

static void run_for(unsigned int ms, void (*fn)(void))
{
	uint64_t end = ivshm_now_ms() + ms;

	while (ivshm_now_ms() < end)
		fn();
}

static void forged_connects(void)
{
	int i = rnd_below(FAKE_PEERS + 1);
	uint32_t inc;

	if (i < FAKE_PEERS && fake[i].beating &&
	    ivshm_peer_alive(&l, fake[i].vm, &inc))
		forged_connect(fake[i].vm, inc);	/* from a fake peer */
	else
		forged_connect(own, own_inc);
}

/* Fake peers: alive and beating, alive and silent, dead, claimed, or
 * nonsense; one beating fake changes incarnation again and again.
 */
static void fake_peers_set_up(void)
{
	uint32_t vm = 0;
	int i;

	for (i = 0; i < FAKE_PEERS; i++) {
		while (vm == own || vm == victim)
			vm++;
		fake[i].vm = vm++;
	}
}

static void fake_peers(void)
{
	static const uint32_t states[] = {
		IVSHM_PEER_ALIVE, IVSHM_PEER_ALIVE, IVSHM_PEER_DEAD,
		IVSHM_PEER_CLAIMED, 0x5a5a5a5a, IVSHM_PEER_ALIVE,
	};
	int i;

	for (i = 0; i < FAKE_PEERS; i++) {
		struct ivshm_peer *p = ivshm_peer(&l, fake[i].vm);

		if (i == 0 || i == 5) {
			/* Beating; number 5 comes back as new incarnations. */
			if (!fake[i].beating || i == 5) {
				ivshm_put32(&p->incarnation,
					    ivshm_get32(&p->incarnation) + 1);
				ivshm_put32(&p->vectors, 0);
				ivshm_store_release32(&p->state, states[i]);
				fake[i].beating = 1;
			}
		} else {
			ivshm_put32(&p->incarnation, (uint32_t)rnd() | 1);
			ivshm_put64(&p->heartbeat, rnd());
			ivshm_put32(&p->doorbell_armed, (uint32_t)rnd());
			ivshm_put32(&p->vectors, (uint32_t)rnd());
			ivshm_store_release32(&p->state, states[i]);
		}
		count[K_FAKE_PEER]++;
	}
	ring(victim, IVSHM_VEC_CTRL);
	ivshm_sleep_ms(300);
}

static void header_rewrite(void)
{
	uint8_t *h = l.base;

	h[rnd_below(sizeof(struct ivshm_hdr))] = (uint8_t)rnd();
	count[K_HEADER_REWRITE]++;
	usleep(500);
}

static void doorbell_flood(void)
{
	uint32_t s, w;

	for (s = 0; s < IVSHM_PEND_SETS; s++)
		for (w = 0; w < l.pending_words; w++)
			__atomic_or_fetch(ivshm_pending(&l, victim, s) + w,
					  ~0ull, __ATOMIC_SEQ_CST);
	count[K_PENDING_FLOOD]++;
	for (w = 0; w < 64; w++) {
		ring(victim, w & 1);
		count[K_DOORBELL_FLOOD]++;
	}
}

/* Anywhere but our own peer slot: the victim tells that the attack is
 * over by our heartbeat stopping, so we keep it readable.
 */
static void random_flips(void)
{
	const uint64_t mine = l.peers_off + (uint64_t)own * sizeof(struct ivshm_peer);
	int i;

	for (i = 0; i < 256; i++) {
		uint64_t at = rnd() % l.size;

		if (at - mine < sizeof(struct ivshm_peer))
			continue;
		l.base[at] ^= (uint8_t)(1u << rnd_below(8));
		count[K_RANDOM_FLIP]++;
	}
	if (!(count[K_RANDOM_FLIP] & 0xffff))
		ring(victim, rnd() & 1);
}

/* The control lock, owned by fake peer 0, which beats: nobody may break
 * it while we keep that up.
 */
static void lock_forever(void)
{
	struct ivshm_ctrl *ctl = ivshm_ctrl(&l);
	uint64_t owner, end = ivshm_now_ms() + 5000;
	uint32_t inc;

	if (!ivshm_peer_alive(&l, fake[0].vm, &inc))
		return;
	owner = IVSHM_LOCK_OWNER(fake[0].vm, inc);
	while (ivshm_now_ms() < end) {
		if (!ivshm_cmpxchg64(&ctl->lock, 0, owner))
			break;
		usleep(100);
	}
	count[K_LOCK_FOREVER]++;
}

/* The lock word names the victim itself, which cannot be holding it: it
 * must take the lock over at once, however often we write it.
 */
static void lock_naming_victim(void)
{
	struct ivshm_ctrl *ctl = ivshm_ctrl(&l);
	uint32_t inc;

	if (!ivshm_peer_alive(&l, victim, &inc))
		return;
	ivshm_put64(&ctl->lock, IVSHM_LOCK_OWNER(victim, inc));
	count[K_LOCK_NAMING_VICTIM]++;
	ivshm_sleep_ms(50);
}

/* Slots of VMs declared dead, for the victim to reap, while a peer that
 * beats holds the control lock: the victim's liveness work must not wait
 * for the lock, or its heartbeat stalls and everyone declares it dead.
 */
static void dead_slots(void)
{
	struct ivshm_ctrl *ctl = ivshm_ctrl(&l);
	uint64_t owner;
	uint32_t inc;
	int i;

	if (!ivshm_peer_alive(&l, fake[0].vm, &inc))
		return;
	owner = IVSHM_LOCK_OWNER(fake[0].vm, inc);
	for (i = 1; i < FAKE_PEERS; i++) {
		struct ivshm_peer *p = ivshm_peer(&l, fake[i].vm);

		fake[i].beating = 0;
		ivshm_put32(&p->incarnation, (uint32_t)rnd() | 1);
		ivshm_store_release32(&p->state, IVSHM_PEER_DEAD);
		count[K_DEAD_SLOTS]++;
	}
	/* Taken back as soon as the victim lets go of it. */
	ivshm_cmpxchg64(&ctl->lock, 0, owner);
	ring(victim, IVSHM_VEC_CTRL);
	ivshm_sleep_ms(20);
}

/* The rebuild bomb: every free channel slot becomes a channel of a fake
 * peer that beats, naming the longest run there is, all overlapping; and
 * the lock word names a VM that does not exist, so the victim's next use
 * of the lock breaks it and rebuilds the bookkeeping from that table.
 */
static void rebuild_bomb(void)
{
	const uint32_t run = IVSHM_RUN_MAX < l.nr_blocks * IVSHM_BLOCK_SIZE ?
			     IVSHM_RUN_MAX : l.nr_blocks * IVSHM_BLOCK_SIZE;
	uint32_t i, inc, n = 0;

	if (!ivshm_peer_alive(&l, fake[0].vm, &inc))
		return;
	for (i = 0; i < l.max_channels; i++) {
		struct ivshm_chan *ch = ivshm_chan(&l, i);

		if (ivshm_get32(&ch->state) != IVSHM_CHAN_FREE)
			continue;
		ivshm_put16(&ch->sender_vm, fake[0].vm);
		ivshm_put16(&ch->receiver_vm, 0xffff);
		ivshm_put32(&ch->sender_inc, inc);
		ivshm_put64(&ch->buff_offset, 0);
		ivshm_put32(&ch->buff_size, run);
		ivshm_put64(&ch->old_offset, 0);
		ivshm_put32(&ch->old_size, run);
		ivshm_put32(&ch->state, IVSHM_CHAN_ALLOC);
		n++;
	}
	ivshm_put64(&ivshm_ctrl(&l)->lock, IVSHM_LOCK_OWNER(l.max_peers + 1, 1));
	count[K_REBUILD_BOMB] += n;
	ring(victim, IVSHM_VEC_CTRL);
	ivshm_sleep_ms(100);
}

/* Take the victim's own slot from it: it must notice and join again. */
static void own_slot(void)
{
	struct ivshm_peer *p = ivshm_peer(&l, victim);

	if (rnd() & 1)
		ivshm_put32(&p->incarnation, ivshm_get32(&p->incarnation) + 1);
	else
		ivshm_store_release32(&p->state, IVSHM_PEER_DEAD);
	count[K_OWN_SLOT]++;
	ring(victim, IVSHM_VEC_CTRL);
	ivshm_sleep_ms(700);
}

/* The channels victim_name_fill() forged, and its victim's incarnation. */
static uint32_t *fill_idx, *fill_gen, fill_n, fill_inc;

/* Fill the free data area with channels in the victim's own name and its
 * current incarnation, taken by the protocol's rules: sweeps keep them,
 * since their named sender is alive, and only the victim can tell that it
 * never took them. The incarnation it joined again as after own_slot() is
 * the one that stays the same for half a second.
 */
static void victim_name_fill(void)
{
	uint64_t end = ivshm_now_ms() + 5000, off;
	uint32_t blocks = IVSHM_RUN_MAX / IVSHM_BLOCK_SIZE, inc = 0, seen, idx;
	struct ivshm_chan *c;

	fill_idx = calloc(l.max_channels, sizeof(*fill_idx));
	fill_gen = calloc(l.max_channels, sizeof(*fill_gen));
	if (!fill_idx || !fill_gen)
		return;
	do {
		seen = inc;
		ivshm_sleep_ms(500);
		if (!ivshm_peer_alive(&l, victim, &inc))
			inc = 0;
	} while ((!inc || inc != seen) && ivshm_now_ms() < end);
	if (!inc || inc != seen || lock_take(1000))
		return;
	fill_inc = inc;
	/* Each round takes a slot: the table bounds it. */
	while (blocks && !ivshm_chan_alloc(&l, &idx)) {
		while (blocks && ivshm_blocks_alloc(&l, blocks, &off))
			blocks /= 2;
		if (!blocks) {
			ivshm_chan_free(&l, idx);
			break;
		}
		c = ivshm_chan(&l, idx);
		ivshm_put16(&c->sender_vm, victim);
		ivshm_put16(&c->receiver_vm, fake[0].vm);
		ivshm_put32(&c->sender_inc, inc);
		ivshm_put64(&c->buff_offset, off);
		ivshm_put32(&c->buff_size, blocks * IVSHM_BLOCK_SIZE);
		ivshm_store_release32(&c->state, IVSHM_CHAN_OPEN);
		fill_idx[fill_n] = idx;
		fill_gen[fill_n++] = ivshm_get32(&c->generation);
		count[K_VICTIM_NAME_FILL]++;
	}
	lock_drop();
}

/* How many of the forged channels the victim still has not freed, after
 * waiting up to @ms for it: it frees them when a connect of its finds no
 * room, and every 30 s in any case.
 */
static uint32_t victim_name_left(unsigned int ms, uint64_t *took)
{
	uint64_t start = ivshm_now_ms(), end = start + ms;
	uint32_t i, left;

	do {
		left = 0;
		for (i = 0; i < fill_n; i++) {
			struct ivshm_chan *c = ivshm_chan(&l, fill_idx[i]);

			left += ivshm_get32(&c->state) != IVSHM_CHAN_FREE &&
				ivshm_get32(&c->generation) == fill_gen[i] &&
				ivshm_get16(&c->sender_vm) == victim &&
				ivshm_get32(&c->sender_inc) == fill_inc;
		}
		*took = ivshm_now_ms() - start;
		if (left)
			ivshm_sleep_ms(100);
	} while (left && ivshm_now_ms() < end);
	return left;
}

int main(void)
{
	unsigned long long total = 0;
	size_t len0 = 0, len2 = 0;
	pthread_t beat;
	unsigned int phase;
	int failed = 0, k;
	void *base;

	setvbuf(stdout, NULL, _IOLBF, 0);
	rng = ivshm_cmdline_ull("token", 1) * 0x9e3779b97f4a7c15ull | 1;
	printf("hostile: seed %llu\n", ivshm_cmdline_ull("token", 1));
	regs = ivshm_map_bar(0, &len0);
	base = ivshm_map_bar(2, &len2);
	if (!regs || !base || ivshm_layout_compute(&l, base, len2)) {
		printf("not ok 1 hostile: cannot map the ivshmem BARs: %s\n",
		       strerror(errno));
		return 1;
	}
	own = regs[REG_IVPOSITION];
	if (own >= l.max_peers || find_victim()) {
		printf("not ok 1 hostile: no victim in the region (we are VM %u)\n",
		       own);
		return 1;
	}
	/* We are a peer like any other: alive, polled, beating. */
	own_inc = ivshm_peer_join(&l, own, 0);
	fake_peers_set_up();
	if (pthread_create(&beat, NULL, beater, NULL))
		return 1;
	printf("hostile: VM %u attacking VM %u on a %llu-byte region\n",
	       own, victim, (unsigned long long)l.size);
	ivshm_sleep_ms(500);	/* the victim sees us alive */
	if (report_connect())
		printf("hostile: no report connection; the victim will time out\n");

	for (phase = 0; phase < HP_NR_PHASES; phase++)
		if (targeted_phase(phase)) {
			printf("hostile: no target for phase %s\n",
			       hostile_phase_name[phase]);
			failed = 1;
			break;
		}
	printf("%s 1 hostile: targeted phases done\n", failed ? "not ok" : "ok");

	if (!failed) {
		uint32_t gen;

		if (wait_chan(HOSTILE_PORT_GLOBAL, HOSTILE_PORT_LISTEN, &gen,
			      WAIT_TARGET_MS, -1, 0) < 0) {
			printf("not ok 2 hostile: the victim never opened the global phase\n");
			failed = 1;
		}
	}
	if (!failed) {
		run_for(3000, forged_connects);
		run_for(1500, fake_peers);
		run_for(1000, forged_connects);
		run_for(1000, header_rewrite);
		run_for(4000, doorbell_flood);
		lock_forever();
		ivshm_sleep_ms(4000);	/* held, by a peer that beats */
		run_for(2000, lock_naming_victim);
		run_for(2000, rebuild_bomb);
		run_for(3000, dead_slots);
		ivshm_put64(&ivshm_ctrl(&l)->lock, 0);
		run_for(4000, random_flips);
		own_slot();
		own_slot();
		victim_name_fill();
		printf("ok 2 hostile: global attacks done\n");
		/* Its liveness work never waited for the lock: it beat. */
		uint64_t attack_ms = watched_at - watch_first;
		bool beat_ok = victim_gap_max < 1000 &&
			       2 * unwatched_ms <= attack_ms;

		printf("%s 3 hostile: the victim's heartbeat never stood still for a second, watched for at least half the attack (longest gap %llu ms, our own lateness taken off; our look came over %d ms late %llu times, %llu of %llu ms not watched)\n",
		       beat_ok ? "ok" : "not ok",
		       (unsigned long long)victim_gap_max, WATCH_LATE_MS,
		       (unsigned long long)watch_late,
		       (unsigned long long)unwatched_ms,
		       (unsigned long long)attack_ms);
		failed |= !beat_ok;

		/* Still beating: only the victim's audit frees them. */
		uint64_t took;
		uint32_t left = victim_name_left(45000, &took);

		printf("%s 4 hostile: the victim freed the %u channels forged in its own name (%u left after %llu ms)\n",
		       fill_n && !left ? "ok" : "not ok", fill_n, left,
		       (unsigned long long)took);
		failed |= !fill_n || left;
	}

	/* The attack is over: nothing of ours beats any more. */
	stop_beating = 1;
	pthread_join(beat, NULL);
	for (k = 0; k < K_NR; k++) {
		printf("hostile: attack %s: %llu\n", kind_name[k], count[k]);
		total += count[k];
	}
	printf("hostile: %llu attacks of %d kinds\n", total, K_NR);
	free(fill_idx);
	free(fill_gen);
	return failed;
}
