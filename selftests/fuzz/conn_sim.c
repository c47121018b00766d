// SPDX-License-Identifier: GPL-2.0
/*
 * Two VMs on one region, each running the connection code as the module
 * does (conn_sim.h). Every function here mirrors one of the module's, named
 * in its comment, so that what the fuzzer and the model check find about
 * the composition of the core's calls holds for the module.
 */
#include "conn_sim.h"

int sim_trace = -1;

/* ------------------------------------------------------------------ */
/* Work accounting */

void (*ivshm_access_fn)(const volatile void *p);
u64 sim_accesses;

void sim_count_access(const volatile void *p)
{
	(void)p;
	sim_accesses++;
}

struct ivshm_layout L;
static void *mem;
struct side S[2];
bool deviated;
bool recovering;

static struct side *other(struct side *s)
{
	return s == &S[0] ? &S[1] : &S[0];
}

/* The control lock as the module takes it: a word naming a dead holder, or
 * one held too long (here: at once, the fuzzer is the clock), is broken
 * and the bookkeeping rebuilt.
 */
static bool lock(struct side *s)
{
	u64 holder = 0;
	int ret;

	/* ivshm_ctrl_still_me(): not while declared dead. */
	if (!ivshm_peer_still_me(&L, s->vm, s->inc))
		return false;
	ret = ivshm_ctrl_trylock(&L, s->vm, s->inc, &holder);

	if (ret == -EBUSY)
		ret = ivshm_ctrl_break(&L, s->vm, s->inc, holder);
	if (ret < 0)
		return false;
	if (ret) {
		ivshm_chan_sweep(&L);
		ivshm_blocks_rebuild(&L);
	}
	return true;
}

static void unlock(struct side *s)
{
	ivshm_ctrl_unlock(&L, s->vm, s->inc);
}

static void post(struct side *s, u32 idx)
{
	u32 vec;

	ivshm_notify_post(&L, other(s)->vm, IVSHM_PEND_CTRL, idx, &vec);
}

static void post_data(struct side *s, u32 idx)
{
	u32 vec;

	ivshm_notify_post(&L, other(s)->vm, IVSHM_PEND_DATA, idx, &vec);
}

static void proto_error(struct side *s, struct conn *c, const char *what);

/* ivshm_chan_unhold(): the record is of the current incarnation only. */
static void unhold(struct side *s, u32 idx, const struct ivshm_runs *runs)
{
	if (runs->inc == s->inc && s->held[idx] == runs->gen)
		s->held[idx] = 0;
}

/* Free a channel we sent on, now or once answered. */
static void tx_free(struct side *s, u32 idx, const struct ivshm_runs *runs)
{
	u32 rcv;

	T("vm%u frees channel %u gen %u\n", s->vm, idx, runs->gen);
	/* ivshm_chan_close(): declared dead, it lets the channel go. */
	if (!ivshm_peer_still_me(&L, s->vm, s->inc)) {
		unhold(s, idx, runs);
		return;
	}
	if (!lock(s)) {
		/* The lock stays busy: keep it as an orphan, due at once. */
		for (int i = 0; i < NORPHAN; i++)
			if (!s->o[i].used) {
				s->o[i] = (struct orphan){ true, idx, *runs };
				return;
			}
		return;		/* leaked until a rejoin reclaims it */
	}
	ivshm_desc_close(&L, idx, runs, s->vm, runs->inc, &rcv);
	unhold(s, idx, runs);
	unlock(s);
}

/* ivshm_sock_fenced(): the region no longer names @s alive as the
 * incarnation that made @c. Then nothing of @c is written: its slots and
 * blocks may be others' already.
 */
static bool fenced(const struct side *s, const struct conn *c)
{
	return !ivshm_peer_still_me(&L, s->vm, c->tx_inc);
}

static void conn_runs(struct side *s, struct conn *c, struct ivshm_runs *r)
{
	r->gen = c->tx_gen;
	r->inc = c->tx_inc;
	r->receiver = other(s)->vm;
	r->size = c->tx.size;
	r->off = ivshm_ring_run(&c->tx);
	r->old_off = c->tx.old_off;
	r->old_size = c->tx.old_size;
}

