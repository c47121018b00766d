// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the connection protocol: the input is a program of
 * actions, not a region image.
 *
 * Two VMs share one region. VM 1 is honest: it drives the core exactly as
 * the module's socket and control code do (net/ivshmem/socket.c, data.c,
 * chan.c): ivshm_desc_*() to open, publish and free its channels,
 * ivshm_hs_*() to read, check and answer channels addressed to it and to
 * decide what an answer or a state means, the ring for records, the
 * pending sets for notifications. VM 2 runs the same honest code, and
 * deviates whenever the program says: it writes any field of any channel
 * descriptor, any pending word or the lock word, forges whole connect
 * requests and answers, repeats and reorders its steps, and rejoins with
 * a new incarnation.
 *
 * Invariants, each an abort() with an "INVARIANT" line:
 *  - always: every action of VM 1 does bounded work (region accesses
 *    counted by the access hook, bound documented at CONN_WORK_BOUND);
 *    VM 1's private state stays consistent (no channel used twice by its
 *    connections, a connection reads only a channel whose line it checked);
 *    ASan and UBSan find nothing;
 *  - strict, while VM 2 has not deviated: every record a side receives was
 *    sent on that connection, in order, none skipped; no request fails its
 *    checks and no protocol error is ever counted;
 *  - recovery, at the end of every program: VM 2 stops deviating and
 *    rejoins (as a VM declared dead comes back), VM 1 drops what it had
 *    with it, the reapers' period passes on both sides (orphans expire,
 *    each VM audits its own name), and then a connection each way is made
 *    and carries a record each way;
 *  - fencing: while VM 1 stands declared dead (it stood still too long and
 *    runs on), its actions write nothing to the region but take bits of
 *    its own pending sets: what its old connections had may be others' by
 *    then. It notices when the program says, or at the end, and joins
 *    again.
 *
 * The input: one byte of opcode, then its arguments (see enum op); a
 * program ends with its bytes, at most CONN_MAX_OPS actions.
 */
#include <stdint.h>

#include "conn_sim.h"

#define CONN_MAX_OPS	512

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

static u32 in32(struct in *in)
{
	u32 v = in8(in);

	v |= (u32)in8(in) << 8;
	v |= (u32)in8(in) << 16;
	return v | (u32)in8(in) << 24;
}

/* ------------------------------------------------------------------ */
/* VM 2's deviations */

/* Offsets of every field of a descriptor, and their widths. */
static const struct {
	u16 off;
	u8 width;
} fields[] = {
#define F(name, w) { offsetof(struct ivshm_chan, name), w }
	F(state, 4), F(generation, 4), F(sender_vm, 2), F(receiver_vm, 2),
	F(sender_pid, 4), F(src_port, 4), F(dst_port, 4),
	F(buff_offset, 8), F(buff_size, 4), F(sender_inc, 4),
	F(old_offset, 8), F(old_size, 4), F(peer_chan, 4), F(peer_gen, 4),
	F(head, 8), F(data_size, 8), F(head_touch, 8), F(tx_flags, 4),
	F(wake_tail, 8), F(tail, 8), F(rx_state, 4), F(rx_flags, 4),
	F(receiver_inc, 4), F(rx_peer_chan, 4), F(rx_peer_gen, 4),
	F(rx_event, 8),
#undef F
};

/* A value a forger would pick: small ones, the ones in the region now. */
static u64 pick(struct in *in, const struct ivshm_chan *ch)
{
	u8 kind = in8(in);
	u32 v = in32(in);

	switch (kind % 6) {
	case 0:
		return v % 8;				/* states, small ids */
	case 1:
		return ivshm_get32(&ch->generation) + v % 3 - 1;
	case 2:
		return v % L.max_channels;
	case 3:
		return (u64)(v % (L.nr_blocks + 2)) << IVSHM_BLOCK_SHIFT;
	case 4:
		return ivshm_get64(&ch->head) + (int32_t)v % 4096;
	default:
		return v;
	}
}

