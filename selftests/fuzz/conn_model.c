// SPDX-License-Identifier: GPL-2.0
/*
 * A model check of the handshakes: two honest VMs (conn_sim.h) run small
 * scripts of steps, and every interleaving of the two scripts is explored,
 * each replayed from a fresh region. Variants kill VM 2 before any one of
 * its steps. The steps are whole steps of the module: a system call, or
 * one run of a VM's control work (a poll), which is what the module
 * serialises; the core's calls inside a step do not interleave with the
 * other VM's here (the barrier pairs and the fuzzers cover that).
 *
 * After each interleaving, both VMs' control work runs until nothing
 * changes, and then:
 *  - no deadlock: no connect still waits for an answer from a live VM;
 *  - agreement: every connection one side holds open has its partner
 *    open on the other side, over the same two channels, or its peer let
 *    go of it (end of file and EPIPE both seen);
 *  - no lost or duplicated record: each side of a pair has received
 *    exactly the records the other sent, in order (conn_sim.c checks the
 *    order and the sequence as each record arrives);
 *  - no lost wakeup (checked before that work runs): a user asleep in
 *    recv (send) whose ring has a record to read (whose reader consumed
 *    since it looked) is told so by its wait condition, however another
 *    holder of its socket lock loaded the ring meanwhile (a poll, the
 *    rebalancing pass) and whenever the notification came;
 *  - then both users close everything, the work runs again, and the
 *    region is clean: every channel FREE, every block free, no orphan and
 *    no connection left. A killed VM is reaped by the survivor instead,
 *    with the same result, and then comes back: a connection each way
 *    works.
 *
 * Prints the number of interleavings per script; the last line is
 * "N passed, N failed" (one per script).
 */
#include <stdint.h>

#include "conn_sim.h"

enum step { S_END, S_CONNECT, S_REFUSED, S_POLL, S_SEND, S_RECV, S_CLOSE,
	    S_RESET, S_MOVE, S_DIE, S_RWAIT, S_RLOOK, S_FILL, S_WLOOK };

#define MAX_STEPS	10

struct script {
	const char *name;
	enum step a[MAX_STEPS], b[MAX_STEPS];
	bool kill;		/* also kill VM 2 before each of its steps */
};

static const struct script scripts[] = {
	{ "connect, exchange, close both",
	  { S_CONNECT, S_POLL, S_SEND, S_SEND, S_CLOSE, S_POLL },
	  { S_POLL, S_RECV, S_SEND, S_POLL, S_CLOSE, S_POLL }, true },
	{ "connect withdrawn while accepted",
	  { S_CONNECT, S_CLOSE, S_POLL, S_POLL },
	  { S_POLL, S_SEND, S_POLL, S_CLOSE }, true },
	{ "both connect at once",
	  { S_CONNECT, S_POLL, S_SEND, S_POLL, S_CLOSE },
	  { S_CONNECT, S_POLL, S_SEND, S_POLL, S_RESET }, true },
	{ "moves while the reader reads",
	  { S_CONNECT, S_POLL, S_SEND, S_MOVE, S_SEND, S_MOVE, S_SEND },
	  { S_POLL, S_RECV, S_POLL, S_RECV, S_POLL, S_RECV }, false },
	{ "refused, then connected",
	  { S_REFUSED, S_POLL, S_CONNECT, S_POLL },
	  { S_POLL, S_POLL, S_SEND }, true },
	/* VM 1's reader sleeps and a poll looks at its ring; its sender
	 * fills its ring, sleeps, and the rebalancing pass loads its tail.
	 */
	{ "sleepers, and others who look meanwhile",
	  { S_CONNECT, S_POLL, S_RWAIT, S_RLOOK, S_FILL, S_WLOOK },
	  { S_POLL, S_SEND, S_RECV, S_RECV, S_POLL }, false },
};

static enum step path[2 * MAX_STEPS + 1];
static unsigned long judged;		/* sleepers check_wakeups() judged */
static int path_side[2 * MAX_STEPS + 1];
static unsigned long explored;

static struct conn *first_conn(struct side *s)
{
	for (int i = 0; i < NCONN; i++)
		if (s->c[i].st != C_FREE)
			return &s->c[i];
	return &s->c[0];
}

