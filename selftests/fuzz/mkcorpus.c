// SPDX-License-Identifier: GPL-2.0
/*
 * Writes the seed corpus of region_fuzz into the directory given as the
 * only argument: small scripts that reach each operation (region_fuzz.h
 * describes the encoding) and a few raw regions of 64 KiB built with the
 * core itself. Deterministic: the same files every run.
 *
 *   make -C selftests/fuzz corpus
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "region_fuzz.h"

struct seed {
	u8 b[(64 << 10) + 1];
	size_t n;
};

static const char *dir;
static unsigned int nfiles;

static void b8(struct seed *s, u8 v)
{
	if (s->n < sizeof(s->b))
		s->b[s->n++] = v;
}

static void b16(struct seed *s, u16 v)
{
	b8(s, (u8)v);
	b8(s, (u8)(v >> 8));
}

static void b32(struct seed *s, u32 v)
{
	b16(s, (u16)v);
	b16(s, (u16)(v >> 16));
}

static void b64(struct seed *s, u64 v)
{
	b32(s, (u32)v);
	b32(s, (u32)(v >> 32));
}

static void emit(const struct seed *s, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->b, 1, s->n, f) != s->n || fclose(f)) {
		perror(path);
		exit(1);
	}
	nfiles++;
}

static void start(struct seed *s, u8 size_code)
{
	s->n = 0;
	b8(s, size_code);
}

/* Script operations. */
static void chan_new(struct seed *s, u8 h, u8 nbsel)
{
	b8(s, FZ_OP_CHAN_NEW); b8(s, h); b8(s, nbsel);
}

static void tx_small(struct seed *s, u8 h, u8 len, u8 ctl)
{
	b8(s, FZ_OP_TX); b8(s, h); b8(s, len & 63); b8(s, ctl);
}

static void tx_len16(struct seed *s, u8 h, u16 len, u8 ctl)
{
	b8(s, FZ_OP_TX); b8(s, h); b8(s, 0x40); b16(s, len); b8(s, ctl);
}

static void tx_near_max(struct seed *s, u8 h, u8 below, u8 ctl)
{
	b8(s, FZ_OP_TX); b8(s, h); b8(s, 0x80); b8(s, below); b8(s, ctl);
}

static void tx_too_big(struct seed *s, u8 h, u8 above)
{
	b8(s, FZ_OP_TX); b8(s, h); b8(s, 0xc0); b8(s, above); b8(s, 0);
}

static void rx(struct seed *s, u8 h, u8 n)
{
	b8(s, FZ_OP_RX); b8(s, h); b8(s, n);
}

static void move(struct seed *s, u8 h, u8 nbsel, u8 ctl)
{
	b8(s, FZ_OP_MOVE); b8(s, h); b8(s, nbsel); b8(s, ctl);
}

static void move_done(struct seed *s, u8 h)
{
	b8(s, FZ_OP_MOVE_DONE); b8(s, h);
}

static void attach(struct seed *s, u8 vm, u8 sizesel)
{
	b8(s, FZ_OP_ATTACH); b8(s, vm); b8(s, sizesel);
}

static void attack_hdr(struct seed *s, u8 field4, u8 wsel, u8 valsel)
{
	b8(s, FZ_OP_ATTACK); b8(s, FZ_AT_HDR); b8(s, field4); b8(s, wsel);
	b8(s, valsel);
}

/* A channel with a few records, the common prefix of many seeds. */
static void traffic(struct seed *s, u8 h)
{
	int i;

	chan_new(s, h, 1);		/* two blocks */
	for (i = 0; i < 4; i++)
		tx_small(s, h, (u8)(i * 13 + 1), 0);
	rx(s, h, 2);
}

