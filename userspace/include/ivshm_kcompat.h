/* SPDX-License-Identifier: GPL-2.0 */
/*
 * User-space stand-ins for the kernel facilities the region core uses
 * (net/ivshmem/core/compat.h includes this when __KERNEL__ is not defined), so
 * that the same core compiles into native tests, the fuzzer and benchmarks.
 * The atomics are GCC/C11 __atomic builtins with the orderings the kernel
 * primitives guarantee.
 */
#ifndef IVSHM_KCOMPAT_H
#define IVSHM_KCOMPAT_H

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef uint8_t u8;
typedef uint16_t u16;
typedef uint32_t u32;
typedef uint64_t u64;
typedef int64_t s64;
typedef uint16_t __le16;
typedef uint32_t __le32;
typedef uint64_t __le64;

#define cpu_to_le16(x)	htole16(x)
#define cpu_to_le32(x)	htole32(x)
#define cpu_to_le64(x)	htole64(x)
#define le16_to_cpu(x)	le16toh(x)
#define le32_to_cpu(x)	le32toh(x)
#define le64_to_cpu(x)	le64toh(x)

#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define virt_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)
#define virt_store_release(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define virt_mb()		__atomic_thread_fence(__ATOMIC_SEQ_CST)
#define virt_rmb()		__atomic_thread_fence(__ATOMIC_ACQUIRE)
#define virt_wmb()		__atomic_thread_fence(__ATOMIC_RELEASE)

/*
 * Built with IVSHM_ACCESS_HOOK (the native tests, the fuzzer), every access
 * the core makes to the region is followed by a call of ivshm_access_fn,
 * when set, with the address accessed: the test plays the other machine,
 * writing whatever it likes between two of the core's accesses. A NULL
 * hook costs a test of one pointer.
 */
#ifdef IVSHM_ACCESS_HOOK
extern void (*ivshm_access_fn)(const volatile void *p);
#define ivshm_access_hook(p) \
	do { if (ivshm_access_fn) ivshm_access_fn(p); } while (0)
#endif

#define BITS_PER_LONG		64
#define BIT(n)			(1ul << (n))
#define BIT_ULL(n)		(1ull << (n))
#define ALIGN(x, a)		(((x) + (a) - 1) & ~((__typeof__(x))(a) - 1))
#define IS_ALIGNED(x, a)	(((x) & ((__typeof__(x))(a) - 1)) == 0)
#define DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))
#define likely(x)		__builtin_expect(!!(x), 1)
#define unlikely(x)		__builtin_expect(!!(x), 0)
#define hweight64(x)		((unsigned int)__builtin_popcountll(x))
#define __ffs64(x)		((unsigned int)__builtin_ctzll(x))

static inline bool is_power_of_2(u64 n)
{
	return n && !(n & (n - 1));
}


#endif /* IVSHM_KCOMPAT_H */
