// SPDX-License-Identifier: GPL-2.0
/*
 * Region layout, initialisation and attach.
 *
 * The layout is a pure function of the region size, so every peer computes
 * it privately and needs nothing from the region to know where the sections
 * are. The header only lets a peer check that whoever initialised the region
 * agrees; any disagreement refuses the region.
 *
 * Initialisation is claimed with a compare-and-exchange of
 * header.init_state from NONE to BUSY. The claimant writes every section,
 * then publishes READY with a release store, which pairs with the acquire
 * load of init_state in the attaching peers (protocol.md, barrier B1).
 */

#include "core.h"

static u64 ivshm_align_block(u64 v)
{
	return ALIGN(v, (u64)IVSHM_BLOCK_SIZE);
}

/**
 * ivshm_layout_compute() - compute where each section lives
 * @l: filled in
 * @base: the region, mapped
 * @size: its size: a power of two from 64 KiB to 64 GiB
 *
 * Return: 0 or -EINVAL for an unusable size.
 */
int ivshm_layout_compute(struct ivshm_layout *l, void *base, u64 size)
{
	u64 region_blocks, off;
	u32 chans;

	if (!is_power_of_2(size) || size < IVSHM_MIN_REGION ||
	    size > IVSHM_MAX_REGION)
		return -EINVAL;

	memset(l, 0, sizeof(*l));
	l->base = base;
	l->size = size;
	l->max_peers = IVSHM_MAX_PEERS;

	chans = (u32)(size >> 14);
	if (chans < IVSHM_MIN_CHANNELS)
		chans = IVSHM_MIN_CHANNELS;
	if (chans > IVSHM_MAX_CHANNELS)
		chans = IVSHM_MAX_CHANNELS;
	l->max_channels = chans;
	l->pending_words = chans / 64;

	/* The bitmap covers every block of the region: a safe upper bound. */
	region_blocks = size >> IVSHM_BLOCK_SHIFT;
	l->bitmap_words = (u32)DIV_ROUND_UP(region_blocks, 64);

	off = ivshm_align_block(sizeof(struct ivshm_hdr));
	l->peers_off = off;
	off = ivshm_align_block(off + (u64)l->max_peers *
				sizeof(struct ivshm_peer));
	l->ctrl_off = off;
	l->bitmap_off = off + IVSHM_CACHELINE;
	off = ivshm_align_block(l->bitmap_off + (u64)l->bitmap_words * 8);
	l->pending_off = off;
	off = ivshm_align_block(off + (u64)l->max_peers * IVSHM_PEND_SETS *
				l->pending_words * 8);
	l->chan_off = off;
	off = ivshm_align_block(off + (u64)chans * sizeof(struct ivshm_chan));
	l->data_off = off;
	if (off + IVSHM_BLOCK_SIZE > size)
		return -EINVAL;
	l->nr_blocks = (u32)((size - off) >> IVSHM_BLOCK_SHIFT);
	return 0;
}

bool ivshm_run_valid(const struct ivshm_layout *l, u64 off, u64 len)
{
	u64 data = (u64)l->nr_blocks << IVSHM_BLOCK_SHIFT;

	return len && IS_ALIGNED(off, (u64)IVSHM_BLOCK_SIZE) &&
	       IS_ALIGNED(len, (u64)IVSHM_BLOCK_SIZE) && off < data &&
	       len <= data - off;
}

