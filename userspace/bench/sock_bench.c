// SPDX-License-Identifier: GPL-2.0
/*
 * sock_bench: AF_IVSHMEM between two guests. Runs in the guests of
 * `make bench-sock` (selftests/runner/run.sh --placements bench-doorbell,
 * bench-plain): "sock_bench server" in one, "sock_bench client" in the
 * other.
 *
 * Doorbells per record at saturation: the client sends N records of 64 B
 * and of 64 KiB, on a channel with a 4 MiB ring, as fast as it can to a
 * server that reads them as fast as it can (the guests get a 32 MiB
 * region); doorbells rung by both guests during the transfer (the
 * rings_sent counter of each one's ivshm0), divided by N. A doorbell is
 * needed only when the other side sleeps, so a busy pair should ring far
 * less than once per record.
 *
 * Round trip: 64 B records echoed by the server, one at a time; the
 * median and 99th percentile of 2000 rounds after 100 of warm-up.
 *
 * Figures are printed, never judged by the exit status: 0 unless a
 * connection or a record went wrong.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "ivshmem.h"
#include "ivshm_test.h"

#define BENCH_PORT	6000
#define BENCH_RING	(4 << 20)
#define RTT_ROUNDS	2000
#define RTT_WARMUP	100

enum { CMD_SINK = 1, CMD_ECHO = 2, CMD_QUIT = 3 };

struct cmd {
	uint32_t op;
	uint32_t size;
	uint32_t count;
	uint32_t reserved;
};

struct reply {
	uint64_t records;
	uint64_t rings;		/* doorbells the server rang meanwhile */
};

