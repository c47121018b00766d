// SPDX-License-Identifier: GPL-2.0
/*
 * Native tests of the region core (net/ivshmem/core/),
 * built with the same sources as the module, under ASan and UBSan.
 *
 * The region is an ordinary allocation of exactly its size, so any access
 * outside it is a sanitizer report.
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

#include "kselftest_harness.h"
#include "core.h"

#define REGION	(1u << 20)

static void *region_alloc(size_t size)
{
	void *p = aligned_alloc(4096, size);

	if (p)
		memset(p, 0, size);
	return p;
}

FIXTURE(core) {
	struct ivshm_layout l;
	void *mem;
	struct ivshm_ring tx, rx;
	u32 chan;
	u64 off;
	u32 size;
};

/* A region opened by VM 0, one channel of 16 KiB, both ring sides. */
FIXTURE_SETUP(core)
{
	const char *why;

	self->mem = region_alloc(REGION);
	ASSERT_NE(NULL, self->mem);
	ASSERT_EQ(IVSHM_OPEN_INITIALISED,
		  ivshm_region_open(&self->l, self->mem, REGION, 0, &why));
	ivshm_put32(&ivshm_peer(&self->l, 0)->state, IVSHM_PEER_ALIVE);
	ivshm_put32(&ivshm_peer(&self->l, 0)->incarnation, 1);
	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ASSERT_EQ(0, ivshm_chan_alloc(&self->l, &self->chan));
	self->size = 4 * IVSHM_BLOCK_SIZE;
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 4, &self->off));
	ivshm_put64(&ivshm_chan(&self->l, self->chan)->buff_offset, self->off);
	ivshm_put32(&ivshm_chan(&self->l, self->chan)->buff_size, self->size);
	ivshm_ctrl_unlock(&self->l, 0, 1);
	ASSERT_EQ(0, ivshm_ring_init(&self->tx, &self->l, self->chan,
				     self->off, self->size));
	ASSERT_EQ(0, ivshm_ring_init(&self->rx, &self->l, self->chan,
				     self->off, self->size));
}

FIXTURE_TEARDOWN(core)
{
	free(self->mem);
}

static int send_rec(struct ivshm_ring *r, const void *buf, u32 len)
{
	struct ivshm_span s;
	int ret = ivshm_tx_reserve(r, len, IVSHM_REC_DATA, 0, &s);

	if (ret)
		return ret;
	ivshm_span_write(&s, buf);
	ivshm_tx_commit(r);
	return 0;
}

/* One call of a reader: it may follow one MOVED record (ring.c). */
static int rx_call(struct ivshm_ring *r, struct ivshm_rec *rec)
{
	ivshm_rx_allow_move(r);
	return ivshm_rx_peek(r, rec);
}

/* Receive one DATA record into @buf (of @cap bytes); length or -errno. */
static int recv_rec(struct ivshm_ring *r, void *buf, u32 cap)
{
	struct ivshm_rec rec;
	int ret;

	do
		ret = rx_call(r, &rec);
	while (ret == IVSHM_RX_MOVED);
	if (ret)
		return ret;
	if (rec.type != IVSHM_REC_DATA || rec.len > cap)
		return -E2BIG;
	ivshm_span_read(&rec.span, buf);
	ivshm_rx_release(r);
	return (int)rec.len;
}

static void fill(u8 *buf, u32 len, u32 seed)
{
	u32 i;

	for (i = 0; i < len; i++)
		buf[i] = (u8)(seed * 31 + i * 7);
}

TEST(layout_all_sizes)
{
	struct ivshm_layout l;
	u64 size;

	for (size = 64 << 10; size <= (1ull << 36); size <<= 1) {
		ASSERT_EQ(0, ivshm_layout_compute(&l, NULL, size));
		ASSERT_LT(0, l.peers_off);
		ASSERT_LE(l.peers_off + 64 * sizeof(struct ivshm_peer), l.ctrl_off);
		ASSERT_LE(l.ctrl_off + sizeof(struct ivshm_ctrl), l.bitmap_off);
		ASSERT_LE(l.bitmap_off + l.bitmap_words * 8ull, l.pending_off);
		ASSERT_LE(l.pending_off + 64ull * IVSHM_PEND_SETS *
			  l.pending_words * 8, l.chan_off);
		ASSERT_LE(l.chan_off + (u64)l.max_channels *
			  sizeof(struct ivshm_chan), l.data_off);
		ASSERT_EQ(0, l.data_off % IVSHM_BLOCK_SIZE);
		ASSERT_LT(0, l.nr_blocks);
		ASSERT_EQ(size, l.data_off + (u64)l.nr_blocks * IVSHM_BLOCK_SIZE);
		ASSERT_LE(l.nr_blocks, l.bitmap_words * 64);
	}
	ASSERT_EQ(-EINVAL, ivshm_layout_compute(&l, NULL, 32 << 10));
	ASSERT_EQ(-EINVAL, ivshm_layout_compute(&l, NULL, (1 << 20) + 4096));
	ASSERT_EQ(-EINVAL, ivshm_layout_compute(&l, NULL, 1ull << 37));
	ASSERT_EQ(-EINVAL, ivshm_layout_compute(&l, NULL, 0));
}

TEST(descriptor_lines_are_separate)
{
	ASSERT_EQ(192, sizeof(struct ivshm_chan));
	ASSERT_EQ(64, offsetof(struct ivshm_chan, head));
	ASSERT_EQ(128, offsetof(struct ivshm_chan, tail));
	ASSERT_EQ(64, sizeof(struct ivshm_peer));
	ASSERT_EQ(64, sizeof(struct ivshm_ctrl));
	ASSERT_EQ(128, sizeof(struct ivshm_hdr));
}

TEST(open_init_then_attach)
{
	void *mem = region_alloc(REGION);
	struct ivshm_layout a, b;
	const char *why;

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(IVSHM_OPEN_INITIALISED,
		  ivshm_region_open(&a, mem, REGION, 3, &why));
	ASSERT_EQ(IVSHM_OPEN_ATTACHED, ivshm_region_open(&b, mem, REGION, 4, &why));
	ASSERT_EQ(0, memcmp(&a, &b, sizeof(a)));
	ASSERT_EQ(3, ivshm_get32(&ivshm_hdr(&a)->init_peer));
	ASSERT_EQ(a.nr_blocks, ivshm_get32(&ivshm_ctrl(&a)->free_blocks));
	free(mem);
}

TEST(open_refuses_bad_regions)
{
	void *mem = region_alloc(REGION);
	struct ivshm_layout l;
	struct ivshm_hdr *h = mem;
	const char *why;

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(IVSHM_OPEN_INITIALISED, ivshm_region_open(&l, mem, REGION, 0, &why));

	ivshm_put32(&h->magic, 0xdeadbeef);
	ASSERT_EQ(-EINVAL, ivshm_region_open(&l, mem, REGION, 1, &why));
	ASSERT_STREQ("bad magic", why);
	ivshm_put32(&h->magic, IVSHM_MAGIC);

	ivshm_put16(&h->version, 2);
	ASSERT_EQ(-EPROTONOSUPPORT, ivshm_region_open(&l, mem, REGION, 1, &why));
	ivshm_put16(&h->version, IVSHM_VERSION);

	/* The device says 1 MiB; a header claiming 2 MiB is refused. */
	ivshm_put64(&h->region_size, 2 * REGION);
	ASSERT_EQ(-EINVAL, ivshm_region_open(&l, mem, REGION, 1, &why));
	ivshm_put64(&h->region_size, REGION);

	/* A region claiming a smaller size than the device is refused too. */
	ASSERT_EQ(-EINVAL, ivshm_region_open(&l, mem, REGION / 2, 1, &why));

	ivshm_put64(&h->data_off, 4096);
	ASSERT_EQ(-EINVAL, ivshm_region_open(&l, mem, REGION, 1, &why));
	ASSERT_STREQ("layout differs from the one this size implies", why);
	ivshm_put64(&h->data_off, l.data_off);

	ivshm_put32(&h->init_state, IVSHM_INIT_BUSY);
	ASSERT_EQ(-EAGAIN, ivshm_region_open(&l, mem, REGION, 1, &why));
	ivshm_put32(&h->init_state, 7);
	ASSERT_EQ(-EINVAL, ivshm_region_open(&l, mem, REGION, 1, &why));
	ivshm_put32(&h->init_state, IVSHM_INIT_READY);
	ASSERT_EQ(IVSHM_OPEN_ATTACHED, ivshm_region_open(&l, mem, REGION, 1, &why));

	ASSERT_EQ(-EINVAL, ivshm_region_open(&l, mem, REGION + 1, 1, &why));
	free(mem);
}

TEST_F(core, empty_ring)
{
	char buf[8];

	ASSERT_EQ(-EAGAIN, recv_rec(&self->rx, buf, sizeof(buf)));
	ASSERT_EQ(0, send_rec(&self->tx, "x", 1));
	ASSERT_EQ(1, recv_rec(&self->rx, buf, sizeof(buf)));
	ASSERT_EQ('x', buf[0]);
	ASSERT_EQ(-EAGAIN, recv_rec(&self->rx, buf, sizeof(buf)));
}

TEST_F(core, zero_length_records)
{
	char buf[1];
	int i;

	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, send_rec(&self->tx, buf, 0));
	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, recv_rec(&self->rx, buf, sizeof(buf)));
	ASSERT_EQ(-EAGAIN, recv_rec(&self->rx, buf, sizeof(buf)));
}

TEST_F(core, every_size_and_boundaries)
{
	u32 max = self->size - IVSHM_REC_HDR, len;
	u8 *out = malloc(max), *in = malloc(max);
	struct ivshm_span s;

	ASSERT_NE(NULL, out);
	ASSERT_NE(NULL, in);
	ASSERT_EQ(max, ivshm_ring_max_record(&self->tx));
	/* Every size from 0 to the largest, each wrapping differently. */
	for (len = 0; len <= max; len += (len < 300 ? 1 : 97)) {
		fill(out, len, len);
		ASSERT_EQ(0, send_rec(&self->tx, out, len));
		ASSERT_EQ((int)len, recv_rec(&self->rx, in, max));
		ASSERT_EQ(0, memcmp(out, in, len)) TH_LOG("len %u", len);
	}
	/* The largest record fills the empty ring exactly. */
	fill(out, max, 1);
	ASSERT_EQ(0, send_rec(&self->tx, out, max));
	ASSERT_EQ(-EAGAIN, send_rec(&self->tx, out, 0));
	ASSERT_EQ((int)max, recv_rec(&self->rx, in, max));
	ASSERT_EQ(0, memcmp(out, in, max));
	/* One byte more can never fit. */
	ASSERT_EQ(-EMSGSIZE, ivshm_tx_reserve(&self->tx, max + 1, IVSHM_REC_DATA,
					      0, &s));
	ASSERT_EQ(-EMSGSIZE, ivshm_tx_reserve(&self->tx, UINT32_MAX,
					      IVSHM_REC_DATA, 0, &s));
	free(out);
	free(in);
}

TEST_F(core, full_then_drained)
{
	u8 rec[56], in[56];
	u32 n = 0, i;

	/* 64-byte records (8 header + 56): exactly size / 64 fit. */
	while (send_rec(&self->tx, rec, sizeof(rec)) == 0) {
		fill(rec, sizeof(rec), ++n);
		ASSERT_GE(self->size / 64, n);
	}
	ASSERT_EQ(self->size / 64, n);
	ASSERT_EQ(-EAGAIN, send_rec(&self->tx, rec, 0));
	/* Freeing one record frees exactly its space. */
	ASSERT_EQ(56, recv_rec(&self->rx, in, sizeof(in)));
	ASSERT_EQ(-EAGAIN, send_rec(&self->tx, rec, 57));
	ASSERT_EQ(0, send_rec(&self->tx, rec, 56));
	for (i = 0; i < n; i++)
		ASSERT_EQ(56, recv_rec(&self->rx, in, sizeof(in)));
	ASSERT_EQ(-EAGAIN, recv_rec(&self->rx, in, sizeof(in)));
}

TEST_F(core, wrap_around_keeps_order_and_bytes)
{
	u8 out[3000], in[3000];
	u32 i, len;

	for (i = 0; i < 20000; i++) {
		len = (i * 2654435761u) % sizeof(out);
		fill(out, len, i);
		ASSERT_EQ(0, send_rec(&self->tx, out, len));
		ASSERT_EQ((int)len, recv_rec(&self->rx, in, sizeof(in)));
		ASSERT_EQ(0, memcmp(out, in, len)) TH_LOG("record %u", i);
	}
	/* The counters went round the ring many times. */
	ASSERT_LT(100 * (u64)self->size,
		  ivshm_get64(&ivshm_chan(&self->l, self->chan)->head));
}

TEST_F(core, peek_does_not_consume)
{
	struct ivshm_rec a, b;
	char buf[4];

	ASSERT_EQ(0, send_rec(&self->tx, "abc", 3));
	ASSERT_EQ(0, rx_call(&self->rx, &a));
	ASSERT_EQ(0, rx_call(&self->rx, &b));
	ASSERT_EQ(a.span.p[0], b.span.p[0]);
	ASSERT_EQ(3, a.len);
	ASSERT_EQ(3, recv_rec(&self->rx, buf, sizeof(buf)));
	ASSERT_EQ(-EAGAIN, rx_call(&self->rx, &a));
}

TEST_F(core, descriptor_counters_published)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	char buf[16];

	ASSERT_EQ(0, send_rec(&self->tx, "0123456789", 10));
	ASSERT_EQ(0, send_rec(&self->tx, "01", 2));
	ASSERT_EQ(24 + 16, ivshm_get64(&ch->head));
	ASSERT_EQ(2, ivshm_get64(&ch->head_touch));
	ASSERT_EQ(40, ivshm_get64(&ch->data_size));
	ASSERT_EQ(10, recv_rec(&self->rx, buf, sizeof(buf)));
	ASSERT_EQ(24, ivshm_get64(&ch->tail));
}

static int queue_rec(struct ivshm_ring *r, const void *buf, u32 len)
{
	struct ivshm_span s;
	int ret = ivshm_tx_reserve(r, len, IVSHM_REC_DATA, 0, &s);

	if (ret)
		return ret;
	ivshm_span_write(&s, buf);
	ivshm_tx_queue(r);
	return 0;
}

