// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the region core (layout.c, alloc.c, ring.c): the
 * whole shared region is attacker-controlled bytes.
 *
 * The input (format in region_fuzz.h) either is a raw region, or a script
 * that builds a valid region and then interleaves legitimate operations of
 * the sender (VM 1) and receiver (VM 2) with attacker writes anywhere in
 * it. The region is one allocation of exactly its size, so ASan reports any
 * access outside [base, base + size).
 *
 * Two kinds of checks, each abort()s with an "INVARIANT" line:
 *
 *  - always: whatever the region holds, every span handed out lies in the
 *    ring's current run, which lies in the data area; a record's payload is
 *    at most the run size - 8; a reservation never exceeds the run; the
 *    allocator returns runs inside the data area, takes only free blocks,
 *    fails only when no free run exists; the lock is taken exactly when the
 *    holder recorded in the lock word is absent or dead; ...
 *
 *  - strict, until the first attacker write (or anything else that breaks
 *    the bookkeeping on purpose: freeing a run or a slot in use, a second
 *    reader on a channel, a re-initialisation): the receiver gets exactly
 *    the records the sender committed, in order, with their bytes; no side
 *    ever sees -EPROTO; a reservation fails with -EAGAIN exactly when the
 *    run the reader is in would overflow (protocol.md's capacity rule);
 *    ivshm_tx_move_done() says done exactly when the reader has left the
 *    old run; allocations never overlap runs in use, and a rebuild after a
 *    lock break keeps every one of them; pending bits are not lost.
 *
 * Every loop is bounded: FZ_MAX_OPS operations, a few records per receive.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "region_fuzz.h"

#define RX_BURST	16		/* records per FZ_OP_RX */
#define RAW_BURST	32		/* records per channel in raw mode */
#define FORGE_MAX	8		/* records per FZ_OP_FORGE */
#define QMAX		512		/* strict model queue per channel */
#define NSPARE		32

/* FZ_TRACE=1 in the environment: one line per operation and result. */
static int trace = -1;

#define T(...) do {							\
	if (trace)							\
		fprintf(stderr, __VA_ARGS__);				\
} while (0)

#define die(...) do {							\
	fprintf(stderr, "INVARIANT (%s:%d): ", __func__, __LINE__);	\
	fprintf(stderr, __VA_ARGS__);					\
	fputc('\n', stderr);						\
	abort();							\
} while (0)

/* ------------------------------------------------------------------ */
/* Input */

struct in {
	const u8 *p;
	size_t n;
};

static u8 in8(struct in *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static u16 in16(struct in *in)
{
	u16 v = in8(in);

	return v | (u16)in8(in) << 8;
}

static u32 in32(struct in *in)
{
	u32 v = in16(in);

	return v | (u32)in16(in) << 16;
}

static u64 in64(struct in *in)
{
	u64 v = in32(in);

	return v | (u64)in32(in) << 32;
}

static u64 in_val(struct in *in, u64 ref)
{
	switch (in8(in) % 8) {
	case 0: return 0;
	case 1: return ~0ull;
	case 2: return in64(in);
	case 3: return in8(in);
	case 4: return ref + (u64)(int64_t)(int8_t)in8(in);
	case 5: return ref + 8 * (u64)(int64_t)(int16_t)in16(in);
	case 6: return ref ^ (1ull << (in8(in) % 64));
	default: return in32(in);
	}
}

static u32 in_nblocks(struct in *in)
{
	u8 v = in8(in);

	return v < 0xc0 ? 1 + (v & 7) : (v - 0xc0) * 8u;
}

/* ------------------------------------------------------------------ */
/* State */

struct run {
	u64 off;
	u32 size;
};

struct hrec {
	u16 type;
	u16 flags;
	u32 len;
	u32 seq;
	struct run to;		/* MOVED: the new run */
};

struct hchan {
	bool live;
	u32 idx;
	bool tx_ok, rx_ok;
	struct ivshm_ring tx, rx;
	struct run cur;			/* the sender's current run */
	struct run rxrun;		/* the run the receiver reads (model) */
	bool moving;			/* a move is pending (until move_done) */
	bool passed;			/* ... and the reader has left @old */
	struct run old;			/* the run moved from */
	bool res;			/* deferred reservation */
	u32 res_seq;
	u16 res_flags;
	u32 res_len;
	u32 seq;
	struct hrec q[QMAX];		/* committed, not yet received */
	u32 qh, qt;
	u64 last_pos;			/* tx.pos before the last publish */
};

struct st {
	u8 *base;
	u64 size;
	struct ivshm_layout l;
	bool strict;
	struct hchan ch[FZ_NCHAN];
	struct run spare[NSPARE];
	int nspare;
	u32 inc[IVSHM_MAX_PEERS];
	bool held;
	u32 held_vm, held_inc;
	u32 rebuilds;
	u64 pend[IVSHM_MAX_PEERS][IVSHM_PEND_SETS][IVSHM_MAX_CHANNELS / 64];
	struct ivshm_ring foreign;
	bool foreign_ok;
	u32 foreign_idx;
};

/* Payloads are slices of one pseudo-random pattern; PAT_SLIDE starts. */
#define PAT_SLIDE	4096
static u8 pat[(1 << 20) + PAT_SLIDE], rbuf[1 << 20];

static void pat_init(void)
{
	u32 x = 0x9e3779b9, i;

	for (i = 0; i < sizeof(pat); i++) {
		x = x * 1103515245 + 12345;
		pat[i] = (u8)(x >> 24);
	}
}

static void taint(struct st *s)
{
	s->strict = false;
}

static u8 *data_area(const struct st *s)
{
	return s->base + s->l.data_off;
}

static u64 data_bytes(const struct st *s)
{
	return (u64)s->l.nr_blocks << IVSHM_BLOCK_SHIFT;
}

static bool runs_overlap(u64 a, u64 alen, u64 b, u64 blen)
{
	return a < b + blen && b < a + alen;
}

/* ------------------------------------------------------------------ */
/* Checks that hold whatever the region contains */

static void check_layout(const struct st *s, const struct ivshm_layout *l2)
{
	struct ivshm_layout ref;

	if (ivshm_layout_compute(&ref, s->base, s->size))
		die("layout_compute failed on a size open accepted");
	if (memcmp(&ref, l2, sizeof(ref)))
		die("open returned a layout that differs from layout_compute");
	if (ref.data_off + data_bytes(s) > s->size ||
	    ref.chan_off + (u64)ref.max_channels * sizeof(struct ivshm_chan) >
	    ref.data_off ||
	    ref.bitmap_words * 64ull < ref.nr_blocks)
		die("layout sections overlap or exceed the region");
}

static void check_ring(const struct st *s, const struct ivshm_ring *r)
{
	uintptr_t d = (uintptr_t)data_area(s), p = (uintptr_t)r->ring;

	if (p < d || p >= d + data_bytes(s))
		die("ring run starts outside the data area");
	if (!ivshm_run_valid(&s->l, p - d, r->size))
		die("ring run [%#lx, +%#x) is not a valid run",
		    (unsigned long)(p - d), r->size);
	if (r->off >= r->size || r->off % IVSHM_REC_ALIGN)
		die("ring offset %#x outside run of %#x", r->off, r->size);
	if (r->l != &s->l)
		die("ring layout pointer changed");
}

/* A span of @len bytes inside the run [ring, ring + size). */
static void check_span(const struct st *s, const struct ivshm_span *sp,
		       u8 *ring, u32 size, u32 len)
{
	uintptr_t r = (uintptr_t)ring, d = (uintptr_t)data_area(s);
	uintptr_t p0 = (uintptr_t)sp->p[0], p1 = (uintptr_t)sp->p[1];

	if (r < d || r - d + size > data_bytes(s))
		die("span's run outside the data area");
	if ((u64)sp->len[0] + sp->len[1] != len)
		die("span pieces %u + %u != %u", sp->len[0], sp->len[1], len);
	if (len > size - IVSHM_REC_HDR)
		die("span of %u in a run of %u", len, size);
	if (p0 < r || p0 - r > size || sp->len[0] > size - (p0 - r))
		die("span piece 0 outside the run");
	if (sp->len[1] && (p1 != r || sp->len[1] > size))
		die("span piece 1 outside the run");
}

/* ------------------------------------------------------------------ */
/* Control lock */

static bool bit_set(const struct st *s, u32 b)
{
	const __le64 *bm = (const __le64 *)(s->base + s->l.bitmap_off);

	return ivshm_get64(bm + b / 64) >> (b % 64) & 1;
}

static int trylock_checked(struct st *s, u32 vm, u32 inc)
{
	u64 w = ivshm_get64(&ivshm_ctrl(&s->l)->lock);
	u64 me = IVSHM_LOCK_OWNER(vm, inc);
	bool dead = ivshm_lock_owner_dead(&s->l, w);
	int want, ret;

	/* The model, independent of alloc.c: who may take the lock. */
	if (!w) {
		want = 0;
	} else if (w == me) {
		want = 1;	/* we cannot be holding it: taken over */
	} else {
		u32 ovm = IVSHM_LOCK_VM(w);

		if (ovm < s->l.max_peers) {
			struct ivshm_peer *p = ivshm_peer(&s->l, ovm);

			want = ivshm_get32(&p->state) == IVSHM_PEER_ALIVE &&
			       ivshm_get32(&p->incarnation) == IVSHM_LOCK_INC(w) ?
			       -EBUSY : 1;
		} else {
			want = 1;
		}
		if ((want == 1) != dead)
			die("lock_owner_dead(%#llx) = %d", (unsigned long long)w,
			    dead);
	}
	ret = ivshm_ctrl_trylock(&s->l, vm, inc, NULL);
	T("  trylock(%u, %u) on %#llx = %d\n", vm, inc, (unsigned long long)w,
	  ret);
	if (ret != want)
		die("trylock(%u, %u) on %#llx = %d, want %d", vm, inc,
		    (unsigned long long)w, ret, want);
	if (ret >= 0 && ivshm_get64(&ivshm_ctrl(&s->l)->lock) != me)
		die("trylock succeeded but the lock word is not ours");
	return ret;
}

static void rebuild_checked(struct st *s)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&s->l);
	u32 bad, used = 0, b, inc, swept;
	int i;

	/*
	 * As the module does after a lock break: sweep, then rebuild. The
	 * sweep keeps every channel of a sender alive with the incarnation
	 * it names; once a harness channel's is not (its sender is dead, or
	 * has joined again since), it may be taken, so the strict checks
	 * end.
	 */
	if (!ivshm_peer_alive(&s->l, FZ_VM_TX, &inc))
		taint(s);
	for (i = 0; s->strict && i < FZ_NCHAN; i++)
		if (s->ch[i].live &&
		    ivshm_get32(&ivshm_chan(&s->l, s->ch[i].idx)->sender_inc) != inc)
			taint(s);	/* from an earlier incarnation */
	swept = ivshm_chan_sweep(&s->l);
	if (swept > s->l.max_channels)
		die("sweep: %u freed of %u channels", swept, s->l.max_channels);
	for (i = 0; (u32)i < s->l.max_channels; i++) {
		u32 st = ivshm_get32(&ivshm_chan(&s->l, i)->state);

		if (st != IVSHM_CHAN_FREE && st >= IVSHM_CHAN_NR_STATES)
			die("sweep left slot %d in state %u", i, st);
	}
	bad = ivshm_blocks_rebuild(&s->l);

	if (bad > s->l.max_channels)
		die("rebuild: %u bad of %u channels", bad, s->l.max_channels);
	for (b = 0; b < s->l.bitmap_words * 64; b++) {
		if (!bit_set(s, b))
			continue;
		if (b >= s->l.nr_blocks)
			die("rebuild set bit %u beyond nr_blocks", b);
		used++;
	}
	if (ivshm_get32(&c->free_blocks) != s->l.nr_blocks - used)
		die("rebuild: free_blocks %u, bitmap says %u",
		    ivshm_get32(&c->free_blocks), s->l.nr_blocks - used);

	/*
	 * Spares are a harness artefact (a real peer records a run in its
	 * channel under the same lock hold that allocated it): forget them.
	 * Every other run the harness owns is named by its channel, the run
	 * a pending move left included (crashers/rebuild-frees-moved-from-run),
	 * and must have survived.
	 */
	s->nspare = 0;
	s->rebuilds++;
	for (i = 0; s->strict && i < FZ_NCHAN; i++) {
		const struct hchan *h = &s->ch[i];

		if (!h->live)
			continue;
		for (b = 0; b < h->cur.size >> IVSHM_BLOCK_SHIFT; b++)
			if (!bit_set(s, (u32)(h->cur.off >> IVSHM_BLOCK_SHIFT) + b))
				die("rebuild freed the run of channel %u",
				    h->idx);
		for (b = 0; h->moving && b < h->old.size >> IVSHM_BLOCK_SHIFT;
		     b++)
			if (!bit_set(s, (u32)(h->old.off >> IVSHM_BLOCK_SHIFT) + b))
				die("rebuild freed the run channel %u moved from",
				    h->idx);
	}
}

