// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem_sender: move a stream of bytes to ivshmem_receiver in another
 * VM over AF_IVSHMEM, with a progress display, a checksum the receiver
 * verifies, and the throughput at the end.
 *
 *   ivshmem_sender [--vm N|auto] [--port P] [--bytes SIZE] [--record SIZE]
 *
 * --vm auto (the default) connects to the first VM that accepts on the
 * port, retrying for up to a minute while the receiver starts. SIZE takes
 * k, M and G suffixes (powers of 1024); --bytes defaults to 256M, --record
 * to the largest record the connection carries.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

#include "ivshmem.h"
#include "stream.h"

static int connect_auto(unsigned int port)
{
	double deadline = stream_now() + 60;
	unsigned int vm;
	int fd;

	do {
		for (vm = 0; vm < 64; vm++) {
			fd = ivshmem_connect(vm, port);
			if (fd >= 0) {
				fprintf(stderr, "sender: connected to VM %u port %u\n",
					vm, port);
				return fd;
			}
		}
		usleep(200000);
	} while (stream_now() < deadline);
	errno = ECONNREFUSED;
	return -1;
}

static void usage(void)
{
	fprintf(stderr, "usage: ivshmem_sender [--vm N|auto] [--port P] [--bytes SIZE] [--record SIZE]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vm", required_argument, NULL, 'v' },
		{ "port", required_argument, NULL, 'p' },
		{ "bytes", required_argument, NULL, 'b' },
		{ "record", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	const char *vm_arg = "auto";
	unsigned int port = STREAM_PORT;
	uint64_t total = 256ull << 20, sent = 0, sum = 0, x;
	struct stream_hdr hdr;
	struct stream_end end;
	struct stream_ack ack;
	size_t record = 0;
	unsigned char *buf;
	double t0, t;
	int fd, c, last = 0, max;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'v': vm_arg = optarg; break;
		case 'p': port = (unsigned int)strtoul(optarg, NULL, 0); break;
		case 'b': total = stream_size(optarg); if (!total) usage(); break;
		case 'r': record = stream_size(optarg); if (!record) usage(); break;
		default: usage();
		}
	}
	if (optind != argc)
		usage();

	if (!strcmp(vm_arg, "auto"))
		fd = connect_auto(port);
	else
		fd = ivshmem_connect((unsigned int)strtoul(vm_arg, NULL, 0), port);
	if (fd < 0) {
		fprintf(stderr, "sender: connect: %s\n", strerror(errno));
		return 1;
	}
	max = ivshmem_max_record(fd);
	if (max <= 0) {
		fprintf(stderr, "sender: IVSHMEM_MAX_RECORD: %s\n", strerror(errno));
		return 1;
	}
	if (!record || record > (size_t)max)
		record = (size_t)max;
	buf = malloc(record);
	if (!buf) {
		fprintf(stderr, "sender: out of memory\n");
		return 1;
	}

	hdr.magic = STREAM_MAGIC;
	hdr.total = total;
	hdr.record = (uint32_t)record;
	hdr.seed = (uint32_t)getpid() | 1;
	x = hdr.seed;
	if (ivshmem_send(&hdr, sizeof(hdr)) != sizeof(hdr))
		goto err;
	t0 = stream_now();
	while (sent < total) {
		size_t n = total - sent < record ? (size_t)(total - sent) : record;

		x = stream_fill(x, buf, n);
		sum = stream_sum(sum, buf, n);
		if (ivshmem_send(buf, n) != (ssize_t)n)
			goto err;
		sent += n;
		stream_progress("sender", sent, total, t0, &last);
	}
	end.magic = STREAM_END;
	end.bytes = sent;
	end.checksum = sum;
	if (ivshmem_send(&end, sizeof(end)) != sizeof(end))
		goto err;
	if (ivshmem_recv(&ack, sizeof(ack)) != sizeof(ack) ||
	    ack.magic != STREAM_ACK) {
		fprintf(stderr, "\nsender: no acknowledgment from the receiver\n");
		return 1;
	}
	t = stream_now() - t0;
	if (isatty(2))
		fputc('\n', stderr);
	printf("sender: %llu bytes in %u-byte records, %.2f s, %.1f MB/s, checksum %016llx %s\n",
	       (unsigned long long)sent, (unsigned int)record, t,
	       t > 0 ? sent / t / 1e6 : 0.0, (unsigned long long)sum,
	       ack.ok ? "verified by the receiver" : "MISMATCH at the receiver");
	free(buf);
	ivshmem_close(fd);
	return ack.ok ? 0 : 1;
err:
	fprintf(stderr, "\nsender: send: %s\n", strerror(errno));
	return 1;
}
