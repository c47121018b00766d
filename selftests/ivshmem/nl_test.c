// SPDX-License-Identifier: GPL-2.0
/*
 * The "ivshmem" generic netlink family and the ivshm tool, in a dev_shm
 * guest (four virtual peers, ivshm0 .. ivshm3, on one region):
 *
 *  - the tool's JSON matches the state the test made: devices against
 *    debugfs, peers, channels against the sockets (ports, pid, sizes,
 *    bytes queued, head and tail), sizes after a rebalance;
 *  - "dev set" changes behaviour: the size of new channels, rebalancing
 *    off and on; a refused set changes nothing and shows the kernel's
 *    message;
 *  - an unprivileged user may look but not change (EPERM), tool and raw;
 *  - the monitor sees channels come and go, parameter changes, and a peer
 *    go down and come back;
 *  - malformed and random requests sent straight to the family get an
 *    error with an extended ack message, never an Oops (the runner scans
 *    the kernel log);
 *  - "autoload" mode, run before anything is loaded: resolving the family
 *    loads af_ivshmem through its alias.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>
#include <linux/netlink.h>

#include "kselftest_harness.h"
#include "ivshm_nl.h"
#include "ivshm_test.h"
#include "tjson.h"

#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	600

#define TOOL		"/tests/ivshm"
#define NOBODY		65534
#define PORT		7400
/* Requests the fuzzer sends; ivshm.fuzz= on the command line overrides. */
#define FUZZ_MSGS	20000

static int af;
static const char *mode = "";

/* --- running the tool ---------------------------------------------------- */

struct run {
	int rc;				/* exit code, or 128 + signal */
	char out[131072];
	char err[8192];
};

static void drain(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	ssize_t k;

	while (n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0)
		n += (size_t)k;
	buf[n] = '\0';
}

static void child_env(uid_t uid)
{
	/* A sanitizer report must not pass for one of the tool's codes. */
	setenv("ASAN_OPTIONS", "exitcode=99:detect_leaks=1", 1);
	setenv("UBSAN_OPTIONS", "halt_on_error=1:exitcode=98", 1);
	if (uid && (setgroups(0, NULL) || setresgid(uid, uid, uid) ||
		    setresuid(uid, uid, uid)))
		_exit(97);
}

/* Run the tool with the space-separated @args as user @uid. */
static void tool(struct run *r, uid_t uid, const char *fmt, ...)
{
	char line[512], *argv[64], *save = NULL, *w;
	int out[2], err[2], st, argc = 0;
	va_list ap;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	argv[argc++] = TOOL;
	for (w = strtok_r(line, " ", &save); w && argc < 63;
	     w = strtok_r(NULL, " ", &save))
		argv[argc++] = w;
	argv[argc] = NULL;

	r->rc = -1;
	r->out[0] = r->err[0] = '\0';
	if (pipe(out) || pipe(err))
		return;
	pid = fork();
	if (!pid) {
		dup2(out[1], 1);
		dup2(err[1], 2);
		close(out[0]);
		close(err[0]);
		child_env(uid);
		execv(TOOL, argv);
		_exit(96);
	}
	close(out[1]);
	close(err[1]);
	/* Small stderr, large stdout: read stdout first, then stderr. */
	drain(out[0], r->out, sizeof(r->out));
	drain(err[0], r->err, sizeof(r->err));
	close(out[0]);
	close(err[0]);
	if (waitpid(pid, &st, 0) == pid)
		r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (r->err[0])
		fprintf(stderr, "# ivshm %s: %s", fmt, r->err);
}

static struct tj *tool_json(struct run *r, const char *fmt, ...)
{
	char line[512];
	struct tj *v;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	tool(r, 0, "%s", line);
	if (r->rc)
		return NULL;
	v = tj_parse(r->out);
	if (!v || v->type != TJ_ARR) {
		fprintf(stderr, "# not a JSON array: %s\n", r->out);
		tj_release(v);
		return NULL;
	}
	return v;
}

/* --- devices and sockets ------------------------------------------------- */

static int ndevs(void)
{
	char path[64];
	int i;

	for (i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), IVSHM_DEBUGFS "/ivshm%d", i);
		if (access(path, F_OK))
			break;
	}
	return i;
}

static long long info(int dev, const char *key)
{
	char name[16];

	snprintf(name, sizeof(name), "ivshm%d", dev);
	return ivshm_dev_attr_ll(name, "info", key);
}

static int listen_on(unsigned int port, unsigned int dev)
{
	return ivshm_listen_on(af, port, dev, 8);
}

/* Connect through device @dev (N + 1) to @port on VM @vm. */
static int connect_to(unsigned int vm, unsigned int port, unsigned int dev)
{
	return ivshm_connect_to(af, vm, port, dev);
}

/* The entry of @arr on device @dev with direction @dir and local port. */
static const struct tj *find_chan(const struct tj *arr, const char *dev,
				  const char *dir, unsigned int port)
{
	size_t i;

	for (i = 0; i < arr->n; i++) {
		const struct tj *c = tj_at(arr, i);

		if (!strcmp(tj_str(c, "dev"), dev) &&
		    !strcmp(tj_str(c, "dir"), dir) &&
		    tj_num(c, "local_port") == port)
			return c;
	}
	return NULL;
}

/* The ring size debugfs shows for channel @idx, direction @dir, of @dev. */
static long long debugfs_ring(const char *dev, long long idx, const char *dir)
{
	char path[128], line[1024], want[64];
	long long ring = -1;
	FILE *f;

	snprintf(path, sizeof(path), IVSHM_DEBUGFS "/%s/channels", dev);
	snprintf(want, sizeof(want), "chan %lld %s ", idx, dir);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, " ring ");

		if (!strncmp(line, want, strlen(want)) && p)
			ring = strtoll(p + 6, NULL, 10);
	}
	fclose(f);
	return ring;
}

