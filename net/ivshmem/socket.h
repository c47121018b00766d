/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _IVSHM_SOCKET_H
#define _IVSHM_SOCKET_H

int ivshm_sock_init(int family);
void ivshm_sock_exit(void);

#endif /* _IVSHM_SOCKET_H */