/* Queued records stay invisible until a flush, a full batch or a full ring. */
TEST_F(core, queued_records_publish_in_batches)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	u64 batch = self->size / 4, seen = 0;
	char buf[8];
	int i, ret;

	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, queue_rec(&self->tx, "abcdefgh", 8));
	ASSERT_EQ(0, ivshm_get64(&ch->head));
	ASSERT_EQ(-EAGAIN, recv_rec(&self->rx, buf, sizeof(buf)));
	ivshm_tx_flush(&self->tx);
	ASSERT_EQ(48, ivshm_get64(&ch->head));
	ASSERT_EQ(3, ivshm_get64(&ch->head_touch));
	for (i = 0; i < 3; i++)
		ASSERT_EQ(8, recv_rec(&self->rx, buf, sizeof(buf)));

	/* A batch publishes itself once it holds a quarter of the run. */
	for (i = 0; i < (int)(batch / 16) - 1; i++)
		ASSERT_EQ(0, queue_rec(&self->tx, "abcdefgh", 8));
	ASSERT_EQ(48, ivshm_get64(&ch->head));
	ASSERT_EQ(0, queue_rec(&self->tx, "abcdefgh", 8));
	ASSERT_EQ(48 + batch, ivshm_get64(&ch->head));

	/* A producer that finds the ring full has published everything. */
	while ((ret = queue_rec(&self->tx, "abcdefgh", 8)) == 0)
		;
	ASSERT_EQ(-EAGAIN, ret);
	ASSERT_EQ(48 + self->size, ivshm_get64(&ch->head));
	while (recv_rec(&self->rx, buf, sizeof(buf)) == 8)
		seen++;
	ASSERT_EQ(self->size / 16, seen);
}

static void move_and_check(struct __test_metadata *_metadata,
			   FIXTURE_DATA(core) *self, u32 new_blocks)
{
	u8 out[700], in[700], *big;
	struct ivshm_rec rec;
	u64 noff, doff;
	u32 i, sent = 0, got = 0, max, dsize;
	int ret;

	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, new_blocks, &noff));
	/* Records in flight in the old run, then the move, then more. */
	for (i = 0; i < 10; i++, sent++) {
		fill(out, sizeof(out), sent);
		ASSERT_EQ(0, send_rec(&self->tx, out, sizeof(out)));
	}
	ASSERT_EQ(0, ivshm_tx_move(&self->tx, noff, new_blocks * IVSHM_BLOCK_SIZE));
	/* One move at a time. */
	ASSERT_EQ(-EBUSY, ivshm_tx_move(&self->tx, noff, IVSHM_BLOCK_SIZE));
	/* The descriptor names both runs; a rebuild keeps both. */
	ASSERT_EQ(noff, ivshm_get64(&ivshm_chan(&self->l, self->chan)->buff_offset));
	ASSERT_EQ(self->off, ivshm_get64(&ivshm_chan(&self->l, self->chan)->old_offset));
	ASSERT_EQ(0, ivshm_blocks_rebuild(&self->l));
	ASSERT_EQ(self->l.nr_blocks - 4 - new_blocks,
		  ivshm_get32(&ivshm_ctrl(&self->l)->free_blocks));
	ASSERT_EQ(0, ivshm_tx_move_done(&self->tx, &doff, &dsize));
	for (;;) {
		fill(out, sizeof(out), sent);
		if (send_rec(&self->tx, out, sizeof(out)))
			break;
		sent++;
	}
	ASSERT_LE(10, sent);
	for (;;) {
		ret = rx_call(&self->rx, &rec);
		if (ret == IVSHM_RX_MOVED) {
			ASSERT_EQ(10, got);
			ASSERT_EQ(self->off, self->rx.old_off);
			ASSERT_EQ(self->size, self->rx.old_size);
			continue;
		}
		if (ret == -EAGAIN)
			break;
		ASSERT_EQ(0, ret);
		ivshm_span_read(&rec.span, in);
		ivshm_rx_release(&self->rx);
		fill(out, sizeof(out), got);
		ASSERT_EQ(0, memcmp(out, in, sizeof(in))) TH_LOG("record %u", got);
		got++;
	}
	ASSERT_EQ(sent, got);
	/* The reader has left the old run: the sender frees it. */
	ASSERT_EQ(1, ivshm_tx_move_done(&self->tx, &doff, &dsize));
	ASSERT_EQ(self->off, doff);
	ASSERT_EQ(self->size, dsize);
	ASSERT_EQ(0, ivshm_get32(&ivshm_chan(&self->l, self->chan)->old_size));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, doff, dsize / IVSHM_BLOCK_SIZE));
	ASSERT_EQ(self->l.nr_blocks - new_blocks,
		  ivshm_get32(&ivshm_ctrl(&self->l)->free_blocks));
	ASSERT_EQ(0, ivshm_tx_move_done(&self->tx, &doff, &dsize));
	/* Once the reader has left the old run, the new one is all usable. */
	max = new_blocks * IVSHM_BLOCK_SIZE - IVSHM_REC_HDR;
	big = calloc(1, max);
	ASSERT_NE(NULL, big);
	fill(big, max, 99);
	ASSERT_EQ(0, send_rec(&self->tx, big, max));
	ASSERT_EQ(max, ivshm_ring_max_record(&self->tx));
	ASSERT_EQ((int)max, recv_rec(&self->rx, big, max));
	free(big);
	for (i = 0; i < 1000; i++) {
		fill(out, sizeof(out), i);
		ASSERT_EQ(0, send_rec(&self->tx, out, sizeof(out)));
		ASSERT_EQ((int)sizeof(in), recv_rec(&self->rx, in, sizeof(in)));
		ASSERT_EQ(0, memcmp(out, in, sizeof(in)));
	}
}

/* A record of the extend test: its sequence number, then a pattern. */
static u32 ext_send(struct ivshm_ring *r, u8 *out, u32 seq, u32 len)
{
	memcpy(out, &seq, sizeof(seq));
	fill(out + sizeof(seq), len - sizeof(seq), seq);
	return send_rec(r, out, len) ? 0 : 1;
}

/* Growing in place wherever the reader and the writer are, wrapped or not:
 * every record arrives once, in order and intact, and the bookkeeping ends
 * exact.
 */
TEST_F(core, extend_in_place_keeps_every_record)
{
	u8 out[2100], in[2100], exp[2100];
	u32 sent = 0, got = 0, blocks = 4, moves = 0, busy = 0, i, seq;
	unsigned int seed = 7;
	int ret;

	for (i = 0; i < 200000 && blocks < 64; i++) {
		u32 act = (u32)rand_r(&seed) % 8;
		u32 len = 8 + (u32)rand_r(&seed) % 2000, more;

		if (act < 4) {
			sent += ext_send(&self->tx, out, sent, len);
		} else if (act < 7) {
			ret = recv_rec(&self->rx, in, sizeof(in));
			if (ret == -EAGAIN)
				continue;
			ASSERT_LE(8, ret);
			memcpy(&seq, in, sizeof(seq));
			ASSERT_EQ(got, seq);
			fill(exp, (u32)ret - 4, seq);
			ASSERT_EQ(0, memcmp(exp, in + 4, (u32)ret - 4))
				TH_LOG("record %u", seq);
			got++;
		} else {
			more = 1 + (u32)rand_r(&seed) % 3;
			ASSERT_EQ(0, ivshm_blocks_extend(&self->l, self->off,
							 blocks, more));
			ret = ivshm_tx_extend(&self->tx,
					      (blocks + more) * IVSHM_BLOCK_SIZE);
			if (!ret) {
				blocks += more;
				moves++;
				continue;
			}
			ASSERT_TRUE(ret == -EAGAIN || ret == -EBUSY);
			busy++;
			ASSERT_EQ(0, ivshm_blocks_free(&self->l, self->off +
						       blocks * IVSHM_BLOCK_SIZE,
						       more));
		}
	}
	while ((ret = recv_rec(&self->rx, in, sizeof(in))) > 0) {
		memcpy(&seq, in, sizeof(seq));
		ASSERT_EQ(got, seq);
		got++;
	}
	ASSERT_EQ(-EAGAIN, ret);
	ASSERT_EQ(sent, got);
	ASSERT_LE(20, moves);
	ASSERT_LE(1, busy);
	TH_LOG("%u records, %u moves in place, %u refused, %u blocks", sent,
	       moves, busy, blocks);
	/* Nothing to free: the run only grew, and a rebuild agrees. */
	ASSERT_EQ(blocks * IVSHM_BLOCK_SIZE,
		  ivshm_get32(&ivshm_chan(&self->l, self->chan)->buff_size));
	ASSERT_EQ(0, ivshm_get32(&ivshm_chan(&self->l, self->chan)->old_size));
	ASSERT_EQ(self->l.nr_blocks - blocks,
		  ivshm_get32(&ivshm_ctrl(&self->l)->free_blocks));
	ASSERT_EQ(self->l.nr_blocks - blocks,
		  ivshm_blocks_count_free(&self->l));
	ASSERT_EQ(0, ivshm_blocks_rebuild(&self->l));
	ASSERT_EQ(self->l.nr_blocks - blocks,
		  ivshm_blocks_count_free(&self->l));
}

/* A reader must refuse an in-place MOVED that does not extend its run. */
TEST_F(core, extend_that_does_not_extend_is_refused)
{
	struct ivshm_rec rec;
	u64 noff;

	/* Forge the record: a "longer" run somewhere else. */
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 8, &noff));
	ASSERT_EQ(0, ivshm_tx_move(&self->tx, noff, 8 * IVSHM_BLOCK_SIZE));
	ivshm_put32((__le32 *)(self->rx.ring + IVSHM_REC_HDR + 12),
		    IVSHM_MOVED_F_EXTEND);
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
	/* Unknown flags too. */
	ivshm_put32((__le32 *)(self->rx.ring + IVSHM_REC_HDR + 12), 0x10);
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
}

/*
 * A MOVED record the reader was told to wait for, whose header the peer
 * then rewrites into a data record: once the reader finds something else
 * next, it no longer waits for a move, and a head that moves is news again.
 */
TEST_F(core, move_pending_ends_when_the_record_is_not_moved)
{
	struct ivshm_rec rec;
	u64 noff, pos;

	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 8, &noff));
	ASSERT_EQ(0, ivshm_tx_move(&self->tx, noff, 8 * IVSHM_BLOCK_SIZE));
	/* A call that followed its move already. */
	ASSERT_EQ(IVSHM_RX_MOVE_PENDING, ivshm_rx_peek(&self->rx, &rec));
	ASSERT_TRUE(self->rx.move_pending);
	ivshm_put64((__le64 *)self->rx.ring,
		    IVSHM_REC_WORD(sizeof(struct ivshm_rec_moved),
				   IVSHM_REC_DATA, 0));
	ASSERT_EQ(0, ivshm_rx_peek(&self->rx, &rec));
	EXPECT_FALSE(self->rx.move_pending);
	ivshm_rx_release(&self->rx);
	/* Found empty now, the reader is woken by the next record. */
	ASSERT_EQ(-EAGAIN, ivshm_rx_peek(&self->rx, &rec));
	pos = self->rx.pos;
	EXPECT_FALSE(ivshm_rx_changed(&self->rx, pos));
	ivshm_put64(&ivshm_chan(&self->l, self->chan)->head, pos + 64);
	EXPECT_TRUE(ivshm_rx_changed(&self->rx, pos));
}

/* Growth elsewhere starts at the largest free extent, where it can go on
 * growing in place; extending stops at the first used block.
 */
TEST_F(core, growth_takes_the_largest_extent)
{
	u64 a, b, c, off;
	u32 free_before;

	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 10, &a));	/* 4..13 */
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 10, &b));	/* 14..23 */
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 10, &c));	/* 24..33 */
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, b, 10));
	free_before = ivshm_get32(&ivshm_ctrl(&self->l)->free_blocks);
	ASSERT_EQ(-ENOBUFS, ivshm_blocks_extend(&self->l, self->off, 4, 1));
	ASSERT_EQ(0, ivshm_blocks_extend(&self->l, a, 10, 10));
	ASSERT_EQ(-ENOBUFS, ivshm_blocks_extend(&self->l, a, 20, 1));
	ASSERT_EQ(free_before - 10,
		  ivshm_get32(&ivshm_ctrl(&self->l)->free_blocks));
	ASSERT_EQ(6u, ivshm_blocks_alloc_grow(&self->l, 6, self->off, 4,
					      &off));
	ASSERT_EQ(34 * IVSHM_BLOCK_SIZE, off);
	ASSERT_EQ(0u, ivshm_blocks_alloc_grow(&self->l, 6, self->off,
					      self->l.nr_blocks, &off));
	ASSERT_EQ(free_before - 16, ivshm_blocks_count_free(&self->l));
}

/* The space right before a growing run counts with the run itself and
 * what follows it, since the old run joins it once the reader has left:
 * the channel moves down into it rather than into a longer extent
 * elsewhere that it would fill with no room left to extend.
 */
TEST_F(core, growth_counts_the_run_it_leaves)
{
	u32 n = self->l.nr_blocks;
	u64 a, b, c, d, off;

	ASSERT_LT(66u, n);	/* @d is longer than any free extent */
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 10, &a));	/* 4..13 */
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 12, &b));	/* 14..25 */
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 8, &c));	/* 26..33 */
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, n - 50, &d));	/* 34.. */
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, b, 12));
	/* Free: 14..25 and the last 16 blocks. */

	/* Nothing free before @a: the longest extent. */
	ASSERT_EQ(12u, ivshm_blocks_alloc_grow(&self->l, 12, a, 10, &off));
	ASSERT_EQ((u64)(n - 16) * IVSHM_BLOCK_SIZE, off);
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, off, 12));

	/* Before @c: 12 free + 8 of its own, more than the 16 at the end. */
	ASSERT_EQ(12u, ivshm_blocks_alloc_grow(&self->l, 16, c, 8, &off));
	ASSERT_EQ(b, off);

	/* An extent no longer than the run is no growth. */
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, off, 12));
	ASSERT_EQ(0u, ivshm_blocks_alloc_grow(&self->l, 16, d, n - 50, &off));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, d, n - 50));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, c, 8));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, a, 10));
	ASSERT_EQ(n - 4, ivshm_blocks_count_free(&self->l));
}

/* A run fits below another only in free blocks wholly before it. */
TEST_F(core, fit_below_is_strictly_lower)
{
	u64 a, b, c;

	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 4, &a));
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 3, &b));
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 4, &c));
	ASSERT_FALSE(ivshm_blocks_fit_below(&self->l, 1, a));
	ASSERT_FALSE(ivshm_blocks_fit_below(&self->l, 1, c));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, b, 3));
	/* Three free blocks right before @c: a run of 3 fits, 4 do not. */
	ASSERT_TRUE(ivshm_blocks_fit_below(&self->l, 3, c));
	ASSERT_FALSE(ivshm_blocks_fit_below(&self->l, 4, c));
	ASSERT_FALSE(ivshm_blocks_fit_below(&self->l, 3, b));
	ASSERT_FALSE(ivshm_blocks_fit_below(&self->l, 0, c));
	/* Past the data area counts as its end. */
	ASSERT_TRUE(ivshm_blocks_fit_below(&self->l, 3, ~0ull));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, a, 4));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, c, 4));
}

TEST_F(core, move_to_larger_run)
{
	move_and_check(_metadata, self, 8);
}

TEST_F(core, move_to_smaller_run)
{
	move_and_check(_metadata, self, 1);
}