/* --- tests ---------------------------------------------------------------- */

/* Every test but the first needs the module and dev_shm loaded. */
#define NEEDS_DEVSHM() do {						\
	if (!strcmp(mode, "autoload"))					\
		SKIP(return, "needs af_ivshmem and dev_shm");		\
} while (0)

TEST(family_autoloads_the_module)
{
	char dir[256], cmd[600];
	struct utsname u;
	struct tnl t;

	if (strcmp(mode, "autoload"))
		SKIP(return, "autoload mode only");
	ASSERT_FALSE(ivshm_module_loaded("af_ivshmem"));
	ASSERT_EQ(0, uname(&u));
	snprintf(dir, sizeof(dir), "/lib/modules/%s", u.release);
	mkdir("/lib/modules", 0755);
	mkdir(dir, 0755);
	snprintf(cmd, sizeof(cmd), "cp " IVSHM_MODDIR "/af_ivshmem.ko %s/ && depmod",
		 dir);
	ASSERT_EQ(0, system(cmd));
	ASSERT_EQ(0, ivshm_write_file("/proc/sys/kernel/modprobe",
				      "/bin/modprobe"));

	/* Resolving the family is all it takes. */
	ASSERT_EQ(0, tnl_open(&t));
	EXPECT_NE(0, t.family);
	EXPECT_NE(0, t.events);
	tnl_close(&t);
	EXPECT_TRUE(ivshm_module_loaded("af_ivshmem"));
	EXPECT_EQ(0, ivshm_rmmod("af_ivshmem"));
}

/*
 * Tests that set the liveness bound: the teardown sets the default back
 * on every device, also when an ASSERT ended the test early, so that no
 * later test runs with a bound made short for one.
 */
#define PEER_TIMEOUT_DEFAULT_MS	10000

FIXTURE(liveness) {
	int unused;
};

FIXTURE_SETUP(liveness)
{
}

FIXTURE_TEARDOWN(liveness)
{
	if (ndevs() > 0)
		EXPECT_EQ(0, ivshm_nl_set_param(NULL,
						IVSHMEM_PARAM_PEER_TIMEOUT_MS,
						PEER_TIMEOUT_DEFAULT_MS));
}

TEST_F(liveness, dev_show_matches_the_devices)
{
	int n = ndevs(), i;
	struct run *r = malloc(sizeof(*r));
	struct tj *v;

	NEEDS_DEVSHM();
	ASSERT_NE(NULL, r);
	ASSERT_LE(2, n);
	v = tool_json(r, "-j dev show");
	ASSERT_NE(NULL, v);
	ASSERT_EQ((size_t)n, v->n);
	for (i = 0; i < n; i++) {
		const struct tj *d = tj_at(v, i), *p = tj_get(d, "params");
		char name[16];

		snprintf(name, sizeof(name), "ivshm%d", i);
		EXPECT_STREQ(name, tj_str(d, "name"));
		EXPECT_EQ(i + 1, tj_num(d, "id"));
		EXPECT_STREQ("dev_shm", tj_str(d, "transport"));
		EXPECT_STREQ("doorbell", tj_str(d, "mode"));
		EXPECT_EQ(info(i, "region_size"), tj_num(d, "region_size"));
		EXPECT_EQ(info(i, "own_id"), tj_num(d, "vm_id"));
		EXPECT_EQ(info(i, "vectors"), tj_num(d, "vectors"));
		EXPECT_EQ(info(i, "max_channels"), tj_num(d, "max_channels"));
		EXPECT_EQ(info(i, "data_blocks"), tj_num(d, "blocks"));
		EXPECT_EQ(info(i, "incarnation"), tj_num(d, "incarnation"));
		EXPECT_EQ(info(i, "protocol"), tj_num(d, "protocol"));
		/* Nothing connected: every block free, no channel. */
		EXPECT_EQ(tj_num(d, "blocks"), tj_num(d, "blocks_free"));
		EXPECT_EQ(0, tj_num(d, "channels"));
		EXPECT_EQ(4096, tj_num(d, "block_size"));
		EXPECT_TRUE(tj_bool(d, "joined"));
		EXPECT_EQ(n, tj_num(d, "peers"));
		EXPECT_EQ(i == 0, tj_bool(d, "initialised"));
		EXPECT_EQ(IVSHMEM_RING_DEFAULT, tj_num(p, "chan_initial"));
		EXPECT_EQ(IVSHMEM_RING_MIN, tj_num(p, "chan_min"));
		EXPECT_EQ(IVSHMEM_RING_MAX, tj_num(p, "chan_max"));
		EXPECT_TRUE(tj_bool(p, "rebalance"));
		EXPECT_EQ(100, tj_num(p, "rebalance_interval"));
		/* Long enough for a paused VM to keep its connections. */
		EXPECT_EQ(10000, tj_num(p, "peer_timeout_ms"));
		EXPECT_EQ(NULL, tj_get(d, "stats"));	/* only with -s */
	}
	tj_release(v);

	v = tool_json(r, "-j -s dev show ivshm1");
	ASSERT_NE(NULL, v);
	ASSERT_EQ(1, v->n);
	EXPECT_STREQ("ivshm1", tj_str(tj_at(v, 0), "name"));
	EXPECT_LE(0, tj_num(tj_get(tj_at(v, 0), "stats"), "tx_records"));
	EXPECT_LE(0, tj_num(tj_get(tj_at(v, 0), "stats"), "doorbells_rx"));
	EXPECT_LE(0, tj_num(tj_get(tj_at(v, 0), "stats"), "lock_breaks"));
	tj_release(v);

	/* The liveness bound is a device's own, set like the others. */
	tool(r, 0, "dev set ivshm1 peer-timeout-ms 2500");
	EXPECT_EQ(0, r->rc);
	v = tool_json(r, "-j dev show ivshm1");
	ASSERT_NE(NULL, v);
	EXPECT_EQ(2500, tj_num(tj_get(tj_at(v, 0), "params"),
			       "peer_timeout_ms"));
	tj_release(v);
	tool(r, 0, "dev set ivshm1 peer-timeout-ms 10000");
	EXPECT_EQ(0, r->rc);

	/* Plain text, abbreviated, and a device that does not exist. */
	tool(r, 0, "d sh ivshm0");
	EXPECT_EQ(0, r->rc);
	EXPECT_EQ(0, strncmp(r->out, "ivshm0:", 7));
	tool(r, 0, "dev show ivshm63");
	EXPECT_EQ(1, r->rc);
	EXPECT_NE(NULL, strstr(r->err, "no such device"));
	tool(r, 0, "-j peer show dev ivshm63");
	EXPECT_EQ(1, r->rc);
	EXPECT_NE(NULL, strstr(r->err, "no such device"));
	EXPECT_EQ(NULL, strchr(r->out, '['));	/* no half answer */
	tool(r, 0, "chan show dev ivshm63");
	EXPECT_EQ(1, r->rc);
	free(r);
}