/* Take the lock for one operation as @vm. 1: release after, 0: already
 * held by us, -1: busy, skip the operation.
 */
static int lock_enter(struct st *s, u32 vm)
{
	int ret;

	if (s->held && s->held_vm == vm && s->held_inc == s->inc[vm])
		return 0;
	ret = trylock_checked(s, vm, s->inc[vm]);
	if (ret < 0)
		return -1;
	if (ret == 1)
		rebuild_checked(s);
	return 1;
}

static void lock_leave(struct st *s, u32 vm, int how)
{
	if (how == 1)
		ivshm_ctrl_unlock(&s->l, vm, s->inc[vm]);
}

/* ------------------------------------------------------------------ */
/* Allocator, with a model of what it must do */

static bool owned_overlap(const struct st *s, u64 off, u32 size)
{
	int i;

	for (i = 0; i < s->nspare; i++)
		if (runs_overlap(off, size, s->spare[i].off, s->spare[i].size))
			return true;
	for (i = 0; i < FZ_NCHAN; i++) {
		const struct hchan *h = &s->ch[i];

		if (!h->live)
			continue;
		if (runs_overlap(off, size, h->cur.off, h->cur.size))
			return true;
		if (h->moving &&
		    runs_overlap(off, size, h->old.off, h->old.size))
			return true;
	}
	return false;
}

static int alloc_checked(struct st *s, u32 n, u64 *off)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&s->l);
	u32 fb = ivshm_get32(&c->free_blocks), b, run = 0;
	bool exists = false;
	int ret;

	for (b = 0; n && n <= s->l.nr_blocks && b < s->l.nr_blocks; b++) {
		run = bit_set(s, b) ? 0 : run + 1;
		if (run >= n) {
			exists = true;
			break;
		}
	}
	ret = ivshm_blocks_alloc(&s->l, n, off);
	T("  blocks_alloc(%u) = %d  off %#llx\n", n, ret,
	  ret ? 0ull : (unsigned long long)*off);
	if (!n || n > s->l.nr_blocks) {
		if (ret != -EINVAL)
			die("blocks_alloc(%u) of %u = %d", n, s->l.nr_blocks,
			    ret);
		return ret;
	}
	if (ret == -ENOBUFS) {
		if (exists)
			die("blocks_alloc(%u) = -ENOBUFS with a free run", n);
		return ret;
	}
	if (ret)
		die("blocks_alloc(%u) = %d", n, ret);
	if (!ivshm_run_valid(&s->l, *off, (u64)n << IVSHM_BLOCK_SHIFT) ||
	    *off + ((u64)n << IVSHM_BLOCK_SHIFT) > data_bytes(s))
		die("blocks_alloc(%u) = %#llx: outside the data area", n,
		    (unsigned long long)*off);
	for (b = 0; b < n; b++)
		if (!bit_set(s, (u32)(*off >> IVSHM_BLOCK_SHIFT) + b))
			die("blocks_alloc left a block of its run free");
	if (ivshm_get32(&c->free_blocks) != (fb >= n ? fb - n : 0))
		die("blocks_alloc: free_blocks %u -> %u for %u", fb,
		    ivshm_get32(&c->free_blocks), n);
	if (ivshm_get32(&c->free_start_offset) % IVSHM_BLOCK_SIZE ||
	    ivshm_get32(&c->free_start_offset) >= data_bytes(s))
		die("blocks_alloc left a bad hint");
	if (s->strict && owned_overlap(s, *off, n << IVSHM_BLOCK_SHIFT))
		die("blocks_alloc(%u) = %#llx overlaps a run in use", n,
		    (unsigned long long)*off);
	return 0;
}