/* ivshm_rx_detach() and ivshm_tx_detach(): let go of both channels. */
void sim_close(struct side *s, struct conn *c, bool reset)
{
	struct ivshm_hs_reply r;
	struct ivshm_runs runs;
	u32 ack = reset ? IVSHM_RX_RESET : IVSHM_RX_CLOSED;

	T("vm%u drops conn %ld (tx %d:%u rx %d:%u)\n", s->vm, (long)(c - s->c),
	  c->has_tx, c->tx_idx, c->has_rx, c->rx_idx);
	/* Declared dead: nothing is written, and our channel goes only if
	 * it is still ours (ivshm_chan_close()).
	 */
	if ((c->has_tx || c->has_rx) && fenced(s, c)) {
		if (c->has_tx) {
			conn_runs(s, c, &runs);
			tx_free(s, c->tx_idx, &runs);
		}
		memset(c, 0, sizeof(*c));
		return;
	}
	if (c->has_rx && ivshm_hs_answer(&L, c->rx_idx, c->rx_gen, ack))
		post(s, c->rx_idx);
	if (c->has_tx) {
		ivshm_tx_flush(&c->tx);
		if (reset)
			ivshm_event_tx_flags(&c->tx, IVSHM_TXF_RESET, 0);
		if (!ivshm_desc_publish(&L, c->tx_idx, c->tx_gen, s->vm,
					c->tx_inc, IVSHM_CHAN_CLOSED))
			post(s, c->tx_idx);
		conn_runs(s, c, &runs);
		ivshm_hs_reply(&L, c->tx_idx, &r);
		if (ivshm_rx_final(r.rx_state)) {
			tx_free(s, c->tx_idx, &runs);
		} else {
			int i;

			for (i = 0; i < NORPHAN && s->o[i].used; i++)
				;
			if (i < NORPHAN)
				s->o[i] = (struct orphan){ true, c->tx_idx,
							   runs };
			else
				tx_free(s, c->tx_idx, &runs);
		}
	}
	memset(c, 0, sizeof(*c));
}

static void proto_error(struct side *s, struct conn *c, const char *what)
{
	T("vm%u: protocol error: %s\n", s->vm, what);
	s->proto_errors++;
	if (!deviated || c->fresh)
		die("vm%u: protocol error with an honest peer: %s", s->vm,
		    what);
	sim_close(s, c, true);
}

/* The connection that sends on (@rx false) or reads channel @idx: the
 * module's slot table. One of each at most; both may be set when a reader
 * lost its channel to an orphan's expiry and a sender of ours took the
 * slot again (the reader learns at its next event).
 */
static struct conn *conn_of(struct side *s, u32 idx, bool rx)
{
	for (int i = 0; i < NCONN; i++) {
		struct conn *c = &s->c[i];

		if (!rx && c->has_tx && c->tx_idx == idx)
			return c;
		if (rx && c->has_rx && c->rx_idx == idx)
			return c;
	}
	return NULL;
}

/* ivshm_slot_set(): is the slot's @rx side free? */
static bool slot_free(struct side *s, u32 idx, bool rx)
{
	if (conn_of(s, idx, rx))
		return false;
	for (int i = 0; i < NORPHAN && !rx; i++)
		if (s->o[i].used && s->o[i].idx == idx)
			return false;
	return true;
}