TEST(peer_show_lists_every_vm)
{
	struct run *r = malloc(sizeof(*r));
	int n = ndevs();
	struct tj *v;
	size_t i;

	NEEDS_DEVSHM();
	ASSERT_NE(NULL, r);
	v = tool_json(r, "-j peer show dev ivshm0");
	ASSERT_NE(NULL, v);
	ASSERT_EQ((size_t)n, v->n);
	for (i = 0; i < v->n; i++) {
		const struct tj *p = tj_at(v, i);
		long long vm = tj_num(p, "vm");

		EXPECT_STREQ("ivshm0", tj_str(p, "dev"));
		EXPECT_STREQ("alive", tj_str(p, "state"));
		EXPECT_LE(1, tj_num(p, "incarnation"));
		EXPECT_EQ(vm == info(0, "own_id"), tj_bool(p, "self"));
		/* Beats come every 100 ms; 10 s without is death. Fresh
		 * means well within that, whatever a loaded host delays.
		 */
		EXPECT_LE(0, tj_num(p, "beat_age_ms"));
		EXPECT_GT(5000, tj_num(p, "beat_age_ms"));
	}
	tj_release(v);

	/* The vm filter, on every device: one entry each. */
	v = tool_json(r, "-j peer show vm 2");
	ASSERT_NE(NULL, v);
	EXPECT_EQ((size_t)n, v->n);
	for (i = 0; i < v->n; i++)
		EXPECT_EQ(2, tj_num(tj_at(v, i), "vm"));
	tj_release(v);
	free(r);
}