static void scripts(void)
{
	static struct seed s;
	int i;

	for (i = 0; i < 5; i++) {
		char name[32];

		start(&s, (u8)i);
		traffic(&s, 0);
		rx(&s, 0, 15);
		snprintf(name, sizeof(name), "script-basic-%dk", 64 << i);
		emit(&s, name);
	}

	/* Wrap around a one-block ring many times, records of all sizes. */
	start(&s, 0);
	chan_new(&s, 0, 0);
	for (i = 0; i < 24; i++) {
		if (i % 3 == 0)
			tx_near_max(&s, 0, (u8)(i * 37), i & 1);
		else
			tx_len16(&s, 0, (u16)(i * 211), 0);
		rx(&s, 0, 3);
	}
	tx_too_big(&s, 0, 1);
	emit(&s, "script-wrap");

	/* Moves to larger and smaller runs, with the reader behind. */
	start(&s, 1);
	chan_new(&s, 0, 1);
	tx_small(&s, 0, 40, 0);
	tx_len16(&s, 0, 3000, 0);
	move(&s, 0, 3, 1);		/* an impossible run first */
	tx_len16(&s, 0, 9000, 0);
	tx_small(&s, 0, 8, 1);
	rx(&s, 0, 1);
	move(&s, 0, 2, 0);		/* busy: the first is pending */
	move_done(&s, 0);		/* the reader is still in the old run */
	rx(&s, 0, 15);
	move_done(&s, 0);		/* now it has left: freed */
	move(&s, 0, 0, 0x0b);
	tx_near_max(&s, 0, 0, 0);
	rx(&s, 0, 15);
	tx_small(&s, 0, 3, 0);
	rx(&s, 0, 15);
	move_done(&s, 0);
	emit(&s, "script-move");

	/* Deferred commits, the receiver in between. */
	start(&s, 0);
	traffic(&s, 1);
	tx_small(&s, 1, 30, 2);
	rx(&s, 1, 15);
	b8(&s, FZ_OP_TX_COMMIT); b8(&s, 1);
	rx(&s, 1, 15);
	tx_small(&s, 1, 31, 2);
	move(&s, 1, 2, 0);
	b8(&s, FZ_OP_REBUILD);		/* keeps both runs */
	b8(&s, FZ_OP_ALLOC); b8(&s, 7);
	rx(&s, 1, 15);
	move_done(&s, 1);
	emit(&s, "script-deferred");

	/* Four channels, closed and reopened; spares; the allocator full. */
	start(&s, 0);
	for (i = 0; i < 4; i++)
		chan_new(&s, (u8)i, (u8)i);
	for (i = 0; i < 4; i++)
		tx_small(&s, (u8)i, (u8)i, 0);
	b8(&s, FZ_OP_ALLOC); b8(&s, 4);
	b8(&s, FZ_OP_ALLOC); b8(&s, 0xff);
	b8(&s, FZ_OP_CHAN_CLOSE); b8(&s, 1);
	b8(&s, FZ_OP_FREE); b8(&s, 0);
	chan_new(&s, 1, 5);
	for (i = 0; i < 4; i++)
		rx(&s, (u8)i, 15);
	b8(&s, FZ_OP_CHAN_CLOSE); b8(&s, 2);
	b8(&s, FZ_OP_FREE_RAW); b8(&s, 0); b8(&s, 7);
	emit(&s, "script-channels");

	/* Locks: held by a live peer, by one that dies, by a stranger. */
	start(&s, 0);
	traffic(&s, 0);
	b8(&s, FZ_OP_LOCK); b8(&s, FZ_VM_RX); b8(&s, 0);
	move(&s, 0, 1, 0);			/* busy: skipped */
	b8(&s, FZ_OP_PEER); b8(&s, FZ_VM_RX); b8(&s, IVSHM_PEER_DEAD); b8(&s, 1);
	move(&s, 0, 1, 0);			/* breaks the lock, rebuilds */
	b8(&s, FZ_OP_UNLOCK);
	b8(&s, FZ_OP_LOCK); b8(&s, 9); b8(&s, 0x80); b8(&s, 7);
	b8(&s, FZ_OP_ALLOC); b8(&s, 1);
	b8(&s, FZ_OP_REBUILD);
	rx(&s, 0, 15);
	emit(&s, "script-lock");

	/* Pending bits, attach, foreign readers. */
	start(&s, 2);
	traffic(&s, 2);
	b8(&s, FZ_OP_PENDING); b8(&s, FZ_VM_RX); b8(&s, 5); b8(&s, 0);
	b8(&s, FZ_OP_PENDING); b8(&s, 7); b8(&s, 63); b8(&s, 1);
	b8(&s, FZ_OP_PENDING); b8(&s, 7); b8(&s, 200); b8(&s, 1);
	attach(&s, 4, 0);
	attach(&s, 4, 1);
	attach(&s, 4, 2);
	rx(&s, 2, 15);
	b8(&s, FZ_OP_FOREIGN); b8(&s, 0); b8(&s, 15);
	b8(&s, FZ_OP_FOREIGN); b8(&s, 9); b8(&s, 15);
	b8(&s, FZ_OP_FOREIGN); b8(&s, 0xf3); b8(&s, 15);
	b8(&s, FZ_OP_CHAN_FREE_RAW); b8(&s, 0);
	emit(&s, "script-misc");

	/* Attacker: the tail, the head, forged records, a forged move. */
	start(&s, 0);
	traffic(&s, 0);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_TAIL); b8(&s, 0); b8(&s, 4); b8(&s, 0xf8);
	tx_small(&s, 0, 20, 0);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_HEAD); b8(&s, 0); b8(&s, 4); b8(&s, 16);
	rx(&s, 0, 15);
	b8(&s, FZ_OP_CHAN_CLOSE); b8(&s, 0);
	chan_new(&s, 0, 1);
	b8(&s, FZ_OP_FORGE); b8(&s, 0); b8(&s, 2);	/* three records */
	b8(&s, 0); b8(&s, 12); b8(&s, 1);		/* DATA 12, MORE */
	b8(&s, 1); b16(&s, 5000); b8(&s, 0);		/* DATA 5000 */
	b8(&s, 2); b8(&s, 0); b8(&s, 5); b8(&s, 1);	/* MOVED to block 5 */
	b8(&s, 4); b8(&s, 0);				/* head exact */
	rx(&s, 0, 15);
	b8(&s, FZ_OP_FORGE); b8(&s, 0); b8(&s, 0);	/* one record */
	b8(&s, 3); b64(&s, IVSHM_REC_WORD(0xfff0, 1, 0)); b8(&s, 4); b8(&s, 0);
	rx(&s, 0, 15);
	emit(&s, "script-attack-ring");

	/* Attacker: control section, bitmap, channel table, ring bytes. */
	start(&s, 0);
	traffic(&s, 0);
	traffic(&s, 1);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_CTRL); b8(&s, 0); b8(&s, 3);
	b8(&s, 2); b64(&s, IVSHM_LOCK_OWNER(FZ_VM_RX, 1));
	move(&s, 0, 1, 0);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_CTRL); b8(&s, 0); b8(&s, 3);
	b8(&s, 2); b64(&s, IVSHM_LOCK_OWNER(40, 1));
	move(&s, 0, 1, 0);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_CTRL); b8(&s, 2); b8(&s, 2);
	b8(&s, 7); b32(&s, 0xfffff000);		/* free_start_offset */
	b8(&s, FZ_OP_ALLOC); b8(&s, 1);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_BITMAP); b8(&s, 0); b8(&s, 1);
	b8(&s, FZ_OP_ALLOC); b8(&s, 0);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_CHAN); b8(&s, 1); b8(&s, 6);
	b8(&s, 3); b8(&s, 2); b64(&s, 0x7000);	/* buff_offset */
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_CHAN); b8(&s, 0x81); b8(&s, 0);
	b8(&s, 2); b8(&s, 3); b8(&s, 9);		/* state */
	b8(&s, FZ_OP_REBUILD);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_FILL); b8(&s, 0); b8(&s, 2);
	b8(&s, 3); b8(&s, 1);			/* every slot ALLOC */
	chan_new(&s, 3, 0);
	b8(&s, FZ_OP_REBUILD);
	b8(&s, FZ_OP_FOREIGN); b8(&s, 1); b8(&s, 15);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_RING); b8(&s, 0); b8(&s, 0);
	b16(&s, 0x40); b8(&s, 7);
	for (i = 0; i < 8; i++)
		b8(&s, 0xff);
	rx(&s, 0, 15);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_BLOB); b32(&s, 0x4000); b8(&s, 15);
	for (i = 0; i < 16; i++)
		b8(&s, (u8)(i * 17));
	rx(&s, 1, 15);
	emit(&s, "script-attack-ctrl");

	/* Attacker: the header, then attach and re-initialisation. */
	start(&s, 0);
	traffic(&s, 0);
	attack_hdr(&s, 0, 2, 0);		/* magic = 0 */
	attach(&s, 5, 0);
	attack_hdr(&s, 0, 2, 7); b32(&s, IVSHM_MAGIC);
	attack_hdr(&s, 10, 3, 4); b8(&s, 1);	/* data_off + 1 */
	attach(&s, 5, 0);
	attack_hdr(&s, 2, 2, 0);		/* init_state = NONE */
	attach(&s, 5, 0);
	tx_small(&s, 0, 9, 0);
	rx(&s, 0, 15);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_PEER); b8(&s, FZ_VM_TX); b8(&s, 0);
	b8(&s, 2); b8(&s, 0);
	b8(&s, FZ_OP_ATTACK); b8(&s, FZ_AT_PENDING); b8(&s, FZ_VM_RX);
	b8(&s, 0); b8(&s, 1);
	rx(&s, 0, 15);
	emit(&s, "script-attack-hdr");

	/* Regressions: crashers/ (README.md there). */
	start(&s, 1);
	chan_new(&s, 0, 0);
	move(&s, 0, 3, 0);
	move(&s, 0, 3, 0);
	tx_len16(&s, 0, 9000, 0);
	emit(&s, "regress-tx-move-twice-raises-cap");

	start(&s, 0);
	chan_new(&s, 0, 1);
	tx_small(&s, 0, 8, 0);
	move(&s, 0, 1, 0);
	b8(&s, FZ_OP_PEER); b8(&s, 9); b8(&s, IVSHM_PEER_ALIVE); b8(&s, 0);
	b8(&s, FZ_OP_LOCK); b8(&s, 9); b8(&s, 0);
	b8(&s, FZ_OP_PEER); b8(&s, 9); b8(&s, IVSHM_PEER_DEAD); b8(&s, 0);
	b8(&s, FZ_OP_ALLOC); b8(&s, 1);
	emit(&s, "regress-rebuild-frees-moved-from-run");

	start(&s, 0);
	chan_new(&s, 1, 0);
	move(&s, 1, 2, 0);
	chan_new(&s, 0, 0);
	b8(&s, FZ_OP_CHAN_CLOSE); b8(&s, 1);	/* mid-move */
	b8(&s, FZ_OP_REBUILD);
	move(&s, 0, 1, 0);
	chan_new(&s, 3, 3);			/* the slot closed mid-move */
	b8(&s, FZ_OP_REBUILD);
	emit(&s, "regress-chan-slot-reuse-keeps-old-run");
}