static bool dead;

/* The records a sender fills its ring with: sim_send() makes one of
 * 240 bytes after its payload header (three u32), 62 to a ring, so that
 * the reader's two receives free half of it.
 */
#define FILL_BODY	240
#define FILL_LEN	(3 * sizeof(u32) + FILL_BODY)

/* A reader that finds nothing asks for a notification, looks once more
 * (N3), and sleeps, its wait condition to compare with the head it found.
 */
static void rx_wait(struct conn *c)
{
	struct ivshm_rec rec;

	if (c->st != C_OPEN || !c->has_rx || c->rx_waits)
		return;
	ivshm_rx_allow_move(&c->rx);
	if (ivshm_rx_peek(&c->rx, &rec) != -EAGAIN)
		return;
	ivshm_event_want_data(&c->rx);
	if (ivshm_rx_peek(&c->rx, &rec) != -EAGAIN)
		return;
	c->rx_waits = true;
	c->rx_wait_pos = c->rx.pos;
}

/* Another holder of the reader's socket lock loads its ring: a poll. */
static void rx_look(struct conn *c)
{
	struct ivshm_rec rec;

	if (c->st != C_OPEN || !c->has_rx)
		return;
	ivshm_rx_allow_move(&c->rx);
	ivshm_rx_peek(&c->rx, &rec);
}

/* A sender fills its ring, asks to be told of room, tries once more,
 * and sleeps, its wait condition to compare with the tail it loaded.
 */
static void tx_fill(struct side *s, struct conn *c)
{
	u32 before, n = 0;

	if (c->st != C_OPEN || !c->has_tx || c->epipe || c->tx_waits)
		return;
	for (int asked = 0; asked < 2; asked++) {
		do {
			before = c->tx_seq;
			sim_send(s, c, FILL_BODY);
			if (++n > RING_BYTES)
				die("vm%u: a ring of %u bytes took %u records",
				    s->vm, RING_BYTES, n);
		} while (c->tx_seq != before);
		if (!asked) {
			c->tx_wake_tail = ivshm_tx_wake_tail(&c->tx, FILL_LEN);
			ivshm_event_want_room(&c->tx, FILL_LEN);
		}
	}
	c->tx_waits = true;
	c->tx_wait_tail = c->tx.peer;
}

/* Another holder of the sender's socket lock loads the reader's tail:
 * the rebalancing pass.
 */
static void tx_look(struct conn *c)
{
	if (c->st == C_OPEN && c->has_tx)
		ivshm_tx_can_move(&c->tx);
}

static void do_step(struct side *s, enum step st)
{
	if (dead && s == &S[1])
		return;
	switch (st) {
	case S_END:
		break;
	case S_CONNECT:
		sim_connect(s, LISTEN_PORT);
		break;
	case S_REFUSED:
		sim_connect(s, LISTEN_PORT + 1);
		break;
	case S_POLL:
		sim_poll(s);
		break;
	case S_SEND:
		sim_send(s, first_conn(s), 8);
		break;
	case S_RECV:
		sim_recv(s, first_conn(s));
		break;
	case S_CLOSE:
	case S_RESET:
		if (first_conn(s)->st != C_FREE)
			sim_close(s, first_conn(s), st == S_RESET);
		break;
	case S_MOVE:
		sim_move(s, first_conn(s), 1);
		break;
	case S_DIE:
		dead = true;
		sim_kill_peer();
		break;
	case S_RWAIT:
		rx_wait(first_conn(s));
		break;
	case S_RLOOK:
		rx_look(first_conn(s));
		break;
	case S_FILL:
		tx_fill(s, first_conn(s));
		break;
	case S_WLOOK:
		tx_look(first_conn(s));
		break;
	}
}

/* The other side's connection over the same two channels, if open. */
static struct conn *partner(struct side *p, const struct conn *c)
{
	for (int i = 0; i < NCONN; i++) {
		struct conn *k = &p->c[i];

		if (k->st == C_OPEN && k->has_rx && c->has_tx &&
		    k->rx_idx == c->tx_idx && k->rx_gen == c->tx_gen &&
		    (!c->has_rx ||
		     (k->has_tx && k->tx_idx == c->rx_idx &&
		      k->tx_gen == c->rx_gen)))
			return k;
	}
	return NULL;
}