TEST(chan_show_matches_the_connections)
{
	struct run *r = malloc(sizeof(*r));
	long long vm0 = info(0, "own_id"), vm1 = info(1, "own_id");
	const struct tj *tx, *rx;
	char buf[100] = { 0 };
	int lfd, c, a, i;
	unsigned int cport;
	struct tj *v;
	size_t k;

	NEEDS_DEVSHM();
	ASSERT_NE(NULL, r);
	/* Sizes as opened: no pass may shrink an idle one meanwhile. */
	ASSERT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE, 0));
	lfd = listen_on(PORT, 1);			/* on ivshm0 */
	ASSERT_LE(0, lfd);
	c = connect_to((unsigned int)vm0, PORT, 2);	/* from ivshm1 */
	ASSERT_LE(0, c);
	a = accept(lfd, NULL, NULL);
	ASSERT_LE(0, a);
	cport = ivshm_local_port(c);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(100, send(c, buf, sizeof(buf), 0));

	v = tool_json(r, "-j chan show");
	ASSERT_NE(NULL, v);
	tx = find_chan(v, "ivshm1", "tx", cport);
	rx = find_chan(v, "ivshm0", "rx", PORT);
	ASSERT_NE(NULL, tx);
	ASSERT_NE(NULL, rx);
	EXPECT_EQ(tj_num(tx, "index"), tj_num(rx, "index"));
	EXPECT_EQ(vm1, tj_num(tx, "sender_vm"));
	EXPECT_EQ(vm0, tj_num(tx, "receiver_vm"));
	EXPECT_EQ(vm1, tj_num(rx, "sender_vm"));
	EXPECT_EQ(vm0, tj_num(rx, "receiver_vm"));
	EXPECT_EQ(getpid(), tj_num(tx, "sender_pid"));
	EXPECT_EQ(getpid(), tj_num(rx, "sender_pid"));
	EXPECT_EQ(PORT, tj_num(tx, "peer_port"));
	EXPECT_EQ(cport, tj_num(rx, "peer_port"));
	EXPECT_STREQ("open", tj_str(tx, "state"));
	EXPECT_STREQ("established", tj_str(tx, "sock_state"));
	EXPECT_EQ(IVSHMEM_RING_DEFAULT, tj_num(tx, "size"));
	EXPECT_EQ(tj_num(tx, "size"), tj_num(rx, "size"));
	EXPECT_EQ(tj_num(tx, "offset"), tj_num(rx, "offset"));
	/* Three records of 8 + 100 bytes, padded to 8: 336 bytes unread. */
	EXPECT_EQ(336, tj_num(tx, "queued"));
	EXPECT_EQ(336, tj_num(rx, "queued"));
	EXPECT_EQ(336, tj_num(tx, "head") - tj_num(tx, "tail"));
	EXPECT_EQ(3, tj_num(tx, "head_touch"));
	EXPECT_FALSE(tj_bool(tx, "fixed"));
	/* The reverse channel, from the accepted socket. */
	EXPECT_NE(NULL, find_chan(v, "ivshm0", "tx", PORT));
	EXPECT_NE(NULL, find_chan(v, "ivshm1", "rx", cport));
	tj_release(v);

	/* Only what has VM 0 at the other end, and the counters. */
	v = tool_json(r, "-j -s chan show vm %lld", vm0);
	ASSERT_NE(NULL, v);
	EXPECT_EQ(2, v->n);
	for (k = 0; k < v->n; k++) {
		const struct tj *e = tj_at(v, k);

		EXPECT_STREQ("ivshm1", tj_str(e, "dev"));
		if (!strcmp(tj_str(e, "dir"), "tx"))
			EXPECT_EQ(3, tj_num(tj_get(e, "stats"), "records"));
	}
	tj_release(v);

	for (i = 0; i < 3; i++)
		ASSERT_EQ(100, recv(a, buf, sizeof(buf), 0));
	v = tool_json(r, "-j -s chan show dev ivshm0");
	ASSERT_NE(NULL, v);
	rx = find_chan(v, "ivshm0", "rx", PORT);
	ASSERT_NE(NULL, rx);
	EXPECT_EQ(0, tj_num(rx, "queued"));
	EXPECT_EQ(tj_num(rx, "head"), tj_num(rx, "tail"));
	EXPECT_EQ(3, tj_num(tj_get(rx, "stats"), "records"));
	for (k = 0; k < v->n; k++)
		EXPECT_STREQ("ivshm0", tj_str(tj_at(v, k), "dev"));
	tj_release(v);

	close(c);
	close(a);
	close(lfd);
	/* Acknowledged closes free the channels: nothing is left. */
	for (i = 0; i < 100 && info(0, "active_channels") > 0; i++)
		ivshm_sleep_ms(50);
	v = tool_json(r, "-j chan show");
	ASSERT_NE(NULL, v);
	EXPECT_EQ(0, v->n);
	tj_release(v);
	tool(r, 0, "chan show");
	EXPECT_EQ(0, r->rc);
	EXPECT_STREQ("", r->out);
	EXPECT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE, 1));
	free(r);
}

/* Fill the ring of @c (non-blocking) until it is full, then read all of it
 * on @a: backpressure for the rebalancer, and a reader that follows moves.
 */
static void fill_and_drain(int c, int a, char *buf, size_t len)
{
	while (send(c, buf, len, MSG_DONTWAIT) == (ssize_t)len)
		;
	while (recv(a, buf, len, MSG_DONTWAIT) > 0)
		;
}

static long long chan_size(struct run *r, const char *dev, unsigned int port)
{
	const struct tj *e;
	long long size = -1;
	struct tj *v;

	v = tool_json(r, "-j chan show dev %s", dev);
	if (!v)
		return -1;
	e = find_chan(v, dev, "tx", port);
	if (e)
		size = tj_num(e, "size");
	tj_release(v);
	return size;
}

static long long dev_stat(struct run *r, const char *dev, const char *key)
{
	long long n = -1;
	struct tj *v;

	v = tool_json(r, "-j -s dev show %s", dev);
	if (v && v->n == 1)
		n = tj_num(tj_get(tj_at(v, 0), "stats"), key);
	tj_release(v);
	return n;
}