/* Raw regions, written with the core. */
static u8 region[64 << 10];

static void send(struct ivshm_ring *r, u32 len, u16 flags)
{
	struct ivshm_span sp;
	u8 buf[4096];
	u32 i;

	for (i = 0; i < len && i < sizeof(buf); i++)
		buf[i] = (u8)(i * 3 + len);
	if (ivshm_tx_reserve(r, len, IVSHM_REC_DATA, flags, &sp)) {
		fprintf(stderr, "mkcorpus: reserve %u failed\n", len);
		exit(1);
	}
	ivshm_span_write(&sp, buf);
	ivshm_tx_commit(r);
}

static u32 chan(struct ivshm_layout *l, u32 nblocks, u64 *off,
		struct ivshm_ring *r)
{
	struct ivshm_chan *c;
	u32 idx;

	if (ivshm_chan_alloc(l, &idx) || ivshm_blocks_alloc(l, nblocks, off)) {
		fprintf(stderr, "mkcorpus: allocation failed\n");
		exit(1);
	}
	c = ivshm_chan(l, idx);
	ivshm_put64(&c->buff_offset, *off);
	ivshm_put32(&c->buff_size, nblocks << IVSHM_BLOCK_SHIFT);
	ivshm_put16(&c->sender_vm, 1);
	ivshm_put16(&c->receiver_vm, FZ_VM_RAW);
	ivshm_put32(&c->state, IVSHM_CHAN_OPEN);
	ivshm_ring_init(r, l, idx, *off, nblocks << IVSHM_BLOCK_SHIFT);
	return idx;
}

