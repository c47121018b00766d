// SPDX-License-Identifier: GPL-2.0
/*
 * Several guests on one region, each talking to every other at once.
 *
 * Every guest runs "mesh_test N" (N guests in all): it listens, connects
 * to each other guest, and accepts a connection from each, so that every
 * pair shares two connections. On every connection both sides send
 * RECORDS records at the same time, of sizes drawn from the record's
 * sequence number (1 byte to 16 KiB), each carrying its sequence number
 * and a checksum of its payload, then shut down their sending side; each
 * side reads until end of file and checks that every record came, whole,
 * once and in order. A thread per direction and connection keeps every
 * ring busy at once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/ivshmem.h>

#include "kselftest_harness.h"
#include "ivshm_test.h"

/*
 * A guard against hangs, no time limit: the debug kernel under TCG moves
 * these records in minutes, not seconds.
 */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	450

#define MESH_PORT	7200
#define MAX_GUESTS	8
#define RECORDS		3000
#define MAX_REC		16384
#define WAIT_MS		60000

static int af;
static unsigned int guests;

struct rec_hdr {
	uint32_t seq;
	uint32_t len;
	uint64_t sum;
};

static struct sockaddr_ivshmem addr(unsigned int vm, unsigned int port)
{
	return ivshm_addr(af, vm, port, IVSHMEM_DEV_ANY);
}

static uint32_t rec_len(uint32_t seq, uint32_t salt)
{
	uint32_t x = (seq + 1) * 2654435761u ^ salt;

	return sizeof(struct rec_hdr) + x % (MAX_REC - sizeof(struct rec_hdr));
}

static uint64_t fill(unsigned char *p, uint32_t len, uint32_t seq)
{
	uint64_t s = 0;
	uint32_t i;

	for (i = 0; i < len; i++) {
		p[i] = (unsigned char)(seq * 7 + i * 13 + (i >> 9));
		s = s * 31 + p[i];
	}
	return s;
}

struct side {
	int fd;
	uint32_t salt;		/* the sender's VM id: sizes differ per pair */
	unsigned int count;	/* records sent or verified */
	char err[128];
};

static void *sender(void *arg)
{
	struct side *s = arg;
	unsigned char *buf = malloc(MAX_REC);
	struct rec_hdr *h = (struct rec_hdr *)buf;
	uint32_t seq;

	for (seq = 0; buf && seq < RECORDS; seq++) {
		uint32_t len = rec_len(seq, s->salt);

		h->seq = seq;
		h->len = len;
		h->sum = fill(buf + sizeof(*h), len - sizeof(*h), seq);
		if (send(s->fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
			snprintf(s->err, sizeof(s->err), "send %u: %s", seq,
				 strerror(errno));
			break;
		}
		s->count++;
	}
	shutdown(s->fd, SHUT_WR);
	free(buf);
	return NULL;
}

static void *receiver(void *arg)
{
	struct side *s = arg;
	unsigned char *buf = malloc(MAX_REC + 1), *want = malloc(MAX_REC);
	struct rec_hdr h;
	ssize_t n;

	while (buf && want && !s->err[0]) {
		uint32_t len = rec_len(s->count, s->salt);

		n = recv(s->fd, buf, MAX_REC + 1, 0);
		if (n == 0)
			break;
		if (n < 0) {
			snprintf(s->err, sizeof(s->err), "recv after %u: %s",
				 s->count, strerror(errno));
			break;
		}
		memcpy(&h, buf, sizeof(h));
		if (n != (ssize_t)len || h.seq != s->count || h.len != len ||
		    h.sum != fill(want, len - sizeof(h), h.seq) ||
		    memcmp(want, buf + sizeof(h), len - sizeof(h))) {
			snprintf(s->err, sizeof(s->err),
				 "record %u: got seq %u, %zd bytes (want %u)",
				 s->count, h.seq, n, len);
			break;
		}
		s->count++;
	}
	if (!s->err[0] && s->count != RECORDS)
		snprintf(s->err, sizeof(s->err), "%u records, want %u",
			 s->count, RECORDS);
	free(buf);
	free(want);
	return NULL;
}

/*
 * Connect to every other guest: to each VM id that answers, until @want
 * are connected. A VM id nobody has fails at once (EHOSTUNREACH); a guest
 * that is up but not listening yet refuses (ECONNREFUSED), and is tried
 * again.
 */
static unsigned int connect_all(unsigned int me, int *fds, unsigned int *vms,
				unsigned int want)
{
	uint64_t end = ivshm_now_ms() + WAIT_MS;
	bool done[64] = { false };
	unsigned int vm, n = 0;

	while (n < want && ivshm_now_ms() < end) {
		for (vm = 0; vm < 64 && n < want; vm++) {
			struct sockaddr_ivshmem a = addr(vm, MESH_PORT);
			int fd;

			if (vm == me || done[vm])
				continue;
			fd = socket(af, SOCK_SEQPACKET, 0);
			if (fd < 0)
				return n;
			if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
				close(fd);
				continue;
			}
			done[vm] = true;
			fds[n] = fd;
			vms[n++] = vm;
		}
		if (n < want)
			ivshm_sleep_ms(100);
	}
	return n;
}