TEST(set_rebalance_off_then_on_and_sizes_follow)
{
	struct run *r = malloc(sizeof(*r));
	long long vm0 = info(0, "own_id"), grown, size = 0, idx;
	char *buf = malloc(65536);
	uint64_t t0;
	unsigned int cport;
	int lfd, c, a, i;
	const struct tj *e;
	struct tj *v;

	NEEDS_DEVSHM();
	ASSERT_NE(NULL, r);
	ASSERT_NE(NULL, buf);
	memset(buf, 7, 65536);
	tool(r, 0, "dev set ivshm1 rebalance off rebalance-idle-ms 200");
	ASSERT_EQ(0, r->rc);
	lfd = listen_on(PORT + 1, 1);
	ASSERT_LE(0, lfd);
	c = connect_to((unsigned int)vm0, PORT + 1, 2);
	ASSERT_LE(0, c);
	a = accept(lfd, NULL, NULL);
	ASSERT_LE(0, a);
	cport = ivshm_local_port(c);
	grown = dev_stat(r, "ivshm1", "grown");
	ASSERT_LE(0, grown);

	/* Off: a full ring for two seconds, and no growth. */
	for (i = 0; i < 20; i++) {
		fill_and_drain(c, a, buf, 65536);
		ivshm_sleep_ms(100);
	}
	EXPECT_EQ(IVSHMEM_RING_DEFAULT, chan_size(r, "ivshm1", cport));
	EXPECT_EQ(grown, dev_stat(r, "ivshm1", "grown"));

	/* On: it grows, and the tool shows the size it grew to. */
	v = tool_json(r, "-j chan show dev ivshm1");
	ASSERT_NE(NULL, v);
	e = find_chan(v, "ivshm1", "tx", cport);
	ASSERT_NE(NULL, e);
	idx = tj_num(e, "index");
	tj_release(v);
	tool(r, 0, "dev set ivshm1 rebalance on");
	ASSERT_EQ(0, r->rc);
	/* Always full, never quiet: one record out makes room for one in.
	 * Watched through debugfs, which costs no process per look.
	 */
	t0 = ivshm_now_ms();
	while (ivshm_now_ms() - t0 < 60000) {
		while (send(c, buf, 65536, MSG_DONTWAIT) == 65536)
			;
		recv(a, buf, 65536, MSG_DONTWAIT);
		if (debugfs_ring("ivshm1", idx, "tx") > IVSHMEM_RING_DEFAULT)
			break;
	}
	size = chan_size(r, "ivshm1", cport);
	EXPECT_LT(IVSHMEM_RING_DEFAULT, size);
	EXPECT_EQ(0, size % 4096);
	EXPECT_LT(grown, dev_stat(r, "ivshm1", "grown"));

	/* Still: the same size in the tool, in debugfs, at the reader. */
	fill_and_drain(c, a, buf, 65536);
	tool(r, 0, "dev set ivshm1 rebalance off");
	ASSERT_EQ(0, r->rc);
	ivshm_sleep_ms(300);
	while (recv(a, buf, 65536, MSG_DONTWAIT) > 0)
		;
	v = tool_json(r, "-j -s chan show");
	ASSERT_NE(NULL, v);
	e = find_chan(v, "ivshm1", "tx", cport);
	ASSERT_NE(NULL, e);
	idx = tj_num(e, "index");
	size = tj_num(e, "size");
	EXPECT_EQ(debugfs_ring("ivshm1", idx, "tx"), size);
	EXPECT_LE(1, tj_num(tj_get(e, "stats"), "resizes"));
	e = find_chan(v, "ivshm0", "rx", PORT + 1);
	ASSERT_NE(NULL, e);
	EXPECT_EQ(size, tj_num(e, "size"));
	tj_release(v);

	tool(r, 0, "dev set ivshm1 rebalance on rebalance-idle-ms 1000");
	EXPECT_EQ(0, r->rc);
	close(c);
	close(a);
	close(lfd);
	free(buf);
	free(r);
}

TEST(set_chan_initial_sizes_new_channels)
{
	struct run *r = malloc(sizeof(*r));
	long long vm0 = info(0, "own_id");
	int lfd, c, a, max = 0;
	socklen_t len = sizeof(max);
	char *buf = calloc(1, 32768);
	struct tj *v;

	NEEDS_DEVSHM();
	ASSERT_NE(NULL, r);
	ASSERT_NE(NULL, buf);
	/* No pass may shrink the idle channels meanwhile. */
	tool(r, 0, "dev set ivshm0 rebalance off");
	ASSERT_EQ(0, r->rc);
	tool(r, 0, "dev set ivshm1 chan-initial 32k rebalance off");
	ASSERT_EQ(0, r->rc);
	v = tool_json(r, "-j dev show ivshm1");
	ASSERT_NE(NULL, v);
	EXPECT_EQ(32768, tj_num(tj_get(tj_at(v, 0), "params"),
				"chan_initial"));
	tj_release(v);

	lfd = listen_on(PORT + 2, 1);
	ASSERT_LE(0, lfd);
	c = connect_to((unsigned int)vm0, PORT + 2, 2);
	ASSERT_LE(0, c);
	a = accept(lfd, NULL, NULL);
	ASSERT_LE(0, a);
	EXPECT_EQ(32768, chan_size(r, "ivshm1", ivshm_local_port(c)));
	/* The other device keeps its own default. */
	EXPECT_EQ(IVSHMEM_RING_DEFAULT, chan_size(r, "ivshm0", PORT + 2));
	ASSERT_EQ(0, getsockopt(c, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &max,
				&len));
	EXPECT_EQ(32768 - 8, max);
	EXPECT_EQ(-1, send(c, buf, 32768 - 7, 0));
	EXPECT_EQ(EMSGSIZE, errno);
	EXPECT_EQ(32768 - 8, send(c, buf, 32768 - 8, 0));
	EXPECT_EQ(32768 - 8, recv(a, buf, 32768, 0));
	close(c);
	close(a);
	close(lfd);

	tool(r, 0, "dev set ivshm1 chan-initial 128k rebalance on");
	EXPECT_EQ(0, r->rc);
	tool(r, 0, "dev set ivshm0 rebalance on");
	EXPECT_EQ(0, r->rc);
	free(buf);
	free(r);
}