static int free_checked(struct st *s, u64 off, u32 n)
{
	u32 b, set = 0, first;
	bool valid = ivshm_run_valid(&s->l, off, (u64)n << IVSHM_BLOCK_SHIFT);
	int ret;

	if (valid) {
		first = (u32)(off >> IVSHM_BLOCK_SHIFT);
		for (b = 0; b < n; b++)
			set += bit_set(s, first + b);
	}
	ret = ivshm_blocks_free(&s->l, off, n);
	T("  blocks_free(%#llx, %u) = %d\n", (unsigned long long)off, n, ret);
	if (!valid) {
		if (ret != -EINVAL)
			die("blocks_free of an invalid run = %d", ret);
		return ret;
	}
	if (ret != (set == n ? 0 : -EPROTO))
		die("blocks_free: %d with %u of %u blocks in use", ret, set, n);
	for (b = 0; b < n; b++)
		if (bit_set(s, first + b))
			die("blocks_free left a block in use");
	return ret;
}

/* Give back a run the harness owns, as @vm; kept as a spare if busy. */
static void free_owned(struct st *s, u32 vm, struct run r, bool spare)
{
	u32 rebuilds = s->rebuilds;
	int how = lock_enter(s, vm), ret;

	if (how < 0) {
		if (s->nspare < NSPARE)
			s->spare[s->nspare++] = r;
		return;
	}
	if (spare && s->rebuilds != rebuilds) {
		/* Taking the lock rebuilt the bitmap, which freed it. */
		lock_leave(s, vm, how);
		return;
	}
	ret = free_checked(s, r.off, r.size >> IVSHM_BLOCK_SHIFT);
	if (s->strict && ret)
		die("blocks_free of an owned run = %d", ret);
	lock_leave(s, vm, how);
}

/* ------------------------------------------------------------------ */
/* Harness channels */

/* The payload of record @seq of channel slot @h. */
static const u8 *payload(u32 seq, u32 h)
{
	return pat + (seq * 131 + h * 977) % PAT_SLIDE;
}

/* Copy into a run at @at, wrapping at its end. */
static void ring_write(u8 *ring, u32 size, u32 at, const void *src, u32 len)
{
	u32 first = size - at < len ? size - at : len;

	memcpy(ring + at, src, first);
	memcpy(ring, (const u8 *)src + first, len - first);
}

static void q_push(struct st *s, struct hchan *h, struct hrec r)
{
	if (h->qt - h->qh >= QMAX) {
		taint(s);	/* cannot happen within FZ_MAX_OPS */
		return;
	}
	h->q[h->qt++ % QMAX] = r;
}

static void chan_retire(struct hchan *h)
{
	h->live = false;
	h->tx_ok = h->rx_ok = false;
	h->res = false;
}

static void op_chan_new(struct st *s, struct in *in)
{
	struct hchan *h = &s->ch[in8(in) % FZ_NCHAN];
	u32 n = in_nblocks(in), idx, i;
	struct ivshm_chan *c;
	u64 off;
	int how;

	if (h->live)
		return;
	how = lock_enter(s, FZ_VM_TX);
	if (how < 0)
		return;
	for (i = 0; i < s->l.max_channels; i++)
		if (ivshm_get32(&ivshm_chan(&s->l, i)->state) ==
		    IVSHM_CHAN_FREE)
			break;
	if (ivshm_chan_alloc(&s->l, &idx)) {
		if (i < s->l.max_channels)
			die("chan_alloc failed with slot %u free", i);
		goto out;
	}
	if (idx != i)
		die("chan_alloc took slot %u, first free is %u", idx, i);
	for (i = 0; i < FZ_NCHAN; i++) {
		if (!s->ch[i].live || s->ch[i].idx != idx)
			continue;
		if (s->strict)
			die("chan_alloc handed out slot %u, in use", idx);
		chan_retire(&s->ch[i]);	/* an attacker freed it */
	}
	if (alloc_checked(s, n, &off)) {
		ivshm_chan_free(&s->l, idx);
		goto out;
	}
	memset(h, 0, sizeof(*h));
	h->idx = idx;
	h->cur.off = off;
	h->cur.size = n << IVSHM_BLOCK_SHIFT;
	h->rxrun = h->cur;

	/* The sender fills its lines; the receiver accepts at once. */
	c = ivshm_chan(&s->l, idx);
	ivshm_put16(&c->sender_vm, FZ_VM_TX);
	ivshm_put16(&c->receiver_vm, FZ_VM_RX);
	ivshm_put64(&c->buff_offset, off);
	ivshm_put32(&c->buff_size, h->cur.size);
	ivshm_put32(&c->sender_inc, s->inc[FZ_VM_TX]);
	ivshm_put64(&c->head, 0);
	ivshm_put64(&c->data_size, 0);
	ivshm_put64(&c->head_touch, 0);
	ivshm_put32(&c->state, IVSHM_CHAN_OPEN);
	ivshm_put64(&c->tail, 0);
	ivshm_put32(&c->rx_state, IVSHM_RX_ACCEPTED);
	ivshm_put32(&c->receiver_inc, s->inc[FZ_VM_RX]);
	if (ivshm_ring_init(&h->tx, &s->l, idx, off, h->cur.size))
		die("ring_init of a fresh run failed");
	/* The receiver reads the descriptor once. */
	if (ivshm_ring_init(&h->rx, &s->l, idx,
			    ivshm_get64(&c->buff_offset),
			    ivshm_get32(&c->buff_size)))
		die("ring_init from a fresh descriptor failed");
	h->live = h->tx_ok = h->rx_ok = true;
	check_ring(s, &h->tx);
	check_ring(s, &h->rx);
out:
	lock_leave(s, FZ_VM_TX, how);
}

static void op_chan_close(struct st *s, struct in *in)
{
	struct hchan *h = &s->ch[in8(in) % FZ_NCHAN];
	int how, i;

	if (!h->live)
		return;
	/* One lock hold: runs back, then the slot. */
	how = lock_enter(s, FZ_VM_TX);
	if (how < 0)
		return;
	for (i = h->moving ? 1 : 0; i >= 0; i--) {
		struct run r = i ? h->old : h->cur;

		if (free_checked(s, r.off, r.size >> IVSHM_BLOCK_SHIFT) &&
		    s->strict)
			die("blocks_free of an owned run failed");
	}
	h->moving = false;
	chan_retire(h);
	ivshm_chan_free(&s->l, h->idx);
	if (ivshm_get32(&ivshm_chan(&s->l, h->idx)->state) != IVSHM_CHAN_FREE)
		die("chan_free left the slot taken");
	lock_leave(s, FZ_VM_TX, how);
}

static void tx_commit_checked(struct st *s, struct hchan *h)
{
	u64 pos = h->tx.pos;
	u32 need = IVSHM_REC_HDR + ALIGN(h->res_len, (u32)IVSHM_REC_ALIGN);

	if (h->res_seq % 3) {
		ivshm_tx_commit(&h->tx);
	} else {
		/* Queued, then published: the same records, one release. */
		ivshm_tx_queue(&h->tx);
		ivshm_tx_flush(&h->tx);
	}
	if (h->tx.published != h->tx.pos ||
	    ivshm_get64(&h->tx.chan->head) != h->tx.pos)
		die("after a commit, head %llu published %llu pos %llu",
		    (unsigned long long)ivshm_get64(&h->tx.chan->head),
		    (unsigned long long)h->tx.published,
		    (unsigned long long)h->tx.pos);
	if (h->tx.pos != pos + need)
		die("commit advanced %llu, want %u",
		    (unsigned long long)(h->tx.pos - pos), need);
	check_ring(s, &h->tx);
	q_push(s, h, (struct hrec){ .type = IVSHM_REC_DATA,
		.flags = h->res_flags, .len = h->res_len, .seq = h->res_seq });
	h->res = false;
	ivshm_notify_mark(&s->l, FZ_VM_RX, IVSHM_PEND_DATA, h->idx);
	s->pend[FZ_VM_RX][IVSHM_PEND_DATA][h->idx / 64] |= 1ull << (h->idx % 64);
}

/*
 * What the sender may have unread, as protocol.md puts it: until the reader
 * has passed a MOVED record, the smaller of the runs. The reader is in
 * old[0] (or cur), and must still cross every later run.
 */
static u32 model_cap(const struct hchan *h)
{
	u32 c = h->cur.size;

	if (h->moving && !h->passed && h->old.size < c)
		c = h->old.size;
	return c;
}

