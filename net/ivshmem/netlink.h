/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_NETLINK_H
#define _IVSHM_NETLINK_H

#include <linux/ivshmem_netlink.h>
#include <linux/types.h>

struct ivshm_dev;

/* A channel of ours, as its events describe it (ivshm_nl_chan_event()). */
struct ivshm_nl_chan {
	u32 idx;
	u32 sender, receiver;		/* VM ids */
	u32 size;			/* ring bytes */
	u32 sport, dport;		/* ports, with @ports */
	bool ports;
};

/* No channel: an IVSHMEM_CMD_PROTO_ERROR about the region as a whole. */
#define IVSHM_NL_NO_CHAN	U32_MAX

int ivshm_nl_init(void);
void ivshm_nl_exit(void);
void ivshm_nl_dev_init(struct ivshm_dev *idev);

void ivshm_nl_peer_event(struct ivshm_dev *idev, u8 cmd, u32 vm, u32 inc,
			 int state);
void ivshm_nl_chan_event(struct ivshm_dev *idev, u8 cmd,
			 const struct ivshm_nl_chan *c);
void ivshm_nl_proto_error(struct ivshm_dev *idev, u32 idx, const char *what);

#endif /* _IVSHM_NETLINK_H */
