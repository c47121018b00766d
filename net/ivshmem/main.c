// SPDX-License-Identifier: GPL-2.0
/*
 * af_ivshmem: sockets between virtual machines over QEMU's ivshmem device.
 *
 * Module entry and exit. The pieces are brought up in dependency order and
 * torn down in reverse: debugfs (diagnostics), the socket family, the
 * generic netlink family, then the PCI driver, whose devices need the rest
 * in place when they probe.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/net.h>
#include <linux/ivshmem.h>

#include "debugfs.h"
#include "device.h"
#include "netlink.h"
#include "pci.h"
#include "socket.h"

static int family = AF_IVSHMEM_DEFAULT;
module_param(family, int, 0444);
MODULE_PARM_DESC(family,
		 "address family number to register (default "
		 __stringify(AF_IVSHMEM_DEFAULT) ")");

static int __init ivshm_init(void)
{
	int ret;

	ivshm_debugfs_init();

	ret = ivshm_sock_init(family);
	if (ret)
		goto err_debugfs;

	ret = ivshm_nl_init();
	if (ret)
		goto err_sock;

	ret = ivshm_pci_init();
	if (ret)
		goto err_nl;

	return 0;

err_nl:
	ivshm_nl_exit();
err_sock:
	ivshm_sock_exit();
err_debugfs:
	ivshm_debugfs_exit();
	return ret;
}

static void __exit ivshm_exit(void)
{
	ivshm_pci_exit();
	ivshm_nl_exit();
	ivshm_sock_exit();
	ivshm_devices_exit();
	ivshm_debugfs_exit();
}

module_init(ivshm_init);
module_exit(ivshm_exit);

MODULE_DESCRIPTION("AF_IVSHMEM sockets over QEMU ivshmem shared memory");
MODULE_LICENSE("GPL");
MODULE_ALIAS_NETPROTO(AF_IVSHMEM_DEFAULT);