static void check_agreement(const char *name)
{
	for (int k = 0; k < 2; k++) {
		struct side *s = &S[k], *p = &S[!k];

		if (dead && k == 1)
			continue;
		for (int i = 0; i < NCONN; i++) {
			struct conn *c = &s->c[i], *q;

			if (c->st == C_CONNECTING && !dead)
				die("%s: vm%u's connect never answered", name,
				    s->vm);
			if (c->st != C_OPEN)
				continue;
			q = dead ? NULL : partner(p, c);
			if (!q) {
				if (!c->eof || !c->epipe)
					die("%s: vm%u holds a connection its peer does not (eof %d, epipe %d)",
					    name, s->vm, c->eof, c->epipe);
				continue;
			}
			if (q->rx_seq != c->tx_seq)
				die("%s: vm%u sent %u records, vm%u received %u",
				    name, s->vm, c->tx_seq, p->vm, q->rx_seq);
		}
	}
}

/* Whether the data bit of channel @idx is set in @s's pending set; it
 * stays set.
 */
static bool data_bit(const struct side *s, u32 idx)
{
	u64 bits = ivshm_notify_take(&L, s->vm, IVSHM_PEND_DATA, idx / 64);

	for (u64 b = bits; b; b &= b - 1)
		ivshm_notify_mark(&L, s->vm, IVSHM_PEND_DATA,
				  idx / 64 * 64 + (u32)__builtin_ctzll(b));
	return bits >> (idx % 64) & 1;
}

/* Records the sender of @c's receive channel sent that @c has not read. */
static bool unread(const struct side *p, const struct conn *c)
{
	for (int i = 0; i < NCONN; i++) {
		const struct conn *k = &p->c[i];

		if (k->st != C_FREE && k->has_tx && k->tx_idx == c->rx_idx &&
		    k->tx_gen == c->rx_gen)
			return k->tx_seq != c->rx_seq;
	}
	return false;
}

/*
 * Every sleeper whose ring changed for it must have been told, and must
 * find so in its wait condition, however another holder of its socket
 * lock loaded the ring meanwhile: the notification may have come before it
 * was on the wait queue, and none comes after this point. What changed is
 * judged apart from the wait conditions under test: records the peer sent
 * that the sleeper did not read; for a sender, its reader's tail past the
 * one it asked to be told of (half the ring free, or room for its record
 * if larger: ivshm_tx_wake_tail()). A reader waiting for a MOVED record to
 * be followed is woken by the control work instead: not judged here.
 */
static void judge(const char *name, const struct side *s, u32 idx,
		  bool sees, const char *who, const char *what)
{
	judged++;
	if (!data_bit(s, idx))
		die("%s: vm%u's %s was never told of %s", name, s->vm, who,
		    what);
	if (!sees)
		die("%s: vm%u's %s sleeps past %s", name, s->vm, who, what);
}

static void check_wakeups(const char *name)
{
	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < NCONN; i++) {
			struct conn *c = &S[k].c[i];
			u64 tail;

			if (c->st != C_OPEN)
				continue;
			if (c->rx_waits && !c->rx.move_pending &&
			    unread(&S[!k], c))
				judge(name, &S[k], c->rx_idx,
				      ivshm_rx_changed(&c->rx, c->rx_wait_pos),
				      "reader", "a record");
			if (!c->tx_waits)
				continue;
			tail = ivshm_get64(&c->tx.chan->tail);
			if (tail != c->tx_wait_tail && tail >= c->tx_wake_tail)
				judge(name, &S[k], c->tx_idx,
				      ivshm_tx_changed(&c->tx, c->tx_wait_tail),
				      "sender", "room made");
		}
	}
}

