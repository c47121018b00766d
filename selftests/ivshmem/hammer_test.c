// SPDX-License-Identifier: GPL-2.0
/*
 * hammer_test ROLE: the user side of ivshm_hammer.ko (selftests/kmod), run
 * in two guests on one region at once, one of them booted on a single
 * vCPU. It hammers the shared words first with the kernel's plain
 * cmpxchg(), as the region core did before, then with the region core's
 * primitives, and reports the updates lost each time. The region core's
 * must lose none; what the plain ones lose is reported, not judged (it
 * depends on how often the two VMs meet on a word).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN	"/sys/kernel/debug/ivshm_hammer/run"
#define ROUNDS	5
#define N	20000

static int run(const char *mode, int role, unsigned long long lost[5])
{
	char cmd[64], out[128];
	ssize_t n;
	int fd;

	snprintf(cmd, sizeof(cmd), "%s %d %d %d", mode, role, ROUNDS, N);
	fd = open(RUN, O_RDWR);
	if (fd < 0)
		return -errno;
	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd)) {
		n = -errno;
		close(fd);
		return (int)n;
	}
	n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	if (n <= 0)
		return -EIO;
	out[n] = 0;
	if (sscanf(out, "counter %llu bits %llu lock %llu stuck %llu rounds %llu",
		   &lost[0], &lost[1], &lost[2], &lost[4], &lost[3]) != 5)
		return -EPROTO;
	return 0;
}

int main(int argc, char **argv)
{
	int role = argc > 1 ? atoi(argv[1]) : -1, ret, cpus;
	unsigned long long plain[5], core[5];

	setvbuf(stdout, NULL, _IOLBF, 0);
	cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (role != 0 && role != 1) {
		printf("not ok 1 hammer: role 0 or 1\n");
		return 1;
	}
	ret = run("plain", role, plain);
	printf("%s 1 hammer: %d vCPU, plain cmpxchg(): %d rounds done, lost %llu counter increments, %llu bits, %llu locked increments, %llu locks stuck\n",
	       ret ? "not ok" : "ok", cpus, ret ? 0 : (int)plain[3],
	       ret ? 0 : plain[0], ret ? 0 : plain[1], ret ? 0 : plain[2],
	       ret ? 0 : plain[4]);
	if (ret)
		return 1;
	ret = run("core", role, core);
	printf("%s 2 hammer: %d vCPU, the region core's primitives: %llu rounds, lost %llu counter increments, %llu bits, %llu locked increments, %llu locks stuck\n",
	       !ret && core[3] == ROUNDS && !core[0] && !core[1] && !core[2] &&
	       !core[4] ? "ok" : "not ok", cpus, ret ? 0 : core[3],
	       ret ? 0 : core[0], ret ? 0 : core[1], ret ? 0 : core[2],
	       ret ? 0 : core[4]);
	return ret || core[0] || core[1] || core[2] || core[4];
}
