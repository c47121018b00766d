// SPDX-License-Identifier: GPL-2.0
/*
 * The dev_shm pseudo device: its virtual peers appear to af_ivshmem as
 * devices of their own on one region, and its doorbells reach exactly the
 * peer and vector they name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
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

/* No network interface: nothing for a network manager to configure, and
 * no "ip link set down" that would not stop the sockets.
 */
TEST(devices_are_no_network_interfaces)
{
	struct dirent *de;
	DIR *d = opendir("/sys/class/net");

	ASSERT_LE(0, ivshm_dev_attr_ll("ivshm0", "info", "own_id"));
	ASSERT_NE(NULL, d);
	while ((de = readdir(d)))
		EXPECT_NE(0, strncmp(de->d_name, "ivshm", 5))
			TH_LOG("network interface %s", de->d_name);
	closedir(d);
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
		ivshm_hold_ctrl_lock(fd, 3000);
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

/*
 * A sender that closes with MOVED records before its last records, played
 * by the test: virtual peer 1 connects to a listener on peer 0 and is then
 * frozen (dev_shm "freeze"), so that its kernel writes nothing more to its
 * channel, and the test writes that channel through dev_shm "region", as
 * the sender would have. The runs named by the MOVED records are quarters
 * of the channel's own run, blocks the sender holds. Everything the reader
 * may load is staged by the heads the test publishes: a reader follows one
 * MOVED record per call, and at most one per head it loaded (ring.c).
 * Nothing may read the reader's head meanwhile: debugfs "channels" and
 * CHAN_GET refresh it, so the channel is found before anything is forged.
 * Afterwards the channel's counters are set back to what the frozen
 * sender's kernel knows (nothing sent), so that it finds nothing wrong
 * once it goes on.
 */
/* Offsets of protocol v1 (net/ivshmem/core/proto.h, Documentation/protocol.md). */
#define HDR_PENDING_OFF		56
#define HDR_CHAN_OFF		64
#define HDR_DATA_OFF		72
#define CHAN_SIZE		192
#define CHAN_STATE		0
#define CHAN_GENERATION		4
#define CHAN_SENDER_VM		8
#define CHAN_RECEIVER_VM	10
#define CHAN_BUFF_OFFSET	24
#define CHAN_BUFF_SIZE		32
#define CHAN_OLD_SIZE		48
#define CHAN_HEAD		64
#define CHAN_HEAD_TOUCH		80
#define CHAN_TAIL		128
#define CHAN_OPEN		3
#define CHAN_CLOSED		4
#define REC_DATA		1
#define REC_MOVED		2
#define REC_HDR			8
#define MOVED_NEED		(REC_HDR + 16)
#define FM_PORT			7600

FIXTURE(forged_moves) {
	int af, region, l, s, r;
	bool frozen, forged, nl_off;
	uint64_t chan, data, pending, pos, touch, run, quarter;
	uint32_t idx, gen;
	long long proto0, proto1, active0;
};

static uint64_t rd64(int fd, uint64_t off)
{
	uint64_t v = 0;

	if (pread(fd, &v, sizeof(v), off) != sizeof(v))
		return ~0ull;
	return v;
}

static uint32_t rd32(int fd, uint64_t off)
{
	uint32_t v = 0;

	if (pread(fd, &v, sizeof(v), off) != sizeof(v))
		return ~0u;
	return v;
}

static int wr(int fd, uint64_t off, const void *p, size_t len)
{
	return pwrite(fd, p, len, off) == (ssize_t)len ? 0 : -1;
}

static int wr64(int fd, uint64_t off, uint64_t v)
{
	return wr(fd, off, &v, sizeof(v));
}

static int wr32(int fd, uint64_t off, uint32_t v)
{
	return wr(fd, off, &v, sizeof(v));
}

/* Record @seq: its length, and byte @i of its payload. */
static size_t fm_len(unsigned int seq)
{
	return 16 + (seq * 37) % 300;
}

static unsigned char fm_byte(unsigned int seq, size_t i)
{
	return (unsigned char)(seq * 131 + i * 7 + 1);
}

/* Data-area offset of run @run, @at bytes in: the region offset. */
static uint64_t fm_at(const FIXTURE_DATA(forged_moves) *self, uint64_t run,
		      uint64_t at)
{
	return self->data + run + at;
}

/*
 * Write records @first .. @first + @count - 1 at @at bytes into @run;
 * returns the bytes written (headers and padding included), 0 on failure.
 */
static uint64_t forge_records(FIXTURE_DATA(forged_moves) *self, uint64_t run,
			      uint64_t at, unsigned int first,
			      unsigned int count)
{
	unsigned char buf[REC_HDR + 512];
	uint64_t done = 0;
	unsigned int k;

	for (k = first; k < first + count; k++) {
		size_t len = fm_len(k), need = REC_HDR + ((len + 7) & ~7ul), i;
		uint64_t word = (uint64_t)len | (uint64_t)REC_DATA << 32;

		memset(buf, 0, sizeof(buf));
		memcpy(buf, &word, 8);
		for (i = 0; i < len; i++)
			buf[REC_HDR + i] = fm_byte(k, i);
		if (wr(self->region, fm_at(self, run, at + done), buf, need))
			return 0;
		done += need;
		self->touch++;
	}
	return done;
}

/* A MOVED record at @at bytes into @run naming the run @to of @size. */
static int forge_moved(FIXTURE_DATA(forged_moves) *self, uint64_t run,
		       uint64_t at, uint64_t to, uint32_t size)
{
	uint64_t rec[3] = { 16 | (uint64_t)REC_MOVED << 32, to, size };

	self->touch++;
	return wr(self->region, fm_at(self, run, at), rec, sizeof(rec));
}

/* Publish the head: everything written so far, @self->pos bytes. */
static int fm_publish(FIXTURE_DATA(forged_moves) *self)
{
	if (wr64(self->region, self->chan + CHAN_HEAD_TOUCH, self->touch))
		return -1;
	return wr64(self->region, self->chan + CHAN_HEAD, self->pos);
}

/* CLOSED, announced on the reader's control set, as the sender does. */
static int fm_close(FIXTURE_DATA(forged_moves) *self)
{
	uint64_t w = self->pending + (uint64_t)(self->idx / 64) * 8, bits;

	if (wr32(self->region, self->chan + CHAN_STATE, CHAN_CLOSED))
		return -1;
	/* Only peer 0 takes bits from its set, and it only clears them: a
	 * bit it took meanwhile and set again costs an event, nothing more.
	 */
	bits = rd64(self->region, w) | 1ull << (self->idx % 64);
	if (wr64(self->region, w, bits))
		return -1;
	return ivshm_write_file(DEVSHM_DEBUGFS "/ring", "1 0 0");
}

/* Wait for the reader to see the close (POLLRDHUP), up to 10 s. */
static bool fm_wait_rdhup(int fd)
{
	uint64_t end = ivshm_now_ms() + 10000;
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	do {
		if (poll(&p, 1, 100) > 0 && (p.revents & POLLRDHUP))
			return true;
		ivshm_sleep_ms(5);
	} while (ivshm_now_ms() < end);
	return false;
}

/*
 * Read records until recv returns 0 or fails: each must be @next, whole
 * and intact. Returns how many came; *@err is errno of a failed recv,
 * or -1 for a wrong record.
 */
static unsigned int fm_read(int fd, unsigned int next, int *err)
{
	unsigned char buf[1024];
	unsigned int got = 0;
	ssize_t n;
	size_t i;

	*err = 0;
	for (;;) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0)
			return got;
		if (n < 0) {
			*err = errno;
			return got;
		}
		if ((size_t)n != fm_len(next)) {
			*err = -1;
			return got;
		}
		for (i = 0; i < (size_t)n; i++)
			if (buf[i] != fm_byte(next, i)) {
				*err = -1;
				return got;
			}
		next++;
		got++;
	}
}

