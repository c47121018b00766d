/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_DEBUGFS_H
#define _IVSHM_DEBUGFS_H

struct ivshm_dev;

void ivshm_debugfs_init(void);
void ivshm_debugfs_exit(void);
void ivshm_debugfs_dev_add(struct ivshm_dev *idev);
void ivshm_debugfs_dev_remove(struct ivshm_dev *idev);

#endif /* _IVSHM_DEBUGFS_H */