static void forge_field(struct in *in)
{
	u32 idx = in8(in) % L.max_channels, f = in8(in) % (sizeof(fields) / sizeof(fields[0]));
	struct ivshm_chan *ch = ivshm_chan(&L, idx);
	u8 *p = (u8 *)ch + fields[f].off;
	u64 v = pick(in, ch);

	T("vm2 writes field %u of channel %u: %#llx\n", f, idx,
	  (unsigned long long)v);
	if (fields[f].width == 2)
		ivshm_put16((__le16 *)p, (u16)v);
	else if (fields[f].width == 4)
		ivshm_put32((__le32 *)p, (u32)v);
	else
		ivshm_put64((__le64 *)p, v);
	deviated = true;
}

/* A whole connect request or answer, written without the lock or in a
 * slot that is not VM 2's, then announced.
 */
static void forge_request(struct in *in)
{
	u32 idx = in8(in) % L.max_channels;
	struct ivshm_chan *ch = ivshm_chan(&L, idx);

	u32 sender = in8(in) % 3;

	ivshm_put32(&ch->generation, (u32)pick(in, ch));
	ivshm_put16(&ch->sender_vm, sender);
	ivshm_put16(&ch->receiver_vm, S[0].vm);
	ivshm_put32(&ch->sender_inc, in8(in) % 2 ? S[1].inc : in32(in));

	ivshm_put32(&ch->src_port, in8(in));
	ivshm_put32(&ch->dst_port, in8(in) % 2 ? LISTEN_PORT : in8(in));
	ivshm_put64(&ch->buff_offset, pick(in, ch));
	ivshm_put32(&ch->buff_size, (u32)pick(in, ch));
	ivshm_put32(&ch->rx_state, in8(in) % 7);
	ivshm_put32(&ch->state, in8(in) % 6);
	ivshm_notify_mark(&L, S[0].vm, IVSHM_PEND_CTRL, idx);
	deviated = true;
}

static void forge_answer(struct in *in)
{
	struct conn *c = &S[0].c[in8(in) % NCONN];
	u32 idx = c->has_tx ? c->tx_idx : in8(in) % L.max_channels;
	struct ivshm_chan *ch = ivshm_chan(&L, idx);

	ivshm_put32(&ch->rx_peer_chan, (u32)pick(in, ch));
	ivshm_put32(&ch->rx_peer_gen, (u32)pick(in, ch));
	ivshm_put32(&ch->rx_state, in8(in) % 7);
	ivshm_notify_mark(&L, S[0].vm, IVSHM_PEND_CTRL, idx);
	deviated = true;
}

static void forge_other(struct in *in)
{
	u8 what = in8(in);

	deviated = true;
	switch (what % 4) {
	case 0:		/* every pending bit of VM 1 */
		for (u32 w = 0; w < L.pending_words; w++)
			ivshm_put64(ivshm_pending(&L, S[0].vm, IVSHM_PEND_CTRL) +
				    w, ~0ull);
		break;
	case 1:		/* the lock word names a live VM, or VM 1 itself */
		ivshm_put64(&ivshm_ctrl(&L)->lock,
			    IVSHM_LOCK_OWNER(in8(in) % 2 ? S[0].vm : S[1].vm,
					     in8(in) % 2 ? S[0].inc : S[1].inc));
		break;
	case 2:		/* bitmap words */
		ivshm_put64((__le64 *)(L.base + L.bitmap_off) +
			    in8(in) % ((L.nr_blocks + 63) / 64), in32(in));
		break;
	default:	/* the free count and active channels */
		ivshm_put32(&ivshm_ctrl(&L)->free_blocks, in32(in));
		ivshm_put32(&ivshm_ctrl(&L)->num_active_channel, in32(in));
		break;
	}
}

/* ------------------------------------------------------------------ */

enum op {
	OP_CONNECT,		/* side, port */
	OP_POLL,		/* side */
	OP_SEND,		/* side, conn, len */
	OP_RECV,		/* side, conn */
	OP_CLOSE,		/* side, conn, reset */
	OP_MOVE,		/* side, conn, blocks */
	OP_LISTEN,		/* side, on */
	OP_EXPIRE,		/* side: orphans time out */
	OP_FORGE_FIELD,		/* chan, field, value */
	OP_FORGE_REQUEST,
	OP_FORGE_ANSWER,
	OP_FORGE_OTHER,
	OP_REJOIN,		/* VM 2 rejoins */
	OP_STALL,		/* VM 2 declares VM 1 dead; VM 1 runs on */
	OP_NOTICE,		/* VM 1 finds out and joins again */
	OP_NR,
};

