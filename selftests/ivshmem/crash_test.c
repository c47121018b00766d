// SPDX-License-Identifier: GPL-2.0
/*
 * A VM killed in the middle of a transfer (the runner's "crash" placement
 * kills the sender's QEMU with SIGKILL, then starts a new one):
 *
 *   crash_test receiver      in the surviving guest: receives a stream
 *                            until the sender dies, and checks that its
 *                            blocked recv fails with ECONNRESET within
 *                            8 s of the last record (the host's server
 *                            tells at once, with room for a loaded host);
 *                            the placement loads af_ivshmem here with a
 *                            liveness bound of 60 s (checked), so the
 *                            heartbeat path cannot reset it that soon,
 *                            even after a long drain of queued records:
 *                            only the server's notice can. Then it accepts
 *                            the restarted VM's connection and checks its
 *                            whole transfer.
 *   crash_test sender        streams 4 KiB records forever
 *   crash_test sender-N      sends N records, then closes
 *
 * The receiver also runs "ivshm -j monitor" and checks that it reports the
 * killed VM going down. It prints "crash_test: streaming" once records
 * flow and the monitor listens, which is when the runner pulls the plug,
 * and TAP lines for the three checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/ivshmem_netlink.h>

#include "ivshmem.h"
#include "ivshm_nl.h"
#include "ivshm_test.h"

#define CRASH_PORT	5100
#define REC		4096
#define RESET_LIMIT_MS	8000	/* the server's notice, on a loaded host */
#define LIVENESS_MIN_MS	60000	/* the heartbeat's bound, from the plan */
#define PEER_TIMEOUT_PARAM "/sys/module/af_ivshmem/parameters/peer_timeout_ms"
#define MONITOR_OUT	"/tmp/monitor.json"

/* "ivshm -j monitor" into MONITOR_OUT; its pid, or -1. */
static pid_t monitor_start(void)
{
	char *argv[] = { "/tests/ivshm", "-j", "monitor", NULL };
	pid_t pid = fork();
	int fd;

	if (pid)
		return pid;
	fd = open(MONITOR_OUT, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || dup2(fd, 1) < 0)
		_exit(96);
	setenv("ASAN_OPTIONS", "exitcode=99", 1);
	execv(argv[0], argv);
	_exit(96);
}

/* Does a line of MONITOR_OUT hold both words? */
static int monitor_saw(const char *a, const char *b)
{
	char line[1024];
	int found = 0;
	FILE *f = fopen(MONITOR_OUT, "r");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, a) && strstr(line, b);
	fclose(f);
	return found;
}

/* Make a change the monitor reports until it does: then it listens. */
static int monitor_ready(void)
{
	int i;

	for (i = 0; i < 100; i++) {
		ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE, 1);
		ivshm_sleep_ms(100);
		if (monitor_saw("\"dev_changed\"", "\"dev\""))
			return 1;
	}
	return 0;
}

static void fill(unsigned char *p, uint64_t seq)
{
	unsigned int i;

	memcpy(p, &seq, sizeof(seq));
	for (i = sizeof(seq); i < REC; i++)
		p[i] = (unsigned char)(seq * 7 + i);
}

static int check(const unsigned char *p, uint64_t seq)
{
	unsigned char want[REC];

	fill(want, seq);
	return memcmp(p, want, REC);
}

static int sender(uint64_t count)
{
	unsigned char buf[REC];
	uint64_t seq;
	unsigned int vm;
	int fd = -1, tries;

	for (tries = 0; fd < 0 && tries < 300; tries++) {
		for (vm = 0; vm < 64 && fd < 0; vm++)
			fd = ivshmem_connect(vm, CRASH_PORT);
		if (fd < 0)
			ivshm_sleep_ms(200);
	}
	if (fd < 0) {
		perror("crash_test: connect");
		return 1;
	}
	for (seq = 0; !count || seq < count; seq++) {
		fill(buf, seq);
		if (ivshmem_send(buf, REC) != REC) {
			perror("crash_test: send");
			return 1;
		}
	}
	ivshmem_close(fd);
	return 0;
}