static void emit_raw(const char *name)
{
	static struct seed s;
	size_t n = sizeof(region);

	while (n && !region[n - 1])
		n--;
	start(&s, FZ_RAW);
	memcpy(s.b + 1, region, n);
	s.n = n + 1;
	emit(&s, name);
}

static void raws(void)
{
	struct ivshm_layout l;
	struct ivshm_ring r;
	const char *why;
	u64 off, noff;
	u32 i, idx;
	static struct seed s;

	/* Zeroed: the open initialises. */
	start(&s, FZ_RAW);
	emit(&s, "raw-zero");

	memset(region, 0, sizeof(region));
	if (ivshm_region_open(&l, region, sizeof(region), 0, &why) !=
	    IVSHM_OPEN_INITIALISED) {
		fprintf(stderr, "mkcorpus: open: %s\n", why);
		exit(1);
	}
	ivshm_put32(&ivshm_peer(&l, 0)->state, IVSHM_PEER_ALIVE);
	ivshm_put32(&ivshm_peer(&l, 0)->incarnation, 1);
	ivshm_put32(&ivshm_peer(&l, FZ_VM_RAW)->state, IVSHM_PEER_ALIVE);
	ivshm_put32(&ivshm_peer(&l, FZ_VM_RAW)->incarnation, 1);
	emit_raw("raw-empty");

	/* Channel 0: a one-block ring nearly full (a reader starts at 0). */
	chan(&l, 1, &off, &r);
	for (i = 0; i < 6; i++)
		send(&r, 600 + i, i & 1);
	/* Channel 1: a few records, a move, more records. */
	idx = chan(&l, 1, &off, &r);
	send(&r, 100, 0);
	send(&r, 0, 0);
	ivshm_blocks_alloc(&l, 2, &noff);
	ivshm_tx_move(&r, noff, 2 << IVSHM_BLOCK_SHIFT);
	ivshm_put64(&ivshm_chan(&l, idx)->buff_offset, off);
	send(&r, 3000, 0);	/* capacity is the old run's until read */
	send(&r, 7, 0x0001);	/* a flag version 1 does not define */
	ivshm_notify_mark(&l, FZ_VM_RAW, IVSHM_PEND_CTRL, 0);
	ivshm_notify_mark(&l, FZ_VM_RAW, IVSHM_PEND_DATA, idx);
	emit_raw("raw-traffic");

	/* Then a dead holder of the lock, and damage the reader must catch. */
	ivshm_put64(&ivshm_ctrl(&l)->lock, IVSHM_LOCK_OWNER(0, 7));
	idx = chan(&l, 1, &off, &r);
	send(&r, 16, 0);
	ivshm_put64(&r.chan->head, 4096 + 8);	/* more than the run */
	idx = chan(&l, 1, &off, &r);
	send(&r, 32, 0);
	ivshm_put64((__le64 *)r.ring, IVSHM_REC_WORD(4000, IVSHM_REC_DATA, 0));
	emit_raw("raw-damaged");

	/* A forged MOVED that leaves the data area, and an unknown state. */
	idx = chan(&l, 1, &off, &r);
	{
		struct ivshm_rec_moved m = { htole64(0x100000), htole32(4096), 0 };
		struct ivshm_span sp;

		ivshm_tx_reserve(&r, sizeof(m), IVSHM_REC_MOVED, 0, &sp);
		ivshm_span_write(&sp, &m);
		ivshm_tx_commit(&r);
	}
	ivshm_put32(&ivshm_chan(&l, 0)->state, 77);
	emit_raw("raw-bad-move");

	/* The findings of a review, as regions (selftests/native has each
	 * as a sequence too). A MOVED record naming its own run, whose first
	 * record names it again, under a head far ahead: the reader follows
	 * one, then refuses the second under the same head.
	 */
	memset(region, 0, sizeof(region));
	ivshm_region_open(&l, region, sizeof(region), 0, &why);
	ivshm_put32(&ivshm_peer(&l, 1)->state, IVSHM_PEER_ALIVE);
	ivshm_put32(&ivshm_peer(&l, 1)->incarnation, 1);
	ivshm_put32(&ivshm_peer(&l, FZ_VM_RAW)->state, IVSHM_PEER_ALIVE);
	ivshm_put32(&ivshm_peer(&l, FZ_VM_RAW)->incarnation, 1);
	idx = chan(&l, 2, &off, &r);
	{
		struct ivshm_rec_moved m = { htole64(off), htole32(2 << 12), 0 };
		__le64 *hdr = (__le64 *)r.ring;

		ivshm_put64(hdr, IVSHM_REC_WORD(sizeof(m), IVSHM_REC_MOVED, 0));
		memcpy(hdr + 1, &m, sizeof(m));
		ivshm_put64(&r.chan->head, 2 << 12);
	}
	emit_raw("finding-moved-chain");

	/* The control lock word naming the VM that attaches, which cannot be
	 * holding it: taken over, not waited for.
	 */
	ivshm_put64(&ivshm_ctrl(&l)->lock, IVSHM_LOCK_OWNER(FZ_VM_RAW, 1));
	emit_raw("finding-lock-names-us");

	/* The rebuild bomb: every slot a channel of a live VM naming the
	 * whole data area, the lock word naming a VM that cannot exist, so
	 * that the first lock taken rebuilds from that table.
	 */
	for (i = 0; i < l.max_channels; i++) {
		struct ivshm_chan *c = ivshm_chan(&l, i);

		ivshm_put32(&c->state, IVSHM_CHAN_ALLOC);
		ivshm_put16(&c->sender_vm, 1);
		ivshm_put32(&c->sender_inc, 1);
		ivshm_put64(&c->buff_offset, 0);
		ivshm_put32(&c->buff_size, l.nr_blocks << IVSHM_BLOCK_SHIFT);
		ivshm_put64(&c->old_offset, 0);
		ivshm_put32(&c->old_size, l.nr_blocks << IVSHM_BLOCK_SHIFT);
	}
	ivshm_put64(&ivshm_ctrl(&l)->lock, IVSHM_LOCK_OWNER(1000, 1));
	emit_raw("finding-rebuild-bomb");
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	dir = argv[1];
	scripts();
	raws();
	printf("mkcorpus: %u seeds in %s\n", nfiles, dir);
	return 0;
}
