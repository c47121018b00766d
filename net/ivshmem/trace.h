/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints along the data path, one per stage of a record's way from
 * one socket to another: sendmsg() entered, the reader notified (and
 * whether a doorbell rang), a doorbell's interrupt, a NAPI poll beginning
 * and ending, a socket woken, recvmsg() returning. With the scheduler's
 * sched_switch they split a round trip into its stages
 * (Documentation/benchmarks.md, Where a round trip's time goes); disabled,
 * each costs a patched-out branch.
 *
 * Devices are named by their index (ivshmN), channels by their slot.
 * ivshm_notify's rang is what ivshm_notify() returns: a doorbell rang, or,
 * for a notification to ourselves, our handler was scheduled.
 * ivshm_poll_done ends a poll that completed on a device with doorbells,
 * with the moderation hint and decision (napi.c); a poll that used its
 * whole budget, or a polled device's, has none. ivshm_recvmsg is a record
 * returned, also with MSG_PEEK; errors and end of file are not traced.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM ivshmem

#if !defined(_IVSHM_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define _IVSHM_TRACE_H

#include <linux/tracepoint.h>

TRACE_EVENT(ivshm_sendmsg,
	    TP_PROTO(u32 dev, u32 idx, size_t len),
	    TP_ARGS(dev, idx, len),
	    TP_STRUCT__entry(__field(u32, dev)
			     __field(u32, idx)
			     __field(size_t, len)),
	    TP_fast_assign(__entry->dev = dev;
			   __entry->idx = idx;
			   __entry->len = len;),
	    TP_printk("dev=%u chan=%u len=%zu", __entry->dev, __entry->idx,
		      __entry->len)
);

TRACE_EVENT(ivshm_recvmsg,
	    TP_PROTO(u32 dev, u32 idx, int ret),
	    TP_ARGS(dev, idx, ret),
	    TP_STRUCT__entry(__field(u32, dev)
			     __field(u32, idx)
			     __field(int, ret)),
	    TP_fast_assign(__entry->dev = dev;
			   __entry->idx = idx;
			   __entry->ret = ret;),
	    TP_printk("dev=%u chan=%u ret=%d", __entry->dev, __entry->idx,
		      __entry->ret)
);

TRACE_EVENT(ivshm_notify,
	    TP_PROTO(u32 dev, u32 vm, u32 idx, u32 set, bool rang),
	    TP_ARGS(dev, vm, idx, set, rang),
	    TP_STRUCT__entry(__field(u32, dev)
			     __field(u32, vm)
			     __field(u32, idx)
			     __field(u32, set)
			     __field(bool, rang)),
	    TP_fast_assign(__entry->dev = dev;
			   __entry->vm = vm;
			   __entry->idx = idx;
			   __entry->set = set;
			   __entry->rang = rang;),
	    TP_printk("dev=%u vm=%u chan=%u set=%s rang=%d", __entry->dev,
		      __entry->vm, __entry->idx, __entry->set ? "data" : "ctrl",
		      __entry->rang)
);

TRACE_EVENT(ivshm_interrupt,
	    TP_PROTO(u32 dev, u32 vector),
	    TP_ARGS(dev, vector),
	    TP_STRUCT__entry(__field(u32, dev)
			     __field(u32, vector)),
	    TP_fast_assign(__entry->dev = dev;
			   __entry->vector = vector;),
	    TP_printk("dev=%u vector=%u", __entry->dev, __entry->vector)
);

TRACE_EVENT(ivshm_poll,
	    TP_PROTO(u32 dev),
	    TP_ARGS(dev),
	    TP_STRUCT__entry(__field(u32, dev)),
	    TP_fast_assign(__entry->dev = dev;),
	    TP_printk("dev=%u", __entry->dev)
);

TRACE_EVENT(ivshm_poll_done,
	    TP_PROTO(u32 dev, int done, u64 waiting, bool moderated),
	    TP_ARGS(dev, done, waiting, moderated),
	    TP_STRUCT__entry(__field(u32, dev)
			     __field(int, done)
			     __field(u64, waiting)
			     __field(bool, moderated)),
	    TP_fast_assign(__entry->dev = dev;
			   __entry->done = done;
			   __entry->waiting = waiting;
			   __entry->moderated = moderated;),
	    TP_printk("dev=%u done=%d waiting=%llu moderated=%d", __entry->dev,
		      __entry->done, __entry->waiting, __entry->moderated)
);

TRACE_EVENT(ivshm_wake,
	    TP_PROTO(u32 dev, u32 idx, bool rx),
	    TP_ARGS(dev, idx, rx),
	    TP_STRUCT__entry(__field(u32, dev)
			     __field(u32, idx)
			     __field(bool, rx)),
	    TP_fast_assign(__entry->dev = dev;
			   __entry->idx = idx;
			   __entry->rx = rx;),
	    TP_printk("dev=%u chan=%u %s", __entry->dev, __entry->idx,
		      __entry->rx ? "reader" : "writer")
);

#endif /* _IVSHM_TRACE_H */

/* Outside the guard: define_trace.h reads this file again. */
#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE trace
#include <trace/define_trace.h>