TEST(refused_sets_change_nothing_and_say_why)
{
	struct run *r = malloc(sizeof(*r));
	struct tnl_reply rep;
	struct tnl_msg m;
	struct tnl t;
	size_t nest;
	struct tj *v;

	NEEDS_DEVSHM();
	ASSERT_NE(NULL, r);
	/* Against the current chan_initial (128 KiB). */
	tool(r, 0, "dev set ivshm1 chan-max 64k");
	EXPECT_EQ(1, r->rc);
	EXPECT_NE(NULL, strstr(r->err, "chan_max is smaller than chan_initial"));
	tool(r, 0, "dev set ivshm1 chan-min 256k");
	EXPECT_EQ(1, r->rc);
	EXPECT_NE(NULL, strstr(r->err, "chan_min is larger than chan_initial"));
	/* All or nothing: the valid half of a refused set is not applied. */
	tool(r, 0, "dev set ivshm1 rebalance-interval 7 poll-min-us 900 poll-max-us 800");
	EXPECT_EQ(1, r->rc);
	EXPECT_NE(NULL, strstr(r->err, "poll_min_us"));
	tool(r, 0, "dev set ivshm63 rebalance on");
	EXPECT_EQ(1, r->rc);
	EXPECT_NE(NULL, strstr(r->err, "no such device"));
	/* Caught by the tool itself: a usage error, nothing sent. */
	tool(r, 0, "dev set ivshm1 chan-min 20000");
	EXPECT_EQ(2, r->rc);
	tool(r, 0, "dev set ivshm1 bogus 1");
	EXPECT_EQ(2, r->rc);

	v = tool_json(r, "-j dev show ivshm1");
	ASSERT_NE(NULL, v);
	EXPECT_EQ(IVSHMEM_RING_MAX, tj_num(tj_get(tj_at(v, 0), "params"),
					   "chan_max"));
	EXPECT_EQ(IVSHMEM_RING_MIN, tj_num(tj_get(tj_at(v, 0), "params"),
					   "chan_min"));
	EXPECT_EQ(100, tj_num(tj_get(tj_at(v, 0), "params"),
			      "rebalance_interval"));
	tj_release(v);

	/* Straight to the family: what the tool would have caught. */
	ASSERT_EQ(0, tnl_open(&t));
	tnl_msg_init(&m, t.family, NLM_F_REQUEST | NLM_F_ACK,
		     IVSHMEM_CMD_DEV_SET, IVSHMEM_GENL_VERSION);
	tnl_put_str(&m, IVSHMEM_A_DEV_NAME, "ivshm1");
	nest = tnl_nest_start(&m, IVSHMEM_A_DEV_PARAMS);
	tnl_put_u32(&m, IVSHMEM_PARAM_CHAN_MIN, 20000);
	tnl_nest_end(&m, nest);
	ASSERT_EQ(0, tnl_request(&t, &m, &rep));
	EXPECT_EQ(-EINVAL, rep.err);
	EXPECT_STREQ("channel size must be a multiple of 4096", rep.msg);

	tnl_msg_init(&m, t.family, NLM_F_REQUEST | NLM_F_ACK,
		     IVSHMEM_CMD_DEV_SET, IVSHMEM_GENL_VERSION);
	tnl_put_str(&m, IVSHMEM_A_DEV_NAME, "ivshm1");
	nest = tnl_nest_start(&m, IVSHMEM_A_DEV_PARAMS);
	tnl_put_u32(&m, IVSHMEM_PARAM_REBALANCE_MS, 0);	/* range 1 .. */
	tnl_nest_end(&m, nest);
	ASSERT_EQ(0, tnl_request(&t, &m, &rep));
	EXPECT_EQ(-ERANGE, rep.err);
	EXPECT_NE(0, rep.msg[0]);

	tnl_msg_init(&m, t.family, NLM_F_REQUEST | NLM_F_ACK,
		     IVSHMEM_CMD_DEV_SET, IVSHMEM_GENL_VERSION);
	tnl_put_str(&m, IVSHMEM_A_DEV_NAME, "ivshm1");
	ASSERT_EQ(0, tnl_request(&t, &m, &rep));
	EXPECT_EQ(-EINVAL, rep.err);			/* no parameters */
	EXPECT_NE(0, rep.msg[0]);

	tnl_msg_init(&m, t.family, NLM_F_REQUEST | NLM_F_ACK,
		     IVSHMEM_CMD_DEV_GET, IVSHMEM_GENL_VERSION);
	ASSERT_EQ(0, tnl_request(&t, &m, &rep));
	EXPECT_EQ(-EINVAL, rep.err);			/* no device */
	EXPECT_NE(0, rep.msg[0]);
	tnl_close(&t);
	free(r);
}

TEST(unprivileged_users_look_but_do_not_change)
{
	struct run *r = malloc(sizeof(*r));
	int st;
	pid_t pid;
	struct tj *v;

	NEEDS_DEVSHM();
	ASSERT_NE(NULL, r);
	tool(r, NOBODY, "-j dev show");
	EXPECT_EQ(0, r->rc);
	tool(r, NOBODY, "dev set ivshm0 rebalance off");
	EXPECT_EQ(1, r->rc);
	EXPECT_NE(NULL, strstr(r->err, "Operation not permitted"));
	v = tool_json(r, "-j dev show ivshm0");
	ASSERT_NE(NULL, v);
	EXPECT_TRUE(tj_bool(tj_get(tj_at(v, 0), "params"), "rebalance"));
	tj_release(v);

	/* The family itself, without the tool. */
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		struct tnl_reply rep;
		struct tnl_msg m;
		struct tnl t;
		size_t nest;

		child_env(NOBODY);
		if (tnl_open(&t))
			_exit(2);
		tnl_msg_init(&m, t.family, NLM_F_REQUEST | NLM_F_ACK,
			     IVSHMEM_CMD_DEV_SET, IVSHMEM_GENL_VERSION);
		tnl_put_str(&m, IVSHMEM_A_DEV_NAME, "ivshm0");
		nest = tnl_nest_start(&m, IVSHMEM_A_DEV_PARAMS);
		tnl_put_u32(&m, IVSHMEM_PARAM_REBALANCE_MS, 50);
		tnl_nest_end(&m, nest);
		if (tnl_request(&t, &m, &rep))
			_exit(3);
		_exit(rep.err == -EPERM ? 0 : 4);
	}
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	free(r);
}

/* --- the monitor ---------------------------------------------------------- */

struct mon {
	pid_t pid;
	int fd;
	char buf[65536];
	size_t len;
};

