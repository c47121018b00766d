/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * AF_IVSHMEM: a socket family for communication between virtual machines
 * that share memory through QEMU's ivshmem device.
 *
 * Address family number
 * ---------------------
 * Every address family number below AF_MAX is assigned in the kernel's
 * <linux/socket.h>, so an out-of-tree family has to borrow one that no
 * in-tree module registers. af_ivshmem.ko takes AF_IVSHMEM_DEFAULT unless
 * it is loaded with the "family" module parameter, and publishes the
 * number it registered in IVSHMEM_FAMILY_SYSFS. Programs should read that
 * file (libivshmem does) and fall back to AF_IVSHMEM_DEFAULT only when the
 * module is not loaded yet: socket(AF_IVSHMEM_DEFAULT, ...) loads it on
 * demand through the "net-pf-25" module alias.
 */
#ifndef _UAPI_LINUX_IVSHMEM_H
#define _UAPI_LINUX_IVSHMEM_H

/*
 * 25 is AF_WANPIPE, a number reserved for a driver that was never merged;
 * no in-tree module registers it on the 6.1 and 6.12 kernels.
 */
#define AF_IVSHMEM_DEFAULT	25
#define PF_IVSHMEM_DEFAULT	AF_IVSHMEM_DEFAULT

/* Text file holding the family number the loaded module registered. */
#define IVSHMEM_FAMILY_SYSFS	"/sys/module/af_ivshmem/parameters/family"

#endif /* _UAPI_LINUX_IVSHMEM_H */
