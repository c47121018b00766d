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
 * The region is shared with other machines, not just other CPUs of this
 * one, so the kernel side uses the virt_*() barriers and read-modify-writes
 * that stay locked whatever this kernel finds at boot: on x86 a kernel that
 * sees a single CPU patches the lock prefix out of cmpxchg() and the atomic
 * bit operations ("SMP alternatives: switching to UP code"), module code
 * included, which would leave a 1-vCPU guest racing another VM on the same
 * word. sync_cmpxchg(), xchg() and sync_set_bit() are never patched.
 *
 * Kernel: the accessors are READ_ONCE/WRITE_ONCE, virt_load_acquire and
 * virt_store_release, virt_mb, sync_cmpxchg, xchg and sync_set_bit on
 * __le fields.
 * User space: userspace/include/ivshm_kcompat.h maps the same names onto
 * C11/GCC __atomic builtins with the equivalent orderings (relaxed,
 * acquire, release, seq_cst), which always emit locked instructions.
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
#ifdef CONFIG_X86
#include <asm/sync_bitops.h>
#endif

/* The pending words are 64-bit and taken with one xchg. */
static_assert(BITS_PER_LONG == 64, "af_ivshmem needs a 64-bit kernel");

#else

#include <ivshm_kcompat.h>

#endif /* __KERNEL__ */

/* Native tests and the fuzzer may act as the other machine between any
 * two of our accesses to the region: ivshm_kcompat.h then calls their
 * hook after each one. Nothing in the kernel.
 */
#ifndef ivshm_access_hook
#define ivshm_access_hook(p)	do { } while (0)
#endif

/* 32- and 64-bit loads and stores of little-endian region fields. */
static inline u32 ivshm_get32(const __le32 *p)
{
	u32 v = le32_to_cpu(READ_ONCE(*p));

	ivshm_access_hook(p);
	return v;
}

static inline u64 ivshm_get64(const __le64 *p)
{
	u64 v = le64_to_cpu(READ_ONCE(*p));

	ivshm_access_hook(p);
	return v;
}

static inline void ivshm_put32(__le32 *p, u32 v)
{
	WRITE_ONCE(*p, cpu_to_le32(v));
	ivshm_access_hook(p);
}

static inline void ivshm_put64(__le64 *p, u64 v)
{
	WRITE_ONCE(*p, cpu_to_le64(v));
	ivshm_access_hook(p);
}

static inline u16 ivshm_get16(const __le16 *p)
{
	u16 v = le16_to_cpu(READ_ONCE(*p));

	ivshm_access_hook(p);
	return v;
}

static inline void ivshm_put16(__le16 *p, u16 v)
{
	WRITE_ONCE(*p, cpu_to_le16(v));
	ivshm_access_hook(p);
}

/* The ordering primitives. Each caller names the barrier pair it belongs to
 * (R1, R2, B1, ...) as listed in Documentation/protocol.md.
 */
static inline u64 ivshm_load_acquire64(const __le64 *p)
{
	/* Acquire: later accesses are not performed before this load. */
	u64 v = le64_to_cpu(virt_load_acquire(p));

	ivshm_access_hook(p);
	return v;
}

static inline u32 ivshm_load_acquire32(const __le32 *p)
{
	/* Acquire: later accesses are not performed before this load. */
	u32 v = le32_to_cpu(virt_load_acquire(p));

	ivshm_access_hook(p);
	return v;
}

static inline void ivshm_store_release64(__le64 *p, u64 v)
{
	/* Release: earlier accesses are performed before this store. */
	virt_store_release(p, cpu_to_le64(v));
	ivshm_access_hook(p);
}

static inline void ivshm_store_release32(__le32 *p, u32 v)
{
	/* Release: earlier accesses are performed before this store. */
	virt_store_release(p, cpu_to_le32(v));
	ivshm_access_hook(p);
}

static inline void ivshm_mb(void)
{
	/* Full barrier: orders a store before a later load (Dekker pairs). */
	virt_mb();
}

static inline void ivshm_rmb(void)
{
	/* Read barrier: earlier loads are performed before later ones. */
	virt_rmb();
}

static inline void ivshm_wmb(void)
{
	/* Write barrier: earlier stores are performed before later ones. */
	virt_wmb();
}

/* Compare and exchange, fully ordered and locked even on a kernel that
 * runs on one CPU. Returns the value found, which equals @old when the
 * exchange happened.
 */
static inline u64 ivshm_cmpxchg64(__le64 *p, u64 old, u64 new)
{
#ifdef __KERNEL__
	return le64_to_cpu(sync_cmpxchg(p, cpu_to_le64(old), cpu_to_le64(new)));
#else
	__le64 o = cpu_to_le64(old);

	__atomic_compare_exchange_n(p, &o, cpu_to_le64(new), false,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	ivshm_access_hook(p);
	return le64_to_cpu(o);
#endif
}

static inline u32 ivshm_cmpxchg32(__le32 *p, u32 old, u32 new)
{
#ifdef __KERNEL__
	return le32_to_cpu(sync_cmpxchg(p, cpu_to_le32(old), cpu_to_le32(new)));
#else
	__le32 o = cpu_to_le32(old);

	__atomic_compare_exchange_n(p, &o, cpu_to_le32(new), false,
				    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
	ivshm_access_hook(p);
	return le32_to_cpu(o);
#endif
}

/* Exchange, fully ordered: one locked instruction, however often another
 * machine writes the word meanwhile. Returns the value found.
 */
static inline u64 ivshm_xchg64(__le64 *p, u64 new)
{
#ifdef __KERNEL__
	/* xchg with memory is locked by the CPU itself, never patched. */
	return le64_to_cpu(xchg(p, cpu_to_le64(new)));
#else
	u64 o = le64_to_cpu(__atomic_exchange_n(p, cpu_to_le64(new),
						__ATOMIC_SEQ_CST));

	ivshm_access_hook(p);
	return o;
#endif
}

/* Set bit @bit (0..63, of the little-endian value) of *@p: one locked
 * instruction, fully ordered, however often another machine writes the
 * word meanwhile.
 */
static inline void ivshm_set_bit64(__le64 *p, u32 bit)
{
#ifdef __KERNEL__
#ifdef CONFIG_X86
	sync_set_bit(bit, (unsigned long *)p);
#else
	/* Elsewhere atomics are not patched for one CPU. */
	set_bit(bit ^ BITOP_LE_SWIZZLE, (unsigned long *)p);
	/* Fully ordered, as on x86: ivshm_notify() reads data_armed next. */
	smp_mb__after_atomic();
#endif
#else
	__atomic_fetch_or(p, cpu_to_le64(1ull << bit), __ATOMIC_SEQ_CST);
	ivshm_access_hook(p);
#endif
}

#endif /* _IVSHM_COMPAT_H */