static int mon_start(struct mon *m)
{
	char *argv[] = { TOOL, "-j", "monitor", NULL };
	int p[2];

	m->len = 0;
	m->buf[0] = '\0';
	if (pipe(p))
		return -1;
	m->pid = fork();
	if (m->pid < 0)
		return -1;
	if (!m->pid) {
		dup2(p[1], 1);
		close(p[0]);
		child_env(0);
		execv(TOOL, argv);
		_exit(96);
	}
	close(p[1]);
	m->fd = p[0];
	fcntl(m->fd, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Wait up to @ms for a line holding every one of the NULL-ended words. */
/*
 * How long the monitor is given for an event that must come: far beyond
 * its way on a loaded host, and a failure, not a hang, if it never does.
 */
#define MON_WAIT_MS	15000

static bool mon_wait(struct mon *m, unsigned int ms, ...)
{
	uint64_t end = ivshm_now_ms() + ms;

	for (;;) {
		char *line = m->buf, *nl;
		ssize_t n;

		while ((nl = strchr(line, '\n'))) {
			const char *w;
			bool all = true;
			va_list ap;

			*nl = '\0';
			va_start(ap, ms);
			while ((w = va_arg(ap, const char *)))
				if (!strstr(line, w))
					all = false;
			va_end(ap);
			*nl = '\n';
			if (all)
				return true;
			line = nl + 1;
		}
		if (ivshm_now_ms() > end)
			return false;
		struct pollfd pfd = { .fd = m->fd, .events = POLLIN };

		poll(&pfd, 1, 50);
		n = read(m->fd, m->buf + m->len, sizeof(m->buf) - 1 - m->len);
		if (n > 0) {
			m->len += (size_t)n;
			m->buf[m->len] = '\0';
		}
	}
}

static int mon_stop(struct mon *m)
{
	int st;

	kill(m->pid, SIGTERM);
	close(m->fd);
	if (waitpid(m->pid, &st, 0) != m->pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

TEST_F(liveness, monitor_sees_channels_parameters_and_peers)
{
	struct run *r = malloc(sizeof(*r));
	struct mon *m = malloc(sizeof(*m));
	long long vm0 = info(0, "own_id"), vm3 = info(3, "own_id");
	char want[64], want2[64];
	unsigned int cport;
	int lfd, c, a, i;
	bool seen = false;

	NEEDS_DEVSHM();
	ASSERT_NE(NULL, r);
	ASSERT_NE(NULL, m);
	ASSERT_LE(4, ndevs());
	ASSERT_EQ(0, mon_start(m));
	/* The monitor is listening once it reports a change we make. */
	for (i = 0; i < 50 && !seen; i++) {
		tool(r, 0, "dev set ivshm2 rebalance-ms %d", 100 + i % 2);
		ASSERT_EQ(0, r->rc);
		seen = mon_wait(m, 200, "\"event\":\"dev_changed\"",
				"\"dev\":\"ivshm2\"", NULL);
	}
	ASSERT_TRUE(seen);

	lfd = listen_on(PORT + 3, 1);
	ASSERT_LE(0, lfd);
	c = connect_to((unsigned int)vm0, PORT + 3, 2);
	ASSERT_LE(0, c);
	a = accept(lfd, NULL, NULL);
	ASSERT_LE(0, a);
	cport = ivshm_local_port(c);
	snprintf(want, sizeof(want), "\"local_port\":%u", cport);
	snprintf(want2, sizeof(want2), "\"peer_port\":%d", PORT + 3);
	EXPECT_TRUE(mon_wait(m, MON_WAIT_MS, "\"event\":\"chan_new\"",
			     "\"dev\":\"ivshm1\"", want, want2, NULL));
	close(c);
	close(a);
	close(lfd);
	EXPECT_TRUE(mon_wait(m, MON_WAIT_MS, "\"event\":\"chan_del\"",
			     "\"dev\":\"ivshm1\"", NULL));

	/* VM 3 stands still: the others declare it dead (past a liveness
	 * bound made short for the test), then it returns.
	 */
	ASSERT_EQ(0, ivshm_nl_set_param(NULL, IVSHMEM_PARAM_PEER_TIMEOUT_MS,
					1500));
	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "3 1"));
	snprintf(want, sizeof(want), "\"vm\":%lld", vm3);
	EXPECT_TRUE(mon_wait(m, MON_WAIT_MS, "\"event\":\"peer_down\"",
			     "\"dev\":\"ivshm0\"", want, NULL));
	ASSERT_EQ(0, ivshm_write_file(DEVSHM_DEBUGFS "/freeze", "3 0"));
	EXPECT_TRUE(mon_wait(m, MON_WAIT_MS, "\"event\":\"peer_up\"",
			     "\"dev\":\"ivshm0\"", want, NULL));
	/* The default comes back in the teardown. */

	/* SIGTERM: a clean exit, sanitizers and leak checker content. */
	EXPECT_EQ(0, mon_stop(m));
	tool(r, 0, "dev set ivshm2 rebalance-ms 100");
	free(m);
	free(r);
}

/* --- the fuzzer ----------------------------------------------------------- */

static uint64_t rng;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)rng;
}