static void op_tx(struct st *s, struct in *in)
{
	struct hchan *h = &s->ch[in8(in) % FZ_NCHAN];
	u8 sel = in8(in), ctl;
	u32 max, len, cap, need;
	struct ivshm_span sp;
	bool drained;
	int ret;

	if (!h->live || !h->tx_ok)
		return;
	max = ivshm_ring_max_record(&h->tx);
	switch (sel >> 6) {
	case 0: len = sel & 63; break;
	case 1: len = in16(in); break;
	case 2: len = max - (in8(in) % (max + 1)); break;
	default: len = max + in8(in); break;
	}
	ctl = in8(in);
	h->res = false;
	drained = h->rx_ok && h->rx.pos == h->tx.pos;
	cap = h->tx.cap < h->tx.size ? h->tx.cap : h->tx.size;
	if (max != cap - IVSHM_REC_HDR || cap > h->tx.size)
		die("max_record %u with cap %u size %u", max, h->tx.cap,
		    h->tx.size);

	ret = ivshm_tx_reserve(&h->tx, len, IVSHM_REC_DATA, 0, &sp);
	T("  tx ch%u reserve(%u) = %d  pos %llu peer %llu cap %u size %u\n",
	  h->idx, len, ret, (unsigned long long)h->tx.pos,
	  (unsigned long long)h->tx.peer, h->tx.cap, h->tx.size);
	check_ring(s, &h->tx);
	if (ret == -EMSGSIZE) {
		if (len <= max)
			die("reserve(%u) = -EMSGSIZE, max_record %u", len, max);
		return;
	}
	if (len > h->tx.size - IVSHM_REC_HDR && ret != -EMSGSIZE)
		die("reserve(%u) in a run of %u = %d", len, h->tx.size, ret);
	need = IVSHM_REC_HDR + ALIGN(len, (u32)IVSHM_REC_ALIGN);
	if (s->strict && (ret == 0 || ret == -EAGAIN) &&
	    (ret == 0) != (h->tx.pos - h->rx.pos + need <= model_cap(h)))
		die("reserve(%u) = %d with %llu unread, reader's limit %u",
		    len, ret, (unsigned long long)(h->tx.pos - h->rx.pos),
		    model_cap(h));
	if (ret == -EAGAIN) {
		if (s->strict && drained)
			die("reserve(%u) = -EAGAIN on a drained ring (max %u)",
			    len, max);
		return;
	}
	if (ret == -EPROTO) {
		if (s->strict)
			die("reserve: -EPROTO without an attacker");
		h->tx_ok = false;
		return;
	}
	if (ret)
		die("reserve(%u) = %d", len, ret);
	if (h->tx.pos - h->tx.peer > h->tx.size ||
	    h->tx.pos - h->tx.peer + need > h->tx.size)
		die("reserved %u with %llu unread in a run of %u", need,
		    (unsigned long long)(h->tx.pos - h->tx.peer), h->tx.size);
	check_span(s, &sp, h->tx.ring, h->tx.size, len);
	if (sp.p[0] != h->tx.ring + (h->tx.off + IVSHM_REC_HDR) % h->tx.size)
		die("reservation does not follow the header");

	h->res = true;
	h->res_len = len;
	h->res_flags = 0;
	h->res_seq = h->seq++;
	ivshm_span_write(&sp, payload(h->res_seq, h->idx));
	if (!(ctl & 2))
		tx_commit_checked(s, h);
}

static void op_tx_commit(struct st *s, struct in *in)
{
	struct hchan *h = &s->ch[in8(in) % FZ_NCHAN];

	if (h->live && h->tx_ok && h->res)
		tx_commit_checked(s, h);
}

static void op_move(struct st *s, struct in *in)
{
	struct hchan *h = &s->ch[in8(in) % FZ_NCHAN];
	u32 n = in_nblocks(in), unread;
	u8 ctl = in8(in);
	struct ivshm_ring save;
	struct ivshm_chan *c;
	struct run nr;
	u64 off;
	int how, ret;

	if (!h->live || !h->tx_ok)
		return;
	h->res = false;		/* a pending reservation is abandoned */
	how = lock_enter(s, FZ_VM_TX);
	if (how < 0)
		return;
	if (ctl & 1) {
		/* A run that cannot exist changes nothing. */
		u32 size = IVSHM_BLOCK_SIZE;

		memcpy(&save, &h->tx, sizeof(save));
		switch (ctl >> 1 & 3) {
		case 0: off = data_bytes(s); break;
		case 1: off = 8; break;
		case 2: off = 1ull << 32; break;
		default: off = 0; size = ctl & 0xf8; break;
		}
		ret = ivshm_tx_move(&h->tx, off, size);
		if (ret != -EINVAL || memcmp(&save, &h->tx, sizeof(save)))
			die("tx_move to an impossible run = %d", ret);
	}
	if (alloc_checked(s, n, &off))
		goto out;
	nr.off = off;
	nr.size = n << IVSHM_BLOCK_SHIFT;
	unread = (u32)(h->tx.pos - h->rx.pos);
	memcpy(&save, &h->tx, sizeof(save));
	ret = ivshm_tx_move(&h->tx, nr.off, nr.size);
	T("  tx ch%u move(%#llx, %#x) = %d  cap %u bound %u\n", h->idx,
	  (unsigned long long)nr.off, nr.size, ret, h->tx.cap, h->tx.bound);
	check_ring(s, &h->tx);
	/* One move at a time, whatever the region says. */
	if ((ret == -EBUSY) != h->moving)
		die("tx_move = %d with a move %spending", ret,
		    h->moving ? "" : "not ");
	if (s->strict && (ret == 0 || ret == -EAGAIN) &&
	    (ret == 0) != (unread + IVSHM_REC_HDR +
			   sizeof(struct ivshm_rec_moved) <= model_cap(h)))
		die("move = %d with %u unread, reader's limit %u", ret,
		    unread, model_cap(h));
	if (ret) {
		if (ret == -EPROTO) {
			if (s->strict)
				die("move: -EPROTO without an attacker");
			h->tx_ok = false;
		} else if (ret != -EAGAIN && ret != -EBUSY) {
			die("tx_move of a valid run = %d", ret);
		} else if (memcmp(&save, &h->tx, sizeof(save)) &&
			   ret == -EBUSY) {
			die("tx_move = -EBUSY changed the ring");
		}
		free_checked(s, nr.off, n);
		goto out;
	}
	if (h->tx.ring != data_area(s) + nr.off || h->tx.size != nr.size ||
	    h->tx.off)
		die("tx_move did not switch to the new run");
	/* The identity line names both runs, for a rebuild. */
	c = ivshm_chan(&s->l, h->idx);
	if (ivshm_get64(&c->buff_offset) != nr.off ||
	    ivshm_get32(&c->buff_size) != nr.size ||
	    ivshm_get64(&c->old_offset) != h->cur.off ||
	    ivshm_get32(&c->old_size) != h->cur.size)
		die("tx_move left the descriptor naming other runs");
	q_push(s, h, (struct hrec){ .type = IVSHM_REC_MOVED,
		.len = sizeof(struct ivshm_rec_moved), .to = nr });
	h->old = h->cur;
	h->moving = true;
	h->passed = false;
	h->cur = nr;
	ivshm_notify_mark(&s->l, FZ_VM_RX, IVSHM_PEND_DATA, h->idx);
	s->pend[FZ_VM_RX][IVSHM_PEND_DATA][h->idx / 64] |= 1ull << (h->idx % 64);
out:
	lock_leave(s, FZ_VM_TX, how);
}

/* The sender asks whether the reader has left the old run, and frees it. */
static void move_done(struct st *s, struct hchan *h)
{
	struct ivshm_chan *c;
	u64 off = ~0ull;
	u32 size = ~0u;
	int how, ret;

	if (!h->live || !h->tx_ok)
		return;
	how = lock_enter(s, FZ_VM_TX);
	if (how < 0)
		return;
	ret = ivshm_tx_move_done(&h->tx, &off, &size);
	T("  tx ch%u move_done = %d  %#llx+%#x\n", h->idx, ret,
	  (unsigned long long)off, size);
	check_ring(s, &h->tx);
	if (ret == -EPROTO) {
		if (s->strict || !h->moving)
			die("move_done = -EPROTO");
		h->tx_ok = false;
		goto out;
	}
	if (ret != 0 && ret != 1)
		die("move_done = %d", ret);
	if (ret == 1 && !h->moving)
		die("move_done = 1 with no move pending");
	if (s->strict && ret != (h->moving && h->passed))
		die("move_done = %d, reader %s the old run", ret,
		    h->passed ? "left" : "is still in");
	if (ret == 0)
		goto out;
	if (off != h->old.off || size != h->old.size)
		die("move_done gave %#llx+%#x, the old run is %#llx+%#x",
		    (unsigned long long)off, size,
		    (unsigned long long)h->old.off, h->old.size);
	c = ivshm_chan(&s->l, h->idx);
	if (ivshm_get32(&c->old_size) || ivshm_get64(&c->old_offset))
		die("move_done left the old run in the descriptor");
	if (h->tx.cap != h->tx.size || h->tx.bound != h->tx.size ||
	    h->tx.cap_until)
		die("move_done with the capacity still limited");
	h->moving = false;
	ret = free_checked(s, off, size >> IVSHM_BLOCK_SHIFT);
	if (s->strict && ret)
		die("blocks_free of the moved-from run = %d", ret);
out:
	lock_leave(s, FZ_VM_TX, how);
}