TEST_F(core, hostile_tail)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	u8 rec[1000];

	/* Fill until the cached tail must be refreshed. */
	while (send_rec(&self->tx, rec, sizeof(rec)) == 0)
		;
	ivshm_put64(&ch->tail, ivshm_get64(&ch->head) + 8);	/* ahead */
	ASSERT_EQ(-EPROTO, send_rec(&self->tx, rec, sizeof(rec)));
	ivshm_put64(&ch->tail, ivshm_get64(&ch->head) - self->size - 8);
	ASSERT_EQ(-EPROTO, send_rec(&self->tx, rec, sizeof(rec)));
	ivshm_put64(&ch->tail, UINT64_MAX);
	ASSERT_EQ(-EPROTO, send_rec(&self->tx, rec, sizeof(rec)));
}

TEST_F(core, hostile_head_and_headers)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	__le64 *hdr = (__le64 *)(self->l.base + self->l.data_off + self->off);
	struct ivshm_ring saved = self->rx;
	struct ivshm_rec rec;

	/* A head more than a ring ahead. */
	ivshm_put64(&ch->head, self->size + 8);
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
	/* A head that is not a whole header. */
	ivshm_put64(&ch->head, 4);
	self->rx = saved;
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));

	ivshm_put64(&ch->head, 64);
	/* Length beyond what head covers. */
	ivshm_put64(hdr, IVSHM_REC_WORD(57, IVSHM_REC_DATA, 0));
	self->rx = saved;
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
	/* Length beyond the ring. */
	ivshm_put64(hdr, IVSHM_REC_WORD(UINT32_MAX, IVSHM_REC_DATA, 0));
	self->rx = saved;
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
	/* Unknown type, unknown flags. */
	ivshm_put64(hdr, IVSHM_REC_WORD(8, 0, 0));
	self->rx = saved;
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
	ivshm_put64(hdr, IVSHM_REC_WORD(8, 9, 0));
	self->rx = saved;
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
	ivshm_put64(hdr, IVSHM_REC_WORD(8, IVSHM_REC_DATA, 0x8000));
	self->rx = saved;
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
	/* A MOVED record pointing outside the data area, or unaligned. */
	ivshm_put64(hdr, IVSHM_REC_WORD(16, IVSHM_REC_MOVED, 0));
	ivshm_put64(hdr + 1, (u64)self->l.nr_blocks * IVSHM_BLOCK_SIZE);
	ivshm_put64(hdr + 2, IVSHM_BLOCK_SIZE);
	self->rx = saved;
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
	ivshm_put64(hdr + 1, 100);
	self->rx = saved;
	ASSERT_EQ(-EPROTO, rx_call(&self->rx, &rec));
	/* A well-formed record is accepted after all that. */
	ivshm_put64(hdr, IVSHM_REC_WORD(56, IVSHM_REC_DATA, 0));
	self->rx = saved;
	ASSERT_EQ(0, rx_call(&self->rx, &rec));
	ASSERT_EQ(56, rec.len);
}

TEST_F(core, allocator_accounting_and_exhaustion)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&self->l);
	u32 total = self->l.nr_blocks, free0;
	u64 a, b, d, e;

	free0 = ivshm_get32(&c->free_blocks);
	ASSERT_EQ(total - 4, free0);
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 3, &a));
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 5, &b));
	ASSERT_EQ(free0 - 8, ivshm_get32(&c->free_blocks));
	ASSERT_NE(a, b);
	/* Fragmentation: free the first, a larger request goes elsewhere,
	 * a request that fits the hole can use it.
	 */
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, a, 3));
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 4, &d));
	ASSERT_TRUE(d + 4 * IVSHM_BLOCK_SIZE <= a || d >= a + 3 * IVSHM_BLOCK_SIZE);
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, d, 4));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, b, 5));
	ASSERT_EQ(free0, ivshm_get32(&c->free_blocks));

	/* Exhaustion, exactly at the free count. */
	ASSERT_EQ(-ENOBUFS, ivshm_blocks_alloc(&self->l, free0 + 1, &e));
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, free0 - 1, &e));
	ASSERT_EQ(-ENOBUFS, ivshm_blocks_alloc(&self->l, 2, &a));
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 1, &a));
	ASSERT_EQ(0, ivshm_get32(&c->free_blocks));
	ASSERT_EQ(-ENOBUFS, ivshm_blocks_alloc(&self->l, 1, &b));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, a, 1));
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, e, free0 - 1));
	ASSERT_EQ(free0, ivshm_get32(&c->free_blocks));

	/* Bad frees change nothing or report the double free. */
	ASSERT_EQ(-EINVAL, ivshm_blocks_free(&self->l, 100, 1));
	ASSERT_EQ(-EINVAL, ivshm_blocks_free(&self->l, 0, total + 1));
	ASSERT_EQ(-EINVAL, ivshm_blocks_alloc(&self->l, 0, &a));
	ASSERT_EQ(-EPROTO, ivshm_blocks_free(&self->l, a, 1));
	ASSERT_EQ(free0, ivshm_get32(&c->free_blocks));
}

TEST_F(core, channel_slots)
{
	u32 idx, first, n = 1;

	ASSERT_EQ(1, ivshm_get32(&ivshm_ctrl(&self->l)->num_active_channel));
	while (ivshm_chan_alloc(&self->l, &idx) == 0)
		n++;
	ASSERT_EQ(self->l.max_channels, n);
	ASSERT_EQ(n, ivshm_get32(&ivshm_ctrl(&self->l)->num_active_channel));
	first = self->chan == 0 ? 1 : 0;
	ASSERT_EQ(1, ivshm_get32(&ivshm_chan(&self->l, first)->generation));
	/* What the last owner left does not survive into the next channel. */
	ivshm_put64(&ivshm_chan(&self->l, first)->old_offset, 4096);
	ivshm_put32(&ivshm_chan(&self->l, first)->old_size, 4096);
	ivshm_put64(&ivshm_chan(&self->l, first)->tail, 12345);
	ivshm_chan_free(&self->l, first);
	ASSERT_EQ(0, ivshm_chan_alloc(&self->l, &idx));
	ASSERT_EQ(first, idx);
	ASSERT_EQ(2, ivshm_get32(&ivshm_chan(&self->l, first)->generation));
	ASSERT_EQ(0, ivshm_get32(&ivshm_chan(&self->l, first)->old_size));
	ASSERT_EQ(0, ivshm_get64(&ivshm_chan(&self->l, first)->old_offset));
	ASSERT_EQ(0, ivshm_get64(&ivshm_chan(&self->l, first)->tail));
}

TEST_F(core, control_lock_and_dead_holder)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&self->l);
	struct ivshm_peer *p1 = ivshm_peer(&self->l, 1);
	u64 a;

	ivshm_put32(&p1->state, IVSHM_PEER_ALIVE);
	ivshm_put32(&p1->incarnation, 5);

	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 1, 5, NULL));
	ASSERT_EQ(-EBUSY, ivshm_ctrl_trylock(&self->l, 0, 1, &a));
	ASSERT_EQ(IVSHM_LOCK_OWNER(1, 5), a);
	ASSERT_FALSE(ivshm_ctrl_unlock(&self->l, 0, 1));	/* not ours */
	ASSERT_EQ(-EBUSY, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ASSERT_TRUE(ivshm_ctrl_unlock(&self->l, 1, 5));
	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ASSERT_TRUE(ivshm_ctrl_unlock(&self->l, 0, 1));

	/* VM 1 takes the lock, corrupts the bitmap half-way and dies. */
	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 1, 5, NULL));
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 7, &a));
	ivshm_put32(&p1->state, IVSHM_PEER_DEAD);
	ASSERT_EQ(1, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ASSERT_EQ(1, ivshm_get32(&c->lock_breaks));
	/* The rebuild keeps our channel's blocks and frees the leaked run. */
	ASSERT_EQ(0, ivshm_blocks_rebuild(&self->l));
	ASSERT_EQ(self->l.nr_blocks - 4, ivshm_get32(&c->free_blocks));
	ASSERT_EQ(-EPROTO, ivshm_blocks_free(&self->l, a, 7));
	ivshm_ctrl_unlock(&self->l, 0, 1);

	/* A restarted VM 1 (new incarnation) also breaks its old lock. */
	ivshm_put32(&p1->state, IVSHM_PEER_ALIVE);
	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 1, 5, NULL));
	ivshm_put32(&p1->incarnation, 6);
	ASSERT_EQ(1, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ivshm_ctrl_unlock(&self->l, 0, 1);
	/* A lock word naming an impossible VM is dead by definition. */
	ivshm_put64(&c->lock, IVSHM_LOCK_OWNER(1000, 1));
	ASSERT_EQ(1, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ivshm_ctrl_unlock(&self->l, 0, 1);
	ASSERT_EQ(0, ivshm_get64(&c->lock));
}

TEST_F(core, rebuild_drops_invalid_and_overlapping_runs)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&self->l);
	struct ivshm_chan *ch;
	u32 i1, i2, i3;

	ASSERT_EQ(0, ivshm_chan_alloc(&self->l, &i1));
	ASSERT_EQ(0, ivshm_chan_alloc(&self->l, &i2));
	ASSERT_EQ(0, ivshm_chan_alloc(&self->l, &i3));
	ch = ivshm_chan(&self->l, i1);		/* overlaps the fixture's */
	ivshm_put64(&ch->buff_offset, self->off);
	ivshm_put32(&ch->buff_size, IVSHM_BLOCK_SIZE);
	ch = ivshm_chan(&self->l, i2);		/* outside the data area */
	ivshm_put64(&ch->buff_offset, (u64)self->l.nr_blocks * IVSHM_BLOCK_SIZE);
	ivshm_put32(&ch->buff_size, IVSHM_BLOCK_SIZE);
	ch = ivshm_chan(&self->l, i3);		/* impossible state */
	ivshm_put32(&ch->state, 77);
	ch = ivshm_chan(&self->l, self->chan);
	ivshm_put64(&ch->buff_offset, self->off);
	ivshm_put32(&ch->buff_size, self->size);
	ASSERT_EQ(3, ivshm_blocks_rebuild(&self->l));
	ASSERT_EQ(self->l.nr_blocks - 4, ivshm_get32(&c->free_blocks));
	ASSERT_EQ(4, ivshm_get32(&c->num_active_channel));
}

TEST_F(core, sweep_frees_what_no_live_peer_owns)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&self->l);
	struct ivshm_peer *p1 = ivshm_peer(&self->l, 1);
	u32 idx[5], i;
	u64 off;

	/* The fixture's channel is VM 0's, incarnation 1: alive. */
	ivshm_put16(&ivshm_chan(&self->l, self->chan)->sender_vm, 0);
	ivshm_put32(&ivshm_chan(&self->l, self->chan)->sender_inc, 1);
	ivshm_put32(&p1->state, IVSHM_PEER_ALIVE);
	ivshm_put32(&p1->incarnation, 3);
	for (i = 0; i < 5; i++) {
		struct ivshm_chan *ch;

		ASSERT_EQ(0, ivshm_chan_alloc(&self->l, &idx[i]));
		ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 1, &off));
		ch = ivshm_chan(&self->l, idx[i]);
		ivshm_put64(&ch->buff_offset, off);
		ivshm_put32(&ch->buff_size, IVSHM_BLOCK_SIZE);
		ivshm_put16(&ch->sender_vm, 1);
		ivshm_put32(&ch->sender_inc, 3);
		ivshm_put32(&ch->state, IVSHM_CHAN_OPEN);
	}
	/* Kept: 0 (VM 1, incarnation 3). Freed: an earlier incarnation,
	 * a VM that is not alive, one that cannot exist, an unknown state.
	 */
	ivshm_put32(&ivshm_chan(&self->l, idx[1])->sender_inc, 2);
	ivshm_put16(&ivshm_chan(&self->l, idx[2])->sender_vm, 2);
	ivshm_put16(&ivshm_chan(&self->l, idx[3])->sender_vm, 0xffff);
	ivshm_put32(&ivshm_chan(&self->l, idx[4])->state, 0x5a5a5a5a);
	ASSERT_EQ(4, ivshm_chan_sweep(&self->l));
	ASSERT_EQ(IVSHM_CHAN_OPEN, ivshm_get32(&ivshm_chan(&self->l, idx[0])->state));
	for (i = 1; i < 5; i++)
		ASSERT_EQ(IVSHM_CHAN_FREE,
			  ivshm_get32(&ivshm_chan(&self->l, idx[i])->state));
	ASSERT_EQ(IVSHM_CHAN_ALLOC,
		  ivshm_get32(&ivshm_chan(&self->l, self->chan)->state));
	/* The rebuild then gives their blocks back. */
	ASSERT_EQ(0, ivshm_blocks_rebuild(&self->l));
	ASSERT_EQ(self->l.nr_blocks - 5, ivshm_get32(&c->free_blocks));
	ASSERT_EQ(2, ivshm_get32(&c->num_active_channel));
	/* VM 1 dies: its last channel goes at the next sweep. */
	ivshm_put32(&p1->state, IVSHM_PEER_DEAD);
	ASSERT_EQ(1, ivshm_chan_sweep(&self->l));
	ASSERT_EQ(0, ivshm_chan_sweep(&self->l));
}

TEST_F(core, pending_bits)
{
	u32 w = self->l.pending_words;

	ASSERT_EQ(1, w);	/* 64 channels in a 1 MiB region */
	ASSERT_FALSE(ivshm_notify_any(&self->l, 2, IVSHM_PEND_CTRL));
	ivshm_notify_mark(&self->l, 2, IVSHM_PEND_CTRL, 0);
	ivshm_notify_mark(&self->l, 2, IVSHM_PEND_CTRL, 63);
	ivshm_notify_mark(&self->l, 2, IVSHM_PEND_CTRL, 63);
	ivshm_notify_mark(&self->l, 2, IVSHM_PEND_DATA, 5);
	ivshm_notify_mark(&self->l, 2, IVSHM_PEND_CTRL,
			  self->l.max_channels);		/* ignored */
	ivshm_notify_mark(&self->l, 64, IVSHM_PEND_CTRL, 1);	/* ignored */
	ivshm_notify_mark(&self->l, 2, IVSHM_PEND_SETS, 1);	/* ignored */
	ASSERT_TRUE(ivshm_notify_any(&self->l, 2, IVSHM_PEND_CTRL));
	ASSERT_TRUE(ivshm_notify_any(&self->l, 2, IVSHM_PEND_DATA));
	ASSERT_FALSE(ivshm_notify_any(&self->l, 1, IVSHM_PEND_CTRL));
	ASSERT_EQ(1ull | 1ull << 63,
		  ivshm_notify_take(&self->l, 2, IVSHM_PEND_CTRL, 0));
	ASSERT_EQ(0, ivshm_notify_take(&self->l, 2, IVSHM_PEND_CTRL, 0));
	ASSERT_FALSE(ivshm_notify_any(&self->l, 2, IVSHM_PEND_CTRL));
	/* The sets are separate: the data bit is still there. */
	ASSERT_EQ(1ull << 5,
		  ivshm_notify_take(&self->l, 2, IVSHM_PEND_DATA, 0));
	ASSERT_EQ(0, ivshm_notify_take(&self->l, 2, IVSHM_PEND_CTRL, w));
	ASSERT_EQ(0, ivshm_notify_take(&self->l, 3, IVSHM_PEND_CTRL, 0));
	ASSERT_EQ(0, ivshm_notify_take(&self->l, 2, IVSHM_PEND_SETS, 0));
	ASSERT_FALSE(ivshm_notify_any(&self->l, 2, IVSHM_PEND_DATA));
}

