/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What the hostile peer (hostile_peer.c) and its victim (hostile_test.c)
 * agree on. The peer runs in a guest without af_ivshmem and writes the
 * region through BAR2; the victim runs af_ivshmem in another guest and
 * traffic on loopback connections through the same region.
 *
 * The peer finds what to attack by ports, as anyone reading the channel
 * table could: the victim's target connection of phase K is the one from
 * port HOSTILE_PORT_TARGET + K to HOSTILE_PORT_LISTEN (HOSTILE_ROUNDS of
 * them in turn). Once it is done with a target, the peer says so on a connection of its own to
 * HOSTILE_PORT_REPORT, made by the protocol's rules, so that the victim
 * knows when to look at the outcome.
 */
#ifndef IVSHM_HOSTILE_H
#define IVSHM_HOSTILE_H

#include <stdint.h>

#define HOSTILE_PORT_LISTEN	6000	/* the victim's listener */
#define HOSTILE_PORT_FORGED	6001	/* the victim accepts forged connects */
#define HOSTILE_PORT_REPORT	6002	/* the peer reports progress here */
#define HOSTILE_PORT_TARGET	6100	/* + phase: that phase's target */
#define HOSTILE_PORT_BYSTANDER	6200	/* + n: connections left alone */
#define HOSTILE_PORT_GLOBAL	6300	/* open: the global attacks may start */

/*
 * Targeted phases, in order. Each attacks only the target connection's
 * two channels. FAIL phases must reset the target; SURVIVE phases rewrite
 * values the victim keeps privately, so the target must go on unharmed.
 */
enum hostile_phase {
	HP_HEAD_AHEAD,		/* head far past tail + size */
	HP_HEAD_BEHIND,		/* head moved back behind tail */
	HP_TAIL_PAST,		/* tail moved past head */
	HP_REC_LEN,		/* record headers: length beyond the ring */
	HP_REC_TYPE,		/* record headers: unknown type, flags */
	HP_REC_MOVED,		/* MOVED records pointing out of bounds */
	HP_STATE_FLIP,		/* states, flags, generations; first moves back */
	HP_FORGED_CLOSE,	/* CLOSED / RESET written by someone else */
	HP_DESC_REWRITE,	/* offsets, sizes, peer links rewritten */
	HP_MOVED_CHAIN,		/* MOVED records naming their own run, the
				 * head nudged one record at a time or
				 * published far ahead
				 */
	HP_NR_PHASES,
};

/* Does the victim's target connection have to fail in this phase? */
static inline int hostile_phase_fails(unsigned int phase)
{
	return phase != HP_DESC_REWRITE;
}

static const char *const hostile_phase_name[HP_NR_PHASES] = {
	"head-ahead", "head-behind", "tail-past", "record-length",
	"record-type", "record-moved", "state-flip", "forged-close",
	"descriptor-rewrite", "moved-chain",
};

/* Each phase attacks this many target connections, one after another. */
#define HOSTILE_ROUNDS		3

/* A progress report, the payload of one record on the report connection. */
struct hostile_report {
	uint32_t magic;		/* HOSTILE_REPORT_MAGIC */
	uint32_t phase;		/* the phase just finished */
	uint32_t round;		/* which of its HOSTILE_ROUNDS targets */
	uint32_t attacks;	/* writes made on it */
	uint32_t hit;		/* 1: the target left OPEN meanwhile */
};

#define HOSTILE_REPORT_MAGIC	0x484f5354	/* "HOST" */

#endif /* IVSHM_HOSTILE_H */
