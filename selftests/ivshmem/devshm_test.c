// SPDX-License-Identifier: GPL-2.0
/*
 * The dev_shm pseudo device: its virtual peers appear to af_ivshmem as
 * devices of their own on one region, and its doorbells reach exactly the
 * peer and vector they name.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>

#include "kselftest_harness.h"
#include "ivshm_test.h"
#include "ivshm_nl.h"

#define NR_PEERS	4
#define NR_VECTORS	2
#define REGION_SIZE	(4 << 20)
/* Protocol v1 layout of a 4 MiB region (Documentation/protocol.md). */
#define REGION_DATA_BLOCKS	1008
#define REGION_CHANNELS		256
/* The control section, whose first word is the lock, on every size. */
#define REGION_CTRL_OFF		8192

/*
 * The harness's per-test timeout guards against hangs; it is no time
 * limit. rmmod under traffic four times, or a lock held for 3 s and the
 * reaper after it, take seconds on a loaded host.
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	180

/*
 * Wait for @dev's @vector count to reach @want: up to 10 s, far beyond a
 * doorbell's way on a loaded host, and a failure, not a hang, for one
 * that never comes.
 */
static long long wait_doorbells(const char *dev, unsigned int vector,
				long long want)
{
	uint64_t deadline = ivshm_now_ms() + 10000;
	long long n;

	do {
		n = ivshm_doorbells(dev, vector);
		if (n >= want)
			return n;
		ivshm_sleep_ms(5);
	} while (ivshm_now_ms() < deadline);
	return n;
}

static void snapshot(long long counts[NR_PEERS][NR_VECTORS])
{
	char dev[16];
	int p, v;

	for (p = 0; p < NR_PEERS; p++) {
		snprintf(dev, sizeof(dev), "ivshm%d", p);
		for (v = 0; v < NR_VECTORS; v++)
			counts[p][v] = ivshm_doorbells(dev, v);
	}
}

TEST(virtual_peers_are_devices)
{
	char dev[16], val[64];
	int p;

	for (p = 0; p < NR_PEERS; p++) {
		snprintf(dev, sizeof(dev), "ivshm%d", p);
		ASSERT_EQ(0, ivshm_dev_attr(dev, "info", "transport", val,
					    sizeof(val)));
		EXPECT_STREQ("dev_shm", val);
		EXPECT_EQ(p, ivshm_dev_attr_ll(dev, "info", "own_id"));
		EXPECT_EQ(REGION_SIZE,
			  ivshm_dev_attr_ll(dev, "info", "region_size"));
		EXPECT_EQ(NR_VECTORS, ivshm_dev_attr_ll(dev, "info", "vectors"));
		ASSERT_EQ(0, ivshm_dev_attr(dev, "info", "mode", val,
					    sizeof(val)));
		EXPECT_STREQ("doorbell", val);
	}
	snprintf(dev, sizeof(dev), "ivshm%d", NR_PEERS);
	ASSERT_EQ(-ENOENT, ivshm_dev_attr(dev, "info", "own_id", val,
					  sizeof(val)));
}

/* The first peer to register lays the region out, the others attach. */
TEST(region_laid_out_once)
{
	char dev[16], val[64];
	int p;

	for (p = 0; p < NR_PEERS; p++) {
		snprintf(dev, sizeof(dev), "ivshm%d", p);
		ASSERT_EQ(0, ivshm_dev_attr(dev, "info", "region", val,
					    sizeof(val)));
		EXPECT_STREQ(p ? "attached" : "initialised", val);
		EXPECT_EQ(1, ivshm_dev_attr_ll(dev, "info", "protocol"));
		EXPECT_EQ(REGION_DATA_BLOCKS,
			  ivshm_dev_attr_ll(dev, "info", "data_blocks"));
		EXPECT_EQ(REGION_CHANNELS,
			  ivshm_dev_attr_ll(dev, "info", "max_channels"));
	}
}

TEST(doorbell_reaches_only_its_target)
{
	long long before[NR_PEERS][NR_VECTORS], after[NR_PEERS][NR_VECTORS];
	int p, v;

	snapshot(before);
	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/ring", "0 2 1"));
	ASSERT_EQ(before[2][1] + 1, wait_doorbells("ivshm2", 1,
						   before[2][1] + 1));
	ivshm_sleep_ms(50);
	snapshot(after);
	for (p = 0; p < NR_PEERS; p++)
		for (v = 0; v < NR_VECTORS; v++)
			if (p != 2 || v != 1)
				EXPECT_EQ(before[p][v], after[p][v]);
}

TEST(core_ring_through_transport)
{
	long long sent = ivshm_dev_attr_ll("ivshm3", "doorbells", "rings_sent");
	long long got = ivshm_doorbells("ivshm1", 0);

	ASSERT_LE(0, sent);
	ASSERT_EQ(0, ivshm_write_file(IVSHM_DEBUGFS "/ivshm3/ring", "1 0"));
	ASSERT_EQ(got + 1, wait_doorbells("ivshm1", 0, got + 1));
	ASSERT_EQ(sent + 1,
		  ivshm_dev_attr_ll("ivshm3", "doorbells", "rings_sent"));
}

