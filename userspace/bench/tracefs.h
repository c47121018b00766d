/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel's tracing from a benchmark: turn on af_ivshmem's data-path
 * tracepoints (net/ivshmem/trace.h) and the scheduler's switches into the
 * benchmark's tasks, then print what they recorded, one compact line per
 * event, for scripts/bench-stages.py to split round trips into stages.
 */
#ifndef BENCH_TRACEFS_H
#define BENCH_TRACEFS_H

#include <stdio.h>

/* Mount tracefs if needed, empty the buffer, enable the events, start.
 * Return: 0, or -1 with a message on stderr.
 */
int tracefs_start(void);

/* Stop recording and disable the events; the buffer keeps what it holds. */
void tracefs_stop(void);

/* Print every recorded event to @out as
 * "stagetrace,TAG,SECONDS,PID,EVENT,FIELDS", and the count of events the
 * buffer overwrote as "stagetrace-lost,TAG,N".
 * Return: the number of events printed, or -1.
 */
long tracefs_dump(FILE *out, const char *tag);

#endif
