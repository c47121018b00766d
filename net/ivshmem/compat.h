/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The region core (layout.c, ring.c, alloc.c) is portable C: it compiles
 * into af_ivshmem.ko and, unchanged, into native tests, the fuzzer and the
 * benchmarks. This header is its only view of the platform.
 *
 * Shared-memory access goes through the ivshm_*() accessors below and
 * nothing else, so that every load from the region is a single access of
 * its full width (READ_ONCE) that the compiler may neither repeat nor tear,
 * and every value is converted from little endian once, on the way in.
 *
 * Kernel: the accessors are READ_ONCE/WRITE_ONCE, smp_load_acquire and
 * smp_store_release, smp_mb and cmpxchg on __le fields.
 * User space: userspace/include/ivshm_kcompat.h maps the same names onto
 * C11/GCC __atomic builtins with the equivalent orderings (relaxed,
 * acquire, release, seq_cst).
 */
#ifndef _IVSHM_COMPAT_H
#define _IVSHM_COMPAT_H

#ifdef __KERNEL__

#include <linux/atomic.h>
#include <linux/bitops.h>
#include <linux/build_bug.h>
#include <linux/compiler.h>
#include <linux/errno.h>
#include <linux/kernel.h>
#include <linux/stddef.h>
#include <linux/string.h>
#include <linux/types.h>
#include <asm/barrier.h>
#include <asm/byteorder.h>

#else

#include <ivshm_kcompat.h>

#endif /* __KERNEL__ */

/* 32- and 64-bit loads and stores of little-endian region fields. */
static inline u32 ivshm_get32(const __le32 *p)
{
	return le32_to_cpu(READ_ONCE(*p));
}

static inline u64 ivshm_get64(const __le64 *p)
{
	return le64_to_cpu(READ_ONCE(*p));
}

static inline void ivshm_put32(__le32 *p, u32 v)
{
	WRITE_ONCE(*p, cpu_to_le32(v));
}

static inline void ivshm_put64(__le64 *p, u64 v)
{
	WRITE_ONCE(*p, cpu_to_le64(v));
}

static inline u16 ivshm_get16(const __le16 *p)
{
	return le16_to_cpu(READ_ONCE(*p));
}

static inline void ivshm_put16(__le16 *p, u16 v)
{
	WRITE_ONCE(*p, cpu_to_le16(v));
}

/* The ordering primitives. Each caller names the barrier pair it belongs to
 * (R1, R2, B1, ...) as listed in Documentation/protocol.md.
 */
static inline u64 ivshm_load_acquire64(const __le64 *p)
{
	/* Acquire: later accesses are not performed before this load. */
	return le64_to_cpu(smp_load_acquire(p));
}

static inline u32 ivshm_load_acquire32(const __le32 *p)
{
	/* Acquire: later accesses are not performed before this load. */
	return le32_to_cpu(smp_load_acquire(p));
}

static inline void ivshm_store_release64(__le64 *p, u64 v)
{
	/* Release: earlier accesses are performed before this store. */
	smp_store_release(p, cpu_to_le64(v));
}

static inline void ivshm_store_release32(__le32 *p, u32 v)
{
	/* Release: earlier accesses are performed before this store. */
	smp_store_release(p, cpu_to_le32(v));
}

static inline void ivshm_mb(void)
{
	/* Full barrier: orders a store before a later load (Dekker pairs). */
	smp_mb();
}

/* Compare and exchange, fully ordered. Returns the value found, which
 * equals @old when the exchange happened.
 */
static inline u64 ivshm_cmpxchg64(__le64 *p, u64 old, u64 new)
{
#ifdef __KERNEL__
	return le64_to_cpu(cmpxchg(p, cpu_to_le64(old), cpu_to_le64(new)));
#else
	__le64 o = cpu_to_le64(old);

	__atomic_compare_exchange_n(p, &o, cpu_to_le64(new), false,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return le64_to_cpu(o);
#endif
}

static inline u32 ivshm_cmpxchg32(__le32 *p, u32 old, u32 new)
{
#ifdef __KERNEL__
	return le32_to_cpu(cmpxchg(p, cpu_to_le32(old), cpu_to_le32(new)));
#else
	__le32 o = cpu_to_le32(old);

	__atomic_compare_exchange_n(p, &o, cpu_to_le32(new), false,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	return le32_to_cpu(o);
#endif
}

#endif /* _IVSHM_COMPAT_H */
