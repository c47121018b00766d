// SPDX-License-Identifier: GPL-2.0
/*
 * Tracing a benchmark's round trips through tracefs (tracefs.h).
 *
 * The trace's text lines look like
 *   "  net_bench-312  [001] d.h2.  1234.567890: ivshm_interrupt: dev=0 ..."
 * (the flags column differs between kernels): the task's pid ends the
 * first word, the timestamp is the word before the event's name, and the
 * fields follow it. Only those three are kept.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tracefs.h"

#define TRACEFS		"/sys/kernel/tracing"
/* Per CPU: about 40,000 events of these kinds, more than a run makes. */
#define BUFFER_KB	"4096"

static int put(const char *file, const char *val)
{
	char path[256];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0) {
		fprintf(stderr, "tracefs: %s: %s\n", path, strerror(errno));
		return -1;
	}
	n = write(fd, val, strlen(val));
	if (n != (ssize_t)strlen(val)) {
		fprintf(stderr, "tracefs: writing \"%s\" to %s: %s\n", val,
			path, n < 0 ? strerror(errno) : "short write");
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int tracefs_start(void)
{
	struct stat st;

	if (stat(TRACEFS "/trace", &st) &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL)) {
		fprintf(stderr, "tracefs: cannot mount %s: %s\n", TRACEFS,
			strerror(errno));
		return -1;
	}
	if (put("tracing_on", "0") || put("events/enable", "0") ||
	    put("buffer_size_kb", BUFFER_KB) || put("trace", "") ||
	    put("events/ivshmem/enable", "1") ||
	    put("events/sched/sched_switch/filter",
		"next_comm == \"net_bench\"") ||
	    put("events/sched/sched_switch/enable", "1"))
		return -1;
	return put("tracing_on", "1");
}

/* Stop, and disable the events too: what runs next runs untraced. */
void tracefs_stop(void)
{
	put("tracing_on", "0");
	put("events/enable", "0");
}

/* Events the ring buffer overwrote, over every CPU. */
static long tracefs_overruns(void)
{
	char path[128], line[128];
	long total = 0, n;
	int cpu;

	for (cpu = 0; cpu < 1024; cpu++) {
		FILE *f;

		snprintf(path, sizeof(path), TRACEFS "/per_cpu/cpu%d/stats",
			 cpu);
		f = fopen(path, "r");
		if (!f)
			break;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "overrun: %ld", &n) == 1)
				total += n;
		fclose(f);
	}
	return total;
}

/* One line of the trace, or 0 for a comment or a line not understood. */
static int tracefs_line(FILE *out, const char *tag, char *line)
{
	char *name, *ts, *fields, *p, *pid;

	if (line[0] == '#')
		return 0;
	line[strcspn(line, "\n")] = '\0';
	/* The event's name: after the first ": " that follows the CPU. */
	p = strstr(line, "] ");
	if (!p)
		return 0;
	name = strstr(p, ": ");
	if (!name)
		return 0;
	*name = '\0';
	name += 2;
	fields = strstr(name, ": ");
	if (fields) {
		*fields = '\0';
		fields += 2;
	} else {
		fields = "";
	}
	/* The timestamp: the last word before the name. */
	ts = strrchr(line, ' ');
	if (!ts)
		return 0;
	ts++;
	/* The pid: the digits after the last '-' of the first word. */
	while (isspace((unsigned char)*line))
		line++;
	p = strchr(line, ' ');
	if (!p)
		return 0;
	*p = '\0';
	pid = strrchr(line, '-');
	if (!pid)
		return 0;
	pid++;
	fprintf(out, "stagetrace,%s,%s,%s,%s,%s\n", tag, ts, pid, name,
		fields);
	return 1;
}

long tracefs_dump(FILE *out, const char *tag)
{
	char line[512];
	long n = 0;
	FILE *f;

	f = fopen(TRACEFS "/trace", "r");
	if (!f) {
		fprintf(stderr, "tracefs: %s/trace: %s\n", TRACEFS,
			strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f))
		n += tracefs_line(out, tag, line);
	fclose(f);
	fprintf(out, "stagetrace-lost,%s,%ld\n", tag, tracefs_overruns());
	fflush(out);
	return n;
}
