// SPDX-License-Identifier: GPL-2.0
/*
 * region_demo: what the test bed shows before sockets exist. Run in two
 * guests that share one ivshmem-doorbell region:
 *
 *   1. before af_ivshmem is loaded, each guest maps BAR2 through sysfs,
 *      writes a greeting with its peer id into the region and prints the
 *      other guest's greeting;
 *   2. "region_demo ring" (after insmod af_ivshmem) rings the other guest's
 *      doorbell through the module until it has been rung itself, and
 *      prints the interrupt counts.
 *
 * The kernel command line names the role (ivshm.role=a|b) and a token
 * unique to the run, so a greeting left in /dev/shm by an earlier run is
 * never taken for a new one.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ivshm_test.h"

#define IVSHM_REG_IVPOSITION	0x08

struct greeting {
	_Atomic uint64_t token;		/* written last: the text is complete */
	char text[120];
};

static int greet(int role, uint64_t token)
{
	struct greeting *mine, *theirs;
	volatile uint32_t *regs;
	size_t len, regs_len;
	uint64_t deadline;
	uint32_t id;
	char *shm;

	shm = ivshm_map_bar(2, &len);
	regs = ivshm_map_bar(0, &regs_len);
	if (!shm || !regs) {
		perror("region_demo: mapping the ivshmem BARs");
		return 1;
	}
	id = regs[IVSHM_REG_IVPOSITION / 4];

	mine = (struct greeting *)(shm + len - 4096 + role * 256);
	theirs = (struct greeting *)(shm + len - 4096 + !role * 256);
	snprintf(mine->text, sizeof(mine->text),
		 "hello from guest %c, peer id %u, through %zu KiB of shared memory",
		 'a' + role, id, len >> 10);
	atomic_store(&mine->token, token);
	printf("demo: guest %c wrote:  \"%s\"\n", 'a' + role, mine->text);

	deadline = ivshm_now_ms() + 60000;
	while (atomic_load(&theirs->token) != token) {
		if (ivshm_now_ms() > deadline) {
			printf("demo: no greeting from the other guest\n");
			return 1;
		}
		ivshm_sleep_ms(5);
	}
	printf("demo: guest %c read:   \"%s\"\n", 'a' + role, theirs->text);
	/* Stay until the other side has read ours too. */
	ivshm_sleep_ms(2000);
	munmap(shm, len);
	munmap((void *)regs, regs_len);
	return 0;
}

static int ring(int role)
{
	long long own = ivshm_dev_attr_ll("ivshm0", "info", "own_id");
	long long base = ivshm_doorbells("ivshm0", 0), got;
	uint64_t deadline = ivshm_now_ms() + 60000, stop = 0;
	unsigned int sent = 0;
	char cmd[32];

	if (own < 0 || base < 0) {
		printf("demo: af_ivshmem has no device ivshm0\n");
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "%d 0", (int)!own);
	for (;;) {
		uint64_t now = ivshm_now_ms();

		if (ivshm_write_file(IVSHM_DEBUGFS "/ivshm0/ring", cmd) == 0)
			sent++;
		got = ivshm_doorbells("ivshm0", 0);
		if (!stop && got > base)
			stop = now + 2000;
		if (stop && now > stop)
			break;
		if (now > deadline) {
			printf("demo: guest %c was never rung\n", 'a' + role);
			return 1;
		}
		ivshm_sleep_ms(20);
	}
	printf("demo: guest %c (VM id %lld) rang VM %d %u times and took %lld doorbell interrupts (/proc/interrupts: ivshm0-0 = %lld)\n",
	       'a' + role, own, (int)!own, sent, got - base,
	       ivshm_proc_interrupts("ivshm0-0"));
	return 0;
}

int main(int argc, char **argv)
{
	const char *r = ivshm_cmdline("role");
	int role = r && !strcmp(r, "a") ? 0 : 1;
	uint64_t token = ivshm_cmdline_ull("token", 0);

	if (!r || !token) {
		fprintf(stderr, "region_demo: runs inside a demo guest only\n");
		return 2;
	}
	if (argc > 1 && !strcmp(argv[1], "ring"))
		return ring(role);
	return greet(role, token);
}
