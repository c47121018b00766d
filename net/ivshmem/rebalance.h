/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_REBALANCE_H
#define _IVSHM_REBALANCE_H

#include <linux/types.h>

struct ivshm_dev;

/* What one rebalancing pass allows the channels it resizes. */
struct ivshm_rebal {
	u32 min;			/* bytes: idle channels shrink to this */
	u32 max;			/* bytes: no channel grows past this */
	u32 share;			/* bytes: the fair share of a full one */
	u32 keep;			/* blocks a growth leaves free */
	unsigned long idle;		/* jiffies without a record: idle */
};

u32 ivshm_rebal_initial(struct ivshm_dev *idev);
void ivshm_rebal_start(struct ivshm_dev *idev);
void ivshm_rebal_stop(struct ivshm_dev *idev);
void ivshm_rebal_doorbell(struct ivshm_dev *idev);
void ivshm_rebal_params_changed(struct ivshm_dev *idev);

#endif /* _IVSHM_REBALANCE_H */