static void op_move_done(struct st *s, struct in *in)
{
	move_done(s, &s->ch[in8(in) % FZ_NCHAN]);
}

/* One peek (and release) on @r; @h is the harness channel or NULL.
 * Returns the peek result.
 */
static int rx_one(struct st *s, struct ivshm_ring *r, struct hchan *h)
{
	u8 *oring = r->ring;
	u32 osize = r->size;
	u64 opos = r->pos;
	struct ivshm_rec rec;
	int ret;

	memset(&rec, 0, sizeof(rec));
	/* Each op is a call of a reader: it may follow one MOVED record. */
	ivshm_rx_allow_move(r);
	ret = ivshm_rx_peek(r, &rec);
	T("  rx ch%ld peek = %d  type %u len %u  pos %llu peer %llu size %u\n",
	  h ? (long)h->idx : -1L, ret, rec.type, rec.len,
	  (unsigned long long)r->pos, (unsigned long long)r->peer, r->size);
	check_ring(s, r);
	if (ret == -EAGAIN || ret == -EPROTO) {
		if (r->pos != opos || r->ring != oring)
			die("failed peek moved the ring");
		return ret;
	}
	if (ret != 0 && ret != IVSHM_RX_MOVED)
		die("rx_peek = %d", ret);
	if (!rec.type || rec.type >= IVSHM_REC_NR_TYPES ||
	    rec.flags & ~IVSHM_REC_F_ALL)
		die("rx_peek returned type %u flags %#x", rec.type, rec.flags);
	if (rec.len > osize - IVSHM_REC_HDR)
		die("record of %u in a run of %u", rec.len, osize);
	check_span(s, &rec.span, oring, osize, rec.len);
	if (ret == IVSHM_RX_MOVED) {
		if (rec.type != IVSHM_REC_MOVED ||
		    rec.len != sizeof(struct ivshm_rec_moved))
			die("MOVED result for a type %u record", rec.type);
		if (r->old_size != osize ||
		    data_area(s) + r->old_off != oring)
			die("MOVED reported a different old run");
		if (r->pos != opos + IVSHM_REC_HDR + rec.len || r->off)
			die("MOVED did not consume itself");
		if (h && s->strict) {
			struct hrec e;

			if (h->qh == h->qt)
				die("MOVED with nothing sent");
			e = h->q[h->qh++ % QMAX];
			if (e.type != IVSHM_REC_MOVED ||
			    data_area(s) + e.to.off != r->ring ||
			    e.to.size != r->size)
				die("MOVED to a run the sender did not move to");
			if (r->old_off != h->rxrun.off ||
			    r->old_size != h->rxrun.size)
				die("MOVED from a run the receiver was not in");
			h->rxrun = e.to;
		}
		if (h)
			h->passed = true;	/* the sender frees the old run */
		return ret;
	}
	if (rec.type != IVSHM_REC_DATA)
		die("peek returned 0 for a type %u record", rec.type);
	ivshm_span_read(&rec.span, rbuf);
	if (h && s->strict) {
		struct hrec e;

		if (h->qh == h->qt)
			die("received a record that was never sent");
		e = h->q[h->qh++ % QMAX];
		if (e.type != IVSHM_REC_DATA || e.len != rec.len ||
		    e.flags != rec.flags)
			die("received type %u len %u flags %#x, sent %u %u %#x",
			    rec.type, rec.len, rec.flags, e.type, e.len,
			    e.flags);
		if (memcmp(payload(e.seq, h->idx), rbuf, e.len))
			die("record %u: payload differs from what was sent",
			    e.seq);
	}
	ivshm_rx_release(r);
	check_ring(s, r);
	if (r->pos != opos + IVSHM_REC_HDR + ALIGN(rec.len, 8u))
		die("release advanced the wrong amount");
	return ret;
}

static void rx_drain(struct st *s, struct hchan *h, u32 n)
{
	u32 i;
	int ret = 0;

	for (i = 0; i < n && h->rx_ok; i++) {
		ret = rx_one(s, &h->rx, h);
		if (ret == -EAGAIN)
			break;
		if (ret == -EPROTO) {
			if (s->strict)
				die("rx: -EPROTO without an attacker");
			h->rx_ok = false;
		}
	}
	if (s->strict && h->rx_ok && ret == -EAGAIN && h->qh != h->qt)
		die("rx empty with %u records sent", h->qt - h->qh);
}

static void op_rx(struct st *s, struct in *in)
{
	struct hchan *h = &s->ch[in8(in) % FZ_NCHAN];
	u32 n = 1 + in8(in) % RX_BURST;
	u64 got;

	if (!h->live)
		return;
	got = ivshm_notify_take(&s->l, FZ_VM_RX, IVSHM_PEND_DATA, h->idx / 64);
	if (s->strict && got != s->pend[FZ_VM_RX][IVSHM_PEND_DATA][h->idx / 64])
		die("pending_take %#llx, set %#llx", (unsigned long long)got,
		    (unsigned long long)s->pend[FZ_VM_RX][IVSHM_PEND_DATA][h->idx / 64]);
	s->pend[FZ_VM_RX][IVSHM_PEND_DATA][h->idx / 64] = 0;
	rx_drain(s, h, n);
}

/* ------------------------------------------------------------------ */
/* Other legitimate operations */

static void op_attach(struct st *s, struct in *in)
{
	u32 vm = in8(in) % IVSHM_MAX_PEERS;
	u8 sz = in8(in) % 8;
	struct ivshm_layout l2;
	const char *why = NULL;
	u64 size;
	int ret;

	/* Sizes up to ours only: a larger one would really be out of range. */
	switch (sz) {
	case 1: size = s->size / 2; break;
	case 2: size = s->size - IVSHM_BLOCK_SIZE; break;
	case 3: size = 0; break;
	case 4: size = IVSHM_MIN_REGION / 2; break;
	default: size = s->size; break;
	}
	ret = ivshm_region_open(&l2, s->base, size, vm, &why);
	if (!why)
		die("open left why NULL");
	if (size != s->size) {
		bool ok = is_power_of_2(size) && size >= IVSHM_MIN_REGION;

		if (!ok && ret != -EINVAL)
			die("open with size %#llx = %d",
			    (unsigned long long)size, ret);
		if (ret == IVSHM_OPEN_INITIALISED)
			taint(s);	/* a smaller layout over ours */
		if (s->strict && ret != -EINVAL)
			die("open with size %#llx of a valid region = %d",
			    (unsigned long long)size, ret);
		return;
	}
	if (ret == IVSHM_OPEN_ATTACHED || ret == IVSHM_OPEN_INITIALISED)
		check_layout(s, &l2);
	if (ret == IVSHM_OPEN_INITIALISED) {
		/* Someone reset init_state; everything is wiped. */
		taint(s);
		s->held = false;
		memset(s->pend, 0, sizeof(s->pend));
	}
	if (s->strict && ret != IVSHM_OPEN_ATTACHED)
		die("attach to a valid region = %d (%s)", ret, why);
}

static void op_lock(struct st *s, struct in *in)
{
	u32 vm = in8(in) % IVSHM_MAX_PEERS;
	u8 sel = in8(in);
	u32 inc = sel & 0x80 ? in8(in) : s->inc[vm];
	int ret;

	if (s->held)
		return;
	ret = trylock_checked(s, vm, inc);
	if (ret < 0)
		return;
	s->held = true;
	s->held_vm = vm;
	s->held_inc = inc;
	if (ret == 1)
		rebuild_checked(s);
}

static void op_unlock(struct st *s)
{
	if (!s->held)
		return;
	ivshm_ctrl_unlock(&s->l, s->held_vm, s->held_inc);
	s->held = false;
}