TEST(event_index_passes_once)
{
	/* Asked to be told at 100: told by the move that covers it. */
	ASSERT_TRUE(ivshm_passed(100, 101, 100));
	ASSERT_TRUE(ivshm_passed(100, 200, 50));
	ASSERT_FALSE(ivshm_passed(100, 100, 50));	/* not yet */
	ASSERT_FALSE(ivshm_passed(100, 300, 101));	/* already told */
	ASSERT_FALSE(ivshm_passed(100, 100, 100));	/* no move */
	/* Free-running counters wrap. */
	ASSERT_TRUE(ivshm_passed(~0ull, 8, ~0ull - 8));
	ASSERT_FALSE(ivshm_passed(~0ull - 100, 8, ~0ull - 8));
}

/*
 * One producer thread and one consumer thread on different cores move
 * records of random sizes; every record carries its sequence number and a
 * checksum of its payload, and the consumer checks both.
 */
#define SPSC_RECORDS	10000000ull

struct spsc {
	struct ivshm_ring *r;
	u64 bad;
};

static u32 sum32(const u8 *p, u32 len)
{
	u32 s = 2166136261u, i;

	for (i = 0; i < len; i++)
		s = (s ^ p[i]) * 16777619u;
	return s;
}

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu % (int)sysconf(_SC_NPROCESSORS_ONLN), &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static void *spsc_producer(void *arg)
{
	struct spsc *s = arg;
	struct ivshm_span sp;
	u8 buf[256];
	u64 seq;

	pin(0);
	for (seq = 0; seq < SPSC_RECORDS; seq++) {
		u32 len = 12 + (u32)(seq * 2654435761u % 180), sum;

		memcpy(buf, &seq, 8);
		fill(buf + 12, len - 12, (u32)seq);
		sum = sum32(buf + 12, len - 12);
		memcpy(buf + 8, &sum, 4);
		while (ivshm_tx_reserve(s->r, len, IVSHM_REC_DATA, 0, &sp) ==
		       -EAGAIN)
			sched_yield();
		ivshm_span_write(&sp, buf);
		ivshm_tx_commit(s->r);
	}
	return NULL;
}

static void *spsc_consumer(void *arg)
{
	struct spsc *s = arg;
	struct ivshm_rec rec;
	u8 buf[256];
	u64 seq = 0, got;
	u32 sum;
	int ret;

	pin(1);
	while (seq < SPSC_RECORDS) {
		ret = rx_call(s->r, &rec);
		if (ret == -EAGAIN) {
			sched_yield();
			continue;
		}
		if (ret || rec.len < 12 || rec.len > sizeof(buf)) {
			s->bad++;
			return NULL;
		}
		ivshm_span_read(&rec.span, buf);
		ivshm_rx_release(s->r);
		memcpy(&got, buf, 8);
		memcpy(&sum, buf + 8, 4);
		if (got != seq || sum != sum32(buf + 12, rec.len - 12))
			s->bad++;
		seq++;
	}
	return NULL;
}

/* A VM without an id claims one; when it dies a survivor reaps it. */
TEST_F(core, peer_claim_declare_and_reap)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&self->l);
	u32 vm = 99, inc = 0, vm2 = 99, inc2 = 0, idx, free0;
	u64 off;

	ASSERT_EQ(0, ivshm_peer_claim(&self->l, 0, &vm, &inc));
	EXPECT_EQ(1, vm);		/* 0 is the fixture's */
	EXPECT_NE(0, inc);
	ASSERT_TRUE(ivshm_peer_alive(&self->l, vm, NULL));
	ASSERT_EQ(0, ivshm_peer_claim(&self->l, 0, &vm2, &inc2));
	EXPECT_EQ(2, vm2);		/* never the same slot twice */

	/* vm sends on a channel of its own, then stops. */
	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, vm, inc, NULL));
	free0 = ivshm_get32(&c->free_blocks);
	ASSERT_EQ(0, ivshm_chan_alloc(&self->l, &idx));
	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 3, &off));
	ivshm_put16(&ivshm_chan(&self->l, idx)->sender_vm, (u16)vm);
	ivshm_put64(&ivshm_chan(&self->l, idx)->buff_offset, off);
	ivshm_put32(&ivshm_chan(&self->l, idx)->buff_size,
		    3 * IVSHM_BLOCK_SIZE);
	ivshm_ctrl_unlock(&self->l, vm, inc);

	EXPECT_FALSE(ivshm_peer_declare_dead(&self->l, vm, inc + 1));
	ASSERT_TRUE(ivshm_peer_declare_dead(&self->l, vm, inc));
	EXPECT_FALSE(ivshm_peer_declare_dead(&self->l, vm, inc));
	EXPECT_FALSE(ivshm_peer_alive(&self->l, vm, NULL));

	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	EXPECT_EQ(1, ivshm_peer_reap(&self->l, vm));
	ivshm_ctrl_unlock(&self->l, 0, 1);
	EXPECT_EQ(IVSHM_CHAN_FREE, ivshm_get32(&ivshm_chan(&self->l, idx)->state));
	EXPECT_EQ(free0, ivshm_get32(&c->free_blocks));
	EXPECT_EQ(IVSHM_PEER_FREE, ivshm_get32(&ivshm_peer(&self->l, vm)->state));
	/* The freed slot is claimable again, as a new incarnation. */
	ASSERT_EQ(0, ivshm_peer_claim(&self->l, 0, &vm2, &inc2));
	EXPECT_EQ(vm, vm2);
	EXPECT_NE(inc, inc2);
}

TEST_F_TIMEOUT(core, spsc_ten_million_records, 600)
{
	struct spsc prod = { &self->tx, 0 }, cons = { &self->rx, 0 };
	pthread_t tp, tc;

	ASSERT_EQ(0, pthread_create(&tc, NULL, spsc_consumer, &cons));
	ASSERT_EQ(0, pthread_create(&tp, NULL, spsc_producer, &prod));
	pthread_join(tp, NULL);
	pthread_join(tc, NULL);
	ASSERT_EQ(0, cons.bad);
	ASSERT_EQ(-EAGAIN, rx_call(&self->rx, &(struct ivshm_rec){ 0 }));
}

/* ---- sequences a hostile peer writes ----
 *
 * ivshm_access_fn (ivshm_kcompat.h) runs after each access the core makes
 * to the region: these tests play the other machine there, between two of
 * the core's accesses, and count what a call costs.
 */

void (*ivshm_access_fn)(const volatile void *p);

static const volatile void *hook_at;	/* the word the peer watches */
static u64 hook_calls, hook_count;	/* accesses seen, to @hook_at */
static void (*hook_act)(void);		/* what the peer does after one */

static void hook(const volatile void *p)
{
	static bool acting;

	/* The peer's own writes are not ours to count. */
	if (acting)
		return;
	hook_calls++;
	if (p != hook_at)
		return;
	hook_count++;
	if (hook_act) {
		acting = true;
		hook_act();
		acting = false;
	}
}

static void hook_set(const volatile void *at, void (*act)(void))
{
	hook_at = at;
	hook_act = act;
	hook_calls = 0;
	hook_count = 0;
	ivshm_access_fn = hook;
}

static void hook_clear(void)
{
	ivshm_access_fn = NULL;
	hook_at = NULL;
	hook_act = NULL;
}

/* A MOVED record at data-area offset @at, naming [@noff, @noff + @size). */
static void put_moved(const struct ivshm_layout *l, u64 at, u64 noff,
		      u32 size, u32 flags)
{
	__le64 *hdr = (__le64 *)(l->base + l->data_off + at);

	ivshm_put64(hdr, IVSHM_REC_WORD(sizeof(struct ivshm_rec_moved),
					IVSHM_REC_MOVED, 0));
	ivshm_put64(hdr + 1, noff);
	ivshm_put64(hdr + 2, (u64)size | (u64)flags << 32);
}

#define MOVED_NEED	(IVSHM_REC_HDR + sizeof(struct ivshm_rec_moved))

/* A MOVED record naming run X whose first record names X again, the
 * head published far ahead once: honest producers never have two moves
 * under one head, so the second is refused rather than followed, where
 * the old receiver followed one every 24 bytes of the head's lead.
 */
TEST_F(core, moved_chain_under_one_head_is_refused)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	struct ivshm_rec rec;
	u64 x;
	int ret, n = 0;

	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 4, &x));
	put_moved(&self->l, self->off, x, 4 * IVSHM_BLOCK_SIZE, 0);
	put_moved(&self->l, x, x, 4 * IVSHM_BLOCK_SIZE, 0);
	ivshm_put64(&ch->head, 4 * IVSHM_BLOCK_SIZE);
	while ((ret = rx_call(&self->rx, &rec)) == IVSHM_RX_MOVED && n < 1000)
		n++;
	EXPECT_EQ(1, n);
	EXPECT_EQ(-EPROTO, ret);
}

/* The same chain, with the head nudged just past each MOVED record as
 * soon as the receiver has read it: every move comes under a new head,
 * so the second rule holds, and only the third bounds the work: one
 * call follows one move, however long the peer goes on.
 */
static struct ivshm_chan *nudge_chan;

static void nudge_head(void)
{
	/* After each load of the head, the producer publishes one more. */
	ivshm_put64(&nudge_chan->head, ivshm_get64(&nudge_chan->head) +
		    (hook_count < 100000 ? MOVED_NEED : 0));
}

TEST_F(core, moved_chain_with_nudged_head_costs_one_move_per_call)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	struct ivshm_rec rec;
	int ret = 0, call, n;
	u64 x;

	ASSERT_EQ(0, ivshm_blocks_alloc(&self->l, 4, &x));
	put_moved(&self->l, self->off, x, 4 * IVSHM_BLOCK_SIZE, 0);
	put_moved(&self->l, x, x, 4 * IVSHM_BLOCK_SIZE, 0);
	ivshm_put64(&ch->head, MOVED_NEED);
	nudge_chan = ch;
	for (call = 0; call < 10; call++) {
		/* A caller that loops while the ring moves, as the old
		 * callers did: the ring itself stops it after one.
		 */
		hook_set(&ch->head, NULL);
		ivshm_rx_allow_move(&self->rx);
		n = 0;
		while ((ret = ivshm_rx_peek(&self->rx, &rec)) == IVSHM_RX_MOVED &&
		       n < 1000) {
			n++;
			hook_act = nudge_head;
		}
		hook_clear();
		ASSERT_EQ(1, n) TH_LOG("call %d", call);
		/* The next move waits for the next call (or, when the peer's
		 * nudge came after our look at the head, nothing was seen).
		 */
		if (ret == -EAGAIN)
			continue;
		ASSERT_EQ(IVSHM_RX_MOVE_PENDING, ret);
		ASSERT_TRUE(self->rx.move_pending);
		/* Waiting for the next call, a moving head is no news. */
		nudge_head();
		ASSERT_FALSE(ivshm_rx_changed(&self->rx, self->rx.pos));
	}
}

/* A move to a run longer than any channel may have is refused: it would
 * let one MOVED record give the reader the whole data area to walk.
 */
TEST(moved_run_past_the_longest_is_refused)
{
	const u64 size = 64ull << 20;
	struct ivshm_layout l;
	struct ivshm_ring rx;
	struct ivshm_rec rec;
	const char *why;
	void *mem = region_alloc(size);
	u64 a, x;
	u32 idx;

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(IVSHM_OPEN_INITIALISED,
		  ivshm_region_open(&l, mem, size, 0, &why));
	ASSERT_EQ(0, ivshm_chan_alloc(&l, &idx));
	ASSERT_EQ(0, ivshm_blocks_alloc(&l, 4, &a));
	ASSERT_EQ(0, ivshm_blocks_alloc(&l, IVSHM_RUN_MAX / IVSHM_BLOCK_SIZE + 1,
					&x));
	ASSERT_EQ(0, ivshm_ring_init(&rx, &l, idx, a, 4 * IVSHM_BLOCK_SIZE));
	put_moved(&l, a, x, IVSHM_RUN_MAX + IVSHM_BLOCK_SIZE, 0);
	ivshm_put64(&ivshm_chan(&l, idx)->head, MOVED_NEED);
	ivshm_rx_allow_move(&rx);
	EXPECT_EQ(-EPROTO, ivshm_rx_peek(&rx, &rec));
	/* The longest allowed is followed. */
	put_moved(&l, a, x, IVSHM_RUN_MAX, 0);
	ASSERT_EQ(0, ivshm_ring_init(&rx, &l, idx, a, 4 * IVSHM_BLOCK_SIZE));
	ivshm_rx_allow_move(&rx);
	EXPECT_EQ(IVSHM_RX_MOVED, ivshm_rx_peek(&rx, &rec));
	free(mem);
}

/* Counters only go forward: a head or a tail that goes back is refused,
 * so a peer cannot make a waiter look again and again at the same bytes.
 */
TEST_F(core, counters_that_go_back_are_refused)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	u8 rec[100] = { 0 };
	struct ivshm_rec r;

	ASSERT_EQ(0, send_rec(&self->tx, rec, sizeof(rec)));
	ASSERT_EQ(0, send_rec(&self->tx, rec, sizeof(rec)));
	ASSERT_EQ(0, rx_call(&self->rx, &r));
	ivshm_rx_release(&self->rx);
	/* The head goes back to the record we consumed, still >= tail. */
	ivshm_put64(&ch->head, self->rx.pos);
	ASSERT_EQ(-EPROTO, ivshm_rx_avail(&self->rx));
	/* The tail went to 112 and comes back to 0. */
	ASSERT_EQ(1, ivshm_tx_room(&self->tx, 8));
	ivshm_put64(&ch->tail, 0);
	ASSERT_EQ(-EPROTO, ivshm_tx_room(&self->tx, 8));
}

/* The bookkeeping rebuild on a 256 MiB region whose 4096 channels each
 * name a run of the longest size, all free but their last block, taken
 * by the channel before: every check goes as far as it can. The work
 * stays within the bound alloc.c states, whatever the region's size.
 */
