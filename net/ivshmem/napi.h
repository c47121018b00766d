/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_NAPI_H
#define _IVSHM_NAPI_H

#include <linux/types.h>

struct ivshm_dev;

int ivshm_napi_init(struct ivshm_dev *idev);
void ivshm_napi_exit(struct ivshm_dev *idev);
void ivshm_napi_start(struct ivshm_dev *idev);
void ivshm_napi_stop(struct ivshm_dev *idev);
void ivshm_napi_kick(struct ivshm_dev *idev);

#endif /* _IVSHM_NAPI_H */