static struct conn *conn_new(struct side *s)
{
	for (int i = 0; i < NCONN; i++)
		if (s->c[i].st == C_FREE)
			return &s->c[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* The handshakes, as socket.c and chan.c make them */

static bool open_chan(struct side *s, struct conn *c, const struct ivshm_desc *d)
{
	u32 idx, gen;
	u64 off;
	int ret;

	if (!lock(s))
		return false;
	ret = ivshm_desc_open(&L, d, &idx, &gen, &off);
	/* ivshm_chan_open(): a full region may be one filled in our name. */
	if (ret == -ENOBUFS) {
		u32 n = ivshm_desc_audit(&L, s->vm, s->inc, s->held);

		T("vm%u: no room; %u channels forged in its name freed\n",
		  s->vm, n);
		if (n)
			ret = ivshm_desc_open(&L, d, &idx, &gen, &off);
	}
	if (!ret)
		s->held[idx] = gen;
	unlock(s);
	if (ret)
		return false;
	T("vm%u takes channel %u gen %u\n", s->vm, idx, gen);
	/* A slot one of ours uses, which VM 2 marked FREE: the module's
	 * slot table refuses it (-EBUSY), and the channel is dropped.
	 */
	if (!slot_free(s, idx, false) ||
	    ivshm_ring_init(&c->tx, &L, idx, off, d->size)) {
		struct ivshm_runs runs = { .gen = gen, .inc = s->inc,
					   .off = off, .size = d->size };

		if (!deviated)
			die("vm%u: channel %u handed out while in use, with an honest peer",
			    s->vm, idx);
		tx_free(s, idx, &runs);
		return false;
	}
	c->has_tx = true;
	c->tx_idx = idx;
	c->tx_gen = gen;
	c->tx_inc = s->inc;
	c->tx_size = d->size;
	c->tx_off = off;
	return true;
}

void sim_connect(struct side *s, u32 port)
{
	struct conn *c = conn_new(s);
	struct ivshm_desc d = {
		.sender_vm = s->vm, .sender_inc = s->inc,
		.receiver_vm = other(s)->vm, .pid = s->vm,
		.src_port = 1000 + s->next_port++ % 100, .dst_port = port,
		.size = RING_BYTES, .state = IVSHM_CHAN_ALLOC,
	};

	/* ivshm_start_connect(): EHOSTUNREACH for a VM not attached. */
	if (s->dead || !ivshm_peer_alive(&L, other(s)->vm, NULL))
		return;
	if (!c)
		return;
	memset(c, 0, sizeof(*c));
	c->fresh = recovering;
	if (!open_chan(s, c, &d))
		return;
	c->st = C_CONNECTING;
	c->lport = d.src_port;
	c->rport = port;
	if (ivshm_desc_publish(&L, c->tx_idx, c->tx_gen, s->vm, c->tx_inc,
			       IVSHM_CHAN_CONNECT)) {
		sim_close(s, c, false);
		return;
	}
	post(s, c->tx_idx);
}

/* ivshm_sock_request(): a connect addressed to us. */
static void request(struct side *s, u32 idx, const struct ivshm_hs_line *v)
{
	struct ivshm_hs_reply back;
	struct conn *c;
	struct ivshm_desc d = {
		.sender_vm = s->vm, .sender_inc = s->inc,
		.receiver_vm = v->d.sender_vm, .pid = s->vm,
		.src_port = LISTEN_PORT, .dst_port = v->d.src_port,
		.size = RING_BYTES, .state = IVSHM_CHAN_OPEN,
		.peer_chan = idx, .peer_gen = v->gen,
	};
	u32 answer = IVSHM_RX_REFUSED;

	if (ivshm_hs_request_check(&L, v)) {
		s->proto_errors++;
		if (!deviated)
			die("vm%u: an honest request failed its check", s->vm);
		goto refuse;
	}
	c = conn_new(s);
	if (!s->listening || v->d.dst_port != LISTEN_PORT || !c)
		goto refuse;
	memset(c, 0, sizeof(*c));
	if (!slot_free(s, idx, true) ||
	    ivshm_ring_init(&c->rx, &L, idx, v->off, v->d.size))
		goto refuse;
	if (!open_chan(s, c, &d)) {
		answer = IVSHM_RX_NOBUFS;
		goto refuse;
	}
	c->has_rx = true;
	c->rx_idx = idx;
	c->rx_gen = v->gen;
	c->rx_seen = IVSHM_CHAN_CONNECT;
	c->lport = LISTEN_PORT;
	c->rport = v->d.src_port;
	c->st = C_OPEN;
	/* Fresh only if its connector is: a forged request is not. */
	for (int i = 0; i < NCONN; i++) {
		const struct conn *k = &other(s)->c[i];

		if (k->fresh && k->has_tx && k->tx_idx == idx &&
		    k->tx_gen == v->gen && v->d.sender_vm == other(s)->vm)
			c->fresh = true;
	}
	back.peer_chan = c->tx_idx;
	back.peer_gen = c->tx_gen;
	if (!ivshm_hs_accept(&L, idx, v->gen, s->inc, &back)) {
		c->has_rx = false;
		sim_close(s, c, false);
		return;
	}
	post(s, idx);
	return;
refuse:
	if (ivshm_hs_answer(&L, idx, v->gen, answer))
		post(s, idx);
}

/* ivshm_attach_reverse() */
static int attach(struct side *s, struct conn *c, const struct ivshm_hs_reply *r)
{
	const struct ivshm_hs_ends e = {
		.local_vm = s->vm, .local_port = c->lport,
		.remote_vm = other(s)->vm, .remote_port = c->rport,
		.idx = c->tx_idx, .gen = c->tx_gen,
	};
	struct ivshm_hs_line v;

	if (ivshm_hs_reverse(&L, &e, r, &v) ||
	    ivshm_ring_init(&c->rx, &L, r->peer_chan, v.off, v.d.size)) {
		T("vm%u: on %u:%u, answer %u names %u:%u: state %u gen %u, %u:%u -> %u:%u, peer %u:%u\n",
		  s->vm, c->tx_idx, c->tx_gen, r->rx_state, r->peer_chan,
		  r->peer_gen, v.d.state, v.gen, v.d.sender_vm, v.d.src_port,
		  v.d.receiver_vm, v.d.dst_port, v.d.peer_chan, v.d.peer_gen);
		return -EPROTO;
	}
	if (!slot_free(s, r->peer_chan, true))
		return -EPROTO;		/* the slot layer's -EBUSY */
	c->has_rx = true;
	c->rx_idx = r->peer_chan;
	c->rx_gen = v.gen;
	c->rx_seen = v.d.state;
	ivshm_hs_accept(&L, r->peer_chan, v.gen, s->inc, NULL);
	if (ivshm_desc_publish(&L, c->tx_idx, c->tx_gen, s->vm, c->tx_inc,
			       IVSHM_CHAN_OPEN))
		return -ENOLINK;
	if (v.d.state == IVSHM_CHAN_CLOSED)
		c->eof = true;
	return 0;
}

/* ivshm_tx_event() */
static void tx_event(struct side *s, struct conn *c)
{
	struct ivshm_hs_reply r;
	enum ivshm_hs_tx step;

	ivshm_hs_reply(&L, c->tx_idx, &r);
	step = ivshm_hs_tx_step(&c->answer, r.rx_state,
				c->st == C_CONNECTING);
	if (step == IVSHM_HS_TX_ATTACH) {
		if (attach(s, c, &r)) {
			proto_error(s, c, "reverse channel invalid");
			return;
		}
		c->st = C_OPEN;
		step = ivshm_hs_tx_step(&c->answer, r.rx_state, false);
	}
	switch (step) {
	case IVSHM_HS_TX_NOTHING:
	case IVSHM_HS_TX_ATTACH:
	case IVSHM_HS_TX_OPEN:
		break;
	case IVSHM_HS_TX_REFUSED:
	case IVSHM_HS_TX_NOBUFS:
		s->refused++;
		sim_close(s, c, false);
		break;
	case IVSHM_HS_TX_PEER_CLOSED:
		c->epipe = true;
		break;
	case IVSHM_HS_TX_PEER_RESET:
		sim_close(s, c, false);
		break;
	case IVSHM_HS_TX_BAD:
		proto_error(s, c, "answer unknown or gone back");
		break;
	}
}

/* ivshm_rx_event(); false: the news is the slot's next channel's. */
static bool rx_event(struct side *s, struct conn *c)
{
	bool reset;
	int state = ivshm_hs_sender_state(&L, c->rx_idx, c->rx_gen, &reset);

	switch (ivshm_hs_rx_step(&c->rx_seen, state, reset)) {
	case IVSHM_HS_RX_BAD:
		proto_error(s, c, "channel state invalid or gone back");
		break;
	case IVSHM_HS_RX_GONE:
		sim_close(s, c, false);
		return false;
	case IVSHM_HS_RX_RESET:
		sim_close(s, c, false);
		break;
	case IVSHM_HS_RX_EOF:
		c->eof = true;
		break;
	case IVSHM_HS_RX_DATA:
		break;
	}
	return true;
}

/* ivshm_orphan_close_reverse(): a connect we withdrew was accepted. */
static void orphan_close_reverse(struct side *s, struct orphan *o,
				 const struct ivshm_hs_reply *r)
{
	struct ivshm_hs_line v;

	if (r->peer_chan >= L.max_channels || r->peer_chan == o->idx ||
	    ivshm_hs_read(&L, r->peer_chan, &v) || v.gen != r->peer_gen ||
	    v.d.sender_vm != o->runs.receiver || v.d.receiver_vm != s->vm ||
	    v.d.peer_chan != o->idx || v.d.peer_gen != o->runs.gen ||
	    v.rx_state != IVSHM_RX_NONE || conn_of(s, r->peer_chan, true))
		return;
	if (ivshm_hs_answer(&L, r->peer_chan, v.gen, IVSHM_RX_CLOSED))
		post(s, r->peer_chan);
}

/* ivshm_orphan_event(): free an orphan once answered, gone or timed out. */
void sim_orphan_event(struct side *s, struct orphan *o, enum why why)
{
	struct ivshm_hs_reply r;
	struct orphan copy;

	ivshm_hs_reply(&L, o->idx, &r);
	if ((r.rx_state == IVSHM_RX_ACCEPTED || r.rx_state == IVSHM_RX_CLOSED ||
	     r.rx_state == IVSHM_RX_RESET) &&
	    ivshm_peer_still_me(&L, s->vm, o->runs.inc))
		orphan_close_reverse(s, o, &r);
	if (why != NOW &&
	    !ivshm_hs_may_free(&r, why == TIMED_OUT,
			       ivshm_peer_alive(&L, o->runs.receiver, NULL))) {
		/* Ask the receiver again: a stale ACCEPTED gets its answer.
		 * Not once declared dead: the slot may be another's.
		 */
		if (why == TIMED_OUT &&
		    ivshm_peer_still_me(&L, s->vm, o->runs.inc))
			post(s, o->idx);
		return;
	}
	copy = *o;
	o->used = false;
	T("vm%u orphan %u done (rx_state %u)\n", s->vm, copy.idx, r.rx_state);
	tx_free(s, copy.idx, &copy.runs);
}

/* ivshm_stray_event(): a channel addressed to us that nobody reads. */
static void stray_event(struct side *s, u32 idx)
{
	struct ivshm_hs_line v;
	struct ivshm_hs_reply r;

	if (ivshm_hs_read(&L, idx, &v) || v.d.receiver_vm != s->vm ||
	    v.d.sender_vm >= L.max_peers)
		return;
	if (v.d.state == IVSHM_CHAN_CONNECT && v.rx_state == IVSHM_RX_NONE) {
		request(s, idx, &v);
		return;
	}
	if (v.d.state != IVSHM_CHAN_CLOSED || conn_of(s, idx, true) ||
	    (v.rx_state != IVSHM_RX_NONE && v.rx_state != IVSHM_RX_ACCEPTED))
		return;
	/* The reverse of a connect of ours still waiting for the answer. */
	if (v.d.peer_chan < L.max_channels && v.d.peer_chan != idx &&
	    !slot_free(s, v.d.peer_chan, false)) {
		ivshm_hs_reply(&L, v.d.peer_chan, &r);
		if (r.peer_chan == idx && r.peer_gen == v.gen)
			return;
	}
	if (ivshm_hs_answer(&L, idx, v.gen, IVSHM_RX_CLOSED))
		post(s, idx);
}

/* ivshm_ctrl_work(): the control set, bounded as the module bounds it. */
void sim_poll(struct side *s)
{
	/* Nor while declared dead: the bits wait for the rejoin. */
	if (s->dead || !ivshm_peer_still_me(&L, s->vm, s->inc))
		return;
	for (u32 w = 0; w < L.pending_words; w++) {
		u64 bits = ivshm_notify_take(&L, s->vm, IVSHM_PEND_CTRL, w);

		while (bits) {
			u32 idx = w * 64 + (u32)__builtin_ctzll(bits);
			struct conn *c;

			bits &= bits - 1;
			if (idx >= L.max_channels)
				continue;
			/* ivshm_chan_event(): the sender, then the reader. */
			c = conn_of(s, idx, false);
			if (c)
				tx_event(s, c);
			c = conn_of(s, idx, true);
			if (!c || !rx_event(s, c))
				stray_event(s, idx);
			for (int i = 0; i < NORPHAN; i++)
				if (s->o[i].used && s->o[i].idx == idx)
					sim_orphan_event(s, &s->o[i], NEWS);
		}
	}
}

/* ------------------------------------------------------------------ */
/* Records */

struct payload {
	u32 idx, gen, seq;
};

void sim_send(struct side *s, struct conn *c, u32 len)
{
	struct payload p = { c->tx_idx, c->tx_gen, c->tx_seq };
	struct ivshm_span span;
	u8 buf[256];

	if (c->st != C_OPEN || !c->has_tx || c->epipe)
		return;
	if (fenced(s, c)) {
		sim_close(s, c, true);
		return;
	}
	len = sizeof(p) + len % (sizeof(buf) - sizeof(p));
	memset(buf, (int)c->tx_seq, len);
	memcpy(buf, &p, sizeof(p));
	if (ivshm_tx_reserve(&c->tx, len, IVSHM_REC_DATA, 0, &span))
		return;		/* full, or a broken ring: the next event says */
	ivshm_span_write(&span, buf);
	ivshm_tx_commit(&c->tx);
	c->tx_seq++;
	if (ivshm_event_published(&c->tx) == IVSHM_TELL_PEER)
		post_data(s, c->tx_idx);
}

void sim_recv(struct side *s, struct conn *c)
{
	if (c->st != C_OPEN || !c->has_rx)
		return;
	if (fenced(s, c)) {
		sim_close(s, c, true);
		return;
	}
	for (int n = 0; n < RX_BURST; n++) {
		struct ivshm_rec rec;
		struct payload p;
		u8 buf[256];
		int ret;

		ivshm_rx_allow_move(&c->rx);
		ret = ivshm_rx_peek(&c->rx, &rec);
		if (ret == IVSHM_RX_MOVED)
			continue;
		if (ret == -EAGAIN || ret == IVSHM_RX_MOVE_PENDING)
			break;
		if (ret) {
			proto_error(s, c, "ring broken");
			return;
		}
		if (rec.type != IVSHM_REC_DATA || rec.len < sizeof(p) ||
		    rec.len > sizeof(buf)) {
			if (!deviated || c->fresh)
				die("vm%u: record of type %u, %u bytes, from an honest peer",
				    s->vm, rec.type, rec.len);
			ivshm_rx_release(&c->rx);
			continue;
		}
		ivshm_span_read(&rec.span, buf);
		memcpy(&p, buf, sizeof(p));
		ivshm_rx_release(&c->rx);
		T("vm%u receives record %u of %u:%u, %u bytes\n", s->vm, p.seq,
		  p.idx, p.gen, rec.len);
		if ((!deviated || c->fresh) &&
		    (p.idx != c->rx_idx || p.gen != c->rx_gen ||
		     p.seq != c->rx_seq))
			die("vm%u: record %u of channel %u gen %u on channel %u gen %u, expected record %u",
			    s->vm, p.seq, p.idx, p.gen, c->rx_idx, c->rx_gen,
			    c->rx_seq);
		c->rx_seq++;
	}
	if (ivshm_event_consumed(&c->rx) == IVSHM_TELL_PEER)
		post_data(s, c->rx_idx);
}

/* A rebalancing move of our ring to a new run, as chan.c makes it. */
void sim_move(struct side *s, struct conn *c, u32 blocks)
{
	struct ivshm_hs_reply r;
	u64 off, old_off;
	u32 old_size;

	if (c->st != C_OPEN || !c->has_tx)
		return;
	/* ivshm_rebal_sock(): declared dead, reset. */
	if (fenced(s, c)) {
		sim_close(s, c, true);
		return;
	}
	/* Only once the reader attached: before, it would start reading
	 * at the new run and never see the MOVED record (rebalance.c,
	 * ivshm_rebal_sock()).
	 */
	ivshm_hs_reply(&L, c->tx_idx, &r);
	if (r.rx_state != IVSHM_RX_ACCEPTED || !lock(s))
		return;
	if (ivshm_tx_move_done(&c->tx, &old_off, &old_size) > 0)
		ivshm_blocks_free(&L, old_off, old_size >> IVSHM_BLOCK_SHIFT);
	blocks = 4 + blocks % 8;
	if (!c->tx.old_size && ivshm_tx_can_move(&c->tx) == 1 &&
	    !ivshm_blocks_alloc(&L, blocks, &off)) {
		if (ivshm_tx_move(&c->tx, off, blocks * IVSHM_BLOCK_SIZE))
			ivshm_blocks_free(&L, off, blocks);
		else
			post(s, c->tx_idx);
	}
	unlock(s);
}

/* ------------------------------------------------------------------ */
/* Membership */

void sim_join(struct side *s)
{
	s->dead = false;
	s->inc = ivshm_peer_join_again(&L, s->vm, 0, s->inc);
	memset(s->held, 0, sizeof(s->held));
	if (lock(s)) {
		ivshm_chan_tidy(&L);
		unlock(s);
	}
}

/* Every connection of @s reset, every orphan of it let go at once
 * (ivshm_peer_lost() for all peers).
 */
static void reset_all(struct side *s)
{
	for (int i = 0; i < NCONN; i++)
		if (s->c[i].st != C_FREE)
			sim_close(s, &s->c[i], true);
	for (int i = 0; i < NORPHAN; i++)
		if (s->o[i].used)
			sim_orphan_event(s, &s->o[i], NOW);
}

/* VM 2 comes back with a new incarnation (an honest rejoin): VM 1 resets
 * its connections to it and frees what only VM 2 would have answered.
 */
void sim_rejoin_peer(void)
{
	struct side *s = &S[0], *p = &S[1];

	memset(p->c, 0, sizeof(p->c));
	memset(p->o, 0, sizeof(p->o));
	sim_join(p);
	reset_all(s);
}

/* @p's heartbeat stood still: the other side declares it dead, resets
 * what it had with it and frees its orphans at once (ivshm_peer_lost()),
 * then reaps it under the lock (ivshm_peer_reap_dev()).
 */
static void declare_dead(struct side *p)
{
	struct side *s = other(p);

	ivshm_peer_declare_dead(&L, p->vm, p->inc);
	for (int i = 0; i < NCONN; i++)
		if (s->c[i].st != C_FREE)
			sim_close(s, &s->c[i], true);
	for (int i = 0; i < NORPHAN; i++)
		if (s->o[i].used && s->o[i].runs.receiver == p->vm)
			sim_orphan_event(s, &s->o[i], NOW);
	if (lock(s)) {
		ivshm_peer_reap(&L, p->vm);
		ivshm_chan_sweep(&L);
		ivshm_blocks_rebuild(&L);
		unlock(s);
	}
}

/* VM 2 dies: declared dead, and it does nothing more. */
void sim_kill_peer(void)
{
	struct side *p = &S[1];

	declare_dead(p);
	p->dead = true;
	memset(p->c, 0, sizeof(p->c));
	memset(p->o, 0, sizeof(p->o));
}

/* VM 1 stood still too long (a VM stopped, then continued): VM 2 declares
 * it dead, and VM 1 runs on, its connections and orphans as they were,
 * until it notices (sim_rejoin_self()). Meanwhile it must write nothing of
 * them.
 */
void sim_stall_self(void)
{
	if (!S[1].dead && ivshm_peer_still_me(&L, S[0].vm, S[0].inc))
		declare_dead(&S[0]);
}

/* VM 1 finds itself declared dead (ivshm_peer_rejoin()): it resets every
 * connection and lets its orphans go, writing nothing of them, then joins
 * again as a new incarnation, whose tidy reclaims what the old one left.
 */
void sim_rejoin_self(void)
{
	struct side *s = &S[0];

	if (ivshm_peer_still_me(&L, s->vm, s->inc))
		return;
	reset_all(s);
	sim_join(s);
}

/* ------------------------------------------------------------------ */
/* Checks */

void sim_check_private(struct side *s)
{
	for (int i = 0; i < NCONN; i++) {
		const struct conn *a = &s->c[i];

		if (a->st == C_FREE && (a->has_tx || a->has_rx))
			die("vm%u: a free connection holds channels", s->vm);
		if (a->has_tx && a->has_rx && a->tx_idx == a->rx_idx)
			die("vm%u: one channel both ways", s->vm);
		for (int j = i + 1; j < NCONN; j++) {
			const struct conn *b = &s->c[j];

			if ((a->has_tx && b->has_tx && a->tx_idx == b->tx_idx) ||
			    (a->has_rx && b->has_rx && a->rx_idx == b->rx_idx))
				die("vm%u: connections %d and %d share a channel",
				    s->vm, i, j);
		}
	}
}

/* Run both sides' control and data work until nothing changes: 8 rounds
 * at least, and then as long as a round reads anything. The largest run a
 * ring gets (sim_move() makes them up to 11 blocks), full of the smallest
 * records (16 bytes), read RX_BURST at a time, empties within the bound.
 */
#define SETTLE_ROUNDS	(8 + 16 * IVSHM_BLOCK_SIZE / (16 * RX_BURST))

void sim_settle(void)
{
	bool read = true;

	for (u32 round = 0; round < 8 || (read && round < SETTLE_ROUNDS);
	     round++) {
		read = false;
		for (int k = 0; k < 2; k++) {
			sim_poll(&S[k]);
			ivshm_notify_take(&L, S[k].vm, IVSHM_PEND_DATA, 0);
			for (int i = 0; i < NCONN; i++) {
				u32 before = S[k].c[i].rx_seq;

				sim_recv(&S[k], &S[k].c[i]);
				read |= S[k].c[i].rx_seq != before;
			}
		}
	}
	if (read)
		die("still reading after %u rounds", SETTLE_ROUNDS);
}

/* Once VM 2 is honest again, a connection each way carries a record each
 * way.
 */
void sim_check_recovery(void)
{
	for (int k = 0; k < 2; k++) {
		struct side *s = &S[k], *p = other(s);
		struct conn *c = NULL, *a = NULL;
		u32 idx;

		s->listening = false;
		p->listening = true;
		sim_connect(s, LISTEN_PORT);
		sim_settle();
		for (int i = 0; i < NCONN; i++)
			if (s->c[i].st == C_OPEN && s->c[i].lport >= 1000 &&
			    s->c[i].rport == LISTEN_PORT && s->c[i].tx_seq == 0 &&
			    s->c[i].rx_seq == 0)
				c = &s->c[i];
		if (!c)
			die("no connection from vm%u after the peer came back (%u free blocks)",
			    s->vm, ivshm_blocks_count_free(&L));
		idx = c->rx_idx;
		for (int i = 0; i < NCONN; i++)
			if (p->c[i].st == C_OPEN && p->c[i].has_tx &&
			    p->c[i].tx_idx == idx)
				a = &p->c[i];
		if (!a)
			die("vm%u's connection has no acceptor", s->vm);
		sim_send(s, c, 1);
		sim_send(p, a, 2);
		sim_settle();
		if (c->rx_seq != 1 || a->rx_seq != 1)
			die("records lost after recovery: %u, %u", c->rx_seq,
			    a->rx_seq);
		sim_close(s, c, false);
		sim_close(p, a, false);
		sim_settle();
	}
}

/* The reaper, IVSHM_ORPHAN_TIMEOUT after: everyone ran meanwhile. */
void sim_expire(struct side *s)
{
	void (*fn)(const volatile void *p) = ivshm_access_fn;

	ivshm_access_fn = NULL;
	sim_settle();
	ivshm_access_fn = fn;
	sim_reap(s);
}

/* The reaper's own work (ivshm_dev_reap()): orphans whose time is up. */
void sim_reap(struct side *s)
{
	for (int i = 0; i < NORPHAN; i++)
		if (s->o[i].used)
			sim_orphan_event(s, &s->o[i], TIMED_OUT);
	/* ... and its audit (ivshm_dev_reap()). */
	if (lock(s)) {
		u32 n = ivshm_desc_audit(&L, s->vm, s->inc, s->held);

		T("vm%u: the reaper's audit freed %u channels\n", s->vm, n);
		unlock(s);
	}
}

void sim_setup(void)
{
	const char *why;

	if (sim_trace < 0)
		sim_trace = getenv("FZ_TRACE") != NULL;
	if (!mem) {
		mem = aligned_alloc(4096, REGION);
		if (!mem)
			abort();
	}
	memset(mem, 0, REGION);
	if (ivshm_region_open(&L, mem, REGION, 0, &why) !=
	    IVSHM_OPEN_INITIALISED)
		die("region: %s", why);
	memset(S, 0, sizeof(S));
	S[0].vm = 1;
	S[1].vm = 2;
	sim_join(&S[0]);
	sim_join(&S[1]);
	S[0].listening = S[1].listening = true;
	deviated = false;
	recovering = false;
}
