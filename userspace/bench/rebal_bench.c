// SPDX-License-Identifier: GPL-2.0
/*
 * rebal_bench: what rebalancing buys a bulk transfer. Runs in the guest of
 * `make bench-rebal` (placement bench-rebal): dev_shm with a 4 MiB region,
 * one bulk connection beside four idle ones, 64 KiB records sent as fast
 * as they go, first with rebalancing off (module parameter rebalance=N:
 * every channel keeps its initial 128 KiB), then on (the defaults). Each
 * mode gets fresh connections, WARM_S seconds to settle (the channel
 * grows), then MEASURE_S seconds of measurement at the receiver.
 *
 * Prints both throughputs and their ratio, from the same run. Exit status
 * 0 unless a connection or a record went wrong: figures are never judged.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>

#include "ivshm_nl.h"
#include "ivshm_test.h"

#define PORT		6100
#define REC		65536
#define IDLE		4
#define WARM_S		6
#define MEASURE_S	10

static int af;

struct bulk {
	int tx, rx;
	atomic_bool stop;
	atomic_ulong got;
	bool bad;
};

/* Rebalancing on or off, on every device. */
static int set_rebalance(bool on)
{
	return ivshm_nl_set_param(NULL, IVSHMEM_PARAM_REBALANCE, on);
}

static int sock_at(unsigned int vm, unsigned int port, unsigned int dev,
		   bool listening)
{
	struct sockaddr_ivshmem a = ivshm_addr(af, vm, port, dev);
	int fd = socket(af, SOCK_SEQPACKET, 0);

	if (fd < 0)
		return -1;
	if (listening ? bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
			listen(fd, 8) :
			connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void *sender(void *arg)
{
	struct bulk *b = arg;
	unsigned char *buf = calloc(1, REC);
	uint64_t seq = 0;

	while (buf && !atomic_load(&b->stop)) {
		memcpy(buf, &seq, sizeof(seq));
		if (send(b->tx, buf, REC, MSG_NOSIGNAL) != REC) {
			b->bad = true;
			break;
		}
		seq++;
	}
	shutdown(b->tx, SHUT_WR);
	free(buf);
	return NULL;
}

static void *receiver(void *arg)
{
	struct bulk *b = arg;
	unsigned char *buf = malloc(REC);
	uint64_t seq = 0, s;
	ssize_t n;

	while (buf && (n = recv(b->rx, buf, REC, 0)) > 0) {
		memcpy(&s, buf, sizeof(s));
		if (n != REC || s != seq++) {
			b->bad = true;
			break;
		}
		atomic_fetch_add(&b->got, 1);
	}
	free(buf);
	return NULL;
}

/* Records per second at the receiver, with rebalancing @on; -1 on error. */
static double run(bool on, unsigned int *ring)
{
	int lfd, c[IDLE + 1], a[IDLE + 1], i, n = 0;
	struct bulk b = { 0 };
	pthread_t st, rt;
	unsigned long g0 = 0, g1 = 0;
	uint64_t t0 = 0, t1 = 1;
	char x = 'x';

	if (set_rebalance(on))
		return -1;
	lfd = sock_at(IVSHMEM_VM_ANY, PORT + on, 2, true);	/* ivshm1 */
	if (lfd < 0)
		return -1;
	for (i = 0; i <= IDLE; i++, n++) {
		c[i] = sock_at(1, PORT + on, 1, false);		/* ivshm0 */
		a[i] = c[i] < 0 ? -1 : accept(lfd, NULL, NULL);
		if (a[i] < 0 || send(c[i], &x, 1, 0) != 1 ||
		    recv(a[i], &x, 1, 0) != 1)
			goto out;
	}
	b.tx = c[0];
	b.rx = a[0];
	if (pthread_create(&rt, NULL, receiver, &b))
		goto out;
	if (pthread_create(&st, NULL, sender, &b)) {
		shutdown(b.tx, SHUT_WR);
		pthread_join(rt, NULL);
		goto out;
	}
	ivshm_sleep_ms(WARM_S * 1000);
	t0 = ivshm_now_ms();
	g0 = atomic_load(&b.got);
	ivshm_sleep_ms(MEASURE_S * 1000);
	t1 = ivshm_now_ms();
	g1 = atomic_load(&b.got);
	*ring = (unsigned int)ivshm_dev_attr_ll("ivshm0", "doorbells",
						"grown");
	atomic_store(&b.stop, true);
	pthread_join(st, NULL);
	pthread_join(rt, NULL);
	n = IDLE + 1;
out:
	for (i = 0; i < n && i <= IDLE; i++) {
		if (c[i] >= 0)
			close(c[i]);
		if (a[i] >= 0)
			close(a[i]);
	}
	close(lfd);
	set_rebalance(true);
	if (n != IDLE + 1 || b.bad)
		return -1;
	return (double)(g1 - g0) * 1000.0 / (double)(t1 - t0);
}

int main(void)
{
	unsigned int grown_off = 0, grown_on = 0;
	double off, on;

	af = ivshm_family();
	if (af < 0) {
		fprintf(stderr, "rebal_bench: af_ivshmem is not loaded\n");
		return 1;
	}
	printf("rebal_bench: one bulk connection (64 KiB records) beside %d idle ones, dev_shm, %lld KiB region\n",
	       IDLE, ivshm_dev_attr_ll("ivshm0", "info", "region_size") >> 10);
	off = run(false, &grown_off);
	on = run(true, &grown_on);
	if (off <= 0 || on <= 0) {
		fprintf(stderr, "rebal_bench: a run failed\n");
		return 1;
	}
	printf("rebalancing off: %10.0f records/s %8.1f MB/s\n", off,
	       off * REC / 1e6);
	printf("rebalancing on:  %10.0f records/s %8.1f MB/s (%u growths)\n",
	       on, on * REC / 1e6, grown_on - grown_off);
	printf("ratio on/off: %.2f\n", on / off);
	return 0;
}