/* The region before an action of VM 1 while it stands declared dead. */
static u8 before[REGION];

static bool vm1_declared_dead(void)
{
	return !ivshm_peer_still_me(&L, S[0].vm, S[0].inc);
}

/* What VM 1 wrote since @before, but for bits taken from its own pending
 * sets: nothing, or die.
 */
static void check_wrote_nothing(u8 op)
{
	for (u32 k = 0; k < 2; k++) {
		const u8 *own = (const u8 *)ivshm_pending(&L, S[0].vm, k);
		size_t off = (size_t)(own - L.base);

		memcpy(before + off, own, L.pending_words * sizeof(u64));
	}
	if (!memcmp(before, L.base, REGION))
		return;
	for (size_t i = 0; i < REGION; i++)
		if (before[i] != L.base[i])
			die("vm1, declared dead, wrote byte %zu of the region in action %u",
			    i, op);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	int ops = 0;

	sim_setup();
	while (in.n && ops++ < CONN_MAX_OPS) {
		u8 op = in8(&in) % OP_NR;
		struct side *s = &S[in8(&in) % 2];
		struct conn *c = &s->c[in8(&in) % NCONN];
		u8 arg = in8(&in);
		bool fenced = s == &S[0] &&
			      (op <= OP_LISTEN || op == OP_EXPIRE) &&
			      vm1_declared_dead();

		T("op %u vm%u conn %ld arg %u\n", op, s->vm, (long)(c - s->c),
		  arg);
		/* VM 1 acts alone: its work is counted. */
		sim_accesses = 0;
		/* The time that passes first is everyone's: not watched. */
		if (fenced && op == OP_EXPIRE)
			sim_settle();
		if (fenced)
			memcpy(before, L.base, REGION);
		ivshm_access_fn = s == &S[0] ? sim_count_access : NULL;
		switch (op) {
		case OP_CONNECT:
			sim_connect(s, arg % 2 ? LISTEN_PORT : arg);
			break;
		case OP_POLL:
			sim_poll(s);
			break;
		case OP_SEND:
			sim_send(s, c, arg);
			break;
		case OP_RECV:
			sim_recv(s, c);
			break;
		case OP_CLOSE:
			if (c->st != C_FREE)
				sim_close(s, c, arg & 1);
			break;
		case OP_MOVE:
			sim_move(s, c, arg);
			break;
		case OP_LISTEN:
			s->listening = arg & 1;
			break;
		case OP_EXPIRE:
			if (fenced)
				sim_reap(s);
			else
				sim_expire(s);
			break;
		case OP_FORGE_FIELD:
			ivshm_access_fn = NULL;
			forge_field(&in);
			break;
		case OP_FORGE_REQUEST:
			ivshm_access_fn = NULL;
			forge_request(&in);
			break;
		case OP_FORGE_ANSWER:
			ivshm_access_fn = NULL;
			forge_answer(&in);
			break;
		case OP_FORGE_OTHER:
			ivshm_access_fn = NULL;
			forge_other(&in);
			break;
		case OP_REJOIN:
			ivshm_access_fn = NULL;
			sim_rejoin_peer();
			break;
		case OP_STALL:
			ivshm_access_fn = NULL;
			sim_stall_self();
			break;
		case OP_NOTICE:
			sim_rejoin_self();
			break;
		}
		ivshm_access_fn = NULL;
		if (fenced)
			check_wrote_nothing(op);
		if (sim_accesses > CONN_WORK_BOUND)
			die("action %u of vm%u made %llu region sim_accesses (bound %u)",
			    op, s->vm, (unsigned long long)sim_accesses,
			    CONN_WORK_BOUND);
		sim_check_private(&S[0]);
		sim_check_private(&S[1]);
	}
	sim_rejoin_self();
	sim_rejoin_peer();
	recovering = true;
	sim_settle();
	/* The reapers' period passes on both sides: orphans whose time is up
	 * are freed, and each audits its own name (a channel forged there
	 * holds room until its named VM's audit).
	 */
	sim_expire(&S[0]);
	sim_expire(&S[1]);
	sim_check_recovery();
	return 0;
}
