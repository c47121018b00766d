/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The input format of region_fuzz, shared with mkcorpus.c, which writes the
 * seed corpus in it.
 *
 * Byte 0 chooses the mode and the region size:
 *   bits 0-2  size = 64 KiB << (value % 5), so 64 KiB .. 1 MiB
 *   bit 7     raw mode: the rest of the input is the region itself, copied
 *             over a zeroed region from offset 0; the fuzzer then opens it,
 *             attaches a reader to every channel, drains, sends, allocates.
 *
 * Script mode (bit 7 clear): the harness initialises a valid region, makes
 * VMs 0, 1 (sender) and 2 (receiver) alive, then runs at most FZ_MAX_OPS
 * operations. Each starts with an opcode byte (taken modulo FZ_OP_NR) and
 * continues with its arguments; an input that runs out reads zeroes, and
 * the script ends when the input does. Arguments, in order:
 */
#ifndef _REGION_FUZZ_H
#define _REGION_FUZZ_H

#define FZ_RAW			0x80
#define FZ_SIZE(code)		((64u << 10) << ((code) % 5))

#define FZ_MAX_OPS		256
#define FZ_NCHAN		4	/* channels the harness drives */

#define FZ_VM_INIT		0	/* initialised the region */
#define FZ_VM_TX		1	/* sender of every harness channel */
#define FZ_VM_RX		2	/* receiver of every harness channel */
#define FZ_VM_RAW		3	/* our id in raw mode */

enum fz_op {
	FZ_OP_ATTACH,		/* vm, size-sel (%8: 1 half, 2 -4K, 3 zero, 4 32K, else ours) */
	FZ_OP_LOCK,		/* vm, inc-sel (bit 7: u8 bogus incarnation follows) */
	FZ_OP_UNLOCK,		/* - : release what FZ_OP_LOCK took */
	FZ_OP_PEER,		/* vm, state, inc-delta: a peer (re)attaches or dies */
	FZ_OP_ALLOC,		/* nblocks-sel: a spare run */
	FZ_OP_FREE,		/* spare index: give a spare run back */
	FZ_OP_FREE_RAW,		/* block u8, nblocks-sel: free any run */
	FZ_OP_REBUILD,		/* - : ivshm_blocks_rebuild() under the lock */
	FZ_OP_CHAN_NEW,		/* h, nblocks-sel: channel h set up and accepted */
	FZ_OP_CHAN_CLOSE,	/* h: runs freed, slot freed */
	FZ_OP_CHAN_FREE_RAW,	/* idx u8: ivshm_chan_free() of any slot */
	FZ_OP_TX,		/* h, len-sel (+arg), ctl: bit0 MORE, bit1 defer commit */
	FZ_OP_TX_COMMIT,	/* h: commit a deferred reservation */
	FZ_OP_RX,		/* h, n: peek/release up to n records */
	FZ_OP_MOVE,		/* h, nblocks-sel, ctl (bit 0: first an impossible run) */
	FZ_OP_PENDING,		/* vm, chan, take: pending_set (+ take) */
	FZ_OP_FOREIGN,		/* idx u8 (>= 0xf0: past the table), n: reader on any slot */
	FZ_OP_FORGE,		/* h, nrec, recs: the attacker produces into h's ring */
	FZ_OP_ATTACK,		/* kind, ...: attacker writes, see enum fz_attack */
	FZ_OP_MOVE_DONE,	/* h: ivshm_tx_move_done(), the old run freed */
	FZ_OP_NR
};

/* Value selector "val": a byte, then
 *   0: 0   1: ~0   2: u64   3: u8   4: ref + s8   5: ref + 8 * s16
 *   6: ref ^ BIT(u8 % 64)   7: u32
 * where ref is a value the field plausibly holds (a counter, a size).
 * Width selector "w": a byte, 1 << (byte % 4) bytes.
 */
enum fz_attack {
	FZ_AT_HDR,		/* off u8 (x4, mod 128), w, val */
	FZ_AT_PEER,		/* vm, off u8 (x4, mod 64), w, val */
	FZ_AT_CTRL,		/* off u8 (x4, mod 64), w, val */
	FZ_AT_BITMAP,		/* word u8, val */
	FZ_AT_PENDING,		/* vm, word u8, val */
	FZ_AT_CHAN,		/* chan-sel (bit 7: raw slot, else harness h), off u8 (x4, mod 192), w, val */
	FZ_AT_HEAD,		/* h, val (ref: the reader's position) */
	FZ_AT_TAIL,		/* h, val (ref: the writer's position) */
	FZ_AT_RING,		/* h, side (0 rx run, 1 tx run), off u16, n u8 (%32+1), n bytes */
	FZ_AT_BLOB,		/* off u32 (mod size), n u8 (%64+1), n bytes */
	FZ_AT_FILL,		/* off u8 (x4, mod 192), w, val: every channel slot */
	FZ_AT_NR
};

/* len-sel of FZ_OP_TX: a byte s; by s >> 6:
 *   0: s & 63   1: u16   2: max_record - u8   3: max_record + u8 (too big)
 * nblocks-sel: a byte v; v < 0xc0: 1 + (v & 7), else (v - 0xc0) * 8 (0 or
 * often too many).
 * Forged record (FZ_OP_FORGE), each: kind u8, by kind % 4:
 *   0: DATA, len u8, flags u8   1: DATA, len u16, flags u8
 *   2: MOVED, flags u8 (bit 7: MORE, invalid), to block u8
 *      (mod nr_blocks), nblocks u8 (%4+1)   3: raw u64 word
 * then the head is set to the end of what was forged (val, ref that end).
 */

#endif /* _REGION_FUZZ_H */