static void op_peer(struct st *s, struct in *in)
{
	u32 vm = in8(in) % IVSHM_MAX_PEERS;
	u32 state = in8(in) % 3;
	u32 d = in8(in) % 3;
	struct ivshm_peer *p = ivshm_peer(&s->l, vm);

	s->inc[vm] += d;
	if (!s->inc[vm])
		s->inc[vm] = 1;
	ivshm_put32(&p->incarnation, s->inc[vm]);
	ivshm_put64(&p->heartbeat, ivshm_get64(&p->heartbeat) + 1);
	ivshm_put32(&p->state, state);
}

static void op_alloc(struct st *s, struct in *in)
{
	u32 n = in_nblocks(in);
	int how = lock_enter(s, FZ_VM_TX);
	u64 off;

	if (how < 0)
		return;
	if (!alloc_checked(s, n, &off)) {
		if (s->nspare < NSPARE)
			s->spare[s->nspare++] =
				(struct run){ off, n << IVSHM_BLOCK_SHIFT };
		else
			free_checked(s, off, n);
	}
	lock_leave(s, FZ_VM_TX, how);
}

static void op_free(struct st *s, struct in *in)
{
	int i;
	struct run r;

	if (!s->nspare)
		return;
	i = in8(in) % s->nspare;
	r = s->spare[i];
	s->spare[i] = s->spare[--s->nspare];
	free_owned(s, FZ_VM_TX, r, true);
}

static void op_free_raw(struct st *s, struct in *in)
{
	u64 off = (u64)in8(in) << IVSHM_BLOCK_SHIFT;
	u32 n = in_nblocks(in);
	int how, ret;

	how = lock_enter(s, FZ_VM_TX);
	if (how < 0)
		return;
	if (owned_overlap(s, off, n << IVSHM_BLOCK_SHIFT))
		taint(s);
	ret = free_checked(s, off, n);
	if (s->strict && ret == 0)
		die("blocks_free of a run nobody owns = 0");
	lock_leave(s, FZ_VM_TX, how);
}

static void op_rebuild(struct st *s)
{
	int how = lock_enter(s, FZ_VM_TX);

	if (how < 0)
		return;
	rebuild_checked(s);
	lock_leave(s, FZ_VM_TX, how);
}

static void op_chan_free_raw(struct st *s, struct in *in)
{
	u32 idx = in8(in) % s->l.max_channels, i;
	int how = lock_enter(s, FZ_VM_TX);

	if (how < 0)
		return;
	for (i = 0; i < FZ_NCHAN; i++)
		if (s->ch[i].live && s->ch[i].idx == idx)
			taint(s);
	ivshm_chan_free(&s->l, idx);
	lock_leave(s, FZ_VM_TX, how);
}

static void op_pending(struct st *s, struct in *in)
{
	u32 vm = in8(in) % IVSHM_MAX_PEERS, chan = in8(in), w;
	u8 op = in8(in);
	bool take = op & 1;
	u32 set = (op >> 1) % (IVSHM_PEND_SETS + 1);	/* one past: refused */
	u64 got;

	ivshm_notify_mark(&s->l, vm, set, chan);
	if (set < IVSHM_PEND_SETS && chan < s->l.max_channels)
		s->pend[vm][set][chan / 64] |= 1ull << (chan % 64);
	if (!take)
		return;
	w = chan / 64;
	got = ivshm_notify_take(&s->l, vm, set, w);
	if (w >= s->l.pending_words || set >= IVSHM_PEND_SETS) {
		if (got)
			die("pending_take of set %u word %u = %#llx", set, w,
			    (unsigned long long)got);
		return;
	}
	if (s->strict && got != s->pend[vm][set][w])
		die("pending_take %#llx, set %#llx", (unsigned long long)got,
		    (unsigned long long)s->pend[vm][set][w]);
	s->pend[vm][set][w] = 0;
	if (ivshm_get64(ivshm_pending(&s->l, vm, set) + w))
		die("pending_take left bits");
	if (s->strict && !s->pend[vm][set ^ 1][w] &&
	    ivshm_get64(ivshm_pending(&s->l, vm, set ^ 1) + w))
		die("a bit appeared in the other set");
}

/* A reader on any slot, from what its descriptor says (read once). */
static void op_foreign(struct st *s, struct in *in)
{
	u32 raw = in8(in), n = 1 + in8(in) % RX_BURST, i;
	u32 idx = raw % s->l.max_channels;
	struct ivshm_chan *c;
	struct ivshm_ring tmp;
	u64 off;
	u32 size;
	int ret;

	if (raw >= 0xf0) {
		/* A slot past the table is refused before anything is read. */
		idx = s->l.max_channels + (raw & 0x0f) * 0x1000;
		if (ivshm_ring_init(&tmp, &s->l, idx, 0, IVSHM_BLOCK_SIZE) !=
		    -EINVAL)
			die("ring_init of slot %u accepted", idx);
		return;
	}
	c = ivshm_chan(&s->l, idx);
	off = ivshm_get64(&c->buff_offset);
	size = ivshm_get32(&c->buff_size);

	for (i = 0; i < FZ_NCHAN; i++)
		if (s->ch[i].live && s->ch[i].idx == idx)
			taint(s);	/* a second reader moves its tail */
	if (!s->foreign_ok || s->foreign_idx != idx) {
		ret = ivshm_ring_init(&s->foreign, &s->l, idx, off, size);
		if (ret != (ivshm_run_valid(&s->l, off, size) ? 0 : -EINVAL))
			die("ring_init(%#llx, %#x) = %d",
			    (unsigned long long)off, size, ret);
		s->foreign_ok = !ret;
		s->foreign_idx = idx;
	}
	for (i = 0; i < n && s->foreign_ok; i++) {
		ret = rx_one(s, &s->foreign, NULL);
		if (ret == -EAGAIN)
			break;
		if (ret == -EPROTO)
			s->foreign_ok = false;
	}
}

/* ------------------------------------------------------------------ */
/* The attacker */

static void poke(struct st *s, u64 off, u32 w, u64 v)
{
	if (off >= s->size || w > s->size - off)
		return;
	v = htole64(v);
	memcpy(s->base + off, &v, w);
}

static u64 peek_le(const struct st *s, u64 off, u32 w)
{
	u64 v = 0;

	if (off < s->size && w <= s->size - off)
		memcpy(&v, s->base + off, w);
	return le64toh(v);
}

static void poke_field(struct st *s, struct in *in, u64 off)
{
	u32 w = 1u << (in8(in) % 4);

	poke(s, off, w, in_val(in, peek_le(s, off, w)));
}

static void op_forge(struct st *s, struct in *in)
{
	struct hchan *h = &s->ch[in8(in) % FZ_NCHAN];
	u32 nrec = 1 + in8(in) % FORGE_MAX, k, o, size;
	u8 *ring;
	u64 pos;

	if (!h->live || !h->rx_ok)
		return;
	taint(s);
	ring = h->rx.ring;
	size = h->rx.size;
	o = h->rx.off;
	/* Append after what the reader already knows of, if sane. */
	pos = h->rx.peer - h->rx.pos;
	if (pos > size || pos % IVSHM_REC_ALIGN)
		pos = 0;
	o = (u32)((o + pos) % size);
	pos += h->rx.pos;
	for (k = 0; k < nrec; k++) {
		u8 kind = in8(in) % 4;
		u64 word;
		u32 len, need;
		struct ivshm_rec_moved m;

		switch (kind) {
		case 0:
			len = in8(in);
			word = IVSHM_REC_WORD(len, IVSHM_REC_DATA, in8(in) % 3);
			break;
		case 1:
			len = in16(in);
			word = IVSHM_REC_WORD(len, IVSHM_REC_DATA, in8(in) % 3);
			break;
		case 2:
			len = sizeof(m);
			word = IVSHM_REC_WORD(len, IVSHM_REC_MOVED,
					      in8(in) & 0x80 ? 1 : 0);
			m.buff_offset = htole64((u64)(in8(in) % s->l.nr_blocks)
						<< IVSHM_BLOCK_SHIFT);
			m.buff_size = htole32((1 + in8(in) % 4)
					      << IVSHM_BLOCK_SHIFT);
			m.flags = 0;
			break;
		default:
			word = in64(in);
			len = IVSHM_REC_LEN(word);
			break;
		}
		word = htole64(word);
		memcpy(ring + o, &word, sizeof(word));	/* o is 8-aligned */
		if (len > size - IVSHM_REC_HDR)
			len = size - IVSHM_REC_HDR;
		need = IVSHM_REC_HDR + ALIGN(len, 8u);
		ring_write(ring, size, (o + IVSHM_REC_HDR) % size,
			   kind == 2 ? (const u8 *)&m : payload(k, 99), len);
		pos += need;
		o = (u32)((o + need) % size);
		if (kind == 2)
			break;	/* the rest would go to the new run */
	}
	ivshm_put64(&ivshm_chan(&s->l, h->idx)->head, in_val(in, pos));
}