/* Read record @seq alone. */
static bool fm_read_one(int fd, unsigned int seq)
{
	unsigned char buf[1024];
	ssize_t n = recv(fd, buf, sizeof(buf), 0);
	size_t i;

	if (n < 0 || (size_t)n != fm_len(seq))
		return false;
	for (i = 0; i < (size_t)n; i++)
		if (buf[i] != fm_byte(seq, i))
			return false;
	return true;
}

/* The reader's channel on peer 0: "chan IDX rx port FM_PORT peer 1:...". */
static int fm_find_chan(uint32_t *idx)
{
	char line[1024];
	unsigned int i, port, vm;
	FILE *f = fopen(IVSHM_DEBUGFS "/ivshm0/channels", "r");
	int ret = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "chan %u rx port %u peer %u:", &i, &port,
			   &vm) == 3 && port == FM_PORT && vm == 1) {
			*idx = i;
			ret = 0;
		}
	fclose(f);
	return ret;
}

FIXTURE_SETUP(forged_moves)
{
	struct timeval tv = { .tv_sec = 10 };

	self->l = self->s = self->r = self->region = -1;
	self->af = ivshm_family();
	ASSERT_LE(0, self->af);
	/* No resize of the sender's channel before the freeze. */
	ASSERT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE, 0));
	self->nl_off = true;
	self->proto0 = ivshm_dev_attr_ll("ivshm0", "doorbells", "proto_errors");
	self->proto1 = ivshm_dev_attr_ll("ivshm1", "doorbells", "proto_errors");
	self->active0 = ivshm_dev_attr_ll("ivshm0", "info", "active_channels");
	ASSERT_LE(0, self->proto0);
	ASSERT_LE(0, self->proto1);
	self->region = open(DEVSHM_DEBUGFS "/region", O_RDWR);
	ASSERT_LE(0, self->region);
	self->data = rd64(self->region, HDR_DATA_OFF);
	/* Peer 0's control set comes first: (vm 0 * 2 sets + CTRL 0). */
	self->pending = rd64(self->region, HDR_PENDING_OFF);

	self->l = ivshm_listen_on(self->af, FM_PORT, 1, 4);
	ASSERT_LE(0, self->l);
	self->s = ivshm_connect_to(self->af, 0, FM_PORT, 2);
	ASSERT_LE(0, self->s);
	self->r = accept(self->l, NULL, NULL);
	ASSERT_LE(0, self->r);
	ASSERT_EQ(0, setsockopt(self->r, SOL_SOCKET, SO_RCVTIMEO, &tv,
				sizeof(tv)));
	ASSERT_EQ(0, fm_find_chan(&self->idx));
	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "1 1"));
	self->frozen = true;

	self->chan = rd64(self->region, HDR_CHAN_OFF) +
		     (uint64_t)self->idx * CHAN_SIZE;
	ASSERT_EQ(CHAN_OPEN, rd32(self->region, self->chan + CHAN_STATE));
	ASSERT_EQ(1, rd32(self->region, self->chan + CHAN_SENDER_VM) & 0xffff);
	ASSERT_EQ(0, rd32(self->region, self->chan + CHAN_RECEIVER_VM) & 0xffff);
	self->gen = rd32(self->region, self->chan + CHAN_GENERATION);
	/* Nothing sent, nothing moved: the reader is at 0 of the run. */
	ASSERT_EQ(0, rd64(self->region, self->chan + CHAN_HEAD));
	ASSERT_EQ(0, rd64(self->region, self->chan + CHAN_TAIL));
	ASSERT_EQ(0, rd32(self->region, self->chan + CHAN_OLD_SIZE));
	self->run = rd64(self->region, self->chan + CHAN_BUFF_OFFSET);
	self->quarter = rd32(self->region, self->chan + CHAN_BUFF_SIZE) / 4;
	ASSERT_LE(4096, self->quarter);
	ASSERT_EQ(0, self->quarter % 4096);
	self->pos = self->touch = 0;
	self->forged = true;
}

