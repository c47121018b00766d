// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_receiver: accept one stream from ivshmem_sender, check every
 * byte against the sender's pattern and the checksum against its trailer,
 * acknowledge, and print the throughput.
 *
 *   ivshmem_receiver [--port P]
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "ivshmem.h"
#include "stream.h"

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int port = STREAM_PORT, vm = 0, from = 0;
	uint64_t got = 0, sum = 0, x;
	unsigned char *buf, *want;
	struct stream_hdr hdr;
	struct stream_end end;
	struct stream_ack ack = { .magic = STREAM_ACK };
	int lfd, fd, c, last = 0, bad = 0;
	double t0, t;
	ssize_t n;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'p') {
			fprintf(stderr, "usage: ivshmem_receiver [--port P]\n");
			return 2;
		}
		port = (unsigned int)strtoul(optarg, NULL, 0);
	}

	lfd = ivshmem_listen(port, 1);
	if (lfd < 0) {
		fprintf(stderr, "receiver: listen on port %u: %s\n", port,
			strerror(errno));
		return 1;
	}
	fprintf(stderr, "receiver: listening on port %u\n", port);
	fd = ivshmem_accept(lfd, &vm, &from);
	if (fd < 0) {
		fprintf(stderr, "receiver: accept: %s\n", strerror(errno));
		return 1;
	}
	ivshmem_close(lfd);
	ivshmem_use(fd);
	fprintf(stderr, "receiver: connection from VM %u port %u\n", vm, from);

	n = ivshmem_recv(&hdr, sizeof(hdr));
	if (n != sizeof(hdr) || hdr.magic != STREAM_MAGIC || !hdr.record) {
		fprintf(stderr, "receiver: not a stream header\n");
		return 1;
	}
	buf = malloc(hdr.record);
	want = malloc(hdr.record);
	if (!buf || !want) {
		fprintf(stderr, "receiver: out of memory\n");
		return 1;
	}
	x = hdr.seed;
	t0 = stream_now();
	while (got < hdr.total) {
		n = ivshmem_recv(buf, hdr.record);
		if (n <= 0) {
			fprintf(stderr, "\nreceiver: recv: %s\n",
				n ? strerror(errno) : "end of file");
			return 1;
		}
		x = stream_fill(x, want, (size_t)n);
		if (memcmp(buf, want, (size_t)n))
			bad++;
		sum = stream_sum(sum, buf, (size_t)n);
		got += (uint64_t)n;
		stream_progress("receiver", got, hdr.total, t0, &last);
	}
	t = stream_now() - t0;
	if (isatty(2))
		fputc('\n', stderr);
	if (ivshmem_recv(&end, sizeof(end)) != sizeof(end) ||
	    end.magic != STREAM_END) {
		fprintf(stderr, "receiver: no trailer\n");
		return 1;
	}
	ack.bytes = got;
	ack.checksum = sum;
	ack.ok = !bad && end.bytes == got && end.checksum == sum;
	if (ivshmem_send(&ack, sizeof(ack)) != sizeof(ack))
		fprintf(stderr, "receiver: acknowledgment: %s\n", strerror(errno));
	printf("receiver: %llu bytes from VM %u, %.2f s, %.1f MB/s, checksum %016llx %s\n",
	       (unsigned long long)got, vm, t, t > 0 ? got / t / 1e6 : 0.0,
	       (unsigned long long)sum,
	       ack.ok ? "verified" : bad ? "MISMATCH (data)" : "MISMATCH (checksum)");
	/* Wait for the sender to go, so the acknowledgment is read. */
	ivshmem_recv(buf, hdr.record);
	free(buf);
	free(want);
	ivshmem_close(fd);
	return ack.ok ? 0 : 1;
}
