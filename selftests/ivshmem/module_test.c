// SPDX-License-Identifier: GPL-2.0
/*
 * Module lifetime and socket family registration: what a user sees when
 * af_ivshmem is loaded, unloaded, reloaded and misconfigured.
 *
 * Each test leaves the modules as it found them (af_ivshmem loaded with
 * default parameters, dev_shm loaded if it was), so the tests run in any
 * placement and in any order.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/ivshmem.h>

#include "kselftest_harness.h"
#include "ivshm_test.h"

#define MODPROBE_PATH	"/proc/sys/kernel/modprobe"

FIXTURE(module) {
	bool had_devshm;
	char modprobe[256];
};

/*
 * Take the modules down to nothing: unload dev_shm (it depends on
 * af_ivshmem), then af_ivshmem. On-demand loading is switched off for the
 * test so that "no family" really is observed instead of a fresh load
 * through the net-pf alias.
 */
FIXTURE_SETUP(module)
{
	FILE *f;

	self->had_devshm = ivshm_module_loaded("dev_shm");
	ASSERT_TRUE(ivshm_module_loaded("af_ivshmem"));

	f = fopen(MODPROBE_PATH, "r");
	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(self->modprobe, sizeof(self->modprobe), f));
	fclose(f);
	self->modprobe[strcspn(self->modprobe, "\n")] = '\0';
	ASSERT_EQ(0, ivshm_write_file(MODPROBE_PATH, "/nonexistent"));

	if (self->had_devshm)
		ASSERT_EQ(0, ivshm_rmmod("dev_shm"));
}

FIXTURE_TEARDOWN(module)
{
	if (!ivshm_module_loaded("af_ivshmem"))
		EXPECT_EQ(0, ivshm_insmod("af_ivshmem", NULL));
	if (self->had_devshm && !ivshm_module_loaded("dev_shm"))
		EXPECT_EQ(0, ivshm_insmod("dev_shm", NULL));
	EXPECT_EQ(0, ivshm_write_file(MODPROBE_PATH, self->modprobe));
}

static int try_socket(int family, int type, int protocol)
{
	int fd = socket(family, type, protocol);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

TEST_F(module, family_registered)
{
	ASSERT_EQ(AF_IVSHMEM_DEFAULT, ivshm_family());
	ASSERT_EQ(0, try_socket(AF_IVSHMEM_DEFAULT, SOCK_SEQPACKET, 0));
	ASSERT_EQ(0, try_socket(AF_IVSHMEM_DEFAULT,
				SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK,
				0));
}

TEST_F(module, other_types_refused)
{
	ASSERT_EQ(-ESOCKTNOSUPPORT,
		  try_socket(AF_IVSHMEM_DEFAULT, SOCK_STREAM, 0));
	ASSERT_EQ(-ESOCKTNOSUPPORT,
		  try_socket(AF_IVSHMEM_DEFAULT, SOCK_DGRAM, 0));
	ASSERT_EQ(-ESOCKTNOSUPPORT,
		  try_socket(AF_IVSHMEM_DEFAULT, SOCK_RAW, 0));
}

TEST_F(module, other_protocols_refused)
{
	ASSERT_EQ(-EPROTONOSUPPORT,
		  try_socket(AF_IVSHMEM_DEFAULT, SOCK_SEQPACKET, 1));
	ASSERT_EQ(-EPROTONOSUPPORT,
		  try_socket(AF_IVSHMEM_DEFAULT, SOCK_SEQPACKET, -1));
}

TEST_F(module, family_gone_after_rmmod)
{
	ASSERT_EQ(0, ivshm_rmmod("af_ivshmem"));
	ASSERT_FALSE(ivshm_module_loaded("af_ivshmem"));
	ASSERT_EQ(-1, ivshm_family());
	ASSERT_EQ(-EAFNOSUPPORT,
		  try_socket(AF_IVSHMEM_DEFAULT, SOCK_SEQPACKET, 0));

	ASSERT_EQ(0, ivshm_insmod("af_ivshmem", NULL));
	ASSERT_EQ(0, try_socket(AF_IVSHMEM_DEFAULT, SOCK_SEQPACKET, 0));
}

TEST_F(module, open_socket_pins_module)
{
	int fd = socket(AF_IVSHMEM_DEFAULT, SOCK_SEQPACKET, 0);
	int ret;

	ASSERT_LE(0, fd);
	ret = ivshm_rmmod("af_ivshmem");
	EXPECT_TRUE(ret == -EAGAIN || ret == -EBUSY) {
		TH_LOG("rmmod with an open socket returned %d", ret);
	}
	EXPECT_TRUE(ivshm_module_loaded("af_ivshmem"));
	close(fd);
	ASSERT_EQ(0, ivshm_rmmod("af_ivshmem"));
}

TEST_F(module, family_parameter)
{
	int alt = 19;	/* AF_ECONET, removed from the kernel long ago */

	ASSERT_EQ(0, ivshm_rmmod("af_ivshmem"));
	ASSERT_EQ(0, ivshm_insmod("af_ivshmem", "family=19"));
	ASSERT_EQ(alt, ivshm_family());
	ASSERT_EQ(0, try_socket(alt, SOCK_SEQPACKET, 0));
	ASSERT_EQ(-EAFNOSUPPORT,
		  try_socket(AF_IVSHMEM_DEFAULT, SOCK_SEQPACKET, 0));
	ASSERT_EQ(0, ivshm_rmmod("af_ivshmem"));
}

TEST_F(module, family_clash_refused)
{
	ASSERT_EQ(0, ivshm_rmmod("af_ivshmem"));
	/* AF_UNIX (1) and AF_INET (2) are always registered. */
	ASSERT_EQ(-EEXIST, ivshm_insmod("af_ivshmem", "family=1"));
	ASSERT_FALSE(ivshm_module_loaded("af_ivshmem"));
	ASSERT_EQ(-EEXIST, ivshm_insmod("af_ivshmem", "family=2"));
	ASSERT_FALSE(ivshm_module_loaded("af_ivshmem"));
	/* AF_UNIX still works: nothing was taken from it. */
	ASSERT_EQ(0, try_socket(AF_UNIX, SOCK_SEQPACKET, 0));
}

TEST_F(module, family_out_of_range_refused)
{
	ASSERT_EQ(0, ivshm_rmmod("af_ivshmem"));
	ASSERT_EQ(-EINVAL, ivshm_insmod("af_ivshmem", "family=0"));
	ASSERT_EQ(-EINVAL, ivshm_insmod("af_ivshmem", "family=-3"));
	ASSERT_EQ(-EINVAL, ivshm_insmod("af_ivshmem", "family=4096"));
	ASSERT_FALSE(ivshm_module_loaded("af_ivshmem"));
}

TEST_F(module, reload_cycles)
{
	int i;

	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, ivshm_rmmod("af_ivshmem"));
		ASSERT_EQ(0, ivshm_insmod("af_ivshmem", NULL));
		ASSERT_EQ(0, try_socket(AF_IVSHMEM_DEFAULT, SOCK_SEQPACKET, 0));
	}
}

TEST_HARNESS_MAIN
