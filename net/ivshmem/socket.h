/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_SOCKET_H
#define _IVSHM_SOCKET_H

#include <linux/types.h>

struct ivshm_dev;
struct ivshm_sock;
struct sock;

int ivshm_sock_init(int family);
void ivshm_sock_exit(void);

/* Called by the device's work (chan.c), in process context. */
struct sock *ivshm_sk(struct ivshm_sock *isk);
void ivshm_sock_event(struct ivshm_sock *isk, struct ivshm_dev *idev,
		      u32 idx, bool rx);
void ivshm_sock_request(struct ivshm_dev *idev, u32 idx);
void ivshm_sock_detach(struct ivshm_sock *isk, struct ivshm_dev *idev);
void ivshm_sock_peer_lost(struct ivshm_sock *isk, struct ivshm_dev *idev,
			  u32 vm);

#endif /* _IVSHM_SOCKET_H */