TEST(rebuild_bomb_costs_a_bounded_number_of_accesses)
{
	const u64 size = 256ull << 20;
	const u32 run = IVSHM_RUN_MAX / IVSHM_BLOCK_SIZE;
	struct ivshm_layout l;
	const char *why;
	void *mem = region_alloc(size);
	u64 bound;
	u32 i, bad;

	ASSERT_NE(NULL, mem);
	ASSERT_EQ(IVSHM_OPEN_INITIALISED,
		  ivshm_region_open(&l, mem, size, 0, &why));
	ASSERT_EQ(4096, l.max_channels);
	for (i = 0; i < l.max_channels; i++) {
		struct ivshm_chan *ch = ivshm_chan(&l, i);

		ivshm_put32(&ch->state, IVSHM_CHAN_OPEN);
		/* Channel 0 holds the last block of the first longest run;
		 * every other channel names that run, and so does the run
		 * its last move left.
		 */
		if (!i) {
			ivshm_put64(&ch->buff_offset, (u64)(run - 1) << 12);
			ivshm_put32(&ch->buff_size, IVSHM_BLOCK_SIZE);
			continue;
		}
		ivshm_put64(&ch->buff_offset, 0);
		ivshm_put32(&ch->buff_size, IVSHM_RUN_MAX);
		ivshm_put64(&ch->old_offset, 0);
		ivshm_put32(&ch->old_size, IVSHM_RUN_MAX);
	}
	hook_set(NULL, NULL);
	bad = ivshm_blocks_rebuild(&l);
	hook_clear();
	EXPECT_LT(0, bad);
	/* Clearing the bitmap, reading 6 fields of each channel, and per
	 * run at most RUN_MAX / 256 KiB + 2 words read twice (count) and
	 * written once, plus the three counters.
	 */
	bound = l.bitmap_words + 6ull * l.max_channels +
		2ull * l.max_channels * 3 * (run / 64 + 2) + 3;
	EXPECT_GE(bound, hook_calls) TH_LOG("%llu accesses",
					    (unsigned long long)hook_calls);
	TH_LOG("rebuild of a 256 MiB bomb: %llu accesses, bound %llu",
	       (unsigned long long)hook_calls, (unsigned long long)bound);
	free(mem);
}

/* What a waiter's condition asks runs without the lock its ring's other
 * users take: it must change nothing, however the region moves under it.
 */
static struct ivshm_chan *moving_chan;

static void move_counters(void)
{
	ivshm_put64(&moving_chan->head, ivshm_get64(&moving_chan->head) + 8);
	ivshm_put64(&moving_chan->tail, ivshm_get64(&moving_chan->tail) + 8);
}

/*
 * A wait condition compares with what its waiter saw, so that another
 * holder of the lock, who loads the counter meanwhile (a poll, SIOCINQ, a
 * rebalancing pass), cannot hide from it news whose wakeup came before it
 * slept.
 */
TEST_F(core, wait_conditions_see_news_another_look_loaded)
{
	struct ivshm_rec rec;
	u8 r1[40] = { 1 }, buf[64];
	u64 pos, tail;

	/* A reader that found the ring empty... */
	ASSERT_EQ(-EAGAIN, rx_call(&self->rx, &rec));
	pos = self->rx.pos;
	ASSERT_FALSE(ivshm_rx_changed(&self->rx, pos));
	/* ...a record published, and loaded by someone else's look... */
	ASSERT_EQ(0, send_rec(&self->tx, r1, sizeof(r1)));
	ASSERT_LT(0, ivshm_rx_avail(&self->rx));
	/* ...is still news to the waiter. */
	EXPECT_TRUE(ivshm_rx_changed(&self->rx, pos));

	/* A sender that saw the tail at @tail... */
	ASSERT_EQ(1, ivshm_tx_room(&self->tx, sizeof(r1)));
	tail = self->tx.peer;
	ASSERT_FALSE(ivshm_tx_changed(&self->tx, tail));
	/* ...then the reader consumed, and another look loaded the tail... */
	ASSERT_EQ((int)sizeof(r1), recv_rec(&self->rx, buf, sizeof(buf)));
	ASSERT_EQ(1, ivshm_tx_room(&self->tx, sizeof(r1)));
	ASSERT_NE(tail, self->tx.peer);
	/* ...and the waiter still sees room it has not looked at. */
	EXPECT_TRUE(ivshm_tx_changed(&self->tx, tail));
}

TEST_F(core, wait_conditions_change_no_ring_state)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	struct ivshm_ring rx0, tx0;
	u8 rec[40] = { 0 };
	int i;

	ASSERT_EQ(0, send_rec(&self->tx, rec, sizeof(rec)));
	rx0 = self->rx;
	tx0 = self->tx;
	moving_chan = ch;
	hook_set(&ch->head, move_counters);
	for (i = 0; i < 100; i++) {
		EXPECT_TRUE(ivshm_rx_changed(&self->rx, self->rx.pos));
		ivshm_tx_changed(&self->tx, self->tx.peer);
	}
	hook_clear();
	EXPECT_EQ(0, memcmp(&rx0, &self->rx, sizeof(rx0)));
	EXPECT_EQ(0, memcmp(&tx0, &self->tx, sizeof(tx0)));
}

/* A lock word that names us, which we cannot be holding (one caller at a
 * time), is a forgery: it is taken over, not waited for.
 */
TEST_F(core, lock_word_naming_us_is_taken_over)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&self->l);

	ivshm_put64(&c->lock, IVSHM_LOCK_OWNER(0, 1));
	ASSERT_EQ(1, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ASSERT_TRUE(ivshm_ctrl_unlock(&self->l, 0, 1));
	ASSERT_EQ(0, ivshm_get64(&c->lock));
}

/* A live holder's word is broken only as it was seen: a holder that let
 * go meanwhile, and whoever took the lock next, keep it.
 */
TEST_F(core, lock_break_takes_only_the_word_seen)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&self->l);
	struct ivshm_peer *p1 = ivshm_peer(&self->l, 1);
	u64 seen = 0;

	ivshm_put32(&p1->state, IVSHM_PEER_ALIVE);
	ivshm_put32(&p1->incarnation, 5);
	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 1, 5, NULL));
	ASSERT_EQ(-EBUSY, ivshm_ctrl_trylock(&self->l, 0, 1, &seen));
	ASSERT_EQ(IVSHM_LOCK_OWNER(1, 5), seen);
	/* VM 1 let go and took it again with a new incarnation. */
	ivshm_put32(&p1->incarnation, 6);
	ivshm_put64(&c->lock, IVSHM_LOCK_OWNER(1, 6));
	ASSERT_EQ(-EBUSY, ivshm_ctrl_break(&self->l, 0, 1, seen));
	ASSERT_EQ(IVSHM_LOCK_OWNER(1, 6), ivshm_get64(&c->lock));
	/* The word seen, unchanged: broken, and counted. */
	ASSERT_EQ(1, ivshm_ctrl_break(&self->l, 0, 1, IVSHM_LOCK_OWNER(1, 6)));
	ASSERT_EQ(1, ivshm_get32(&c->lock_breaks));
	/* VM 1's unlock, coming late, finds the lock no longer its own. */
	ASSERT_FALSE(ivshm_ctrl_unlock(&self->l, 1, 6));
	ASSERT_TRUE(ivshm_ctrl_unlock(&self->l, 0, 1));
}

/* Our unlock meets a peer that broke our lock (we had stalled) right
 * after our first look at the lock word: the peer's ownership stands.
 */
static struct ivshm_ctrl *break_ctrl;

static void break_our_lock(void)
{
	if (hook_count == 1)
		ivshm_put64(&break_ctrl->lock, IVSHM_LOCK_OWNER(1, 5));
}

TEST_F(core, unlock_never_clears_a_breakers_word)
{
	struct ivshm_ctrl *c = ivshm_ctrl(&self->l);

	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	break_ctrl = c;
	hook_set(&c->lock, break_our_lock);
	ivshm_ctrl_unlock(&self->l, 0, 1);
	hook_clear();
	ASSERT_EQ(IVSHM_LOCK_OWNER(1, 5), ivshm_get64(&c->lock));
}

/* A peer that writes a pending word after every access we make to it
 * costs us nothing more: setting and taking a bit are one access each.
 */
static __le64 *hammered;

static void hammer_word(void)
{
	if (hook_count < 10000)
		ivshm_put64(hammered, ivshm_get64(hammered) ^ (1ull << 63));
}

TEST_F(core, pending_words_hammered_by_a_peer_cost_one_access)
{
	u64 got;

	hammered = ivshm_pending(&self->l, 1, IVSHM_PEND_CTRL);
	hook_set(hammered, hammer_word);
	ivshm_notify_mark(&self->l, 1, IVSHM_PEND_CTRL, 3);
	EXPECT_GE(3, hook_count);
	hook_count = 0;
	got = ivshm_notify_take(&self->l, 1, IVSHM_PEND_CTRL, 0);
	EXPECT_GE(3, hook_count);
	hook_clear();
	EXPECT_TRUE(got & (1ull << 3));
}

TEST_F(core, notify_post_rings_only_an_armed_set_on_its_vector)
{
	const struct ivshm_layout *l = &self->l;
	struct ivshm_peer *p2 = ivshm_peer(l, 2);
	u32 vec = 77;
	void *copy;

	ivshm_put32(&p2->vectors, 2);
	/* Nothing armed: the bits are set, and nobody rings. */
	ASSERT_EQ(IVSHM_POST_QUIET,
		  ivshm_notify_post(l, 2, IVSHM_PEND_CTRL, 4, &vec));
	ASSERT_EQ(IVSHM_POST_QUIET,
		  ivshm_notify_post(l, 2, IVSHM_PEND_DATA, 5, &vec));
	ASSERT_EQ(77, vec);
	/* The receiver arms both sets; its second look finds the bits. */
	ASSERT_TRUE(ivshm_notify_rearm(l, 2, IVSHM_PEND_CTRL));
	ASSERT_TRUE(ivshm_notify_rearm(l, 2, IVSHM_PEND_DATA));
	ASSERT_EQ(1, ivshm_get32(&p2->doorbell_armed));
	ASSERT_EQ(1, ivshm_get32(&p2->data_armed));
	ASSERT_EQ(1ull << 4, ivshm_notify_take(l, 2, IVSHM_PEND_CTRL, 0));
	ASSERT_EQ(1ull << 5, ivshm_notify_take(l, 2, IVSHM_PEND_DATA, 0));
	ASSERT_FALSE(ivshm_notify_rearm(l, 2, IVSHM_PEND_CTRL));
	ASSERT_FALSE(ivshm_notify_rearm(l, 2, IVSHM_PEND_DATA));

	/* Armed: control rings vector 0, data vector 1 of a VM with two. */
	ASSERT_EQ(IVSHM_POST_RING,
		  ivshm_notify_post(l, 2, IVSHM_PEND_CTRL, 4, &vec));
	ASSERT_EQ(IVSHM_VEC_CTRL, vec);
	ASSERT_EQ(IVSHM_POST_RING,
		  ivshm_notify_post(l, 2, IVSHM_PEND_DATA, 5, &vec));
	ASSERT_EQ(IVSHM_VEC_DATA, vec);
	/* One vector takes both sets; any count only picks vector 0 or 1. */
	ivshm_put32(&p2->vectors, 1);
	ASSERT_EQ(IVSHM_POST_RING,
		  ivshm_notify_post(l, 2, IVSHM_PEND_DATA, 5, &vec));
	ASSERT_EQ(IVSHM_VEC_CTRL, vec);
	ivshm_put32(&p2->vectors, 0xffffffffu);
	ASSERT_EQ(IVSHM_POST_RING,
		  ivshm_notify_post(l, 2, IVSHM_PEND_DATA, 5, &vec));
	ASSERT_EQ(IVSHM_VEC_DATA, vec);
	/* Disarming one set for a drain leaves the other armed. */
	ivshm_notify_disarm(l, 2, IVSHM_PEND_CTRL);
	ASSERT_EQ(0, ivshm_get32(&p2->doorbell_armed));
	ASSERT_EQ(IVSHM_POST_QUIET,
		  ivshm_notify_post(l, 2, IVSHM_PEND_CTRL, 4, &vec));
	ASSERT_EQ(IVSHM_POST_RING,
		  ivshm_notify_post(l, 2, IVSHM_PEND_DATA, 5, &vec));

	/* Ids that cannot exist write nothing at all. */
	copy = malloc(REGION);
	ASSERT_NE(NULL, copy);
	memcpy(copy, self->mem, REGION);
	vec = 77;
	EXPECT_EQ(IVSHM_POST_INVALID,
		  ivshm_notify_post(l, l->max_peers, IVSHM_PEND_CTRL, 0, &vec));
	EXPECT_EQ(IVSHM_POST_INVALID,
		  ivshm_notify_post(l, 2, IVSHM_PEND_SETS, 0, &vec));
	EXPECT_EQ(IVSHM_POST_INVALID,
		  ivshm_notify_post(l, 2, IVSHM_PEND_CTRL, l->max_channels,
				    &vec));
	EXPECT_FALSE(ivshm_notify_mark(l, ~0u, IVSHM_PEND_DATA, 0));
	ivshm_notify_disarm(l, l->max_peers, IVSHM_PEND_DATA);
	ivshm_notify_disarm(l, 2, IVSHM_PEND_SETS);
	EXPECT_FALSE(ivshm_notify_rearm(l, l->max_peers, IVSHM_PEND_CTRL));
	EXPECT_FALSE(ivshm_notify_rearm(l, 2, ~0u));
	EXPECT_EQ(77, vec);
	EXPECT_EQ(0, memcmp(copy, self->mem, REGION));
	free(copy);
}

/* N1: a sender that posts while the receiver rearms, at the moment the
 * receiver looks at its pending words, either reads the flag as armed and
 * rings, or is seen by that look. A rearm that looked before it armed
 * would lose the wakeup here.
 */
static const struct ivshm_layout *n1_l;
static u32 n1_set;
static enum ivshm_post n1_posted;

static void n1_sender(void)
{
	u32 vec;

	if (n1_posted == IVSHM_POST_INVALID)
		n1_posted = ivshm_notify_post(n1_l, 2, n1_set, 9, &vec);
}

TEST_F(core, notify_rearm_loses_no_post_racing_with_it)
{
	u32 w = self->l.pending_words;
	bool again;

	n1_l = &self->l;
	for (n1_set = 0; n1_set < IVSHM_PEND_SETS; n1_set++) {
		ivshm_notify_disarm(&self->l, 2, n1_set);
		n1_posted = IVSHM_POST_INVALID;
		hook_set(ivshm_pending(&self->l, 2, n1_set), n1_sender);
		again = ivshm_notify_rearm(&self->l, 2, n1_set);
		/* One flag, one barrier, one look at each word. */
		EXPECT_GE(2 + w, hook_calls);
		hook_clear();
		/* The sender did run in the middle of the rearm... */
		ASSERT_NE(IVSHM_POST_INVALID, n1_posted);
		/* ...and rang, or was seen. */
		EXPECT_TRUE(again || n1_posted == IVSHM_POST_RING);
		EXPECT_EQ(1ull << 9, ivshm_notify_take(&self->l, 2, n1_set, 0));
	}
}

/* N3: a reader that sleeps at its tail is told once about the records
 * that pass it, and not about records it does not wait for.
 */