static void check_clean(const char *name)
{
	struct ivshm_region_view v;

	for (int k = 0; k < 2; k++) {
		for (int i = 0; i < NCONN; i++)
			if (S[k].c[i].st != C_FREE)
				die("%s: vm%u keeps a connection", name,
				    S[k].vm);
		for (int i = 0; i < NORPHAN; i++)
			if (S[k].o[i].used)
				die("%s: vm%u keeps orphan %u", name, S[k].vm,
				    S[k].o[i].idx);
	}
	for (u32 i = 0; i < L.max_channels; i++)
		if (ivshm_get32(&ivshm_chan(&L, i)->state) != IVSHM_CHAN_FREE)
			die("%s: channel %u left in state %u", name, i,
			    ivshm_get32(&ivshm_chan(&L, i)->state));
	ivshm_view_region(&L, &v);
	if (v.bitmap_free != L.nr_blocks || v.free_blocks != L.nr_blocks ||
	    v.active_channels)
		die("%s: %u of %u blocks free (count %u), %u channels", name,
		    v.bitmap_free, L.nr_blocks, v.free_blocks,
		    v.active_channels);
}

static const char *const step_names[] = {
	"end", "connect", "connect-refused", "poll", "send", "recv", "close",
	"reset", "move", "die", "recv-sleeps", "recv-look", "fill-sleeps",
	"send-look",
};

static void run_path(const struct script *sc, int n)
{
	sim_setup();
	dead = false;
	for (int i = 0; i < n; i++) {
		T("step %d: vm%u %s\n", i, S[path_side[i]].vm,
		  step_names[path[i]]);
		do_step(&S[path_side[i]], path[i]);
	}
	check_wakeups(sc->name);
	T("settle\n");
	sim_settle();
	check_agreement(sc->name);
	for (int k = 0; k < 2; k++)
		for (int i = 0; i < NCONN; i++)
			if (S[k].c[i].st != C_FREE && !(dead && k == 1))
				sim_close(&S[k], &S[k].c[i], false);
	sim_settle();
	check_clean(sc->name);
	if (dead) {
		sim_rejoin_peer();
		sim_settle();
		recovering = true;
		sim_check_recovery();
	}
	explored++;
}

/* Every interleaving of a[ia..] and b[ib..], after @n steps chosen. */
static void explore(const struct script *sc, const enum step *a, int ia,
		    const enum step *b, int ib, int n)
{
	bool more_a = ia < MAX_STEPS && a[ia] != S_END;
	bool more_b = ib < MAX_STEPS + 1 && b[ib] != S_END;

	if (!more_a && !more_b) {
		run_path(sc, n);
		return;
	}
	if (more_a) {
		path[n] = a[ia];
		path_side[n] = 0;
		explore(sc, a, ia + 1, b, ib, n + 1);
	}
	if (more_b) {
		path[n] = b[ib];
		path_side[n] = 1;
		explore(sc, a, ia, b, ib + 1, n + 1);
	}
}

int main(void)
{
	int passed = 0;

	for (unsigned int k = 0; k < sizeof(scripts) / sizeof(scripts[0]);
	     k++) {
		const struct script *sc = &scripts[k];
		enum step b[MAX_STEPS + 2];
		int nb = 0;

		while (nb < MAX_STEPS && sc->b[nb] != S_END)
			nb++;
		explored = 0;
		judged = 0;
		memcpy(b, sc->b, sizeof(sc->b));
		b[MAX_STEPS] = b[MAX_STEPS + 1] = S_END;
		explore(sc, sc->a, 0, b, 0, 0);
		/* VM 2 dies before its step @d (after its last, for nb). */
		for (int d = 0; sc->kill && d <= nb; d++) {
			enum step kb[MAX_STEPS + 2] = { S_END };

			memcpy(kb, sc->b, sizeof(sc->b));
			kb[MAX_STEPS] = kb[MAX_STEPS + 1] = S_END;
			memmove(&kb[d + 1], &kb[d],
				(MAX_STEPS - d) * sizeof(kb[0]));
			kb[d] = S_DIE;
			explore(sc, sc->a, 0, kb, 0, 0);
		}
		printf("ok %u %s: %lu interleavings", k + 1, sc->name,
		       explored);
		if (judged)
			printf(", %lu sleepers judged", judged);
		printf("\n");
		passed++;
	}
	printf("%d passed, 0 failed\n", passed);
	return 0;
}
