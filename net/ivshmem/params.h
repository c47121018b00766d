/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_PARAMS_H
#define _IVSHM_PARAMS_H

#include <linux/seqlock.h>
#include <linux/types.h>

struct ivshm_dev;

/* The tunables of one device (params.c). Sizes are bytes, whole blocks. */
struct ivshm_params {
	bool rebalance;			/* resize channels by their traffic */
	u32 rebalance_interval;		/* doorbells between passes, 0: time only */
	u32 rebalance_ms;		/* polled devices: ms between passes */
	u32 rebalance_idle_ms;		/* doorbell devices: longest ms between */
	u32 chan_initial;		/* a new channel, unless SO_SNDBUF */
	u32 chan_min;			/* an idle channel shrinks to */
	u32 chan_max;			/* a busy channel grows to at most */
	u32 poll_min_us;		/* polled devices: interval after work */
	u32 poll_max_us;		/* ... longest idle interval */
	u32 coalesce_us;		/* bulk transfers: poll interval, 0: off */
	u32 coalesce_bulk;		/* bytes waiting that start a bulk period */
	u32 coalesce_idle_us;		/* a bulk period ends this long after */
	u32 peer_timeout_ms;		/* a peer silent this long is dead */
};

/* Limits a device's parameters must keep, checked by ivshm_params_check()
 * and by the netlink policy (netlink.c).
 */
#define IVSHM_P_INTERVAL_MAX	1000000u
#define IVSHM_P_MS_MAX		60000u
#define IVSHM_P_IDLE_MS_MAX	600000u
#define IVSHM_P_POLL_US_MAX	1000000u
#define IVSHM_P_COALESCE_US_MAX	100000u
#define IVSHM_P_IDLE_US_MAX	10000000u
#define IVSHM_P_PEER_MS_MIN	500u
#define IVSHM_P_PEER_MS_MAX	3600000u

void ivshm_params_init(struct ivshm_dev *idev);
void ivshm_params_read(struct ivshm_dev *idev, struct ivshm_params *out);
void ivshm_params_write(struct ivshm_dev *idev, const struct ivshm_params *p);
const char *ivshm_params_check(const struct ivshm_params *p, int *bad);
u32 ivshm_params_default_ring(void);

#endif /* _IVSHM_PARAMS_H */
