/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by the in-guest tests: module loading, the module's debugfs
 * files, the guest's kernel command line and raw PCI BAR access.
 *
 * The runner passes per-guest facts on the kernel command line as
 * "ivshm.KEY=VALUE" (role, mode, expected region size, run token), and
 * installs the modules under IVSHM_MODDIR.
 */
#ifndef IVSHM_TEST_H
#define IVSHM_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <linux/ivshmem.h>

#define IVSHM_MODDIR		"/lib/modules/ivshmem"
#define IVSHM_DEBUGFS		"/sys/kernel/debug/af_ivshmem"
#define DEVSHM_DEBUGFS		"/sys/kernel/debug/dev_shm"

/* Value of ivshm.KEY= on the kernel command line, or NULL. Static buffer. */
const char *ivshm_cmdline(const char *key);
/* Same, parsed as an unsigned number; @def when absent. */
unsigned long long ivshm_cmdline_ull(const char *key, unsigned long long def);

/* Load IVSHM_MODDIR/NAME.ko with @params; 0 or -errno. */
int ivshm_insmod(const char *name, const char *params);
/* Unload module @name without waiting; 0 or -errno. */
int ivshm_rmmod(const char *name);
/* Is module @name loaded? */
bool ivshm_module_loaded(const char *name);
/* References held on module @name (sockets pin af_ivshmem), or -1. */
long ivshm_module_refs(const char *name);

/* The family number af_ivshmem registered, or -1 when it is not loaded. */
int ivshm_family(void);

/*
 * Read "key: value" from a debugfs file of af_ivshmem device @dev (e.g.
 * "ivshm0", "info"). Returns 0 and copies the value, or -errno.
 */
int ivshm_dev_attr(const char *dev, const char *file, const char *key,
		   char *val, size_t len);
/* Same, parsed as a signed number; -1 on any failure. */
long long ivshm_dev_attr_ll(const char *dev, const char *file,
			    const char *key);
/* Doorbells received on @dev's @vector, -1 on failure. */
long long ivshm_doorbells(const char *dev, unsigned int vector);

/* Write @text to @path; 0 or -errno. */
int ivshm_write_file(const char *path, const char *text);

/* Sum of the counts of /proc/interrupts lines that end in @name, or -1. */
long long ivshm_proc_interrupts(const char *name);

/* Path of the first PCI device 1af4:1110, or NULL. Static buffer. */
const char *ivshm_pci_device(void);

/*
 * mmap BAR @bar of the ivshmem PCI device through sysfs. Returns the
 * mapping and its length in *@len, or NULL with errno set.
 */
void *ivshm_map_bar(int bar, size_t *len);

/* The AF_IVSHMEM address (family @af) of @port on VM @vm, device @dev. */
struct sockaddr_ivshmem ivshm_addr(int af, unsigned int vm, unsigned int port,
				   unsigned int dev);

/*
 * A SOCK_SEQPACKET socket of family @af listening on @port of every VM id
 * of device @dev (N + 1, or IVSHMEM_DEV_ANY) with @backlog; -1 on failure.
 */
int ivshm_listen_on(int af, unsigned int port, unsigned int dev, int backlog);
/* One connected through device @dev to @port on VM @vm; -1 on failure. */
int ivshm_connect_to(int af, unsigned int vm, unsigned int port,
		     unsigned int dev);
/* The port a socket is bound to, 0 on failure. */
unsigned int ivshm_local_port(int fd);

/* The control section, whose first word is the region's lock, on every
 * region size (Documentation/protocol.md).
 */
#define IVSHM_REGION_CTRL_OFF	8192

/*
 * Hold the region's control lock for @ms milliseconds through dev_shm's
 * debugfs "region" file @fd, as virtual peers 2 and 3 taking turns: a
 * lock word that keeps changing, so never stale to others, and held
 * longer than any caller waits. Then let it go. The devices named may
 * take it over (a word naming themselves is theirs to repair): the hold
 * then ends there, and the result is false.
 */
bool ivshm_hold_ctrl_lock(int fd, unsigned int ms);

/* The two ends of a connection, by address. */
struct ivshm_conn_ends {
	unsigned int vm, port;			/* ours */
	unsigned int peer_vm, peer_port;
};

/* The ends of the connected socket @fd. Return: 0 or -1 (errno set). */
int ivshm_conn_ends(int fd, struct ivshm_conn_ends *e);

/*
 * Call @fn with each line of the devices' debugfs "channels" files that
 * shows connection @e: @ours says whether it is our end's (our port, the
 * peer's address) or the peer's. Return: how many lines there were.
 */
int ivshm_conn_channels(const struct ivshm_conn_ends *e,
			void (*fn)(void *arg, unsigned int dev, bool ours,
				   const char *line),
			void *arg);

/* Milliseconds on the monotonic clock. */
uint64_t ivshm_now_ms(void);

/* Sleep @ms milliseconds. */
void ivshm_sleep_ms(unsigned int ms);

#endif /* IVSHM_TEST_H */
