// SPDX-License-Identifier: GPL-2.0
/*
 * Helpers of the native benchmarks; see bench_util.h.
 */
#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "bench_util.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_s(double s)
{
	struct timespec ts;

	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
		;
}

int pick_cpus(int *a, int *b)
{
	cpu_set_t set;
	int cpu, found = 0;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -errno;
	for (cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (found++ == 0)
			*a = cpu;
		else
			*b = cpu;
	}
	if (!found)
		return -ENOENT;
	if (found == 1)
		*b = *a;
	return 0;
}

int pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

static void cpu_model(char *buf, size_t len)
{
	static const char * const keys[] = { "model name", "Model", "Hardware",
					     "cpu model", "CPU part" };
	char line[512];
	size_t k;
	FILE *f;

	snprintf(buf, len, "unknown CPU");
	f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return;
	for (k = 0; k < ARRAY_SIZE(keys); k++) {
		rewind(f);
		while (fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');
			size_t n = strlen(keys[k]);

			if (!colon || strncmp(line, keys[k], n) ||
			    (line[n] != ' ' && line[n] != '\t' && line[n] != ':'))
				continue;
			colon++;
			while (*colon == ' ' || *colon == '\t')
				colon++;
			colon[strcspn(colon, "\n")] = 0;
			snprintf(buf, len, "%s", colon);
			fclose(f);
			return;
		}
	}
	fclose(f);
}

void machine_describe(char *buf, size_t len)
{
	char model[256];

	cpu_model(model, sizeof(model));
	snprintf(buf, len, "nproc %ld (online %ld), CPU: %s",
		 sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_NPROCESSORS_CONF),
		 model);
}

void date_describe(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %Z", &tm);
}

void cpu_snapshot(struct cpu_snap *s)
{
	unsigned long long v[10] = { 0 };
	double hz = (double)sysconf(_SC_CLK_TCK);
	struct rusage self, kids;
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->wall = (double)now_ns() / 1e9;
	f = fopen("/proc/stat", "r");
	if (f) {
		/* user nice system idle iowait irq softirq steal guest gn */
		if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
			   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
			   &v[7]) == 8) {
			s->busy = (double)(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
			s->steal = (double)v[7] / hz;
		}
		fclose(f);
	}
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &kids);
	s->own = (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec +
			  kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) +
		 (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec +
			  kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e6;
}

double cpu_foreign(const struct cpu_snap *a, const struct cpu_snap *b,
		   double *steal)
{
	double wall = b->wall - a->wall, other;

	if (wall <= 0)
		return 0;
	other = (b->busy - a->busy) - (b->own - a->own);
	if (steal)
		*steal = (b->steal - a->steal) / wall;
	return other > 0 ? other / wall : 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

double stats_median(double *v, int n, double *min, double *max)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	*min = v[0];
	*max = v[n - 1];
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;		/* the directory's own */
}

int mkdir_parents(const char *path)
{
	char buf[4096];
	size_t i;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (i = 1; buf[i]; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = 0;
		if (mkdir(buf, 0777) && errno != EEXIST)
			return -errno;
		buf[i] = '/';
	}
	return 0;
}

void *xalloc(size_t len)
{
	size_t rounded = (len + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, rounded ? rounded : 64);

	if (!p) {
		fprintf(stderr, "bench: out of memory (%zu bytes)\n", len);
		exit(2);
	}
	memset(p, 0, rounded);
	return p;
}

void *shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	memset(p, 0, len);
	return p;
}

pid_t spawn(int (*fn)(void *), void *arg)
{
	pid_t parent = getpid(), pid;

	/* Whatever stdio holds must not be written twice. */
	fflush(NULL);
	pid = fork();
	if (pid)
		return pid;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(2);
	exit(fn(arg));
}

int reap_all(pid_t *pids, int n, uint64_t deadline_ns, void (*on_fail)(void *),
	     void *arg)
{
	int i, left = 0, first = 0, status;
	bool failed = false;

	for (i = 0; i < n; i++)
		left += pids[i] > 0;
	while (left) {
		bool progress = false;

		for (i = 0; i < n; i++) {
			pid_t r;
			int code;

			if (pids[i] <= 0)
				continue;
			r = waitpid(pids[i], &status, WNOHANG);
			if (r == 0 || (r < 0 && errno == EINTR))
				continue;
			pids[i] = 0;
			left--;
			progress = true;
			if (r < 0)
				code = 2;
			else if (WIFEXITED(status))
				code = WEXITSTATUS(status);
			else
				code = 128 + WTERMSIG(status);
			if (code && !first)
				first = code;
			if (code && !failed) {
				failed = true;
				if (on_fail)
					on_fail(arg);
				/* Give the others a moment to notice. */
				if (deadline_ns > now_ns() + 2000000000ull)
					deadline_ns = now_ns() + 2000000000ull;
			}
		}
		if (!left)
			break;
		if (now_ns() > deadline_ns) {
			for (i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGKILL);
			for (i = 0; i < n; i++) {
				if (pids[i] > 0)
					waitpid(pids[i], &status, 0);
				pids[i] = 0;
			}
			return first ? first : 124;
		}
		if (!progress)
			usleep(2000);
	}
	return first;
}