static void ivshm_region_write(const struct ivshm_layout *l, u32 vm)
{
	struct ivshm_hdr *h = ivshm_hdr(l);
	struct ivshm_ctrl *c = ivshm_ctrl(l);

	/* Everything between the header and the data area starts zeroed. */
	memset(l->base + l->peers_off, 0, l->data_off - l->peers_off);

	ivshm_put32(&c->free_blocks, l->nr_blocks);
	ivshm_put32(&c->free_start_offset, 0);

	ivshm_put32(&h->magic, IVSHM_MAGIC);
	ivshm_put16(&h->version, IVSHM_VERSION);
	ivshm_put16(&h->hdr_size, sizeof(*h));
	ivshm_put32(&h->block_size, IVSHM_BLOCK_SIZE);
	ivshm_put64(&h->region_size, l->size);
	ivshm_put32(&h->max_peers, l->max_peers);
	ivshm_put32(&h->max_channels, l->max_channels);
	ivshm_put64(&h->peers_off, l->peers_off);
	ivshm_put64(&h->ctrl_off, l->ctrl_off);
	ivshm_put64(&h->bitmap_off, l->bitmap_off);
	ivshm_put64(&h->pending_off, l->pending_off);
	ivshm_put64(&h->chan_off, l->chan_off);
	ivshm_put64(&h->data_off, l->data_off);
	ivshm_put32(&h->nr_blocks, l->nr_blocks);
	ivshm_put32(&h->init_peer, vm);

	/* B1: publish the layout; pairs with the acquire in attach. */
	ivshm_store_release32(&h->init_state, IVSHM_INIT_READY);
}

static int ivshm_region_check(const struct ivshm_layout *l, const char **why)
{
	const struct ivshm_hdr *h = ivshm_hdr(l);

	if (ivshm_get32(&h->magic) != IVSHM_MAGIC) {
		*why = "bad magic";
		return -EINVAL;
	}
	if (ivshm_get16(&h->version) != IVSHM_VERSION) {
		*why = "unsupported protocol version";
		return -EPROTONOSUPPORT;
	}
	if (ivshm_get16(&h->hdr_size) != sizeof(*h) ||
	    ivshm_get32(&h->block_size) != IVSHM_BLOCK_SIZE) {
		*why = "header or block size differs";
		return -EINVAL;
	}
	if (ivshm_get64(&h->region_size) != l->size) {
		*why = "region size differs from the device's";
		return -EINVAL;
	}
	if (ivshm_get32(&h->max_peers) != l->max_peers ||
	    ivshm_get32(&h->max_channels) != l->max_channels ||
	    ivshm_get64(&h->peers_off) != l->peers_off ||
	    ivshm_get64(&h->ctrl_off) != l->ctrl_off ||
	    ivshm_get64(&h->bitmap_off) != l->bitmap_off ||
	    ivshm_get64(&h->pending_off) != l->pending_off ||
	    ivshm_get64(&h->chan_off) != l->chan_off ||
	    ivshm_get64(&h->data_off) != l->data_off ||
	    ivshm_get32(&h->nr_blocks) != l->nr_blocks) {
		*why = "layout differs from the one this size implies";
		return -EINVAL;
	}
	return 0;
}

/**
 * ivshm_region_open() - initialise a fresh region or attach to a valid one
 * @l: private layout, filled in
 * @base: the region
 * @size: its size
 * @vm: our VM id, recorded as the initialiser
 * @why: on failure, a static description for the log
 *
 * Return: IVSHM_OPEN_INITIALISED or IVSHM_OPEN_ATTACHED; -EAGAIN while
 * another peer is initialising (call again later); -EINVAL or
 * -EPROTONOSUPPORT for a region that must not be used.
 */
int ivshm_region_open(struct ivshm_layout *l, void *base, u64 size, u32 vm,
		      const char **why)
{
	struct ivshm_hdr *h;
	u32 state;
	int ret;

	*why = "";
	ret = ivshm_layout_compute(l, base, size);
	if (ret) {
		*why = "region size is not a power of two from 64 KiB to 64 GiB";
		return ret;
	}
	h = ivshm_hdr(l);

	state = ivshm_load_acquire32(&h->init_state);
	if (state == IVSHM_INIT_NONE) {
		state = ivshm_cmpxchg32(&h->init_state, IVSHM_INIT_NONE,
					IVSHM_INIT_BUSY);
		if (state == IVSHM_INIT_NONE) {
			ivshm_region_write(l, vm);
			return IVSHM_OPEN_INITIALISED;
		}
		/* Lost the race; the cmpxchg was fully ordered. */
	}
	if (state == IVSHM_INIT_BUSY) {
		*why = "another peer is initialising the region";
		return -EAGAIN;
	}
	if (state != IVSHM_INIT_READY) {
		*why = "unknown initialisation state";
		return -EINVAL;
	}
	ret = ivshm_region_check(l, why);
	return ret ? ret : IVSHM_OPEN_ATTACHED;
}
