// SPDX-License-Identifier: GPL-2.0
/*
 * A VM paused for a while keeps its connections, as AF_VSOCK's do: the
 * "pause" placement runs this in two ivshmem-plain guests, where only the
 * heartbeat tells a peer's death, with af_ivshmem's default liveness bound.
 *
 *   pause_test b   echoes records on PAUSE_PORT until the connection ends
 *   pause_test a   connects to b, checks a few round trips, prints
 *                  "pause_test: pause now" (the runner then stops b's QEMU
 *                  through its monitor for ivshm.pause_s seconds and lets
 *                  it go on), and goes on with round trips until one of
 *                  them takes as long as the pause: the one in flight while
 *                  b stood still. It must come back late but whole, and
 *                  more round trips must follow: no ECONNRESET on either
 *                  side.
 *
 * How soon the runner stops b after reading the line depends on how busy
 * the host is, so a does not guess a delay: it keeps asking. If no round
 * trip within PAUSE_WAIT_MS takes as long as the pause, the runner never
 * stopped b, and that fails, so that the test cannot pass without a pause.
 *
 * Output: TAP, one line per check.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/ivshmem.h>

#include "ivshm_test.h"

#define PAUSE_PORT	7300
#define ROUNDS		20
#define PAUSE_WAIT_MS	120000		/* for the runner to stop b */

static int af, tests, failures;

static void check(int ok, const char *what, unsigned long long v)
{
	printf("%s %d pause_test: %s (%llu)\n", ok ? "ok" : "not ok", ++tests,
	       what, v);
	failures += !ok;
}

static void set_rcvtimeo(int fd, unsigned int s)
{
	struct timeval tv = { s, 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int echo(void)
{
	int l = ivshm_listen_on(af, PAUSE_PORT, IVSHMEM_DEV_ANY, 1), fd;
	char buf[64];
	ssize_t n;

	if (l < 0)
		return 1;
	fd = accept(l, NULL, NULL);
	if (fd < 0)
		return 1;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	check(n == 0, "the echo side saw end of file, not an error",
	      (unsigned long long)(n < 0 ? errno : 0));
	close(fd);
	close(l);
	return failures != 0;
}

/* One round trip of record @i; its time in ms, or -1 with errno set. */
static long long round_trip(int fd, unsigned int i)
{
	uint64_t t0 = ivshm_now_ms();
	unsigned int got;

	if (send(fd, &i, sizeof(i), MSG_NOSIGNAL) != sizeof(i) ||
	    recv(fd, &got, sizeof(got), 0) != sizeof(got))
		return -1;
	if (got != i) {
		errno = EBADMSG;
		return -1;
	}
	return (long long)(ivshm_now_ms() - t0);
}

static int client(void)
{
	unsigned int pause_s = (unsigned int)ivshm_cmdline_ull("pause_s", 4);
	long long me = ivshm_dev_attr_ll("ivshm0", "info", "own_id");
	uint64_t end = ivshm_now_ms() + 120000;
	long long t = 0, paused;
	unsigned int vm, i, n;
	int fd = -1;

	/* The other VM took its id itself: find it by its listener. */
	while (fd < 0 && ivshm_now_ms() < end) {
		for (vm = 0; vm < 64 && fd < 0; vm++)
			if (vm != me)
				fd = ivshm_connect_to(af, vm, PAUSE_PORT,
						      IVSHMEM_DEV_ANY);
		if (fd < 0)
			ivshm_sleep_ms(200);
	}
	if (fd < 0) {
		check(0, "connected to the echo side", 0);
		return 1;
	}
	set_rcvtimeo(fd, 60);
	for (i = 0; i < ROUNDS && t >= 0; i++)
		t = round_trip(fd, i);
	check(t >= 0, "round trips before the pause",
	      (unsigned long long)(t < 0 ? errno : 0));

	printf("pause_test: pause now\n");
	fflush(stdout);
	/* Round trips, a little apart, until b stops under one of them.
	 * It is caught within a round trip's gap of the pause's start, but
	 * our own vCPU may stand a while on a busy host: half the pause is
	 * what one must take at least.
	 */
	paused = (long long)pause_s * 1000 / 2;
	end = ivshm_now_ms() + PAUSE_WAIT_MS;
	do {
		ivshm_sleep_ms(10);
		t = round_trip(fd, i++);
	} while (t >= 0 && t < paused && ivshm_now_ms() < end);
	check(t >= 0, "the round trip in flight came back after the pause",
	      (unsigned long long)(t < 0 ? errno : 0));
	check(t >= paused,
	      "one took half the pause at least, so the VM did stand still (ms)",
	      (unsigned long long)(t < 0 ? 0 : t));
	for (n = 0; n < ROUNDS && t >= 0; n++)
		t = round_trip(fd, i++);
	check(t >= 0, "round trips after the pause",
	      (unsigned long long)(t < 0 ? errno : 0));
	close(fd);
	return failures != 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	af = ivshm_family();
	if (af < 0 || argc < 2) {
		printf("not ok 1 pause_test: af_ivshmem is not loaded, or no role\n");
		return 1;
	}
	return !strcmp(argv[1], "b") ? echo() : client();
}
