/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The stream the sender and receiver examples move: a header record, data
 * records of a fixed size (the last may be shorter), a trailer with the
 * byte count and checksum, and the receiver's acknowledgment.
 */
#ifndef IVSHMEM_STREAM_H
#define IVSHMEM_STREAM_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define STREAM_PORT		5000
#define STREAM_MAGIC		0x4d52545348535649ull	/* "IVSHSTRM" */
#define STREAM_END		0x444e454853485649ull	/* "IVSHSEND" */
#define STREAM_ACK		0x4b43414853485649ull	/* "IVSHSACK" */

struct stream_hdr {
	uint64_t magic;
	uint64_t total;		/* bytes that will follow */
	uint32_t record;	/* bytes per data record */
	uint32_t seed;
};

struct stream_end {
	uint64_t magic;
	uint64_t bytes;
	uint64_t checksum;
};

struct stream_ack {
	uint64_t magic;
	uint64_t bytes;
	uint64_t checksum;	/* what the receiver computed */
	uint32_t ok;		/* 1: it matched the sender's */
	uint32_t reserved;
};

/* Order-dependent 64-bit checksum over words; a tail is zero-padded. */
static inline uint64_t stream_sum(uint64_t s, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t w;

	while (len >= 8) {
		memcpy(&w, p, 8);
		s = ((s << 7) | (s >> 57)) ^ (w * 0x9e3779b97f4a7c15ull);
		p += 8;
		len -= 8;
	}
	if (len) {
		w = 0;
		memcpy(&w, p, len);
		s = ((s << 7) | (s >> 57)) ^ (w * 0x9e3779b97f4a7c15ull);
	}
	return s;
}

/* The sender's data: xorshift64, so every byte depends on the seed. */
static inline uint64_t stream_fill(uint64_t x, void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len) {
		size_t n = len < 8 ? len : 8;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p, &x, n);
		p += n;
		len -= n;
	}
	return x;
}

static inline double stream_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "5G", "256M", "64k" or plain bytes; 0 on error. */
static inline uint64_t stream_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);

	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	return *end ? 0 : v;
}

/*
 * Progress: a line rewritten in place on a terminal, else one line per
 * quarter of the way.
 */
static inline void stream_progress(const char *who, uint64_t done,
				   uint64_t total, double t0, int *last)
{
	double t = stream_now() - t0, pct = total ? 100.0 * done / total : 100;
	int tty = isatty(2), q = (int)(pct / 25);

	if (tty) {
		fprintf(stderr, "\r%s: %8.1f / %.1f MiB  %3.0f%%  %8.1f MB/s", who,
			done / 1048576.0, total / 1048576.0, pct,
			t > 0 ? done / t / 1e6 : 0.0);
	} else if (q > *last) {
		*last = q;
		fprintf(stderr, "%s: %.1f / %.1f MiB (%.0f%%)\n", who,
			done / 1048576.0, total / 1048576.0, pct);
	}
}

#endif /* IVSHMEM_STREAM_H */