static long long rings_sent(void)
{
	return ivshm_dev_attr_ll("ivshm0", "doorbells", "rings_sent");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int serve_one(int fd)
{
	static unsigned char buf[IVSHMEM_RING_MAX];
	struct reply rep = { 0 };
	struct cmd c;
	long long r0;
	uint32_t i;

	if (recv(fd, &c, sizeof(c), 0) != sizeof(c))
		return -1;
	switch (c.op) {
	case CMD_SINK:
		r0 = rings_sent();
		for (i = 0; i < c.count; i++)
			if (recv(fd, buf, sizeof(buf), 0) != (ssize_t)c.size)
				return -1;
		rep.records = c.count;
		rep.rings = (uint64_t)(rings_sent() - r0);
		return send(fd, &rep, sizeof(rep), 0) == sizeof(rep) ? 0 : -1;
	case CMD_ECHO:
		for (i = 0; i < c.count; i++) {
			ssize_t n = recv(fd, buf, sizeof(buf), 0);

			if (n < 0 || send(fd, buf, (size_t)n, 0) != n)
				return -1;
		}
		return 0;
	case CMD_QUIT:
		return 1;
	}
	return -1;
}

static int server(void)
{
	int lfd = ivshmem_listen(BENCH_PORT, 4), fd, ret;

	if (lfd < 0) {
		perror("sock_bench: listen");
		return 1;
	}
	for (;;) {
		fd = ivshmem_accept(lfd, NULL, NULL);
		if (fd < 0) {
			perror("sock_bench: accept");
			return 1;
		}
		ret = serve_one(fd);
		ivshmem_close(fd);
		if (ret) {
			ivshmem_close(lfd);
			return ret < 0;
		}
	}
}

static unsigned int server_vm = ~0u;

/*
 * A connection to the server whose channel has a ring of @ring bytes
 * (0: the default), through SO_SNDBUFFORCE, since SO_SNDBUF is capped by
 * net.core.wmem_max; the kernel doubles what is set.
 */
static int connect_vm(unsigned int vm, int ring)
{
	struct sockaddr_ivshmem a = {
		.sivshm_family = (__kernel_sa_family_t)ivshmem_family(),
		.sivshm_vm = vm,
		.sivshm_port = BENCH_PORT,
	};
	int fd = ivshmem_socket(), half = ring / 2;

	if (fd < 0)
		return -1;
	if ((ring && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &half,
				sizeof(half))) ||
	    connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_server(int ring)
{
	double deadline = now_s() + 60;
	unsigned int vm;
	int fd;

	if (server_vm != ~0u)
		return connect_vm(server_vm, ring);
	do {
		for (vm = 0; vm < 64; vm++) {
			fd = connect_vm(vm, ring);
			if (fd >= 0) {
				server_vm = vm;
				return fd;
			}
		}
		usleep(200000);
	} while (now_s() < deadline);
	return -1;
}

static int saturate(const char *mode, uint32_t size, uint32_t count,
		    int ring)
{
	unsigned char *buf = calloc(1, size);
	struct cmd c = { .op = CMD_SINK, .size = size, .count = count };
	struct reply rep;
	long long r0, r1;
	double t0, t;
	uint32_t i;
	int fd = connect_server(ring);

	if (fd < 0 || !buf) {
		perror("sock_bench: connect");
		free(buf);
		return -1;
	}
	r0 = rings_sent();
	t0 = now_s();
	if (send(fd, &c, sizeof(c), 0) != sizeof(c))
		goto err;
	for (i = 0; i < count; i++)
		if (send(fd, buf, size, 0) != (ssize_t)size)
			goto err;
	if (recv(fd, &rep, sizeof(rep), 0) != sizeof(rep) ||
	    rep.records != count)
		goto err;
	t = now_s() - t0;
	r1 = rings_sent();
	printf("bench: %-8s %5u B, %u KiB ring: %u records, %.0f records/s, %.1f MB/s, doorbells %lld + %llu = %.4f per record (target <= 0.05: %s)\n",
	       mode, size, ring >> 10, count, count / t,
	       count * (double)size / t / 1e6,
	       r1 - r0, (unsigned long long)rep.rings,
	       ((double)(r1 - r0) + (double)rep.rings) / count,
	       ((double)(r1 - r0) + (double)rep.rings) / count <= 0.05 ?
	       "met" : "NOT met");
	free(buf);
	ivshmem_close(fd);
	return 0;
err:
	perror("sock_bench: transfer");
	free(buf);
	ivshmem_close(fd);
	return -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int round_trip(const char *mode)
{
	static double us[RTT_ROUNDS];
	struct cmd c = { .op = CMD_ECHO, .size = 64,
			 .count = RTT_ROUNDS + RTT_WARMUP };
	unsigned char buf[64] = { 0 };
	int fd = connect_server(0), i;

	if (fd < 0 || send(fd, &c, sizeof(c), 0) != sizeof(c)) {
		perror("sock_bench: connect");
		return -1;
	}
	for (i = 0; i < RTT_ROUNDS + RTT_WARMUP; i++) {
		double t0 = now_s();

		if (send(fd, buf, sizeof(buf), 0) != sizeof(buf) ||
		    recv(fd, buf, sizeof(buf), 0) != sizeof(buf)) {
			perror("sock_bench: echo");
			ivshmem_close(fd);
			return -1;
		}
		if (i >= RTT_WARMUP)
			us[i - RTT_WARMUP] = (now_s() - t0) * 1e6;
	}
	ivshmem_close(fd);
	qsort(us, RTT_ROUNDS, sizeof(us[0]), cmp_double);
	printf("bench: %-8s round trip of a 64 B record: median %.1f us, p99 %.1f us (%d rounds)\n",
	       mode, us[RTT_ROUNDS / 2], us[RTT_ROUNDS * 99 / 100],
	       RTT_ROUNDS);
	return 0;
}

static int client(void)
{
	char mode[16] = "";
	struct cmd q = { .op = CMD_QUIT };
	int fd, ret = 0;

	if (ivshm_dev_attr("ivshm0", "info", "mode", mode, sizeof(mode)))
		snprintf(mode, sizeof(mode), "?");
	/* Rings of 4 MiB: what the rebalancer gives a busy channel. */
	ret |= saturate(mode, 64, 100000, BENCH_RING);
	ret |= saturate(mode, 65536, 2000, BENCH_RING);
	ret |= round_trip(mode);
	fd = connect_server(0);
	if (fd >= 0) {
		send(fd, &q, sizeof(q), 0);
		ivshmem_close(fd);
	}
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "server"))
		return server();
	if (argc == 2 && !strcmp(argv[1], "client"))
		return client();
	fprintf(stderr, "usage: sock_bench server|client\n");
	return 2;
}