/* Close the reader, set the channel back to the sender's view (nothing
 * sent), let the sender go on, close it: no protocol error anywhere.
 */
static void fm_cleanup(struct __test_metadata *_metadata,
		       FIXTURE_DATA(forged_moves) *self)
{
	uint64_t end;
	long long n = -1;

	if (self->r >= 0)
		close(self->r);
	self->r = -1;
	if (self->forged &&
	    rd32(self->region, self->chan + CHAN_GENERATION) == self->gen) {
		wr64(self->region, self->chan + CHAN_TAIL, 0);
		wr64(self->region, self->chan + CHAN_HEAD, 0);
		wr64(self->region, self->chan + CHAN_HEAD_TOUCH, 0);
		wr32(self->region, self->chan + CHAN_STATE, CHAN_OPEN);
	}
	self->forged = false;
	if (self->frozen)
		EXPECT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "1 0"));
	self->frozen = false;
	if (self->s >= 0)
		close(self->s);
	if (self->l >= 0)
		close(self->l);
	self->s = self->l = -1;
	if (self->region >= 0)
		close(self->region);
	self->region = -1;
	end = ivshm_now_ms() + 10000;
	do {
		n = ivshm_dev_attr_ll("ivshm0", "info", "active_channels");
		if (n == self->active0)
			break;
		ivshm_sleep_ms(20);
	} while (ivshm_now_ms() < end);
	EXPECT_EQ(self->active0, n);
	if (self->nl_off)
		EXPECT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE, 1));
	self->nl_off = false;
}

FIXTURE_TEARDOWN(forged_moves)
{
	fm_cleanup(_metadata, self);
}

#define FM_N	8
#define FM_M	12

/*
 * Both tests begin alike: N records and a MOVED record to @run2 in the
 * first run, published, and the reader takes record 0 (which loads that
 * head). Return: true when all of it went as planned.
 */
static bool fm_first_move(FIXTURE_DATA(forged_moves) *self, uint64_t run2)
{
	uint64_t n = forge_records(self, self->run, 0, 0, FM_N);

	if (!n || forge_moved(self, self->run, n, run2, self->quarter))
		return false;
	self->pos = n + MOVED_NEED;
	return !fm_publish(self) && fm_read_one(self->r, 0);
}

/*
 * Both tests end alike: the end of file is final, the connection whole,
 * no device counted a protocol error, and the forged channel is put back.
 */