TEST_F(core, event_reader_is_told_once_per_sleep)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	u8 buf[64] = { 0 };

	EXPECT_EQ(IVSHM_TELL_NONE, ivshm_event_published(&self->tx));
	ASSERT_EQ(0, send_rec(&self->tx, buf, 40));
	/* Nobody waits: the record costs no notification. */
	EXPECT_EQ(IVSHM_TELL_QUIET, ivshm_event_published(&self->tx));
	EXPECT_EQ(IVSHM_TELL_NONE, ivshm_event_published(&self->tx));
	ASSERT_EQ(40, recv_rec(&self->rx, buf, sizeof(buf)));

	/* The reader sleeps at its tail; the next record passes it. */
	hook_set(&ch->rx_flags, NULL);
	ivshm_event_want_data(&self->rx);
	ivshm_event_want_data(&self->rx);
	EXPECT_EQ(1, hook_count);	/* the flag is written once a sleep */
	hook_clear();
	EXPECT_EQ(IVSHM_RXF_WAIT, ivshm_get32(&ch->rx_flags));
	EXPECT_EQ(self->rx.pos, ivshm_get64(&ch->rx_event));
	ASSERT_EQ(0, send_rec(&self->tx, buf, 8));
	EXPECT_EQ(IVSHM_TELL_PEER, ivshm_event_published(&self->tx));
	/* Told once: more records while it still sleeps tell nobody. */
	ASSERT_EQ(0, send_rec(&self->tx, buf, 8));
	EXPECT_EQ(IVSHM_TELL_QUIET, ivshm_event_published(&self->tx));

	/* Awake, it clears the flag; the sender stays quiet. */
	ivshm_event_have_data(&self->rx);
	EXPECT_EQ(0, ivshm_get32(&ch->rx_flags));
	ASSERT_EQ(0, send_rec(&self->tx, buf, 8));
	EXPECT_EQ(IVSHM_TELL_QUIET, ivshm_event_published(&self->tx));
	ASSERT_EQ(8, recv_rec(&self->rx, buf, sizeof(buf)));
	ASSERT_EQ(8, recv_rec(&self->rx, buf, sizeof(buf)));
	ASSERT_EQ(8, recv_rec(&self->rx, buf, sizeof(buf)));

	/* A peer that writes WAIT and an event index the sender never
	 * reaches only keeps itself from being told.
	 */
	ivshm_put32(&ch->rx_flags, 0xffffffffu);
	ivshm_put64(&ch->rx_event, ~0ull);
	ASSERT_EQ(0, send_rec(&self->tx, buf, 8));
	EXPECT_EQ(IVSHM_TELL_QUIET, ivshm_event_published(&self->tx));
}

/* N2: a sender that waits for room is told once, when the reader's tail
 * passes the point where its record fits or half the ring is free.
 */
TEST_F(core, event_sender_is_told_once_per_wait)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	u32 rec = 1024 - IVSHM_REC_HDR, sent = 0, got = 0, told = 0;
	u8 buf[1024] = { 0 };
	int tell;

	while (ivshm_tx_room(&self->tx, rec) == 1) {
		ASSERT_EQ(0, send_rec(&self->tx, buf, rec));
		sent++;
	}
	ASSERT_EQ(self->size / 1024, sent);
	hook_set(&ch->tx_flags, NULL);
	ivshm_event_want_room(&self->tx, rec);
	ivshm_event_want_room(&self->tx, rec);
	EXPECT_EQ(1, hook_count);	/* tx_flags is written on a change */
	hook_clear();
	EXPECT_EQ(IVSHM_TXF_WAIT, ivshm_get32(&ch->tx_flags));
	EXPECT_EQ(IVSHM_TXF_WAIT, self->tx.flags);
	/* Half the ring, as that is more than one record. */
	EXPECT_EQ(self->tx.pos - self->size / 2,
		  ivshm_get64(&ch->wake_tail));
	while (got < sent) {
		ASSERT_EQ((int)rec, recv_rec(&self->rx, buf, sizeof(buf)));
		got++;
		tell = ivshm_event_consumed(&self->rx);
		if (tell == IVSHM_TELL_PEER) {
			told++;
			/* Not before half the ring was free. */
			EXPECT_EQ(sent / 2, got);
		} else {
			EXPECT_EQ(IVSHM_TELL_QUIET, tell);
		}
	}
	EXPECT_EQ(1, told);
	EXPECT_EQ(IVSHM_TELL_NONE, ivshm_event_consumed(&self->rx));
	ivshm_event_tx_flags(&self->tx, 0, IVSHM_TXF_WAIT);
	EXPECT_EQ(0, ivshm_get32(&ch->tx_flags));
}

TEST_F(core, event_backlog_sees_only_a_plausible_stream)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	const struct ivshm_layout *l = &self->l;
	u32 c = self->chan;

	ivshm_put64(&ch->tail, 4096);
	ivshm_put64(&ch->head, 4096 + 800);
	ivshm_put64(&ch->head_touch, 12);
	EXPECT_EQ(800, ivshm_event_backlog(l, c, 10));	/* two records */
	EXPECT_EQ(0, ivshm_event_backlog(l, c, 11));	/* one answer */
	EXPECT_EQ(0, ivshm_event_backlog(l, c, 13));	/* count went back */
	/* More records than headers fit: a count that went wrong. */
	EXPECT_EQ(0, ivshm_event_backlog(l, c, 12 - 101));
	EXPECT_EQ(800, ivshm_event_backlog(l, c, 12 - 100));
	ivshm_put64(&ch->head, 4096);
	EXPECT_EQ(0, ivshm_event_backlog(l, c, 10));	/* nothing waits */
	ivshm_put64(&ch->head, 0);
	EXPECT_EQ(0, ivshm_event_backlog(l, c, 10));	/* head behind */
	ivshm_put64(&ch->head, ~0ull);
	EXPECT_EQ(IVSHM_RUN_MAX, ivshm_event_backlog(l, c, 10));
	EXPECT_EQ(0, ivshm_event_backlog(l, l->max_channels, 10));
}

TEST_F(core, event_watch_ends_when_the_head_moves)
{
	struct ivshm_event_watch w;
	u8 buf[16] = { 0 };

	ivshm_event_watch_init(&self->rx, &w);
	EXPECT_FALSE(ivshm_event_watch_moved(&w));
	ASSERT_EQ(0, send_rec(&self->tx, buf, 16));
	EXPECT_TRUE(ivshm_event_watch_moved(&w));
}

/* The whole identity line is in place when the state becomes visible. */
static const struct ivshm_chan *d1_ch;
static bool d1_complete;

static void d1_check(void)
{
	d1_complete = ivshm_get16(&d1_ch->sender_vm) == 0 &&
		      ivshm_get16(&d1_ch->receiver_vm) == 3 &&
		      ivshm_get32(&d1_ch->sender_pid) == 4242 &&
		      ivshm_get32(&d1_ch->src_port) == 7 &&
		      ivshm_get32(&d1_ch->dst_port) == 9 &&
		      ivshm_get32(&d1_ch->buff_size) == 2 * IVSHM_BLOCK_SIZE &&
		      ivshm_get32(&d1_ch->sender_inc) == 1 &&
		      ivshm_get32(&d1_ch->peer_chan) == 5 &&
		      ivshm_get32(&d1_ch->peer_gen) == 6;
}

TEST_F(core, desc_open_writes_the_state_last)
{
	struct ivshm_desc d = {
		.sender_vm = 0, .sender_inc = 1, .receiver_vm = 3, .pid = 4242,
		.src_port = 7, .dst_port = 9, .size = 2 * IVSHM_BLOCK_SIZE,
		.state = IVSHM_CHAN_OPEN, .peer_chan = 5, .peer_gen = 6,
	};
	u32 free0 = ivshm_blocks_count_free(&self->l), idx, gen, rcv = 99;
	struct ivshm_chan *ch;
	struct ivshm_runs runs;
	u64 off;

	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	/* Any slot: the hook watches them all until one is chosen. */
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &idx, &gen, &off));
	ch = ivshm_chan(&self->l, idx);
	ASSERT_EQ(0, ivshm_desc_close(&self->l, idx,
				      &(struct ivshm_runs){ .gen = gen,
				      .off = off, .size = d.size }, 0, 1, &rcv));
	/* The same slot comes back: watch its state this time. */
	d1_ch = ch;
	hook_set(&ch->state, d1_check);
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &idx, &gen, &off));
	hook_clear();
	ASSERT_EQ(d1_ch, ivshm_chan(&self->l, idx));
	EXPECT_TRUE(d1_complete);
	EXPECT_EQ(IVSHM_CHAN_OPEN, ivshm_get32(&ch->state));
	EXPECT_EQ(off, ivshm_get64(&ch->buff_offset));
	EXPECT_EQ(gen, ivshm_get32(&ch->generation));
	EXPECT_EQ(free0 - 2, ivshm_blocks_count_free(&self->l));
	EXPECT_TRUE(ivshm_desc_ours(&self->l, idx, gen, 0, 1));
	EXPECT_FALSE(ivshm_desc_ours(&self->l, idx, gen + 1, 0, 1));
	EXPECT_FALSE(ivshm_desc_ours(&self->l, idx, gen, 1, 1));
	EXPECT_FALSE(ivshm_desc_ours(&self->l, idx, gen, 0, 2));
	EXPECT_FALSE(ivshm_desc_ours(&self->l, self->l.max_channels, gen, 0,
				     1));
	EXPECT_EQ(0, ivshm_desc_publish(&self->l, idx, gen, 0, 1,
					IVSHM_CHAN_CLOSED));
	EXPECT_EQ(IVSHM_CHAN_CLOSED, ivshm_get32(&ch->state));

	runs = (struct ivshm_runs){ .gen = gen, .off = off, .size = d.size };
	EXPECT_EQ(0, ivshm_desc_close(&self->l, idx, &runs, 0, 1, &rcv));
	EXPECT_EQ(3, rcv);
	EXPECT_EQ(IVSHM_CHAN_FREE, ivshm_get32(&ch->state));
	EXPECT_EQ(free0, ivshm_blocks_count_free(&self->l));
	ivshm_ctrl_unlock(&self->l, 0, 1);
}

/* A slot reaped and taken by someone else while we stood still is not
 * ours to rewrite or free, whatever our private state says.
 */
TEST_F(core, desc_of_another_owner_is_left_alone)
{
	struct ivshm_desc d = {
		.sender_vm = 0, .sender_inc = 1, .receiver_vm = 3,
		.size = IVSHM_BLOCK_SIZE, .state = IVSHM_CHAN_ALLOC,
	};
	struct ivshm_runs runs = { .size = IVSHM_BLOCK_SIZE };
	u32 idx, rcv = 99;
	struct ivshm_chan *ch;
	void *copy;

	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &idx, &runs.gen,
				     &runs.off));
	ch = ivshm_chan(&self->l, idx);
	/* VM 2 took the slot over: same generation, its own identity. */
	ivshm_put16(&ch->sender_vm, 2);
	copy = malloc(REGION);
	ASSERT_NE(NULL, copy);
	memcpy(copy, self->mem, REGION);
	EXPECT_EQ(-ENOLINK, ivshm_desc_publish(&self->l, idx, runs.gen, 0, 1,
					       IVSHM_CHAN_CONNECT));
	EXPECT_EQ(-ENOLINK, ivshm_desc_close(&self->l, idx, &runs, 0, 1,
					     &rcv));
	EXPECT_EQ(99, rcv);
	EXPECT_EQ(0, memcmp(copy, self->mem, REGION));
	/* Ours again, but a peer cleared one of its blocks meanwhile: it is
	 * freed all the same, and the caller hears of it.
	 */
	ivshm_put16(&ch->sender_vm, 0);
	ASSERT_EQ(0, ivshm_blocks_free(&self->l, runs.off, 1));
	EXPECT_EQ(-EPROTO, ivshm_desc_close(&self->l, idx, &runs, 0, 1,
					    &rcv));
	EXPECT_EQ(IVSHM_CHAN_FREE, ivshm_get32(&ch->state));
	ivshm_ctrl_unlock(&self->l, 0, 1);
	free(copy);
}

/* A peer that rewrote our descriptor's run had every rebuild count blocks
 * we never held: closing it rebuilds the bitmap, so they come back.
 */
TEST_F(core, desc_close_after_a_rewritten_run_gives_every_block_back)
{
	struct ivshm_desc d = {
		.sender_vm = 0, .sender_inc = 1, .receiver_vm = 3,
		.size = 4 * IVSHM_BLOCK_SIZE, .state = IVSHM_CHAN_OPEN,
	};
	u32 free0 = ivshm_blocks_count_free(&self->l), idx, rcv;
	struct ivshm_runs runs = { .size = d.size };
	struct ivshm_chan *ch;

	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &idx, &runs.gen,
				     &runs.off));
	ch = ivshm_chan(&self->l, idx);
	ivshm_put32(&ch->buff_size, 64 * IVSHM_BLOCK_SIZE);
	ivshm_blocks_rebuild(&self->l);
	EXPECT_GT(free0 - 4, ivshm_blocks_count_free(&self->l));
	EXPECT_EQ(-EPROTO, ivshm_desc_close(&self->l, idx, &runs, 0, 1, &rcv));
	EXPECT_EQ(free0, ivshm_blocks_count_free(&self->l));
	EXPECT_EQ(free0, ivshm_get32(&ivshm_ctrl(&self->l)->free_blocks));
	ivshm_ctrl_unlock(&self->l, 0, 1);
}

TEST_F(core, desc_open_without_room_takes_nothing)
{
	struct ivshm_desc d = {
		.sender_vm = 0, .sender_inc = 1, .receiver_vm = 3,
		.size = self->l.nr_blocks * IVSHM_BLOCK_SIZE,
		.state = IVSHM_CHAN_OPEN,
	};
	struct ivshm_ctrl *c = ivshm_ctrl(&self->l);
	u32 active = ivshm_get32(&c->num_active_channel);
	u32 free0 = ivshm_blocks_count_free(&self->l), idx, gen;
	u64 off;

	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	EXPECT_EQ(-ENOBUFS, ivshm_desc_open(&self->l, &d, &idx, &gen, &off));
	EXPECT_EQ(active, ivshm_get32(&c->num_active_channel));
	EXPECT_EQ(free0, ivshm_blocks_count_free(&self->l));
	ivshm_ctrl_unlock(&self->l, 0, 1);
}

/* Channels in our name that we never took are a peer's forgeries: the
 * audit frees them, and only them, and the room comes back.
 */
