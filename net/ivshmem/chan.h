/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_CHAN_H
#define _IVSHM_CHAN_H

#include <linux/types.h>

#include "core.h"

struct ivshm_dev;
struct ivshm_sock;

/* A channel to open: the identity line ivshm_chan_open() writes into its
 * descriptor (the sender's VM and incarnation are filled in there), and
 * where it went.
 */
struct ivshm_chan_params {
	struct ivshm_desc d;
	/* results */
	u32 idx;
	u32 gen;
	u64 off;
};

int ivshm_ctrl_lock(struct ivshm_dev *idev);
int ivshm_ctrl_lock_nowait(struct ivshm_dev *idev);
void ivshm_ctrl_unlock_dev(struct ivshm_dev *idev);
int ivshm_chan_open(struct ivshm_dev *idev, struct ivshm_chan_params *p);
void ivshm_chan_close(struct ivshm_dev *idev, u32 idx,
		      const struct ivshm_runs *runs);
void ivshm_chan_drop(struct ivshm_dev *idev,
		     const struct ivshm_chan_params *p);
int ivshm_chan_publish(struct ivshm_dev *idev, u32 idx, u32 gen, u32 inc,
		       u32 state);
void ivshm_chan_runs(const struct ivshm_ring *r, u32 gen, u32 inc,
		     u32 receiver, struct ivshm_runs *runs);
int ivshm_chan_move(struct ivshm_dev *idev, u32 idx, u32 gen, u32 inc,
		    struct ivshm_ring *r, u32 size, u32 keep, long timeo);
int ivshm_chan_move_done(struct ivshm_dev *idev, u32 idx, u32 gen, u32 inc,
			 struct ivshm_ring *r, long timeo);
/* ivshm_notify() results */
enum {
	IVSHM_NOTIFY_NONE,		/* no such VM or channel */
	IVSHM_NOTIFY_SET,		/* bit set; the VM polls already */
	IVSHM_NOTIFY_RANG,		/* bit set and the doorbell rung */
};

int ivshm_notify(struct ivshm_dev *idev, u32 vm, u32 idx, u32 set);

int ivshm_slot_set(struct ivshm_dev *idev, u32 idx, bool rx,
		   struct ivshm_sock *isk);
void ivshm_slot_leave_tx(struct ivshm_dev *idev, u32 idx,
			 struct ivshm_sock *isk);
bool ivshm_slot_leave_rx(struct ivshm_dev *idev, u32 idx, u32 gen, u32 ack,
			 struct ivshm_sock *isk);
bool ivshm_slot_answer(struct ivshm_dev *idev, u32 idx, u32 gen, u32 answer);
bool ivshm_slot_accept(struct ivshm_dev *idev, u32 idx, u32 gen,
		       const struct ivshm_hs_reply *back);
void ivshm_slot_get(struct ivshm_dev *idev, u32 idx,
		    struct ivshm_sock *isk[2]);
void ivshm_slot_put(struct ivshm_sock *isk[2]);
void ivshm_slot_orphan(struct ivshm_dev *idev, u32 idx,
		       const struct ivshm_runs *runs, struct ivshm_sock *isk);

void ivshm_orphan_expire(struct ivshm_dev *idev, u32 idx);
void ivshm_ctrl_kick(struct ivshm_dev *idev);
void ivshm_conn_kick(struct ivshm_dev *idev);
void ivshm_conn_kick_all(struct ivshm_dev *idev);
int ivshm_conn_init(struct ivshm_dev *idev);
void ivshm_conn_exit(struct ivshm_dev *idev);

#endif /* _IVSHM_CHAN_H */