/* Random attributes, sometimes nested, sometimes of valid types. */
static void fuzz_attrs(struct tnl_msg *m, int depth)
{
	unsigned int n = rnd() % 6, i;

	for (i = 0; i < n && m->len < 2048; i++) {
		uint16_t type = (uint16_t)(rnd() % 80);
		unsigned char data[64];
		size_t len = rnd() % 4 ? rnd() % 9 : rnd() % sizeof(data);
		size_t k;

		if (depth < 3 && !(rnd() % 4)) {
			size_t nest = tnl_nest_start(m, type);

			fuzz_attrs(m, depth + 1);
			tnl_nest_end(m, nest);
			continue;
		}
		for (k = 0; k < len; k++)
			data[k] = (unsigned char)rnd();
		if (!(rnd() % 3))
			memset(data, 0, len);	/* zeros pass more checks */
		tnl_put(m, type, data, len);
	}
}

TEST(malformed_requests_get_errors_with_messages)
{
	unsigned int count[6] = { 0 }, nomsg = 0, i;
	unsigned int msgs = (unsigned int)ivshm_cmdline_ull("fuzz", FUZZ_MSGS);
	unsigned int served = 0, refused = 0, unserved = 0;
	const char *seed = ivshm_cmdline("token");
	struct tnl_reply rep;
	struct tnl_msg *m = malloc(sizeof(*m));
	struct tnl t;
	struct tj *v;
	struct run *r = malloc(sizeof(*r));

	NEEDS_DEVSHM();
	ASSERT_NE(NULL, m);
	ASSERT_NE(NULL, r);
	rng = seed ? strtoull(seed, NULL, 10) : 1;
	rng |= 1;
	fprintf(stderr, "# seed %llu, %u messages\n",
		(unsigned long long)rng, msgs);
	ASSERT_EQ(0, tnl_open(&t));
	for (i = 0; i < msgs; i++) {
		uint8_t cmd = (uint8_t)(rnd() % (IVSHMEM_CMD_MAX + 3));
		uint16_t flags = NLM_F_REQUEST;
		bool known;
		int idx;

		/* Mostly what the family serves: DEV_GET as either, DEV_SET
		 * as a request, PEER_GET and CHAN_GET as dumps.
		 */
		if (rnd() % 8)
			cmd = (uint8_t)(IVSHMEM_CMD_DEV_GET + rnd() % 4);
		if (cmd == IVSHMEM_CMD_PEER_GET || cmd == IVSHMEM_CMD_CHAN_GET ||
		    (cmd == IVSHMEM_CMD_DEV_GET && rnd() % 2))
			flags |= NLM_F_DUMP;
		else
			flags |= NLM_F_ACK;
		if (!(rnd() % 16))
			flags ^= NLM_F_DUMP | NLM_F_ACK;
		known = cmd >= IVSHMEM_CMD_DEV_GET &&
			cmd <= IVSHMEM_CMD_CHAN_GET &&
			((flags & NLM_F_DUMP) ? cmd != IVSHMEM_CMD_DEV_SET :
			 cmd <= IVSHMEM_CMD_DEV_SET);
		served += known;
		tnl_msg_init(m, t.family, flags, cmd, (uint8_t)(rnd() % 3));
		if (!(rnd() % 16))	/* the reserved field, strictly zero */
			m->buf[NLMSG_HDRLEN + 2] = (unsigned char)rnd();
		fuzz_attrs(m, 0);
		if (!(rnd() % 8) && m->len > NLMSG_HDRLEN + GENL_HDRLEN + 4)
			m->len -= rnd() % 4;	/* a torn last attribute */
		ASSERT_EQ(0, tnl_request(&t, m, &rep));
		switch (-rep.err) {
		case 0:
			idx = 0;
			break;
		case EINVAL:
			idx = 1;
			break;
		case ERANGE:
			idx = 2;
			break;
		case EOPNOTSUPP:
			idx = 3;
			break;
		case ENODEV:
			idx = 4;
			break;
		default:
			idx = 5;
			fprintf(stderr, "# message %u: unexpected error %d\n",
				i, rep.err);
		}
		count[idx]++;
		if ((idx == 1 || idx == 2) && !rep.msg[0])
			nomsg++;
		if (known && (idx == 1 || idx == 2))
			refused++;
		/* A command the family does not serve is never accepted. */
		if (!known && !idx)
			unserved++;
	}
	tnl_close(&t);
	fprintf(stderr, "# ok %u, EINVAL %u, ERANGE %u, EOPNOTSUPP %u, ENODEV %u, other %u; without a message %u\n",
		count[0], count[1], count[2], count[3], count[4], count[5],
		nomsg);
	fprintf(stderr, "# %u to commands the family serves, %u of them refused\n",
		served, refused);
	EXPECT_EQ(0, count[5]);
	EXPECT_EQ(0, nomsg);
	EXPECT_EQ(0, unserved);
	/* Garbage is refused, not ignored. */
	EXPECT_LT(served / 2, refused);

	/* Whatever random sets went through: back to the defaults. */
	for (i = 0; i < 4; i++) {
		tool(r, 0, "dev set ivshm%u rebalance on rebalance-interval 100 rebalance-ms 100 rebalance-idle-ms 1000 chan-min 16k chan-initial 128k chan-max 16M poll-min-us 50 poll-max-us 4000 coalesce-us 100 coalesce-bulk 16k coalesce-idle-us 10000",
		     i);
		EXPECT_EQ(0, r->rc);
	}
	v = tool_json(r, "-j dev show");
	ASSERT_NE(NULL, v);
	EXPECT_LE(4, v->n);
	tj_release(v);
	free(r);
	free(m);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		mode = argv[1];
	if (strcmp(mode, "autoload")) {
		af = ivshm_family();
		if (af < 0) {
			fprintf(stderr, "nl_test: af_ivshmem is not loaded\n");
			return 1;
		}
	}
	return test_harness_run(1, argv);
}