TEST(peer_rings_itself)
{
	long long got = ivshm_doorbells("ivshm0", 1);

	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/ring", "0 0 1"));
	ASSERT_EQ(got + 1, wait_doorbells("ivshm0", 1, got + 1));
}

TEST(bad_ring_targets_refused)
{
	long long errs = ivshm_dev_attr_ll("ivshm0", "doorbells", "ring_errors");

	ASSERT_EQ(-EINVAL, ivshm_write_file(IVSHM_DEBUGFS "/ivshm0/ring",
					    "4 0"));
	ASSERT_EQ(-EINVAL, ivshm_write_file(IVSHM_DEBUGFS "/ivshm0/ring",
					    "1 2"));
	ASSERT_EQ(-EINVAL, ivshm_write_file(IVSHM_DEBUGFS "/ivshm0/ring",
					    "70000 0"));
	ASSERT_EQ(-EINVAL, ivshm_write_file(IVSHM_DEBUGFS "/ivshm0/ring",
					    "one two"));
	ASSERT_EQ(errs + 2,
		  ivshm_dev_attr_ll("ivshm0", "doorbells", "ring_errors"));
	ASSERT_EQ(-EINVAL, ivshm_write_file(DEVSHM_DEBUGFS "/ring", "4 0 0"));
	ASSERT_EQ(-EINVAL, ivshm_write_file(DEVSHM_DEBUGFS "/ring", "0 1 9"));
}

TEST(coalesced_rings_are_not_lost)
{
	long long got = ivshm_doorbells("ivshm1", 0);
	long long n;
	int i;

	/*
	 * Rings coalesce like edge interrupts, so the count may grow by less
	 * than 100, but never by zero and never by more than 100.
	 */
	for (i = 0; i < 100; i++)
		ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/ring", "2 1 0"));
	n = wait_doorbells("ivshm1", 0, got + 1);
	ivshm_sleep_ms(50);
	n = ivshm_doorbells("ivshm1", 0);
	ASSERT_LT(got, n);
	ASSERT_GE(got + 100, n);
}

TEST(region_is_shared_and_bounded)
{
	char buf[16] = { 0 };
	int fd;

	fd = open(DEVSHM_DEBUGFS "/region", O_RDWR);
	ASSERT_LE(0, fd);
	ASSERT_EQ(8, pwrite(fd, "devshm!", 8, REGION_SIZE - 8));
	ASSERT_EQ(8, pread(fd, buf, 8, REGION_SIZE - 8));
	ASSERT_STREQ("devshm!", buf);
	/* Nothing past the end: short read, and a write is refused. */
	ASSERT_EQ(4, pread(fd, buf, 8, REGION_SIZE - 4));
	ASSERT_EQ(0, pread(fd, buf, 8, REGION_SIZE));
	ASSERT_EQ(-1, pwrite(fd, "x", 1, REGION_SIZE));
	ASSERT_EQ(ENOSPC, errno);
	close(fd);
}

TEST(bad_parameters_refused)
{
	ASSERT_EQ(0, ivshm_rmmod("dev_shm"));
	EXPECT_EQ(-EINVAL, ivshm_insmod("dev_shm", "peers=1"));
	EXPECT_EQ(-EINVAL, ivshm_insmod("dev_shm", "peers=65"));
	EXPECT_EQ(-EINVAL, ivshm_insmod("dev_shm", "size=12345"));
	EXPECT_EQ(-EINVAL, ivshm_insmod("dev_shm", "size=4096"));
	EXPECT_EQ(-EINVAL, ivshm_insmod("dev_shm", "vectors=0"));
	EXPECT_FALSE(ivshm_module_loaded("dev_shm"));

	/* A larger set of peers, then back to the default. */
	ASSERT_EQ(0, ivshm_insmod("dev_shm", "peers=8 size=1048576"));
	EXPECT_EQ(7, ivshm_dev_attr_ll("ivshm7", "info", "own_id"));
	EXPECT_EQ(1048576, ivshm_dev_attr_ll("ivshm7", "info", "region_size"));
	ASSERT_EQ(0, ivshm_rmmod("dev_shm"));
	ASSERT_EQ(0, ivshm_insmod("dev_shm", NULL));
	ASSERT_EQ(3, ivshm_dev_attr_ll("ivshm3", "info", "own_id"));
}

/*
 * Traffic between virtual peers that never stops: connections made,
 * used and closed in a loop, every error shrugged off, until killed.
 */
static void churn(int af, unsigned int from, unsigned int to,
		  unsigned int port)
{
	char buf[64] = "churn";

	for (;;) {
		int l = ivshm_listen_on(af, port, to + 1, 4), c = -1, a = -1;
		int i;

		if (l >= 0)
			c = ivshm_connect_to(af, to, port, from + 1);
		if (c >= 0)
			a = accept(l, NULL, NULL);
		for (i = 0; a >= 0 && i < 200; i++)
			if (send(c, buf, sizeof(buf), MSG_NOSIGNAL) < 0 ||
			    recv(a, buf, sizeof(buf), 0) < 0 ||
			    send(a, buf, sizeof(buf), MSG_NOSIGNAL) < 0 ||
			    recv(c, buf, sizeof(buf), 0) < 0)
				break;
		if (a >= 0)
			close(a);
		if (c >= 0)
			close(c);
		if (l >= 0)
			close(l);
		if (a < 0)
			usleep(1000);
	}
}