TEST_F(core, desc_audit_frees_only_channels_we_never_took)
{
	struct ivshm_desc d = {
		.sender_vm = 0, .sender_inc = 1, .receiver_vm = 3,
		.size = IVSHM_BLOCK_SIZE, .state = IVSHM_CHAN_OPEN,
	};
	u32 free0 = ivshm_blocks_count_free(&self->l);
	u32 a, b, c, e, old, f, gen, *held;
	struct ivshm_chan *ch;
	u64 off;

	held = calloc(self->l.max_channels, sizeof(*held));
	ASSERT_NE(NULL, held);
	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	/* Ours, recorded. */
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &a, &gen, &off));
	held[a] = gen;
	/* Ours by name, but the slot's generation is not the one we took. */
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &e, &gen, &off));
	held[e] = gen + 1;
	/* Another VM's, and an earlier incarnation of ours: the sweep's. */
	d.sender_vm = 2;
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &c, &gen, &off));
	d.sender_vm = 0;
	d.sender_inc = 7;
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &old, &gen, &off));
	/* A peer fills the rest of the data area in our name... */
	d.sender_inc = 1;
	d.size = (free0 - 4) * IVSHM_BLOCK_SIZE;
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &b, &gen, &off));
	EXPECT_EQ(0, ivshm_blocks_count_free(&self->l));
	/* ... and writes one more slot with generation 0. */
	f = b + 1;
	ch = ivshm_chan(&self->l, f);
	ASSERT_EQ(IVSHM_CHAN_FREE, ivshm_get32(&ch->state));
	ivshm_put32(&ch->generation, 0);
	ivshm_put16(&ch->sender_vm, 0);
	ivshm_put32(&ch->sender_inc, 1);
	ivshm_put32(&ch->state, IVSHM_CHAN_OPEN);
	d.size = IVSHM_BLOCK_SIZE;
	EXPECT_EQ(-ENOBUFS, ivshm_desc_open(&self->l, &d, &gen, &gen, &off));

	EXPECT_EQ(3, ivshm_desc_audit(&self->l, 0, 1, held));
	EXPECT_EQ(IVSHM_CHAN_FREE, ivshm_get32(&ivshm_chan(&self->l, b)->state));
	EXPECT_EQ(IVSHM_CHAN_FREE, ivshm_get32(&ivshm_chan(&self->l, e)->state));
	EXPECT_EQ(IVSHM_CHAN_FREE, ivshm_get32(&ch->state));
	EXPECT_EQ(IVSHM_CHAN_OPEN, ivshm_get32(&ivshm_chan(&self->l, a)->state));
	EXPECT_EQ(IVSHM_CHAN_OPEN, ivshm_get32(&ivshm_chan(&self->l, c)->state));
	EXPECT_EQ(IVSHM_CHAN_OPEN,
		  ivshm_get32(&ivshm_chan(&self->l, old)->state));
	/* The three runs left are counted, the others are free again. */
	EXPECT_EQ(free0 - 3, ivshm_blocks_count_free(&self->l));
	EXPECT_EQ(free0 - 3,
		  ivshm_get32(&ivshm_ctrl(&self->l)->free_blocks));
	EXPECT_EQ(0, ivshm_desc_audit(&self->l, 0, 1, held));
	EXPECT_EQ(0, ivshm_desc_open(&self->l, &d, &gen, &gen, &off));
	ivshm_ctrl_unlock(&self->l, 0, 1);
	free(held);
}

/* A peer that writes our slot's incarnation one below ours gets us
 * declared dead; joining again must still give a new incarnation, or the
 * channels of the one we leave would pass for ours.
 */
TEST_F(core, peer_join_again_never_takes_the_old_incarnation)
{
	struct ivshm_peer *p = ivshm_peer(&self->l, 2);
	u32 inc = ivshm_peer_join(&self->l, 2, 0), again;

	ASSERT_NE(0, inc);
	ivshm_put32(&p->incarnation, inc - 1);
	again = ivshm_peer_join_again(&self->l, 2, 0, inc);
	EXPECT_NE(inc, again);
	EXPECT_NE(0, again);
	EXPECT_EQ(again, ivshm_get32(&p->incarnation));
	/* The same at the wrap: 0 is skipped, and so is the old one. */
	ivshm_put32(&p->incarnation, 0xffffffff);
	EXPECT_EQ(2, ivshm_peer_join_again(&self->l, 2, 0, 1));
	ivshm_put32(&p->incarnation, 0xfffffffe);
	EXPECT_EQ(1, ivshm_peer_join_again(&self->l, 2, 0, 0xffffffff));
}

TEST_F(core, views_report_what_the_region_says)
{
	struct ivshm_region_view v;
	struct ivshm_peer_slot pv;
	struct ivshm_chan_view cv;
	u8 buf[8] = { 0 };

	/* The fixture: VM 0 alive, one channel of 4 blocks. */
	ivshm_view_region(&self->l, &v);
	EXPECT_EQ(1, v.peers_alive);
	EXPECT_EQ(1, v.active_channels);
	EXPECT_EQ(self->l.nr_blocks - 4, v.bitmap_free);
	EXPECT_EQ(ivshm_blocks_count_free(&self->l), v.bitmap_free);
	/* A count a peer wrote is reported as it is, not trusted. */
	ivshm_put32(&ivshm_ctrl(&self->l)->free_blocks, 12345);
	ivshm_put32(&ivshm_peer(&self->l, 5)->state, IVSHM_PEER_ALIVE);
	ivshm_put32(&ivshm_peer(&self->l, 6)->state, IVSHM_PEER_DEAD);
	ivshm_view_region(&self->l, &v);
	EXPECT_EQ(12345, v.free_blocks);
	EXPECT_EQ(self->l.nr_blocks - 4, v.bitmap_free);
	EXPECT_EQ(2, v.peers_alive);

	ivshm_peer_beat(&self->l, 5, 77);
	ivshm_put32(&ivshm_peer(&self->l, 5)->vectors, 2);
	ivshm_put32(&ivshm_peer(&self->l, 5)->incarnation, 3);
	ASSERT_TRUE(ivshm_peer_read(&self->l, 5, &pv));
	EXPECT_EQ(IVSHM_PEER_ALIVE, pv.state);
	EXPECT_EQ(3, pv.incarnation);
	EXPECT_EQ(77, pv.heartbeat);
	EXPECT_EQ(2, pv.vectors);
	EXPECT_FALSE(ivshm_peer_read(&self->l, self->l.max_peers, &pv));
	ivshm_peer_beat(&self->l, self->l.max_peers, 1);	/* ignored */
	/* Alive as incarnation 3: still us as 3, not as 2, not when dead. */
	EXPECT_TRUE(ivshm_peer_still_me(&self->l, 5, 3));
	EXPECT_FALSE(ivshm_peer_still_me(&self->l, 5, 2));
	EXPECT_FALSE(ivshm_peer_still_me(&self->l, 6, 0));
	EXPECT_FALSE(ivshm_peer_still_me(&self->l, self->l.max_peers, 0));

	ASSERT_EQ(0, send_rec(&self->tx, buf, 8));
	ivshm_view_ring(&self->rx, &cv);
	EXPECT_EQ(1, cv.head_touch);
}

TEST_F(core, full_census_counts_open_channels_that_say_full)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);

	EXPECT_EQ(0, ivshm_chan_count_full(&self->l));
	/* Full, but not open yet: not a channel that competes for room. */
	ivshm_event_tx_flags(&self->tx, IVSHM_TXF_FULL, 0);
	EXPECT_EQ(0, ivshm_chan_count_full(&self->l));
	ivshm_put32(&ch->state, IVSHM_CHAN_OPEN);
	EXPECT_EQ(1, ivshm_chan_count_full(&self->l));
	ivshm_event_tx_flags(&self->tx, 0, IVSHM_TXF_FULL);
	EXPECT_EQ(0, ivshm_chan_count_full(&self->l));
	/* The control section's count is a hint, read as written. */
	ivshm_put32(&ivshm_ctrl(&self->l)->free_blocks, 7);
	EXPECT_EQ(7, ivshm_blocks_hint_free(&self->l));
}

/* The sender of a channel addressed to a receiver: VM 0 (incarnation 1)
 * takes a slot and describes it, state @state, to VM 3.
 */
static u32 hs_open(struct ivshm_layout *l, u32 state, u32 port, u32 *gen,
		   u64 *off)
{
	struct ivshm_desc d = {
		.sender_vm = 0, .sender_inc = 1, .receiver_vm = 3,
		.pid = 77, .src_port = port, .dst_port = 9,
		.size = IVSHM_BLOCK_SIZE, .state = state,
	};
	u32 idx = ~0u;

	if (ivshm_ctrl_trylock(l, 0, 1, NULL))
		return ~0u;
	if (ivshm_desc_open(l, &d, &idx, gen, off))
		idx = ~0u;
	ivshm_ctrl_unlock(l, 0, 1);
	return idx;
}

/* The peer's move in the reuse race: between two of the receiver's loads
 * the sender frees its channel (some answer let it) and takes the same
 * slot again for a new connect.
 */
static struct ivshm_layout *hs_l;
static u32 hs_idx, hs_gen, hs_new_gen;
static u64 hs_off;

static void hs_take_again(void)
{
	struct ivshm_runs runs = {
		.gen = hs_gen, .off = hs_off, .size = IVSHM_BLOCK_SIZE,
	};
	u32 rcv, idx;

	hook_at = NULL;		/* once */
	if (ivshm_ctrl_trylock(hs_l, 0, 1, NULL))
		return;
	ivshm_desc_close(hs_l, hs_idx, &runs, 0, 1, &rcv);
	ivshm_ctrl_unlock(hs_l, 0, 1);
	idx = hs_open(hs_l, IVSHM_CHAN_ALLOC, 2000, &hs_new_gen, &hs_off);
	if (idx == hs_idx)
		ivshm_desc_publish(hs_l, idx, hs_new_gen, 0, 1,
				   IVSHM_CHAN_CONNECT);
}

/* A receiver's reading of a channel is of one channel: a slot freed and
 * taken again while it reads (whichever field it is at) is dropped, never
 * a mix of the old channel's state and the new one's line.
 */
TEST_F(core, handshake_reading_of_a_slot_taken_again_is_dropped)
{
	struct ivshm_chan *ch;
	struct ivshm_hs_line v;
	int at;

	hs_l = &self->l;
	hs_idx = hs_open(&self->l, IVSHM_CHAN_OPEN, 1000, &hs_gen, &hs_off);
	ASSERT_GT(self->l.max_channels, hs_idx);
	ch = ivshm_chan(&self->l, hs_idx);
	ASSERT_EQ(0, ivshm_hs_read(&self->l, hs_idx, &v));
	EXPECT_EQ(hs_gen, v.gen);
	EXPECT_EQ(IVSHM_CHAN_OPEN, v.d.state);
	EXPECT_EQ(0, v.d.sender_vm);
	EXPECT_EQ(3, v.d.receiver_vm);
	EXPECT_EQ(77, v.d.pid);
	EXPECT_EQ(1000, v.d.src_port);
	EXPECT_EQ(9, v.d.dst_port);
	EXPECT_EQ(1, v.d.sender_inc);
	EXPECT_EQ(IVSHM_BLOCK_SIZE, v.d.size);
	EXPECT_EQ(hs_off, v.off);
	EXPECT_EQ(IVSHM_RX_NONE, v.rx_state);

	/* The sender takes the slot again after the receiver's first load,
	 * after its state, or after its last field.
	 */
	for (at = 0; at < 3; at++) {
		const volatile void *where[] = {
			&ch->generation, &ch->state, &ch->rx_state,
		};

		ASSERT_EQ(0, ivshm_desc_publish(&self->l, hs_idx, hs_gen, 0, 1,
						IVSHM_CHAN_CLOSED));
		hs_new_gen = 0;
		hook_set(where[at], hs_take_again);
		EXPECT_EQ(-EAGAIN, ivshm_hs_read(&self->l, hs_idx, &v));
		hook_clear();
		/* Only the slot's next channel, which its sender announces. */
		ASSERT_EQ(hs_gen + 1, hs_new_gen);
		ASSERT_EQ(0, ivshm_hs_read(&self->l, hs_idx, &v));
		EXPECT_EQ(hs_new_gen, v.gen);
		EXPECT_EQ(IVSHM_CHAN_CONNECT, v.d.state);
		EXPECT_EQ(2000, v.d.src_port);
		/* The old channel's answer is no answer to the new one. */
		EXPECT_FALSE(ivshm_hs_answer(&self->l, hs_idx, hs_gen,
					     IVSHM_RX_CLOSED));
		EXPECT_EQ(IVSHM_RX_NONE, ivshm_get32(&ch->rx_state));
		hs_gen = hs_new_gen;
	}
	/* A slot being taken (its generation not yet written) reads as none. */
	ivshm_put32(&ch->generation, 0);
	EXPECT_EQ(-EAGAIN, ivshm_hs_read(&self->l, hs_idx, &v));
}

/* Answers go one way: NONE, ACCEPTED, one final answer; each only for the
 * generation it answers.
 */
TEST_F(core, handshake_answers_only_go_forward)
{
	struct ivshm_hs_reply back = { .peer_chan = 5, .peer_gen = 6 }, r;
	struct ivshm_chan *ch;
	u32 idx, gen;
	u64 off;

	idx = hs_open(&self->l, IVSHM_CHAN_CONNECT, 1000, &gen, &off);
	ASSERT_GT(self->l.max_channels, idx);
	ch = ivshm_chan(&self->l, idx);
	EXPECT_FALSE(ivshm_hs_answer(&self->l, idx, 0, IVSHM_RX_REFUSED));
	EXPECT_FALSE(ivshm_hs_answer(&self->l, idx, gen + 1,
				     IVSHM_RX_REFUSED));
	EXPECT_FALSE(ivshm_hs_answer(&self->l, idx, gen, IVSHM_RX_NONE));
	EXPECT_FALSE(ivshm_hs_answer(&self->l, idx, gen,
				     IVSHM_RX_NR_STATES));
	EXPECT_FALSE(ivshm_hs_accept(&self->l, idx, gen + 1, 4, &back));
	EXPECT_EQ(IVSHM_RX_NONE, ivshm_get32(&ch->rx_state));

	EXPECT_TRUE(ivshm_hs_accept(&self->l, idx, gen, 4, &back));
	ivshm_hs_reply(&self->l, idx, &r);
	EXPECT_EQ(IVSHM_RX_ACCEPTED, r.rx_state);
	EXPECT_EQ(5, r.peer_chan);
	EXPECT_EQ(6, r.peer_gen);
	EXPECT_EQ(4, ivshm_get32(&ch->receiver_inc));
	/* Accepted once: no second acceptance, no refusal after it. */
	EXPECT_FALSE(ivshm_hs_accept(&self->l, idx, gen, 4, NULL));
	EXPECT_FALSE(ivshm_hs_answer(&self->l, idx, gen, IVSHM_RX_REFUSED));
	EXPECT_FALSE(ivshm_hs_answer(&self->l, idx, gen, IVSHM_RX_NOBUFS));
	EXPECT_TRUE(ivshm_hs_answer(&self->l, idx, gen, IVSHM_RX_CLOSED));
	/* Final: nothing follows it, not even the other final answer. */
	EXPECT_FALSE(ivshm_hs_answer(&self->l, idx, gen, IVSHM_RX_RESET));
	EXPECT_FALSE(ivshm_hs_answer(&self->l, idx, gen, IVSHM_RX_CLOSED));
	EXPECT_EQ(IVSHM_RX_CLOSED, ivshm_get32(&ch->rx_state));
	EXPECT_TRUE(ivshm_rx_final(IVSHM_RX_CLOSED));
	EXPECT_FALSE(ivshm_rx_final(IVSHM_RX_ACCEPTED));
}