static void fm_check_end(struct __test_metadata *_metadata,
			 FIXTURE_DATA(forged_moves) *self)
{
	int soerr = -1;
	socklen_t sl = sizeof(soerr);
	char c;

	EXPECT_EQ(0, recv(self->r, &c, 1, MSG_DONTWAIT));
	EXPECT_EQ(0, getsockopt(self->r, SOL_SOCKET, SO_ERROR, &soerr, &sl));
	EXPECT_EQ(0, soerr);
	EXPECT_EQ(self->proto0,
		  ivshm_dev_attr_ll("ivshm0", "doorbells", "proto_errors"));
	fm_cleanup(_metadata, self);
	EXPECT_EQ(self->proto1,
		  ivshm_dev_attr_ll("ivshm1", "doorbells", "proto_errors"));
}

/*
 * N records, MOVED to run 2, whose first record is a MOVED to run 3, M
 * records there, CLOSED. The reader read one record before the second
 * MOVED was published (so it loaded the head that ends at the first) and
 * saw the close with a record still before the first MOVED (so that the
 * close's own pass over moves found none). Its call after record N-1
 * follows the first MOVED, loads the new head, finds the second waiting
 * for a call: before 7d1c88e that was the end of file, with M records
 * never to be read. All N + M must come, in order, then the end of file,
 * final.
 */
TEST_F(forged_moves, moved_twice_then_closed_loses_nothing)
{
	uint64_t run2 = self->run + self->quarter;
	uint64_t run3 = self->run + 2 * self->quarter, at;
	unsigned int got;
	int err = 0;

	ASSERT_TRUE(fm_first_move(self, run2));

	/* The sender does not wait for the reader: the second move at once. */
	ASSERT_EQ(0, forge_moved(self, run2, 0, run3, self->quarter));
	self->pos += MOVED_NEED;
	at = forge_records(self, run3, 0, FM_N, FM_M);
	ASSERT_NE(0, at);
	ASSERT_GE(self->quarter, at + MOVED_NEED);
	self->pos += at;
	ASSERT_EQ(0, fm_publish(self));
	ASSERT_EQ(0, fm_close(self));
	ASSERT_TRUE(fm_wait_rdhup(self->r));

	got = fm_read(self->r, 1, &err);
	TH_LOG("%u of %u records before the end of file (recv error %d)",
	       got + 1, FM_N + FM_M, err);
	EXPECT_EQ(0, err);
	ASSERT_EQ(FM_N + FM_M - 1, got) {
		TH_LOG("end of file after %u records: %u written before the close lost",
		       got + 1, FM_N + FM_M - 1 - got);
	}
	fm_check_end(_metadata, self);
}

/*
 * A chain of three: N records, MOVED to run 2 whose first record is a
 * MOVED to run 3, published on its own; the reader reads the N records
 * and, without blocking, follows the first MOVED and finds the second
 * waiting (EAGAIN). Then a MOVED to run 4 at the start of run 3, M records
 * in run 4, CLOSED: two moves wait at the close, each taken by a call of
 * its own (the close's pass over moves, a poll, a recv), and nothing
 * written before the close may be lost or come out of order.
 */
TEST_F(forged_moves, moved_three_times_around_close_loses_nothing)
{
	uint64_t run2 = self->run + self->quarter;
	uint64_t run3 = self->run + 2 * self->quarter;
	uint64_t run4 = self->run + 3 * self->quarter, n;
	unsigned int k, got;
	int err = 0;
	char c;

	ASSERT_TRUE(fm_first_move(self, run2));

	ASSERT_EQ(0, forge_moved(self, run2, 0, run3, self->quarter));
	self->pos += MOVED_NEED;
	ASSERT_EQ(0, fm_publish(self));
	for (k = 1; k < FM_N; k++)
		ASSERT_TRUE(fm_read_one(self->r, k));
	ASSERT_EQ(-1, recv(self->r, &c, 1, MSG_DONTWAIT));
	ASSERT_EQ(EAGAIN, errno);

	ASSERT_EQ(0, forge_moved(self, run3, 0, run4, self->quarter));
	self->pos += MOVED_NEED;
	n = forge_records(self, run4, 0, FM_N, FM_M);
	ASSERT_NE(0, n);
	ASSERT_GE(self->quarter, n + MOVED_NEED);
	self->pos += n;
	ASSERT_EQ(0, fm_publish(self));
	ASSERT_EQ(0, fm_close(self));
	ASSERT_TRUE(fm_wait_rdhup(self->r));

	got = fm_read(self->r, FM_N, &err);
	TH_LOG("%u of %u records before the end of file (recv error %d)",
	       FM_N + got, FM_N + FM_M, err);
	EXPECT_EQ(0, err);
	ASSERT_EQ(FM_M, got) {
		TH_LOG("end of file after %u records: %u written before the close lost",
		       FM_N + got, FM_M - got);
	}
	fm_check_end(_metadata, self);
}

TEST_HARNESS_MAIN