TEST(every_guest_talks_to_every_other_at_once)
{
	unsigned int me = (unsigned int)ivshm_dev_attr_ll("ivshm0", "info",
							   "own_id");
	struct sockaddr_ivshmem la = addr(IVSHMEM_VM_ANY, MESH_PORT);
	unsigned int vms[MAX_GUESTS], others = guests - 1, nconn = 0, i;
	struct side tx[2 * MAX_GUESTS], rx[2 * MAX_GUESTS];
	pthread_t tt[2 * MAX_GUESTS], rt[2 * MAX_GUESTS];
	struct ivshmem_peer peer;
	socklen_t plen;
	int lfd;

	ASSERT_LE(2, guests);
	ASSERT_GE(MAX_GUESTS, guests);
	lfd = socket(af, SOCK_SEQPACKET, 0);
	ASSERT_LE(0, lfd);
	ASSERT_EQ(0, bind(lfd, (struct sockaddr *)&la, sizeof(la)));
	ASSERT_EQ(0, listen(lfd, 2 * MAX_GUESTS));
	{
		struct timeval tv = { .tv_sec = WAIT_MS / 1000 };

		setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}

	{
		int fds[MAX_GUESTS];

		ASSERT_EQ(others, connect_all(me, fds, vms, others));
		for (i = 0; i < others; i++) {
			tx[nconn].fd = rx[nconn].fd = fds[i];
			tx[nconn].salt = me;
			rx[nconn].salt = vms[i];
			nconn++;
		}
	}
	/* And one connection from each other guest. */
	while (nconn < 2 * others) {
		int fd = accept(lfd, NULL, NULL);

		ASSERT_LE(0, fd);
		plen = sizeof(peer);
		ASSERT_EQ(0, getsockopt(fd, SOL_IVSHMEM, IVSHMEM_PEER, &peer,
					&plen));
		tx[nconn].fd = rx[nconn].fd = fd;
		tx[nconn].salt = me;
		rx[nconn].salt = peer.vm;
		nconn++;
	}

	for (i = 0; i < nconn; i++) {
		tx[i].count = rx[i].count = 0;
		tx[i].err[0] = rx[i].err[0] = 0;
		ASSERT_EQ(0, pthread_create(&tt[i], NULL, sender, &tx[i]));
		ASSERT_EQ(0, pthread_create(&rt[i], NULL, receiver, &rx[i]));
	}
	for (i = 0; i < nconn; i++) {
		pthread_join(tt[i], NULL);
		pthread_join(rt[i], NULL);
	}
	for (i = 0; i < nconn; i++) {
		EXPECT_EQ(0, tx[i].err[0]) TH_LOG("to VM %u: %s", rx[i].salt,
						  tx[i].err);
		EXPECT_EQ(0, rx[i].err[0]) TH_LOG("from VM %u: %s", rx[i].salt,
						  rx[i].err);
		EXPECT_EQ(RECORDS, rx[i].count);
		close(rx[i].fd);
	}
	TH_LOG("VM %u: %u connections, %u records each way on each, verified",
	       me, nconn, RECORDS);
	close(lfd);
}

int main(int argc, char **argv)
{
	af = ivshm_family();
	if (af < 0) {
		fprintf(stderr, "mesh_test: af_ivshmem is not loaded\n");
		return 1;
	}
	guests = argc > 1 ? (unsigned int)strtoul(argv[1], NULL, 0) : 3;
	return test_harness_run(1, argv);
}