static const struct ivshm_chan *acc_ch;
static bool acc_line_first;

static void acc_check(void)
{
	acc_line_first = ivshm_get32(&acc_ch->receiver_inc) == 4 &&
			 ivshm_get32(&acc_ch->rx_peer_chan) == 5 &&
			 ivshm_get32(&acc_ch->rx_peer_gen) == 6;
}

/* The acceptor's line is complete when ACCEPTED is, and a connector that
 * attaches names nothing.
 */
TEST_F(core, handshake_accept_writes_its_line_first)
{
	struct ivshm_hs_reply back = { .peer_chan = 5, .peer_gen = 6 };
	u32 idx, gen;
	u64 off;

	idx = hs_open(&self->l, IVSHM_CHAN_CONNECT, 1000, &gen, &off);
	ASSERT_GT(self->l.max_channels, idx);
	acc_ch = ivshm_chan(&self->l, idx);
	/* Looked at after each access to the answer: the store is last. */
	hook_set(&acc_ch->rx_state, acc_check);
	EXPECT_TRUE(ivshm_hs_accept(&self->l, idx, gen, 4, &back));
	hook_clear();
	EXPECT_TRUE(acc_line_first);

	idx = hs_open(&self->l, IVSHM_CHAN_OPEN, 1001, &gen, &off);
	ASSERT_GT(self->l.max_channels, idx);
	EXPECT_TRUE(ivshm_hs_accept(&self->l, idx, gen, 4, NULL));
	EXPECT_EQ(0, ivshm_get32(&ivshm_chan(&self->l, idx)->rx_peer_chan));
	EXPECT_EQ(0, ivshm_get32(&ivshm_chan(&self->l, idx)->rx_peer_gen));
}

/* What a reader acts on: the sender's state of its own generation, and
 * whether a close was a reset; anything else is a protocol error.
 */
TEST_F(core, handshake_sender_state_of_our_generation_only)
{
	struct ivshm_chan *ch;
	bool reset = true;
	u32 idx, gen;
	u64 off;

	idx = hs_open(&self->l, IVSHM_CHAN_CONNECT, 1000, &gen, &off);
	ASSERT_GT(self->l.max_channels, idx);
	ch = ivshm_chan(&self->l, idx);
	EXPECT_EQ(IVSHM_CHAN_CONNECT,
		  ivshm_hs_sender_state(&self->l, idx, gen, &reset));
	EXPECT_FALSE(reset);
	/* Another generation: the slot holds another channel now. */
	EXPECT_EQ(-ESTALE, ivshm_hs_sender_state(&self->l, idx, gen + 1,
						 &reset));
	ivshm_put32(&ch->tx_flags, IVSHM_TXF_RESET);
	ASSERT_EQ(0, ivshm_desc_publish(&self->l, idx, gen, 0, 1,
					IVSHM_CHAN_OPEN));
	EXPECT_EQ(IVSHM_CHAN_OPEN,
		  ivshm_hs_sender_state(&self->l, idx, gen, &reset));
	EXPECT_FALSE(reset);	/* only a close is a reset */
	ASSERT_EQ(0, ivshm_desc_publish(&self->l, idx, gen, 0, 1,
					IVSHM_CHAN_CLOSED));
	EXPECT_EQ(IVSHM_CHAN_CLOSED,
		  ivshm_hs_sender_state(&self->l, idx, gen, &reset));
	EXPECT_TRUE(reset);
	ivshm_put32(&ch->state, IVSHM_CHAN_ALLOC);
	EXPECT_EQ(-EPROTO, ivshm_hs_sender_state(&self->l, idx, gen, &reset));
	ivshm_put32(&ch->state, IVSHM_CHAN_NR_STATES);
	EXPECT_EQ(-EPROTO, ivshm_hs_sender_state(&self->l, idx, gen, &reset));
}

/* Every answer on our channel, connecting or not, after every answer seen:
 * forward moves act, going back or an unknown value is a protocol error.
 */
TEST(handshake_tx_step_moves_only_forward)
{
	static const struct {
		bool connecting;
		u32 seen, rx;
		enum ivshm_hs_tx step;
		u32 seen_after;
	} t[] = {
		{ true, 0, IVSHM_RX_NONE, IVSHM_HS_TX_NOTHING, 0 },
		{ true, 0, IVSHM_RX_REFUSED, IVSHM_HS_TX_REFUSED, 0 },
		{ true, 0, IVSHM_RX_NOBUFS, IVSHM_HS_TX_NOBUFS, 0 },
		{ true, 0, IVSHM_RX_ACCEPTED, IVSHM_HS_TX_ATTACH, 0 },
		{ true, 0, IVSHM_RX_CLOSED, IVSHM_HS_TX_ATTACH, 0 },
		{ true, 0, IVSHM_RX_RESET, IVSHM_HS_TX_ATTACH, 0 },
		{ true, 0, IVSHM_RX_NR_STATES, IVSHM_HS_TX_BAD, 0 },
		{ false, IVSHM_RX_NONE, IVSHM_RX_NONE, IVSHM_HS_TX_OPEN,
		  IVSHM_RX_NONE },
		{ false, IVSHM_RX_NONE, IVSHM_RX_ACCEPTED, IVSHM_HS_TX_OPEN,
		  IVSHM_RX_ACCEPTED },
		{ false, IVSHM_RX_NONE, IVSHM_RX_CLOSED,
		  IVSHM_HS_TX_PEER_CLOSED, IVSHM_RX_CLOSED },
		{ false, IVSHM_RX_ACCEPTED, IVSHM_RX_RESET,
		  IVSHM_HS_TX_PEER_RESET, IVSHM_RX_RESET },
		{ false, IVSHM_RX_ACCEPTED, IVSHM_RX_NONE, IVSHM_HS_TX_BAD,
		  IVSHM_RX_ACCEPTED },
		{ false, IVSHM_RX_CLOSED, IVSHM_RX_CLOSED,
		  IVSHM_HS_TX_PEER_CLOSED, IVSHM_RX_CLOSED },
		{ false, IVSHM_RX_CLOSED, IVSHM_RX_ACCEPTED, IVSHM_HS_TX_BAD,
		  IVSHM_RX_CLOSED },
		{ false, IVSHM_RX_CLOSED, IVSHM_RX_RESET, IVSHM_HS_TX_BAD,
		  IVSHM_RX_CLOSED },
		{ false, IVSHM_RX_NONE, IVSHM_RX_REFUSED, IVSHM_HS_TX_BAD,
		  IVSHM_RX_NONE },
		{ false, IVSHM_RX_ACCEPTED, 99, IVSHM_HS_TX_BAD,
		  IVSHM_RX_ACCEPTED },
	};
	unsigned int i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		u32 seen = t[i].seen;

		EXPECT_EQ(t[i].step, ivshm_hs_tx_step(&seen, t[i].rx,
						      t[i].connecting))
			TH_LOG("case %u", i);
		EXPECT_EQ(t[i].seen_after, seen) TH_LOG("case %u", i);
	}
}

TEST(handshake_rx_step_moves_only_forward)
{
	u32 seen = IVSHM_CHAN_CONNECT;

	EXPECT_EQ(IVSHM_HS_RX_DATA,
		  ivshm_hs_rx_step(&seen, IVSHM_CHAN_CONNECT, false));
	EXPECT_EQ(IVSHM_HS_RX_DATA,
		  ivshm_hs_rx_step(&seen, IVSHM_CHAN_OPEN, false));
	EXPECT_EQ(IVSHM_CHAN_OPEN, seen);
	EXPECT_EQ(IVSHM_HS_RX_BAD,
		  ivshm_hs_rx_step(&seen, IVSHM_CHAN_CONNECT, false));
	EXPECT_EQ(IVSHM_HS_RX_BAD, ivshm_hs_rx_step(&seen, -EPROTO, false));
	EXPECT_EQ(IVSHM_HS_RX_GONE, ivshm_hs_rx_step(&seen, -ESTALE, false));
	EXPECT_EQ(IVSHM_CHAN_OPEN, seen);
	EXPECT_EQ(IVSHM_HS_RX_EOF,
		  ivshm_hs_rx_step(&seen, IVSHM_CHAN_CLOSED, false));
	EXPECT_EQ(IVSHM_HS_RX_EOF,
		  ivshm_hs_rx_step(&seen, IVSHM_CHAN_CLOSED, false));
	EXPECT_EQ(IVSHM_HS_RX_BAD,
		  ivshm_hs_rx_step(&seen, IVSHM_CHAN_OPEN, false));
	EXPECT_EQ(IVSHM_HS_RX_RESET,
		  ivshm_hs_rx_step(&seen, IVSHM_CHAN_CLOSED, true));
}

/* The channel an acceptor names is the reverse of ours in every field, or
 * nothing is attached; a request is acted on only from a live incarnation
 * with a run a reader may follow.
 */
TEST_F(core, handshake_reverse_and_request_checks)
{
	struct ivshm_desc d = {
		.sender_vm = 3, .sender_inc = 5, .receiver_vm = 0,
		.src_port = 9, .dst_port = 1000, .size = 4 * IVSHM_BLOCK_SIZE,
		.state = IVSHM_CHAN_OPEN,
	};
	struct ivshm_hs_ends e = {
		.local_vm = 0, .local_port = 1000,
		.remote_vm = 3, .remote_port = 9,
	};
	struct ivshm_hs_reply r;
	struct ivshm_hs_line v;
	struct ivshm_chan *pc;
	u32 idx;
	u64 off;
	int f;

	e.idx = hs_open(&self->l, IVSHM_CHAN_CONNECT, 1000, &e.gen, &off);
	ASSERT_GT(self->l.max_channels, e.idx);
	d.peer_chan = e.idx;
	d.peer_gen = e.gen;
	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 3, 5, NULL));
	ASSERT_EQ(0, ivshm_desc_open(&self->l, &d, &idx, &r.peer_gen, &off));
	ivshm_ctrl_unlock(&self->l, 3, 5);
	r.peer_chan = idx;
	r.rx_state = IVSHM_RX_ACCEPTED;
	pc = ivshm_chan(&self->l, idx);
	ASSERT_EQ(0, ivshm_hs_reverse(&self->l, &e, &r, &v));
	EXPECT_EQ(IVSHM_CHAN_OPEN, v.d.state);
	EXPECT_EQ(off, v.off);

	/* Each field of the line, wrong in turn. */
	for (f = 0; f < 9; f++) {
		__le32 *w32[] = {
			&pc->state, &pc->src_port, &pc->dst_port,
			&pc->peer_chan, &pc->peer_gen, &pc->buff_size,
		};
		__le16 *w16[] = { &pc->sender_vm, &pc->receiver_vm };
		u32 keep32 = 0;
		u16 keep16 = 0;
		u64 keep64 = 0;

		if (f < 6) {
			keep32 = ivshm_get32(w32[f]);
			ivshm_put32(w32[f], f == 0 ? IVSHM_CHAN_CONNECT :
				    f == 5 ? IVSHM_RUN_MAX + IVSHM_BLOCK_SIZE :
				    keep32 + 1);
		} else if (f < 8) {
			keep16 = ivshm_get16(w16[f - 6]);
			ivshm_put16(w16[f - 6], keep16 + 1);
		} else {
			keep64 = ivshm_get64(&pc->buff_offset);
			ivshm_put64(&pc->buff_offset,
				    (u64)self->l.nr_blocks * IVSHM_BLOCK_SIZE);
		}
		EXPECT_EQ(-EPROTO, ivshm_hs_reverse(&self->l, &e, &r, &v))
			TH_LOG("field %d", f);
		if (f < 6)
			ivshm_put32(w32[f], keep32);
		else if (f < 8)
			ivshm_put16(w16[f - 6], keep16);
		else
			ivshm_put64(&pc->buff_offset, keep64);
	}
	ASSERT_EQ(0, ivshm_hs_reverse(&self->l, &e, &r, &v));
	/* The answer names another generation, our own channel, or none. */
	r.peer_gen++;
	EXPECT_EQ(-EPROTO, ivshm_hs_reverse(&self->l, &e, &r, &v));
	r.peer_gen--;
	r.peer_chan = e.idx;
	EXPECT_EQ(-EPROTO, ivshm_hs_reverse(&self->l, &e, &r, &v));
	r.peer_chan = self->l.max_channels;
	EXPECT_EQ(-EPROTO, ivshm_hs_reverse(&self->l, &e, &r, &v));

	/* The same line as a request: VM 3 must be alive as incarnation 5. */
	ASSERT_EQ(0, ivshm_hs_read(&self->l, idx, &v));
	EXPECT_EQ(-EPROTO, ivshm_hs_request_check(&self->l, &v));
	ivshm_put32(&ivshm_peer(&self->l, 3)->incarnation, 5);
	ivshm_put32(&ivshm_peer(&self->l, 3)->state, IVSHM_PEER_ALIVE);
	EXPECT_EQ(0, ivshm_hs_request_check(&self->l, &v));
	v.d.sender_inc = 4;
	EXPECT_EQ(-EPROTO, ivshm_hs_request_check(&self->l, &v));
	v.d.sender_inc = 5;
	v.d.size = IVSHM_RUN_MIN - IVSHM_BLOCK_SIZE;
	EXPECT_EQ(-EPROTO, ivshm_hs_request_check(&self->l, &v));
	v.d.size = 4 * IVSHM_BLOCK_SIZE;
	v.off = (u64)self->l.nr_blocks * IVSHM_BLOCK_SIZE - IVSHM_BLOCK_SIZE;
	EXPECT_EQ(-EPROTO, ivshm_hs_request_check(&self->l, &v));
}

/* A generation is never 0, even after it wraps: 0 reads as "being taken". */
TEST_F(core, generation_skips_zero_when_it_wraps)
{
	struct ivshm_chan *ch = ivshm_chan(&self->l, self->chan);
	u32 idx;

	ASSERT_EQ(0, ivshm_ctrl_trylock(&self->l, 0, 1, NULL));
	ivshm_chan_free(&self->l, self->chan);
	ivshm_put32(&ch->generation, 0xffffffffu);
	ASSERT_EQ(0, ivshm_chan_alloc(&self->l, &idx));
	ASSERT_EQ(self->chan, idx);
	EXPECT_EQ(1, ivshm_get32(&ch->generation));
	EXPECT_EQ(IVSHM_CHAN_ALLOC, ivshm_get32(&ch->state));
	ivshm_ctrl_unlock(&self->l, 0, 1);
}

TEST_HARNESS_MAIN