/*
 * dev_shm goes away with traffic on every peer: each peer's doorbells
 * stop before it is unregistered, whatever the others still ring, and
 * nothing runs on a peer after it is gone (the debug kernel's KASAN would
 * say so). rmmod completes, bounded, every time.
 */
TEST(rmmod_with_traffic_on_every_peer)
{
	int af = ivshm_family(), round, k;
	pid_t kid[3];

	ASSERT_LE(0, af);
	for (round = 0; round < 4; round++) {
		uint64_t t0;

		for (k = 0; k < 3; k++) {
			kid[k] = fork();
			ASSERT_LE(0, kid[k]);
			if (!kid[k]) {
				churn(af, k, (k + 1) % NR_PEERS, 7400 + k);
				_exit(0);
			}
		}
		ivshm_sleep_ms(300 + 200 * round);
		t0 = ivshm_now_ms();
		ASSERT_EQ(0, ivshm_rmmod("dev_shm"));
		/* Bounded: a wait for traffic that never stops would not
		 * end at all; 30 s is far beyond a loaded host's delays.
		 */
		TH_LOG("round %d: rmmod took %llu ms", round,
		       (unsigned long long)(ivshm_now_ms() - t0));
		EXPECT_GT(30000, ivshm_now_ms() - t0);
		for (k = 0; k < 3; k++) {
			kill(kid[k], SIGKILL);
			waitpid(kid[k], NULL, 0);
		}
		ASSERT_EQ(0, ivshm_insmod("dev_shm", NULL));
	}
}

/* A lock word that a live peer keeps changing: never stale, so never
 * broken; honest-looking, and held for longer than any caller waits.
 */
static void hold_lock(int fd, unsigned int ms)
{
	long long inc2 = ivshm_dev_attr_ll("ivshm2", "info", "incarnation");
	long long inc3 = ivshm_dev_attr_ll("ivshm3", "info", "incarnation");
	uint64_t end = ivshm_now_ms() + ms, word;
	int k = 0;

	while (ivshm_now_ms() < end) {
		word = k++ & 1 ? (uint64_t)inc3 << 32 | 4 : (uint64_t)inc2 << 32 | 3;
		if (pwrite(fd, &word, sizeof(word), REGION_CTRL_OFF) != sizeof(word))
			return;
		ivshm_sleep_ms(50);
	}
	word = 0;
	pwrite(fd, &word, sizeof(word), REGION_CTRL_OFF);
}

/*
 * Connections closed while another VM holds the control lock for longer
 * than a close waits: their channels are freed once it lets go, not kept
 * until the device joins again.
 */
TEST(channels_closed_while_the_lock_is_held_are_freed_later)
{
	int af = ivshm_family(), fd, l, c[4], a[4], k;
	long long free0, n = -1;
	uint64_t end;
	pid_t holder;

	ASSERT_LE(0, af);
	/* Nothing but these closes wants the lock meanwhile: no resizing. */
	ASSERT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE, 0));
	free0 = ivshm_dev_attr_ll("ivshm0", "info", "free_blocks");
	ASSERT_LT(0, free0);
	l = ivshm_listen_on(af, 7500, 2, 4);
	ASSERT_LE(0, l);
	for (k = 0; k < 4; k++) {
		c[k] = ivshm_connect_to(af, 1, 7500, 1);
		ASSERT_LE(0, c[k]);
		a[k] = accept(l, NULL, NULL);
		ASSERT_LE(0, a[k]);
		ASSERT_EQ(1, send(c[k], "x", 1, 0));
	}
	fd = open(DEVSHM_DEBUGFS "/region", O_RDWR);
	ASSERT_LE(0, fd);
	holder = fork();
	ASSERT_LE(0, holder);
	if (!holder) {
		/* The sockets must go when the parent closes them. */
		for (k = 0; k < 4; k++) {
			close(a[k]);
			close(c[k]);
		}
		close(l);
		hold_lock(fd, 3000);
		_exit(0);
	}
	ivshm_sleep_ms(200);
	for (k = 0; k < 4; k++) {
		close(a[k]);
		close(c[k]);
	}
	close(l);
	waitpid(holder, NULL, 0);
	close(fd);
	/* The reaper tries every second; give it many tries. */
	end = ivshm_now_ms() + 20000;
	do {
		n = ivshm_dev_attr_ll("ivshm0", "info", "free_blocks");
		if (n == free0)
			break;
		ivshm_sleep_ms(100);
	} while (ivshm_now_ms() < end);
	EXPECT_EQ(free0, n);
	EXPECT_EQ(0, ivshm_dev_attr_ll("ivshm0", "info", "active_channels"));
	EXPECT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE, 1));
}

TEST_HARNESS_MAIN