/* The liveness bound af_ivshmem was loaded with, in ms; 0 if unknown. */
static unsigned long peer_timeout_ms(void)
{
	unsigned long v = 0;
	FILE *f = fopen(PEER_TIMEOUT_PARAM, "r");

	if (!f)
		return 0;
	if (fscanf(f, "%lu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

static int receiver(void)
{
	unsigned char buf[REC];
	struct timeval tv = { .tv_sec = 120 };
	struct sockaddr_ivshmem peer;
	socklen_t plen = sizeof(peer);
	uint64_t seq = 0, last = 0, gap;
	int lfd, fd, ok, down = 0, st, i;
	char vm[32];
	pid_t mon;
	ssize_t n;

	printf("1..3\n");
	/* Only the server's notice may act within RESET_LIMIT_MS: the
	 * heartbeat's bound must be far past it, drain or no drain.
	 */
	if (peer_timeout_ms() < LIVENESS_MIN_MS) {
		printf("not ok 1 af_ivshmem loaded with a liveness bound of %lu ms, not at least %d (the plan's insmod-af_ivshmem:peer_timeout_ms=%d): the heartbeat could stand in for the server's notice\n",
		       peer_timeout_ms(), LIVENESS_MIN_MS, LIVENESS_MIN_MS);
		return 1;
	}
	mon = monitor_start();
	if (mon < 0 || !monitor_ready()) {
		printf("not ok 3 the monitor starts and listens\n");
		return 1;
	}
	lfd = ivshmem_listen(CRASH_PORT, 1);
	if (lfd < 0 ||
	    setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv))) {
		perror("crash_test: listen");
		return 1;
	}
	fd = ivshmem_accept(lfd, NULL, NULL);
	if (fd < 0) {
		perror("crash_test: accept");
		return 1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (getpeername(fd, (struct sockaddr *)&peer, &plen)) {
		perror("crash_test: getpeername");
		return 1;
	}
	for (;;) {
		n = ivshmem_recv(buf, sizeof(buf));
		if (n != REC)
			break;
		if (check(buf, seq)) {
			printf("not ok 1 record %llu corrupted before the crash\n",
			       (unsigned long long)seq);
			return 1;
		}
		last = ivshm_now_ms();
		if (++seq == 100) {
			printf("crash_test: streaming\n");
			fflush(stdout);
		}
	}
	gap = ivshm_now_ms() - last;
	ok = n < 0 && errno == ECONNRESET && gap <= RESET_LIMIT_MS;
	printf("%s 1 the survivor's blocked recv fails with ECONNRESET within %d s, with a liveness bound of %lu s (%s, %llu ms after the last of %llu records)\n",
	       ok ? "ok" : "not ok", RESET_LIMIT_MS / 1000,
	       peer_timeout_ms() / 1000,
	       n < 0 ? strerror(errno) : "end of file",
	       (unsigned long long)gap, (unsigned long long)seq);
	ivshmem_close(fd);

	/* The monitor saw it: a peer_down event naming the killed VM. */
	for (i = 0; i < 150 && !down; i++) {	/* up to 15 s */
		snprintf(vm, sizeof(vm), "\"vm\":%u,", peer.sivshm_vm);
		down = monitor_saw("\"event\":\"peer_down\"", vm);
		snprintf(vm, sizeof(vm), "\"vm\":%u}", peer.sivshm_vm);
		down = down || monitor_saw("\"event\":\"peer_down\"", vm);
		if (!down)
			ivshm_sleep_ms(100);
	}
	kill(mon, SIGTERM);
	waitpid(mon, &st, 0);
	printf("%s 3 ivshm monitor reports VM %u down, and exits cleanly on SIGTERM (status %d)\n",
	       down && WIFEXITED(st) && !WEXITSTATUS(st) ? "ok" : "not ok",
	       peer.sivshm_vm, st);
	ok = ok && down && WIFEXITED(st) && !WEXITSTATUS(st);

	/* The restarted VM: a new incarnation, a whole transfer. */
	fd = ivshmem_accept(lfd, NULL, NULL);
	if (fd < 0) {
		printf("not ok 2 the restarted VM connects again: %s\n",
		       strerror(errno));
		return 1;
	}
	for (seq = 0; (n = ivshmem_recv(buf, sizeof(buf))) == REC; seq++)
		if (check(buf, seq))
			break;
	ok = ok && !n && seq == 2000;
	printf("%s 2 the restarted VM connects again and sends 2000 records intact (%llu, then %zd)\n",
	       !n && seq == 2000 ? "ok" : "not ok", (unsigned long long)seq,
	       n);
	ivshmem_close(fd);
	ivshmem_close(lfd);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "receiver"))
		return receiver();
	if (argc == 2 && !strcmp(argv[1], "sender"))
		return sender(0);
	if (argc == 2 && !strncmp(argv[1], "sender-", 7))
		return sender(strtoull(argv[1] + 7, NULL, 0));
	fprintf(stderr, "usage: crash_test receiver|sender|sender-N\n");
	return 2;
}