static void op_attack(struct st *s, struct in *in)
{
	u8 kind = in8(in) % FZ_AT_NR;
	struct hchan *h;
	u64 off;
	u32 n, i;
	u8 sel;

	taint(s);
	switch (kind) {
	case FZ_AT_HDR:
		poke_field(s, in, (in8(in) * 4u) % sizeof(struct ivshm_hdr));
		break;
	case FZ_AT_PEER:
		off = s->l.peers_off +
		      (u64)(in8(in) % IVSHM_MAX_PEERS) * sizeof(struct ivshm_peer);
		poke_field(s, in, off + (in8(in) * 4u) % 64);
		break;
	case FZ_AT_CTRL:
		poke_field(s, in, s->l.ctrl_off + (in8(in) * 4u) % 64);
		break;
	case FZ_AT_BITMAP:
		off = s->l.bitmap_off + (u64)(in8(in) % s->l.bitmap_words) * 8;
		poke(s, off, 8, in_val(in, peek_le(s, off, 8)));
		break;
	case FZ_AT_PENDING:
		off = (u8 *)ivshm_pending(&s->l, in8(in) % IVSHM_MAX_PEERS,
					  in8(in) % IVSHM_PEND_SETS) - s->base;
		off += (u64)(in8(in) % s->l.pending_words) * 8;
		poke(s, off, 8, in_val(in, peek_le(s, off, 8)));
		break;
	case FZ_AT_CHAN:
		sel = in8(in);
		i = sel & 0x80 ? (sel & 0x7f) % s->l.max_channels :
				 s->ch[sel % FZ_NCHAN].idx;
		off = s->l.chan_off + (u64)i * sizeof(struct ivshm_chan);
		poke_field(s, in, off + (in8(in) * 4u) %
			   sizeof(struct ivshm_chan));
		break;
	case FZ_AT_HEAD:
		h = &s->ch[in8(in) % FZ_NCHAN];
		ivshm_put64(&ivshm_chan(&s->l, h->idx)->head,
			    in_val(in, h->rx.pos));
		break;
	case FZ_AT_TAIL:
		h = &s->ch[in8(in) % FZ_NCHAN];
		ivshm_put64(&ivshm_chan(&s->l, h->idx)->tail,
			    in_val(in, h->tx.pos));
		break;
	case FZ_AT_RING: {
		struct ivshm_ring *r;

		h = &s->ch[in8(in) % FZ_NCHAN];
		r = in8(in) & 1 ? &h->tx : &h->rx;
		off = in16(in);
		n = 1 + in8(in) % 32;
		if (!h->live)
			break;
		off = (u64)(r->ring - s->base) + off % r->size;
		for (i = 0; i < n; i++)
			if (off + i < s->size)
				s->base[off + i] = in8(in);
		break;
	}
	case FZ_AT_FILL: {
		u32 f = (in8(in) * 4u) % sizeof(struct ivshm_chan);
		u32 w = 1u << (in8(in) % 4);
		u64 v = in_val(in, 0);

		for (i = 0; i < s->l.max_channels; i++)
			poke(s, s->l.chan_off + (u64)i * sizeof(struct ivshm_chan) +
			     f, w, v);
		break;
	}
	case FZ_AT_BLOB:
	default:
		off = in32(in) % s->size;
		n = 1 + in8(in) % 64;
		for (i = 0; i < n; i++)
			if (off + i < s->size)
				s->base[off + i] = in8(in);
		break;
	}
}

/* ------------------------------------------------------------------ */
/* Modes */

static void check_all(struct st *s)
{
	int i;

	for (i = 0; i < FZ_NCHAN; i++) {
		struct hchan *h = &s->ch[i];

		if (!h->live)
			continue;
		check_ring(s, &h->tx);
		check_ring(s, &h->rx);
		if (h->tx_ok && h->tx.pos - h->tx.peer > h->tx.bound)
			die("sender's view: %llu unread, bound %u",
			    (unsigned long long)(h->tx.pos - h->tx.peer),
			    h->tx.bound);
		if (h->tx.cap > h->tx.bound || h->tx.size > h->tx.bound)
			die("cap %u size %u bound %u", h->tx.cap, h->tx.size,
			    h->tx.bound);
		if (s->strict && h->rx.pos > h->tx.pos)
			die("reader ahead of the writer");
	}
	if (s->foreign_ok)
		check_ring(s, &s->foreign);
}

static void final_drain(struct st *s)
{
	int i;

	if (s->held)
		op_unlock(s);
	for (i = 0; i < FZ_NCHAN; i++) {
		struct hchan *h = &s->ch[i];

		if (!h->live || !h->rx_ok)
			continue;
		rx_drain(s, h, QMAX + 1);
		if (s->strict && (h->qh != h->qt || h->rx.pos != h->tx.pos))
			die("after draining: %u records unread, rx %llu tx %llu",
			    h->qt - h->qh, (unsigned long long)h->rx.pos,
			    (unsigned long long)h->tx.pos);
		move_done(s, h);
		if (s->strict && h->moving)
			die("a move still pending after draining");
		if (s->strict && h->tx_ok && !h->res) {
			/* A drained ring takes any record of max size. */
			struct ivshm_span sp;
			u32 max = ivshm_ring_max_record(&h->tx);
			int ret = ivshm_tx_reserve(&h->tx, max, IVSHM_REC_DATA,
						   0, &sp);

			if (ret)
				die("reserve(max %u) on a drained ring = %d",
				    max, ret);
			check_span(s, &sp, h->tx.ring, h->tx.size, max);
		}
	}
}

static const char *const op_names[FZ_OP_NR] = {
	"attach", "lock", "unlock", "peer", "alloc", "free", "free_raw",
	"rebuild", "chan_new", "chan_close", "chan_free_raw", "tx",
	"tx_commit", "rx", "move", "pending", "foreign", "forge", "attack",
	"move_done",
};

static void script_mode(struct st *s, struct in *in)
{
	const char *why;
	u32 vm, ops;

	if (ivshm_region_open(&s->l, s->base, s->size, FZ_VM_INIT, &why) !=
	    IVSHM_OPEN_INITIALISED)
		die("open of a zeroed region: %s", why);
	check_layout(s, &s->l);
	s->strict = true;
	for (vm = FZ_VM_INIT; vm <= FZ_VM_RX; vm++) {
		struct ivshm_peer *p = ivshm_peer(&s->l, vm);

		s->inc[vm] = 1;
		ivshm_put32(&p->incarnation, 1);
		ivshm_put32(&p->state, IVSHM_PEER_ALIVE);
	}

	for (ops = 0; ops < FZ_MAX_OPS && in->n; ops++) {
		u8 o = in->p[0] % FZ_OP_NR;

		T("op %u: %s%s\n", ops, op_names[o], s->strict ? " (strict)" : "");
		switch (in8(in) % FZ_OP_NR) {
		case FZ_OP_ATTACH: op_attach(s, in); break;
		case FZ_OP_LOCK: op_lock(s, in); break;
		case FZ_OP_UNLOCK: op_unlock(s); break;
		case FZ_OP_PEER: op_peer(s, in); break;
		case FZ_OP_ALLOC: op_alloc(s, in); break;
		case FZ_OP_FREE: op_free(s, in); break;
		case FZ_OP_FREE_RAW: op_free_raw(s, in); break;
		case FZ_OP_REBUILD: op_rebuild(s); break;
		case FZ_OP_CHAN_NEW: op_chan_new(s, in); break;
		case FZ_OP_CHAN_CLOSE: op_chan_close(s, in); break;
		case FZ_OP_CHAN_FREE_RAW: op_chan_free_raw(s, in); break;
		case FZ_OP_TX: op_tx(s, in); break;
		case FZ_OP_TX_COMMIT: op_tx_commit(s, in); break;
		case FZ_OP_RX: op_rx(s, in); break;
		case FZ_OP_MOVE: op_move(s, in); break;
		case FZ_OP_PENDING: op_pending(s, in); break;
		case FZ_OP_FOREIGN: op_foreign(s, in); break;
		case FZ_OP_FORGE: op_forge(s, in); break;
		case FZ_OP_MOVE_DONE: op_move_done(s, in); break;
		default: op_attack(s, in); break;
		}
		check_all(s);
	}
	final_drain(s);
	check_all(s);
}

