/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_PEER_H
#define _IVSHM_PEER_H

struct ivshm_dev;

void ivshm_liveness_start(struct ivshm_dev *idev);
void ivshm_liveness_stop(struct ivshm_dev *idev);

#endif /* _IVSHM_PEER_H */
