/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small helpers of the native benchmarks: time, CPU pinning, the machine
 * description, statistics and process management. Nothing here knows about
 * the region core.
 */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The kernel's spellings, for the kernel coding style. */
#ifndef ARRAY_SIZE
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#endif
#ifndef __printf
#define __printf(a, b)		__attribute__((format(printf, a, b)))
#endif
#ifndef __aligned
#define __aligned(x)		__attribute__((aligned(x)))
#endif

/* Polite busy waiting: PAUSE on x86, YIELD on arm64, a compiler barrier
 * elsewhere. Never sleeps.
 */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

uint64_t now_ns(void);
void sleep_s(double s);

/* The first two CPUs we may run on; both the same one on a 1-CPU box. */
int pick_cpus(int *a, int *b);
int pin_to_cpu(int cpu);

/* "nproc N, <model name>", and the local date and time. */
void machine_describe(char *buf, size_t len);
void date_describe(char *buf, size_t len);

/*
 * Who else used the CPUs: a snapshot of the busy time of the whole machine
 * (/proc/stat) and of our own (this process and its reaped children).
 * cpu_foreign() is the average number of CPUs that other processes, and
 * the host (steal), kept busy between two snapshots.
 */
struct cpu_snap {
	double wall;			/* s */
	double busy;			/* s, all CPUs */
	double steal;			/* s, all CPUs */
	double own;			/* s */
};

void cpu_snapshot(struct cpu_snap *s);
double cpu_foreign(const struct cpu_snap *a, const struct cpu_snap *b,
		   double *steal);

/* Median, minimum and maximum of @n values; @v is sorted in place. */
double stats_median(double *v, int n, double *min, double *max);

/* Open file descriptors of this process. */
int count_fds(void);

/* mkdir -p of the directory part of @path. */
int mkdir_parents(const char *path);

/* 64-byte aligned, zero-filled, never NULL (exits on failure). */
void *xalloc(size_t len);

/* A shared anonymous mapping, zero-filled, or NULL. */
void *shared_alloc(size_t len);

/*
 * Children: fork one running fn(arg), which returns the exit status; the
 * child dies with the parent. reap_all() waits for @n children until
 * @deadline_ns; a child that fails makes it kill the rest after a short
 * grace period, and so does the deadline. Returns the first non-zero exit
 * status (128 + signal for a signalled child, 124 for a timeout), or 0.
 */
pid_t spawn(int (*fn)(void *), void *arg);
int reap_all(pid_t *pids, int n, uint64_t deadline_ns, void (*on_fail)(void *),
	     void *arg);

#endif /* BENCH_UTIL_H */