/* The input is the region: attach, read every channel, send, allocate. */
static void raw_mode(struct st *s, const u8 *data, size_t n)
{
	struct ivshm_layout l2;
	const char *why;
	u32 i, sent = 0, w, vm, set;
	int ret;

	memcpy(s->base, data, n < s->size ? n : s->size);
	ret = ivshm_region_open(&s->l, s->base, s->size, FZ_VM_RAW, &why);
	if (ret < 0)
		return;
	check_layout(s, &s->l);
	s->strict = false;
	s->inc[FZ_VM_RAW] = ivshm_get32(&ivshm_peer(&s->l, FZ_VM_RAW)->incarnation);

	/* A second open of what we just opened attaches. */
	if (ivshm_region_open(&l2, s->base, s->size, FZ_VM_RAW + 1, &why) !=
	    IVSHM_OPEN_ATTACHED)
		die("second open of an opened region: %s", why);

	for (i = 0; i < s->l.max_channels; i++) {
		struct ivshm_chan *c = ivshm_chan(&s->l, i);
		u32 state = ivshm_get32(&c->state), size, k;
		u64 off;
		struct ivshm_ring r;

		if (state == IVSHM_CHAN_FREE)
			continue;
		off = ivshm_get64(&c->buff_offset);
		size = ivshm_get32(&c->buff_size);
		ret = ivshm_ring_init(&r, &s->l, i, off, size);
		if (ret != (ivshm_run_valid(&s->l, off, size) ? 0 : -EINVAL))
			die("ring_init(%#llx, %#x) = %d",
			    (unsigned long long)off, size, ret);
		if (ret)
			continue;
		for (k = 0; k < RAW_BURST; k++) {
			ret = rx_one(s, &r, NULL);
			if (ret == -EAGAIN || ret == -EPROTO)
				break;
		}
		{
			s64 av = ivshm_rx_avail(&r);

			if (av != -EPROTO && (av < 0 || av > r.size))
				die("rx_avail %lld in a run of %u",
				    (long long)av, r.size);
		}
		/* Then send on the same run, against the tail there. */
		if (sent++ >= 4 || ivshm_ring_init(&r, &s->l, i, off, size))
			continue;
		for (k = 0; k < 8; k++) {
			struct ivshm_span sp;
			u32 len = (k * 1031) % (size - 7);

			ret = ivshm_tx_reserve(&r, len, IVSHM_REC_DATA, 0, &sp);
			check_ring(s, &r);
			if (ret == -EMSGSIZE || ret == -EAGAIN)
				continue;
			if (ret)
				break;
			check_span(s, &sp, r.ring, r.size, len);
			if (r.pos - r.peer + IVSHM_REC_HDR + ALIGN(len, 8u) >
			    r.size)
				die("raw: reservation beyond the run");
			ivshm_span_write(&sp, payload(k, i));
			if (k & 1)
				ivshm_tx_queue(&r);
			else
				ivshm_tx_commit(&r);
			check_ring(s, &r);
			ret = ivshm_tx_room(&r, len);
			if (ret != 0 && ret != 1 && ret != -EPROTO)
				die("tx_room(%u) = %d", len, ret);
			if (ivshm_tx_unread(&r) > r.published)
				die("tx_unread beyond what was published");
		}
		ivshm_tx_flush(&r);
		if (r.published != r.pos)
			die("flush left %llu bytes unpublished",
			    (unsigned long long)(r.pos - r.published));
	}

	/* Allocator and lock as whatever the region says. */
	ret = trylock_checked(s, FZ_VM_RAW, s->inc[FZ_VM_RAW]);
	if (ret >= 0) {
		u64 off;
		u32 idx;

		if (ret == 1)
			rebuild_checked(s);
		for (i = 1; i <= 4; i++)
			if (!alloc_checked(s, i, &off) && i & 1)
				free_checked(s, off, i);
		if (!ivshm_chan_alloc(&s->l, &idx)) {
			if (idx >= s->l.max_channels)
				die("chan_alloc returned slot %u", idx);
			ivshm_chan_free(&s->l, idx);
		}
		free_checked(s, 0, s->l.nr_blocks);
		rebuild_checked(s);
		/* Whatever a VM the region names left behind goes. */
		ivshm_chan_reclaim(&s->l, ivshm_get32(&ivshm_hdr(&s->l)->init_peer) %
				   (IVSHM_MAX_PEERS + 2), 0);
		rebuild_checked(s);
		ivshm_ctrl_unlock(&s->l, FZ_VM_RAW, s->inc[FZ_VM_RAW]);
	}
	/* Peer slots: any id, alive or not, then ours joins and leaves. */
	for (vm = 0; vm < IVSHM_MAX_PEERS + 4; vm++) {
		u32 inc = 0;

		if (ivshm_peer_alive(&s->l, vm, &inc) && vm >= s->l.max_peers)
			die("peer %u alive beyond the table", vm);
	}
	/* Liveness as a survivor: declare and reap whatever the table says. */
	for (vm = 0; vm < s->l.max_peers; vm++) {
		u32 inc = ivshm_get32(&ivshm_peer(&s->l, vm)->incarnation);

		ivshm_peer_declare_dead(&s->l, vm, inc);
	}
	ret = trylock_checked(s, FZ_VM_RAW, s->inc[FZ_VM_RAW]);
	if (ret >= 0) {
		if (ret == 1)
			rebuild_checked(s);
		for (vm = 0; vm < s->l.max_peers; vm++)
			if (ivshm_get32(&ivshm_peer(&s->l, vm)->state) ==
			    IVSHM_PEER_DEAD)
				ivshm_peer_reap(&s->l, vm);
		rebuild_checked(s);
		ivshm_ctrl_unlock(&s->l, FZ_VM_RAW, s->inc[FZ_VM_RAW]);
	}
	{
		u32 cvm = ~0u, cinc = 0;

		if (!ivshm_peer_claim(&s->l, 0, &cvm, &cinc) &&
		    (cvm >= s->l.max_peers || !cinc ||
		     !ivshm_peer_alive(&s->l, cvm, NULL)))
			die("claimed slot %u, incarnation %u, not alive", cvm,
			    cinc);
	}
	{
		u32 inc = ivshm_peer_join(&s->l, FZ_VM_RAW, 2), got = 0;

		if (!inc || !ivshm_peer_alive(&s->l, FZ_VM_RAW, &got) ||
		    got != inc)
			die("joined as %u, alive as %u", inc, got);
		ivshm_peer_leave(&s->l, FZ_VM_RAW, inc);
		if (ivshm_peer_alive(&s->l, FZ_VM_RAW, NULL))
			die("still alive after leaving");
	}
	vm = ivshm_get32(&ivshm_hdr(&s->l)->init_peer) % IVSHM_MAX_PEERS;
	for (w = 0; w < s->l.pending_words; w++) {
		for (set = 0; set < IVSHM_PEND_SETS; set++) {
			ivshm_notify_take(&s->l, FZ_VM_RAW, set, w);
			ivshm_notify_take(&s->l, vm, set, w);
		}
		ivshm_notify_any(&s->l, vm, w % IVSHM_PEND_SETS);
	}
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size);

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	static struct st s;
	static u8 *regions[5];
	struct in in;
	u32 code;

	if (trace < 0) {
		trace = getenv("FZ_TRACE") != NULL;
		pat_init();
	}
	if (!size)
		return 0;
	memset(&s, 0, sizeof(s));
	code = (data[0] & 7) % 5;
	s.size = FZ_SIZE(code);
	/*
	 * Exactly the region, so ASan flags any access past either end; one
	 * allocation per size, kept (fresh pages each run cost more than
	 * the rest of the run), zeroed every run.
	 */
	if (!regions[code]) {
		regions[code] = aligned_alloc(IVSHM_BLOCK_SIZE, s.size);
		if (!regions[code])
			abort();
	}
	s.base = regions[code];
	memset(s.base, 0, s.size);
	in.p = data + 1;
	in.n = size - 1;
	if (data[0] & FZ_RAW)
		raw_mode(&s, data + 1, size - 1);
	else
		script_mode(&s, &in);
	return 0;
}
