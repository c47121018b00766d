// SPDX-License-Identifier: GPL-2.0
/*
 * A bounded random-syscall tester over the AF_IVSHMEM socket API, in one
 * guest with dev_shm (four virtual peers, devices ivshm0..ivshm3 with VM
 * ids 0..3, on one region).
 *
 * Two processes run at once, each with its own descriptor table, so that
 * descriptor reuse in one can never reach the other:
 *
 *  - chaos: NCHAOS threads share a table of NSLOTS descriptors and call
 *    whatever comes: socket (bad types and protocols too), bind, listen,
 *    connect (blocking and not, to listeners that exist and that do not),
 *    accept/accept4, send/sendto/sendmsg/sendmmsg, recv/recvfrom/recvmsg/
 *    recvmmsg, poll/select/epoll, shutdown, get/setsockopt, ioctl,
 *    getsockname/getpeername, fcntl, dup/dup2 and close, with random
 *    descriptors, addresses, lengths, flags, bad pointers (NULL, never
 *    mapped, kernel addresses, a PROT_NONE page, buffers running into it)
 *    and signals interrupting blocking calls. Close races every other call
 *    on the same descriptors. Every errno must be one that call may return
 *    (the E_* sets below); every record received must still be a record
 *    that some chaos send made whole (its length and pattern).
 *
 *  - integrity: NLANES lanes, each a sequence of connections between two
 *    random virtual peers. On every connection both directions carry
 *    records of random sizes with a header (direction id, sequence
 *    number, length, checksum of the payload), sent through every send
 *    call with random flags, iovecs, bad buffers and oversized lengths,
 *    and received through every receive call (MSG_PEEK then recv must
 *    give the same record, SIOCINQ the length of the next, poll/epoll
 *    readable means a record or the end), by one sender and one receiver
 *    thread per side. The receiver checks that every record is of its
 *    connection and direction, whole, and exactly the next in sequence:
 *    nothing lost, duplicated, reordered or damaged. Meanwhile the lane
 *    pokes the sockets (poll, options, names, queues, peeks) and decides
 *    the connection's fate: an orderly end, a side closed while its
 *    threads send, receive and poll (dup2() of a spare socket over the
 *    descriptor, so that the number is never reused), a shutdown of a
 *    random kind, or both sides closed at once. Errors must fit what
 *    happened (EPIPE only after a shutdown or a close, ECONNRESET only
 *    after a close). Where nothing reset the connection, the receiver must
 *    have got exactly what the sender's calls reported sent, no more and
 *    no less (a close loses nothing sent before it; a reset, by a close
 *    with records unread, may).
 *
 * No device may count a protocol error: the test listens to the module's
 * netlink events and prints each with the check that failed and the recent
 * events of its channel. A failure on an integrity connection prints its
 * state, the last calls of its four threads and what debugfs shows of its
 * channels.
 *
 * The run ends once both processes have made their share of the operation
 * budget (ivshm.ops=, default 100000 in all); reaching the wall-clock cap
 * (ivshm.fuzz_s=, default 400) first fails the test, so the count is real.
 * The cap catches a run that stopped making progress: it is far beyond
 * the 30 to 45 s a debug-kernel guest takes, even on a loaded host.
 * The seed comes from the run token (ivshm.token=) unless ivshm.fuzz_seed=
 * is given, and is printed: the same seed replays each thread's choices
 * (not the scheduling). Afterwards no socket may be left (the module's
 * reference count is back to where it was) and the region's whole data
 * area must be free; the runner fails the run on any kernel report.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/sockios.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>

#include "kselftest_harness.h"
#include "ivshm_nl.h"
#include "ivshm_test.h"

/* A guard against hangs, above the run's own cap and end checks. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	540

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY	60
#endif
#ifndef SO_COOKIE
#define SO_COOKIE	57
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO	55
#endif

#define NDEV		4	/* dev_shm's virtual peers */
#define NSLOTS		32	/* the chaos descriptor table */
#define NCHAOS		6	/* chaos threads */
#define NLANES		3	/* integrity lanes */
#define INT_PORT	7700	/* lane L listens on INT_PORT + L */
#define CHAOS_PORT	21000	/* chaos listeners: CHAOS_PORT + 0..7 */
#define CHAOS_NPORTS	8
#define CBUF		(1u << 20)	/* a chaos thread's record buffer */
#define CSEG		(CBUF / 8)	/* one message of a chaos sendmmsg */
#define PAGE		4096u
/* SO_SNDBUF of integrity sockets stays below wmem_max: rings <= 416 KiB. */
#define IMAX		(425984u - 8)
#define ISEG		(16u << 10)	/* one message of an integrity sendmmsg */
#define IRXN		4		/* most messages of an integrity recvmmsg */
#define IRXSEG		(IMAX + 64)

static int af;
static unsigned long long refs_before;

/* ---- a seeded PRNG per thread: xorshift64*, streams split by splitmix ---- */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t x = r->s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	r->s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

static void rng_seed(struct rng *r, uint64_t seed, uint64_t stream)
{
	uint64_t z = seed + 0x9E3779B97F4A7C15ULL * (stream + 1);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	z ^= z >> 31;
	r->s = z ? z : 1;
}

static uint32_t below(struct rng *r, uint32_t n)
{
	return n ? (uint32_t)(rnd(r) % n) : 0;
}

static bool pct(struct rng *r, unsigned int p)
{
	return below(r, 100) < p;
}

/* ---- what both processes share: counters, the stop flag, failures ---- */

enum op {
	OP_SOCKET, OP_BIND, OP_LISTEN, OP_CONNECT, OP_ACCEPT, OP_SEND,
	OP_RECV, OP_POLL, OP_EPOLL, OP_SHUTDOWN, OP_SOCKOPT, OP_IOCTL,
	OP_NAME, OP_CLOSE, OP_FCNTL, OP_NR
};

static const char *const op_name[OP_NR] = {
	"socket", "bind", "listen", "connect", "accept", "send", "recv",
	"poll", "epoll", "shutdown", "sockopt", "ioctl", "name", "close",
	"fcntl/dup",
};

#define NFAIL	12
#define FAILLEN	400

struct shared {
	atomic_ullong ops[2][OP_NR];	/* [0] chaos, [1] integrity */
	atomic_ullong part_ops[2];
	atomic_ullong records;		/* integrity records received, checked */
	atomic_ullong rechecked;	/* ... seen again by MSG_PEEK or SIOCINQ */
	atomic_ullong chaos_records;	/* chaos records whose pattern held */
	atomic_ullong connections;	/* connect() calls that connected */
	atomic_ullong accepted;
	atomic_ullong int_conns;	/* integrity connections run */
	atomic_ullong exact;		/* directions found to lose nothing */
	atomic_ullong kills;		/* integrity sockets closed under use */
	atomic_ullong efaults;		/* bad buffers refused */
	atomic_ullong eintrs;		/* blocking calls a signal interrupted */
	atomic_ullong enobufs;		/* integrity connects retried */
	atomic_int stop;
	atomic_uint nfail;
	char fail[NFAIL][FAILLEN];
	uint64_t seed;
	uint64_t budget[2];
};

static struct shared *sh;
static int part;		/* which process this is: 0 chaos, 1 integrity */

static void op_done(enum op o)
{
	atomic_fetch_add_explicit(&sh->ops[part][o], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&sh->part_ops[part], 1,
				  memory_order_relaxed);
}

static bool stopping(void)
{
	return atomic_load_explicit(&sh->stop, memory_order_relaxed);
}

/* A broken invariant: keep the message, say it now, and end the run. */
static void __attribute__((format(printf, 1, 2))) failf(const char *fmt, ...)
{
	unsigned int i = atomic_fetch_add(&sh->nfail, 1);
	char msg[FAILLEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "# sysfuzz FAIL (%s, seed %llu): %s\n",
		part ? "integrity" : "chaos", (unsigned long long)sh->seed, msg);
	if (i < NFAIL)
		memcpy(sh->fail[i], msg, sizeof(msg));
	atomic_store(&sh->stop, 1);
}

/* ---- allowed errno sets, per call (Documentation/sockets.md) ---- */

static bool err_in(int e, const int *set)
{
	for (; *set; set++)
		if (*set == e)
			return true;
	return false;
}

/*
 * Chaos calls see every state a socket can be in, and descriptors that
 * another thread closed or that now name an epoll instance (EBADF,
 * ENOTSOCK). A failed connect leaves its error in sk_err, and recvmmsg
 * stores the error of a later message there too, to be returned by the
 * next send or receive: those sets hold the union. Signals interrupt
 * blocking calls (EINTR).
 */
static const int E_SOCKET[] = { ESOCKTNOSUPPORT, EPROTONOSUPPORT, EINVAL, 0 };
static const int E_BIND[] = { EBADF, ENOTSOCK, EINVAL, EADDRNOTAVAIL,
			      EADDRINUSE, EFAULT, 0 };
static const int E_LISTEN[] = { EBADF, ENOTSOCK, EINVAL, 0 };
static const int E_CONNECT[] = { EBADF, ENOTSOCK, EINVAL, EAFNOSUPPORT,
				 ENETUNREACH, EHOSTUNREACH, ECONNREFUSED,
				 ETIMEDOUT, ENOBUFS, EISCONN, EADDRNOTAVAIL,
				 EALREADY, EINPROGRESS, EINTR, EFAULT,
				 ECONNRESET, 0 };
static const int E_ACCEPT[] = { EBADF, ENOTSOCK, EINVAL, EAGAIN, EINTR,
				EFAULT, ECONNABORTED, 0 };
static const int E_SEND[] = { EBADF, ENOTSOCK, EFAULT, EINVAL, EOPNOTSUPP,
			      EMSGSIZE, ENOTCONN, EPIPE, ECONNRESET, EAGAIN,
			      ENOBUFS, EINTR, ECONNREFUSED, 0 };
static const int E_RECV[] = { EBADF, ENOTSOCK, EFAULT, EINVAL, EOPNOTSUPP,
			      EMSGSIZE, ENOTCONN, ECONNRESET, EAGAIN, EINTR,
			      ECONNREFUSED, ENOBUFS, 0 };
static const int E_POLL[] = { EFAULT, EINVAL, EINTR, 0 };
static const int E_SELECT[] = { EBADF, EINVAL, EINTR, 0 };
static const int E_EPCREATE[] = { EINVAL, 0 };
static const int E_EPCTL[] = { EBADF, EEXIST, EINVAL, ENOENT, ELOOP, EFAULT,
			       0 };
static const int E_EPWAIT[] = { EBADF, EFAULT, EINTR, EINVAL, 0 };
static const int E_SHUTDOWN[] = { EBADF, ENOTSOCK, EINVAL, ENOTCONN, 0 };
static const int E_SETOPT[] = { EBADF, ENOTSOCK, ENOPROTOOPT, EINVAL, EFAULT,
				EPERM, EDOM, EOPNOTSUPP, ENODEV, 0 };
static const int E_GETOPT[] = { EBADF, ENOTSOCK, ENOPROTOOPT, EINVAL, EFAULT,
				ENOTCONN, EOPNOTSUPP, 0 };
static const int E_IOCTL[] = { EBADF, ENOTTY, EINVAL, EFAULT, 0 };
static const int E_NAME[] = { EBADF, ENOTSOCK, ENOTCONN, EINVAL, EFAULT, 0 };
static const int E_CLOSE[] = { EBADF, 0 };
static const int E_FCNTL[] = { EBADF, 0 };
static const int E_DUP[] = { EBADF, EINVAL, EBUSY, 0 };

static void __attribute__((format(printf, 3, 4)))
chaos_err(int e, const int *set, const char *fmt, ...)
{
	char call[256];
	va_list ap;

	if (e == EINTR)
		atomic_fetch_add_explicit(&sh->eintrs, 1, memory_order_relaxed);
	if (e == EFAULT)
		atomic_fetch_add_explicit(&sh->efaults, 1,
					  memory_order_relaxed);
	if (err_in(e, set))
		return;
	va_start(ap, fmt);
	vsnprintf(call, sizeof(call), fmt, ap);
	va_end(ap);
	failf("%s failed with %s (%d), which that call must not return",
	      call, strerror(e), e);
}

/* ---- bad memory ---- */

/*
 * Two pages per thread: one writable, then one PROT_NONE. "edge" is the
 * boundary: a buffer at edge - k has k usable bytes.
 */
static uint8_t *map_edge(void)
{
	uint8_t *p = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + PAGE, PAGE, PROT_NONE)) {
		munmap(p, 2 * PAGE);
		return NULL;
	}
	return p + PAGE;
}

static void *map_buf(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/*
 * Instead of @good (@len bytes), maybe a pointer the kernel cannot use in
 * full: *usable is how many bytes from the start it can. For a send, the
 * usable part is a copy of the start of @good, so that a record committed
 * in part would still look like its beginning and be caught by its length.
 */
static uint8_t *bad_buf(struct rng *r, uint8_t *good, uint8_t *edge,
			size_t len, bool for_send, size_t *usable)
{
	size_t k;

	*usable = 0;
	switch (below(r, 6)) {
	case 0:
		return NULL;
	case 1:
		return (uint8_t *)(uintptr_t)8;		/* never mapped */
	case 2:
		return (uint8_t *)(uintptr_t)0xffff888000000000ULL;
	case 3:
		return edge;				/* PROT_NONE */
	default:
		if (!len)
			return edge;
		k = len > 1 ? below(r, (uint32_t)(len < PAGE ? len : PAGE)) : 0;
		if (for_send && k)
			memcpy(edge - k, good, k);
		*usable = k;
		return edge - k;
	}
}

/* A pointer of which the kernel can use no byte at all. */
static uint8_t *bad_ptr(struct rng *r, uint8_t *edge)
{
	size_t usable;

	return bad_buf(r, NULL, edge, 0, false, &usable);
}

/* ---- chaos records: byte i of a record of length L is cbyte(L, i) ---- */

static uint8_t cbyte(uint32_t len, uint32_t i)
{
	if (len >= 4 && i < 4)
		return (uint8_t)(len >> (8 * i));	/* the length, LE */
	return (uint8_t)(len * 29u + i * 11u + (i >> 7));
}

static void chaos_fill(uint8_t *p, uint32_t len)
{
	uint32_t i;

	for (i = 0; i < len; i++)
		p[i] = cbyte(len, i);
}

/*
 * @n bytes were copied of a record whose length is @real, or unknown
 * (-1: it may have been truncated). Is it the start of a chaos record?
 */
static bool chaos_check(const uint8_t *p, size_t n, long long real,
			uint32_t *seen_len)
{
	uint32_t len, i;

	if (real >= 0) {
		len = (uint32_t)real;
	} else if (n >= 4) {
		len = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
		      (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	} else {
		return true;		/* too little to tell */
	}
	*seen_len = len;
	if (len < n)
		return false;
	for (i = 0; i < n; i++)
		if (p[i] != cbyte(len, i))
			return false;
	return true;
}

/* ---- the chaos process ---- */

static atomic_int slots[NSLOTS];
/*
 * What each slot's descriptor was when it was put there: a hint only
 * (it may have been closed or reused since), so that sends and receives
 * often find a connection, and accepts a listener.
 */
enum { K_ANY, K_LISTENER, K_CONNECTED };
static atomic_int slot_kind[NSLOTS];

struct cthr {
	pthread_t th;
	unsigned int idx;
	struct rng r;
	uint8_t *sbuf, *rbuf, *edge;
	uint32_t max_rec;
	_Atomic(const char *) cur;	/* the call under way, for a hang */
	atomic_bool done;
};

static void on_usr1(int sig)
{
	(void)sig;
}

/* A descriptor to use: mostly one of the table, else anything. */
static int pick_fd(struct rng *r)
{
	unsigned int w = below(r, 100);

	if (w < 92)
		return atomic_load(&slots[below(r, NSLOTS)]);
	if (w < 96)
		return -1 - (int)below(r, 3);
	return 3 + (int)below(r, 200);
}

/* Mostly a descriptor that was of @kind when it was put in the table. */
static int pick_kind(struct rng *r, int kind)
{
	unsigned int i, s;

	if (pct(r, 70))
		for (i = 0; i < 6; i++) {
			s = below(r, NSLOTS);
			if (atomic_load(&slot_kind[s]) == kind)
				return atomic_load(&slots[s]);
		}
	return pick_fd(r);
}

/* Put @fd (of @kind) in a random slot; whatever was there is closed. */
static void publish_kind(struct rng *r, int fd, int kind)
{
	unsigned int s = below(r, NSLOTS);
	int old = atomic_exchange(&slots[s], fd);

	atomic_store(&slot_kind[s], kind);

	if (old >= 0) {
		if (close(old))
			chaos_err(errno, E_CLOSE, "close(%d) (replaced)", old);
		op_done(OP_CLOSE);
	}
}

static void publish(struct rng *r, int fd)
{
	publish_kind(r, fd, K_ANY);
}

static void set_timeo(int fd, int opt, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000,
			      .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv));
	op_done(OP_SOCKOPT);
}

/*
 * A new chaos socket. Blocking calls on chaos sockets are bounded by
 * short timeouts; the few that a stale descriptor reaches before those
 * are set are ended by the signals of the chaos main thread.
 */
static int chaos_socket(struct rng *r, bool valid)
{
	static const int bad_types[] = { SOCK_STREAM, SOCK_DGRAM, SOCK_RAW,
					 SOCK_RDM, 0, 11, 99 };
	int type = SOCK_SEQPACKET, proto = 0, fd;

	if (!valid) {
		if (pct(r, 40))
			type = bad_types[below(r, 7)];
		else if (pct(r, 50))
			proto = pct(r, 50) ? 1 : (int)rnd(r);
		else
			type |= (int)(1u << (4 + below(r, 27)));	/* a flag */
	}
	if (pct(r, 20))
		type |= SOCK_NONBLOCK;
	if (pct(r, 30))
		type |= SOCK_CLOEXEC;
	fd = socket(af, type, proto);
	op_done(OP_SOCKET);
	if (fd < 0) {
		chaos_err(errno, E_SOCKET, "socket(%d, %#x, %d)", af, type,
			  proto);
		return -1;
	}
	if (!valid && (type & 0xf) != SOCK_SEQPACKET)
		failf("socket(%d, %#x, %d) succeeded: only SOCK_SEQPACKET exists",
		      af, type, proto);
	if (!valid && proto)
		failf("socket(%d, %#x, %d) succeeded: only protocol 0 exists",
		      af, type, proto);
	set_timeo(fd, SO_RCVTIMEO, 1 + below(r, 150));
	set_timeo(fd, SO_SNDTIMEO, 1 + below(r, 150));
	return fd;
}

static uint32_t chaos_port(struct rng *r)
{
	uint32_t p;

	switch (below(r, 12)) {
	case 0:
		return IVSHMEM_PORT_ANY;
	case 1:
		p = below(r, IVSHMEM_PORT_PRIVILEGED);
		break;
	case 2:
		p = (uint32_t)rnd(r);
		break;
	case 3:
		p = IVSHMEM_PORT_EPHEMERAL_FIRST + below(r, 16384);
		break;
	default:
		return CHAOS_PORT + below(r, CHAOS_NPORTS);
	}
	/* Never an integrity listener's: no chaos connection may reach one. */
	if (p >= INT_PORT && p < INT_PORT + NLANES)
		p += NLANES;
	return p;
}

static uint32_t chaos_vm(struct rng *r, bool bind)
{
	if (bind && pct(r, 50))
		return IVSHMEM_VM_ANY;
	switch (below(r, 14)) {
	case 0:
		return IVSHMEM_VM_ANY;
	case 1:
	case 2:
		return IVSHMEM_VM_LOCAL;
	case 3:
		return NDEV + below(r, 60);
	case 4:
		return (uint32_t)rnd(r);
	default:
		return below(r, NDEV);
	}
}

static uint32_t chaos_dev(struct rng *r)
{
	switch (below(r, 12)) {
	case 0:
		return NDEV + 1 + below(r, 60);
	case 1:
		return (uint32_t)rnd(r);
	case 2:
	case 3:
	case 4:
		return IVSHMEM_DEV_ANY;
	default:
		return 1 + below(r, NDEV);
	}
}

struct addrbuf {
	struct sockaddr_ivshmem a;
	uint8_t pad[32];
};

/*
 * A random address: mostly well formed, sometimes another family, a
 * nonzero reserved field, a short or long length, or a bad pointer.
 */
static const struct sockaddr *chaos_addr(struct rng *r, struct addrbuf *b,
					 uint8_t *edge, bool bind,
					 socklen_t *len)
{
	size_t usable;

	memset(b, 0, sizeof(*b));
	b->a = ivshm_addr(af, chaos_vm(r, bind), chaos_port(r), chaos_dev(r));
	if (pct(r, 3))
		b->a.sivshm_family = pct(r, 50) ? AF_INET : (uint16_t)rnd(r);
	if (pct(r, 3))
		b->a.sivshm_reserved = (uint16_t)(1 + below(r, 65535));
	*len = sizeof(b->a);
	if (pct(r, 6)) {
		static const socklen_t lens[] = { 0, 1, 2, 8, 15, 24, 48, 128,
						  129, 1000, (socklen_t)-1 };

		*len = lens[below(r, 11)];
	}
	if (pct(r, 3))
		return (const struct sockaddr *)bad_buf(r, (uint8_t *)b, edge,
							sizeof(*b), true,
							&usable);
	return (const struct sockaddr *)b;
}

static void c_socket(struct cthr *t)
{
	int fd = chaos_socket(&t->r, !pct(&t->r, 25));

	if (fd >= 0)
		publish(&t->r, fd);
}

static const int backlogs[] = { -1, 0, 1, 2, 3, 4, 8, INT_MAX };

static int chaos_backlog(struct rng *r)
{
	/* Rarely unlimited: queued connections hold room in the region. */
	return backlogs[pct(r, 99) ? below(r, 7) : 7];
}

/* A listener on a chaos port, so that connects often find one. */
static void c_listener(struct cthr *t)
{
	struct rng *r = &t->r;
	unsigned int vm = pct(r, 80) ? IVSHMEM_VM_ANY : below(r, NDEV);
	unsigned int dev = pct(r, 70) ? IVSHMEM_DEV_ANY :
			   vm == IVSHMEM_VM_ANY ? 1 + below(r, NDEV) : vm + 1;
	struct sockaddr_ivshmem a = ivshm_addr(af, vm,
					       CHAOS_PORT + below(r, CHAOS_NPORTS),
					       dev);
	int fd = chaos_socket(r, true), backlog = chaos_backlog(r);

	if (fd < 0)
		return;
	t->cur = "bind (listener)";
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)))
		chaos_err(errno, E_BIND, "bind(%d, vm %u port %u dev %u)", fd,
			  vm, a.sivshm_port, dev);
	op_done(OP_BIND);
	if (listen(fd, backlog))
		chaos_err(errno, E_LISTEN, "listen(%d, %d) (listener)", fd,
			  backlog);
	op_done(OP_LISTEN);
	publish_kind(r, fd, K_LISTENER);
}

static void c_bind(struct cthr *t)
{
	struct addrbuf b;
	socklen_t len;
	const struct sockaddr *a = chaos_addr(&t->r, &b, t->edge, true, &len);
	int fd = pick_fd(&t->r);

	if (bind(fd, a, len))
		chaos_err(errno, E_BIND,
			  "bind(%d, %p {fam %u res %u vm %#x port %u dev %u}, %u)",
			  fd, (const void *)a, b.a.sivshm_family,
			  b.a.sivshm_reserved, b.a.sivshm_vm, b.a.sivshm_port,
			  b.a.sivshm_dev, len);
	op_done(OP_BIND);
}

static void c_listen(struct cthr *t)
{
	int fd = pick_fd(&t->r), backlog = chaos_backlog(&t->r);

	if (listen(fd, backlog))
		chaos_err(errno, E_LISTEN, "listen(%d, %d)", fd, backlog);
	op_done(OP_LISTEN);
}

static void c_connect(struct cthr *t)
{
	struct rng *r = &t->r;
	bool fresh = pct(r, 50), nonblock = pct(r, 25);
	struct addrbuf b;
	socklen_t len;
	const struct sockaddr *a = chaos_addr(r, &b, t->edge, false, &len);
	int fd = fresh ? chaos_socket(r, true) : pick_fd(r), ret, e;

	if (fresh && fd < 0)
		return;
	if (fresh && pct(r, 60)) {
		/* Well formed, to a port a listener may have: data flows. */
		b.a = ivshm_addr(af, pct(r, 15) ? IVSHMEM_VM_LOCAL :
				 below(r, NDEV), CHAOS_PORT + below(r, CHAOS_NPORTS),
				 pct(r, 30) ? IVSHMEM_DEV_ANY : 1 + below(r, NDEV));
		a = (const struct sockaddr *)&b;
		len = sizeof(b.a);
	}
	if (nonblock) {
		if (fcntl(fd, F_SETFL, O_NONBLOCK))
			chaos_err(errno, E_FCNTL, "fcntl(%d, F_SETFL, O_NONBLOCK)",
				  fd);
		op_done(OP_FCNTL);
	}
	if (pct(r, 10)) {
		uint64_t ms = pct(r, 80) ? below(r, 300) :
			      (uint64_t)INT_MAX + 1 + below(r, 1000);

		if (setsockopt(fd, SOL_IVSHMEM, IVSHMEM_CONNECT_TIMEOUT, &ms,
			       sizeof(ms)))
			chaos_err(errno, E_SETOPT,
				  "setsockopt(%d, SOL_IVSHMEM, CONNECT_TIMEOUT, %llu)",
				  fd, (unsigned long long)ms);
		op_done(OP_SOCKOPT);
	}
	t->cur = "connect";
	ret = connect(fd, a, len);
	e = errno;
	op_done(OP_CONNECT);
	if (!ret)
		atomic_fetch_add(&sh->connections, 1);
	else
		chaos_err(e, E_CONNECT,
			  "connect(%d, %p {fam %u res %u vm %#x port %u dev %u}, %u)%s",
			  fd, (const void *)a, b.a.sivshm_family,
			  b.a.sivshm_reserved, b.a.sivshm_vm, b.a.sivshm_port,
			  b.a.sivshm_dev, len, nonblock ? " nonblocking" : "");
	if (ret && e == EINPROGRESS && pct(r, 60)) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int err = 0, n;
		socklen_t el = sizeof(err);

		t->cur = "poll (connect)";
		n = poll(&p, 1, (int)below(r, 60));
		op_done(OP_POLL);
		if (n < 0)
			chaos_err(errno, E_POLL, "poll(%d, POLLOUT) after connect",
				  fd);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el))
			chaos_err(errno, E_GETOPT, "getsockopt(%d, SO_ERROR)", fd);
		else if (err && !err_in(err, E_CONNECT))
			failf("SO_ERROR %s after a nonblocking connect of %d",
			      strerror(err), fd);
		op_done(OP_SOCKOPT);
	}
	if (fresh)
		publish_kind(r, fd, ret ? K_ANY : K_CONNECTED);
}

static void c_accept(struct cthr *t)
{
	struct rng *r = &t->r;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), len0;
	struct sockaddr *ap = (struct sockaddr *)&ss;
	socklen_t *lp = &len;
	int fd = pick_kind(r, K_LISTENER), flags = 0, nfd;
	size_t usable;
	bool four = pct(r, 60);

	if (four) {
		if (pct(r, 30))
			flags |= SOCK_NONBLOCK;
		if (pct(r, 40))
			flags |= SOCK_CLOEXEC;
		if (pct(r, 4))
			flags |= (int)(1u << below(r, 31));
	}
	switch (below(r, 10)) {
	case 0:
		ap = NULL;
		lp = NULL;
		break;
	case 1:
		len = pct(r, 50) ? 0 : 4;
		break;
	case 2:
		len = (socklen_t)-1;
		break;
	case 3:
		ap = (struct sockaddr *)bad_buf(r, (uint8_t *)&ss, t->edge,
						sizeof(ss), false, &usable);
		break;
	default:
		break;
	}
	len0 = len;
	t->cur = "accept";
	nfd = four ? accept4(fd, ap, lp, flags) : accept(fd, ap, lp);
	op_done(OP_ACCEPT);
	if (nfd < 0) {
		chaos_err(errno, E_ACCEPT, "accept%s(%d, %p, len %d, %#x)",
			  four ? "4" : "", fd, (void *)ap, (int)len0, flags);
		return;
	}
	atomic_fetch_add(&sh->accepted, 1);
	if (ap == (struct sockaddr *)&ss && len0 >= sizeof(struct sockaddr_ivshmem) &&
	    (len != sizeof(struct sockaddr_ivshmem) ||
	     ((struct sockaddr_ivshmem *)&ss)->sivshm_family != af))
		failf("accept(%d) gave an address of length %u, family %u",
		      fd, len, ((struct sockaddr_ivshmem *)&ss)->sivshm_family);
	publish_kind(r, nfd, K_CONNECTED);
}

static int chaos_sflags(struct rng *r)
{
	int f = 0;

	if (pct(r, 35))
		f |= MSG_DONTWAIT;
	if (pct(r, 70))
		f |= MSG_NOSIGNAL;
	if (pct(r, 10))
		f |= MSG_MORE;
	if (pct(r, 5))
		f |= MSG_EOR;
	if (pct(r, 2))
		f |= MSG_OOB;
	if (pct(r, 2))
		f |= MSG_CONFIRM;
	if (pct(r, 2))
		f |= MSG_WAITALL;
	if (pct(r, 3))
		f |= (int)(1u << below(r, 32));	/* a junk bit */
	return f;
}

static int chaos_rflags(struct rng *r)
{
	int f = 0;

	if (pct(r, 45))
		f |= MSG_DONTWAIT;
	if (pct(r, 15))
		f |= MSG_PEEK;
	if (pct(r, 15))
		f |= MSG_TRUNC;
	if (pct(r, 5))
		f |= MSG_WAITALL;
	if (pct(r, 2))
		f |= MSG_OOB;
	if (pct(r, 2))
		f |= MSG_ERRQUEUE;
	if (pct(r, 3))
		f |= (int)(1u << below(r, 32));
	return f;
}

static uint32_t chaos_len(struct rng *r, uint32_t max, uint32_t cap)
{
	unsigned int w = below(r, 100);
	uint32_t len;

	if (w < 30)
		len = below(r, 17);
	else if (w < 60)
		len = below(r, 257);
	else if (w < 85)
		len = below(r, 4097);
	else if (w < 96)
		len = below(r, 65537);
	else if (w < 99)
		len = below(r, max + 1);
	else
		len = max + 1 + below(r, 100);	/* EMSGSIZE */
	return len < cap ? len : cap;
}

/* Split [p, p + len) into up to @max iovecs, some of them empty. */
static int split_iov(struct rng *r, struct iovec *iov, int max, uint8_t *p,
		     size_t len)
{
	int n = 1 + (int)below(r, (uint32_t)max), i;
	size_t off = 0, k;

	for (i = 0; i < n; i++) {
		k = i == n - 1 ? len - off :
		    pct(r, 20) ? 0 : below(r, (uint32_t)(len - off + 1));
		iov[i].iov_base = p + off;
		iov[i].iov_len = k;
		off += k;
	}
	return n;
}

static void c_send(struct cthr *t)
{
	struct rng *r = &t->r;
	int fd = pick_kind(r, K_CONNECTED), flags = chaos_sflags(r);
	int m = (int)below(r, 4);
	uint32_t len = chaos_len(r, t->max_rec, m == 3 ? CSEG : CBUF);
	struct addrbuf b;
	socklen_t alen;
	size_t usable = 0;
	uint8_t *p = t->sbuf;
	bool bad = false;
	ssize_t n;
	int e;

	if (pct(r, 15)) {
		int v = 0;
		socklen_t vl = sizeof(v);

		if (!getsockopt(fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &v, &vl) &&
		    v > 0)
			t->max_rec = (uint32_t)v;
		op_done(OP_SOCKOPT);
	}
	chaos_fill(t->sbuf, len);
	if (len && pct(r, 4)) {
		p = bad_buf(r, t->sbuf, t->edge, len, true, &usable);
		bad = true;
	}
	t->cur = "send";
	if (m == 0) {
		n = send(fd, p, len, flags);
	} else if (m == 1) {
		const struct sockaddr *a = pct(r, 50) ?
			chaos_addr(r, &b, t->edge, false, &alen) : NULL;

		n = sendto(fd, p, len, flags, a, a ? alen : 0);
	} else if (m == 2) {
		struct iovec iov[8];
		uint8_t ctl[64];
		struct msghdr mh = { 0 };
		int k;

		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)split_iov(r, iov, 8, t->sbuf, len);
		if (bad) {
			/* One iovec with bytes becomes wholly unusable (a
			 * pointer short of the guard page could hold it all).
			 */
			p = bad_ptr(r, t->edge);
			for (k = 0; k < (int)mh.msg_iovlen; k++)
				if (iov[k].iov_len) {
					iov[k].iov_base = p;
					break;
				}
		}
		if (pct(r, 5)) {
			memset(ctl, (int)below(r, 256), sizeof(ctl));
			mh.msg_control = pct(r, 90) ? ctl : (void *)8;
			mh.msg_controllen = below(r, sizeof(ctl) + 1);
		}
		if (pct(r, 3)) {
			/* Too many iovecs (EMSGSIZE), or none: a record of 0. */
			mh.msg_iovlen = pct(r, 50) ? 1025 : 0;
			bad = mh.msg_iovlen > 8;	/* must not succeed */
			if (!mh.msg_iovlen)
				len = 0;
		}
		n = sendmsg(fd, &mh, flags);
	} else {
		struct mmsghdr mm[8];
		struct iovec iov[8];
		uint32_t vlen = below(r, 9), i, lens[8];

		memset(mm, 0, sizeof(mm));
		for (i = 0; i < vlen; i++) {
			lens[i] = i ? chaos_len(r, t->max_rec, CSEG) : len;
			chaos_fill(t->sbuf + i * CSEG, lens[i]);
			iov[i].iov_base = t->sbuf + i * CSEG;
			iov[i].iov_len = lens[i];
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		if (bad && vlen)
			iov[below(r, vlen)].iov_base = bad_ptr(r, t->edge);
		n = sendmmsg(fd, mm, vlen, flags);
		e = errno;
		op_done(OP_SEND);
		if (n < 0) {
			chaos_err(e, E_SEND, "sendmmsg(%d, vlen %u, %#x)", fd,
				  vlen, flags);
			return;
		}
		if ((uint32_t)n > vlen)
			failf("sendmmsg(%d, vlen %u) returned %zd", fd, vlen, n);
		for (i = 0; i < (uint32_t)n && i < vlen; i++) {
			if (iov[i].iov_base != t->sbuf + i * CSEG &&
			    lens[i])
				failf("sendmmsg(%d): message %u from a bad buffer was sent",
				      fd, i);
			if (mm[i].msg_len != lens[i])
				failf("sendmmsg(%d): message %u of %u bytes sent as %u",
				      fd, i, lens[i], mm[i].msg_len);
		}
		return;
	}
	e = errno;
	op_done(OP_SEND);
	if (n < 0) {
		chaos_err(e, E_SEND, "send%s(%d, %p, %u, %#x)",
			  m == 1 ? "to" : m == 2 ? "msg" : "", fd, (void *)p, len,
			  flags);
		return;
	}
	if (bad)
		failf("send%s(%d, %p, %u, %#x) from an unusable buffer (%zu usable bytes) returned %zd",
		      m == 1 ? "to" : m == 2 ? "msg" : "", fd, (void *)p, len,
		      flags, usable, n);
	else if ((size_t)n != len)
		failf("send%s(%d, %u bytes, %#x) returned %zd: records go whole or not at all",
		      m == 1 ? "to" : m == 2 ? "msg" : "", fd, len, flags, n);
}

/*
 * A chaos receive returned @n (flags @flags, buffer of @cap bytes at @p of
 * which @usable are writable, msg_flags @mf or -1 when not known): check
 * what it says about the record and the bytes it copied.
 */
static void chaos_got(int fd, const char *call, ssize_t n, int flags,
		      const uint8_t *p, size_t cap, size_t usable, int mf)
{
	size_t copied = (size_t)n < cap ? (size_t)n : cap;
	long long real = -1;
	uint32_t seen = 0;

	if (mf >= 0 && n > 0 && !(mf & MSG_EOR))
		failf("%s(%d) returned a record of %zd bytes without MSG_EOR",
		      call, fd, n);
	if (mf >= 0 && (mf & MSG_TRUNC) && !(flags & MSG_TRUNC) &&
	    (size_t)n != cap)
		failf("%s(%d): MSG_TRUNC set, but %zd bytes into a buffer of %zu",
		      call, fd, n, cap);
	if (!(flags & MSG_TRUNC) && (size_t)n > cap)
		failf("%s(%d) returned %zd bytes into a buffer of %zu", call,
		      fd, n, cap);
	if (copied > usable) {
		failf("%s(%d, %p, %zu) returned %zd into a buffer with %zu usable bytes",
		      call, fd, (const void *)p, cap, n, usable);
		return;
	}
	if (flags & MSG_TRUNC)
		real = n;
	else if (mf >= 0 ? !(mf & MSG_TRUNC) : (size_t)n < cap)
		real = n;
	if (!copied && real < 0)
		return;
	if (!chaos_check(p, copied, real, &seen))
		failf("%s(%d, %zu, %#x) -> %zd: bytes that are not the start of a record of %u bytes (real length %lld): a record damaged, cut or misdelivered",
		      call, fd, cap, flags, n, seen, real);
	else
		atomic_fetch_add_explicit(&sh->chaos_records, 1,
					  memory_order_relaxed);
}

static void c_recv(struct cthr *t)
{
	struct rng *r = &t->r;
	int fd = pick_kind(r, K_CONNECTED), flags = chaos_rflags(r);
	int m = (int)below(r, 4);
	size_t cap = chaos_len(r, t->max_rec + 64, m == 3 ? CSEG : CBUF);
	uint8_t *p = t->rbuf;
	size_t usable = cap;
	ssize_t n;
	int e;

	if (cap && pct(r, 4))
		p = bad_buf(r, t->rbuf, t->edge, cap, false, &usable);
	t->cur = "recv";
	if (m == 0) {
		n = recv(fd, p, cap, flags);
		e = errno;
		op_done(OP_RECV);
		if (n < 0)
			chaos_err(e, E_RECV, "recv(%d, %p, %zu, %#x)", fd,
				  (void *)p, cap, flags);
		else
			chaos_got(fd, "recv", n, flags, p, cap, usable, -1);
	} else if (m == 1) {
		struct sockaddr_storage ss;
		socklen_t sl = pct(r, 20) ? below(r, 20) : sizeof(ss);

		n = recvfrom(fd, p, cap, flags, (struct sockaddr *)&ss, &sl);
		e = errno;
		op_done(OP_RECV);
		if (n < 0)
			chaos_err(e, E_RECV, "recvfrom(%d, %p, %zu, %#x)", fd,
				  (void *)p, cap, flags);
		else
			chaos_got(fd, "recvfrom", n, flags, p, cap, usable, -1);
	} else if (m == 2) {
		struct iovec iov[8];
		struct sockaddr_storage ss;
		struct msghdr mh = { 0 };
		int k;

		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)split_iov(r, iov, 8, t->rbuf, cap);
		if (p != t->rbuf) {
			/* One iovec with room becomes wholly unusable: the
			 * bytes before it are all that may be written.
			 */
			for (k = 0; k < (int)mh.msg_iovlen; k++)
				if (iov[k].iov_len) {
					usable = (size_t)((uint8_t *)iov[k].iov_base -
							  t->rbuf);
					iov[k].iov_base = bad_ptr(r, t->edge);
					break;
				}
		}
		if (pct(r, 50)) {
			mh.msg_name = &ss;
			mh.msg_namelen = pct(r, 80) ? sizeof(ss) : below(r, 20);
		}
		if (pct(r, 2))
			/* MSG_CMSG_COMPAT: EINVAL, or nothing without CONFIG_COMPAT */
			flags |= (int)0x80000000u;
		n = recvmsg(fd, &mh, flags);
		e = errno;
		op_done(OP_RECV);
		if (n < 0)
			chaos_err(e, E_RECV, "recvmsg(%d, %zu iovecs, %zu, %#x)",
				  fd, (size_t)mh.msg_iovlen, cap, flags);
		else
			chaos_got(fd, "recvmsg", n, flags, t->rbuf, cap,
				  usable, mh.msg_flags);
	} else {
		struct mmsghdr mm[8];
		struct iovec iov[8];
		struct timespec ts = { 0, (long)below(r, 20000000) };
		struct timespec *tp = pct(r, 50) ? NULL : &ts;
		uint32_t vlen = below(r, 9), i;
		size_t caps[8];

		memset(mm, 0, sizeof(mm));
		for (i = 0; i < vlen; i++) {
			caps[i] = i ? chaos_len(r, t->max_rec + 64, CSEG) : cap;
			iov[i].iov_base = t->rbuf + i * CSEG;
			iov[i].iov_len = caps[i];
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		if (pct(r, 30))
			flags |= MSG_WAITFORONE;
		if (pct(r, 2))
			tp = (struct timespec *)(uintptr_t)8;	/* EFAULT */
		n = recvmmsg(fd, mm, vlen, flags, tp);
		e = errno;
		op_done(OP_RECV);
		if (n < 0) {
			chaos_err(e, E_RECV, "recvmmsg(%d, vlen %u, %#x)", fd,
				  vlen, flags);
			return;
		}
		if ((uint32_t)n > vlen)
			failf("recvmmsg(%d, vlen %u) returned %zd", fd, vlen, n);
		for (i = 0; i < (uint32_t)n && i < vlen; i++)
			chaos_got(fd, "recvmmsg", mm[i].msg_len, flags,
				  t->rbuf + i * CSEG, caps[i], caps[i],
				  mm[i].msg_hdr.msg_flags);
	}
}

static void c_poll(struct cthr *t)
{
	struct rng *r = &t->r;

	if (pct(r, 75)) {
		struct pollfd p[8];
		nfds_t n = 1 + below(r, 8), i;
		int ret;

		for (i = 0; i < n; i++) {
			p[i].fd = pct(r, 10) ? -1 : pick_fd(r);
			p[i].events = (short)rnd(r);
			p[i].revents = 0;
		}
		t->cur = "poll";
		ret = poll(pct(r, 2) ? (struct pollfd *)(uintptr_t)8 : p,
			   pct(r, 2) ? (nfds_t)1 << 20 : n,
			   (int)below(r, 30));
		op_done(OP_POLL);
		if (ret < 0) {
			chaos_err(errno, E_POLL, "poll(%u fds)", (unsigned int)n);
			return;
		}
		for (i = 0; i < n && ret > 0; i++) {
			short allowed = p[i].events | POLLERR | POLLHUP | POLLNVAL;

			if (p[i].revents & ~allowed)
				failf("poll(%d, events %#x) gave revents %#x",
				      p[i].fd, (unsigned short)p[i].events,
				      (unsigned short)p[i].revents);
		}
	} else {
		fd_set rs, ws, es;
		struct timeval tv = { 0, (long)below(r, 20000) };
		int i, fd, maxfd = -1, ret;

		FD_ZERO(&rs);
		FD_ZERO(&ws);
		FD_ZERO(&es);
		for (i = 0; i < 4; i++) {
			fd = pick_fd(r);
			if (fd < 0 || fd >= FD_SETSIZE)
				continue;
			if (pct(r, 70))
				FD_SET(fd, &rs);
			if (pct(r, 40))
				FD_SET(fd, &ws);
			if (pct(r, 20))
				FD_SET(fd, &es);
			if (fd > maxfd)
				maxfd = fd;
		}
		t->cur = "select";
		ret = select(maxfd + 1, &rs, &ws, &es, &tv);
		op_done(OP_POLL);
		if (ret < 0)
			chaos_err(errno, E_SELECT, "select(%d)", maxfd + 1);
	}
}

static void c_epoll(struct cthr *t)
{
	struct rng *r = &t->r;
	unsigned int w = below(r, 10);

	if (w < 2) {
		int flags = pct(r, 50) ? EPOLL_CLOEXEC : 0, fd;

		if (pct(r, 5))
			flags |= (int)(1u << below(r, 31));
		fd = epoll_create1(flags);
		op_done(OP_EPOLL);
		if (fd < 0)
			chaos_err(errno, E_EPCREATE, "epoll_create1(%#x)", flags);
		else
			publish(r, fd);
	} else if (w < 6) {
		static const int ops[] = { EPOLL_CTL_ADD, EPOLL_CTL_MOD,
					   EPOLL_CTL_DEL, 0, 7 };
		struct epoll_event ev = { .events = (uint32_t)rnd(r) };
		int ep = pick_fd(r), fd = pick_fd(r);
		int op = ops[pct(r, 95) ? below(r, 3) : 3 + below(r, 2)];
		struct epoll_event *evp = &ev;

		if (pct(r, 70))
			ev.events &= EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI |
				     EPOLLERR | EPOLLHUP | EPOLLET |
				     EPOLLONESHOT | EPOLLEXCLUSIVE;
		if (pct(r, 3))
			evp = (struct epoll_event *)(uintptr_t)8;
		else if (op == EPOLL_CTL_DEL && pct(r, 50))
			evp = NULL;
		if (epoll_ctl(ep, op, fd, evp))
			chaos_err(errno, E_EPCTL, "epoll_ctl(%d, %d, %d, %#x)", ep,
				  op, fd, ev.events);
		op_done(OP_EPOLL);
	} else {
		struct epoll_event evs[8];
		int ep = pick_fd(r), max = pct(r, 3) ? 0 : 1 + (int)below(r, 8);
		int ret;

		t->cur = "epoll_wait";
		ret = epoll_wait(ep, pct(r, 2) ? (struct epoll_event *)(uintptr_t)8 :
				 evs, max, (int)below(r, 20));
		op_done(OP_EPOLL);
		if (ret < 0)
			chaos_err(errno, E_EPWAIT, "epoll_wait(%d, %d)", ep, max);
	}
}

static void c_shutdown(struct cthr *t)
{
	static const int hows[] = { SHUT_RD, SHUT_WR, SHUT_RDWR, -1, 3, 100,
				    INT_MIN };
	int fd = pick_fd(&t->r);
	int how = hows[pct(&t->r, 85) ? below(&t->r, 3) : 3 + below(&t->r, 4)];

	if (shutdown(fd, how))
		chaos_err(errno, E_SHUTDOWN, "shutdown(%d, %d)", fd, how);
	else if (how < SHUT_RD || how > SHUT_RDWR)
		failf("shutdown(%d, %d) succeeded", fd, how);
	op_done(OP_SHUTDOWN);
}

/* SOL_SOCKET options that change nothing outside the socket. */
static const int sol_opts[] = {
	SO_SNDBUF, SO_RCVBUF, SO_SNDBUFFORCE, SO_RCVBUFFORCE, SO_KEEPALIVE,
	SO_PRIORITY, SO_RCVLOWAT, SO_PASSCRED, SO_REUSEADDR, SO_LINGER,
	SO_TIMESTAMP, SO_MARK, SO_BROADCAST, SO_RCVTIMEO, SO_SNDTIMEO,
	SO_ZEROCOPY, SO_PEEK_OFF, SO_ERROR, SO_TYPE, SO_BINDTODEVICE,
	SO_INCOMING_CPU, SO_DONTROUTE, SO_OOBINLINE, SO_PROTOCOL, SO_DOMAIN,
	SO_ACCEPTCONN, SO_PEERNAME, SO_PEERCRED, SO_COOKIE, SO_MEMINFO,
	SO_PEERSEC, 0 /* replaced by an unknown number */
};
#define NSOLOPTS ((uint32_t)(sizeof(sol_opts) / sizeof(sol_opts[0])))

static void c_setsockopt(struct cthr *t, int fd, int level, int opt)
{
	struct rng *r = &t->r;
	union {
		int i;
		uint64_t u;
		struct timeval tv;
		struct linger l;
		char name[16];
		uint8_t b[64];
	} v;
	socklen_t len = sizeof(int);
	size_t usable;
	void *p = &v;

	memset(&v, 0, sizeof(v));
	v.i = (int)rnd(r);
	if (level == SOL_SOCKET) {
		switch (opt) {
		case SO_SNDBUF:
		case SO_RCVBUF:
			v.i = pct(r, 90) ? (int)below(r, 128 << 10) : (int)rnd(r);
			break;
		case SO_SNDBUFFORCE:
		case SO_RCVBUFFORCE:
			/* Rings of at most 2 MiB: the region is shared. */
			v.i = (int)below(r, 1u << 20);
			break;
		case SO_RCVTIMEO:
		case SO_SNDTIMEO:
			/* Never 0 (forever): blocking calls stay bounded. */
			v.tv.tv_sec = 0;
			v.tv.tv_usec = 1000 + below(r, 200000);
			if (pct(r, 5))
				v.tv.tv_usec = 2000000;		/* EDOM */
			len = sizeof(v.tv);
			break;
		case SO_LINGER:
			v.l.l_onoff = (int)below(r, 2);
			v.l.l_linger = (int)below(r, 3);
			len = sizeof(v.l);
			break;
		case SO_BINDTODEVICE:
			snprintf(v.name, sizeof(v.name), "%s",
				 pct(r, 40) ? "lo" : pct(r, 50) ? "" : "nodev0");
			len = (socklen_t)strlen(v.name) + 1;
			break;
		default:
			v.i = pct(r, 70) ? (int)below(r, 4) : (int)rnd(r);
			break;
		}
	} else if (level == SOL_IVSHMEM && opt == IVSHMEM_CONNECT_TIMEOUT) {
		v.u = pct(r, 85) ? below(r, 2000) : rnd(r);
		len = sizeof(v.u);
	}
	if (pct(r, 8)) {
		static const socklen_t lens[] = { 0, 1, 2, 3, 7, 15, 64,
						  (socklen_t)-1 };

		len = lens[below(r, 8)];
	}
	if (pct(r, 3))
		p = bad_buf(r, (uint8_t *)&v, t->edge, sizeof(v), true, &usable);
	if (setsockopt(fd, level, opt, p, len))
		chaos_err(errno, E_SETOPT, "setsockopt(%d, %d, %d, %p, %u)", fd,
			  level, opt, p, len);
	op_done(OP_SOCKOPT);
}

static void c_getsockopt(struct cthr *t, int fd, int level, int opt)
{
	struct rng *r = &t->r;
	union {
		int i;
		uint64_t u;
		uint8_t b[128];
	} v;
	socklen_t len = pct(r, 80) ? sizeof(v) : below(r, 20), len0;
	socklen_t *lp = &len;
	size_t usable;
	void *p = &v;

	memset(&v, 0, sizeof(v));
	if (pct(r, 3))
		len = (socklen_t)-1;
	if (pct(r, 3))
		p = bad_buf(r, (uint8_t *)&v, t->edge, sizeof(v), false, &usable);
	if (pct(r, 2))
		lp = pct(r, 50) ? NULL : (socklen_t *)(uintptr_t)8;
	len0 = len;
	if (getsockopt(fd, level, opt, p, lp)) {
		chaos_err(errno, E_GETOPT, "getsockopt(%d, %d, %d, %p, len %d)",
			  fd, level, opt, p, (int)len0);
		op_done(OP_SOCKOPT);
		return;
	}
	op_done(OP_SOCKOPT);
	if (p != &v || len < sizeof(int) || (int)len0 < (int)sizeof(int))
		return;
	/* What the options must say of any AF_IVSHMEM socket. */
	if ((level == SOL_SOCKET && opt == SO_TYPE && v.i != SOCK_SEQPACKET) ||
	    (level == SOL_SOCKET && opt == SO_DOMAIN && v.i != af) ||
	    (level == SOL_SOCKET && opt == SO_PROTOCOL && v.i) ||
	    (level == SOL_IVSHMEM && opt == IVSHMEM_MAX_RECORD &&
	     (v.i < (int)IVSHMEM_RING_MIN - 8 ||
	      v.i > (int)IVSHMEM_RING_MAX - 8)) ||
	    (level == SOL_IVSHMEM && opt == IVSHMEM_CONNECT_TIMEOUT &&
	     (len != sizeof(uint64_t) || v.u > INT_MAX)))
		failf("getsockopt(%d, %d, %d) gave %d (%#llx), length %u", fd,
		      level, opt, v.i, (unsigned long long)v.u, len);
}

static void c_sockopt(struct cthr *t)
{
	struct rng *r = &t->r;
	int fd = pick_fd(r), level, opt;
	unsigned int w = below(r, 10);

	if (w < 5) {
		level = SOL_SOCKET;
		opt = sol_opts[below(r, NSOLOPTS)];
		if (!opt)
			opt = 100 + (int)below(r, 900);
	} else if (w < 9) {
		level = SOL_IVSHMEM;
		opt = pct(r, 85) ? (int)below(r, 5) : (int)rnd(r);
	} else {
		static const int levels[] = { 0, 6, 17, 41, 1000, -1 };

		level = levels[below(r, 6)];
		opt = (int)below(r, 64);
	}
	if (pct(r, 45))
		c_setsockopt(t, fd, level, opt);
	else
		c_getsockopt(t, fd, level, opt);
}

static void c_ioctl(struct cthr *t)
{
	struct rng *r = &t->r;
	int fd = pick_fd(r), v = 0, ret;
	unsigned long cmd;
	size_t usable;
	void *p = &v;

	switch (below(r, 8)) {
	case 0:
	case 1:
	case 2:
		cmd = SIOCINQ;
		break;
	case 3:
	case 4:
		cmd = SIOCOUTQ;
		break;
	case 5:
		cmd = FIONBIO;
		v = (int)below(r, 2);
		break;
	default:
		/* Type 0xab: nothing a socket, the VFS or a device knows. */
		cmd = _IOC(below(r, 4), 0xab, below(r, 256), below(r, 64));
		break;
	}
	if (pct(r, 4))
		p = bad_buf(r, (uint8_t *)&v, t->edge, sizeof(v), false, &usable);
	ret = ioctl(fd, cmd, p);
	op_done(OP_IOCTL);
	if (ret < 0)
		chaos_err(errno, E_IOCTL, "ioctl(%d, %#lx, %p)", fd, cmd, p);
	else if (p == &v && (cmd == SIOCINQ || cmd == SIOCOUTQ) &&
		 (v < 0 || (cmd == SIOCINQ && v > (int)IVSHMEM_RING_MAX)))
		failf("ioctl(%d, %s) gave %d", fd,
		      cmd == SIOCINQ ? "SIOCINQ" : "SIOCOUTQ", v);
}

static void c_name(struct cthr *t)
{
	struct rng *r = &t->r;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss), len0;
	socklen_t *lp = &len;
	struct sockaddr *p = (struct sockaddr *)&ss;
	bool peer = pct(r, 50);
	int fd = pick_fd(r), ret;
	size_t usable;

	if (pct(r, 10))
		len = below(r, 20);
	if (pct(r, 3))
		len = (socklen_t)-1;
	if (pct(r, 3))
		p = (struct sockaddr *)bad_buf(r, (uint8_t *)&ss, t->edge,
					       sizeof(ss), false, &usable);
	if (pct(r, 2))
		lp = pct(r, 50) ? NULL : (socklen_t *)(uintptr_t)8;
	len0 = len;
	ret = peer ? getpeername(fd, p, lp) : getsockname(fd, p, lp);
	op_done(OP_NAME);
	if (ret) {
		chaos_err(errno, E_NAME, "%s(%d, %p, len %d)",
			  peer ? "getpeername" : "getsockname", fd, (void *)p,
			  (int)len0);
		return;
	}
	if (p == (struct sockaddr *)&ss && (int)len0 >= 16 &&
	    (len != sizeof(struct sockaddr_ivshmem) ||
	     ((struct sockaddr_ivshmem *)&ss)->sivshm_family != af ||
	     ((struct sockaddr_ivshmem *)&ss)->sivshm_reserved))
		failf("%s(%d) gave length %u, family %u, reserved %u",
		      peer ? "getpeername" : "getsockname", fd, len,
		      ((struct sockaddr_ivshmem *)&ss)->sivshm_family,
		      ((struct sockaddr_ivshmem *)&ss)->sivshm_reserved);
}

static void c_close(struct cthr *t)
{
	struct rng *r = &t->r;
	int fd;

	if (pct(r, 90)) {
		fd = atomic_exchange(&slots[below(r, NSLOTS)], -1);
		if (fd < 0)
			return;
	} else {
		fd = pick_fd(r);	/* maybe another slot's: it goes stale */
	}
	t->cur = "close";
	if (close(fd))
		chaos_err(errno, E_CLOSE, "close(%d)", fd);
	op_done(OP_CLOSE);
}

static void c_fcntl(struct cthr *t)
{
	struct rng *r = &t->r;
	int fd = pick_fd(r), ret, fl;

	switch (below(r, 4)) {
	case 0:
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0)
			fl = fcntl(fd, F_SETFL, fl ^ O_NONBLOCK);
		op_done(OP_FCNTL);
		if (fl < 0)
			chaos_err(errno, E_FCNTL, "fcntl(%d, F_SETFL)", fd);
		break;
	case 1:
		ret = dup(fd);
		op_done(OP_FCNTL);
		if (ret < 0)
			chaos_err(errno, E_DUP, "dup(%d)", fd);
		else
			publish(r, ret);
		break;
	default: {
		/* dup2 over a table descriptor: a close racing its users. */
		int to = atomic_load(&slots[below(r, NSLOTS)]);

		if (to < 0)
			return;
		t->cur = "dup2";
		ret = pct(r, 50) ? dup2(fd, to) : dup3(fd, to, O_CLOEXEC);
		op_done(OP_FCNTL);
		if (ret < 0)
			chaos_err(errno, E_DUP, "dup2(%d, %d)", fd, to);
		break;
	}
	}
}

static void *chaos_thread(void *arg)
{
	struct cthr *t = arg;
	unsigned int w;

	while (!stopping()) {
		w = below(&t->r, 1000);
		t->cur = "?";
		if (w < 55)
			c_socket(t);
		else if (w < 95)
			c_listener(t);
		else if (w < 135)
			c_bind(t);
		else if (w < 160)
			c_listen(t);
		else if (w < 270)
			c_connect(t);
		else if (w < 340)
			c_accept(t);
		else if (w < 500)
			c_send(t);
		else if (w < 660)
			c_recv(t);
		else if (w < 710)
			c_poll(t);
		else if (w < 760)
			c_epoll(t);
		else if (w < 785)
			c_shutdown(t);
		else if (w < 855)
			c_sockopt(t);
		else if (w < 885)
			c_ioctl(t);
		else if (w < 915)
			c_name(t);
		else if (w < 975)
			c_close(t);
		else
			c_fcntl(t);
	}
	atomic_store(&t->done, true);
	return NULL;
}

static void close_inherited(void)
{
	int fd;

	/* Only descriptors this process makes may be in play. */
	for (fd = 3; fd < 1024; fd++)
		close(fd);
}

static int chaos_main(void)
{
	struct sigaction sa = { .sa_handler = on_usr1 };	/* no SA_RESTART */
	static struct cthr th[NCHAOS];
	struct rng r;
	uint64_t end;
	unsigned int i, alive;
	int fd;

	close_inherited();
	sigaction(SIGUSR1, &sa, NULL);
	rng_seed(&r, sh->seed, 1000);
	for (i = 0; i < NSLOTS; i++) {
		atomic_init(&slots[i], -1);
		atomic_init(&slot_kind[i], K_ANY);
	}
	for (i = 0; i < NCHAOS; i++) {
		th[i].idx = i;
		rng_seed(&th[i].r, sh->seed, 1 + i);
		th[i].sbuf = map_buf(CBUF);
		th[i].rbuf = map_buf(CBUF);
		th[i].edge = map_edge();
		th[i].max_rec = IVSHMEM_RING_DEFAULT - 8;
		th[i].cur = "start";
		if (!th[i].sbuf || !th[i].rbuf || !th[i].edge ||
		    pthread_create(&th[i].th, NULL, chaos_thread, &th[i])) {
			failf("chaos: cannot start thread %u", i);
			return 2;
		}
	}
	/* Signals now and then: blocking calls must give EINTR, or restart. */
	while (!stopping()) {
		ivshm_sleep_ms(10 + below(&r, 40));
		if (pct(&r, 50))
			pthread_kill(th[below(&r, NCHAOS)].th, SIGUSR1);
	}
	/* Wake whatever still blocks, until every thread is out. */
	end = ivshm_now_ms() + 60000;
	do {
		alive = 0;
		for (i = 0; i < NCHAOS; i++)
			if (!atomic_load(&th[i].done)) {
				alive++;
				pthread_kill(th[i].th, SIGUSR1);
			}
		if (alive)
			ivshm_sleep_ms(20);
	} while (alive && ivshm_now_ms() < end);
	if (alive) {
		for (i = 0; i < NCHAOS; i++)
			if (!atomic_load(&th[i].done))
				failf("chaos thread %u stuck in %s for 60 s after the end",
				      i, atomic_load(&th[i].cur));
		return 3;
	}
	for (i = 0; i < NCHAOS; i++)
		pthread_join(th[i].th, NULL);
	for (i = 0; i < NSLOTS; i++) {
		fd = atomic_exchange(&slots[i], -1);
		if (fd >= 0) {
			close(fd);
			op_done(OP_CLOSE);
		}
	}
	/* Numbers that fell out of the table (closed through another slot
	 * and reused) are closed by the exit.
	 */
	return 0;
}

/* ---- the integrity process ---- */

struct rec_hdr {
	uint32_t magic;
	uint32_t dir;		/* connection id * 2 + sending side */
	uint32_t seq;
	uint32_t len;		/* the whole record, header included */
	uint64_t sum;		/* FNV-1a of the payload */
};

#define REC_MAGIC	0x7a46535fu
#define HDR		((uint32_t)sizeof(struct rec_hdr))

static uint8_t ibyte(uint32_t dir, uint32_t seq, uint32_t i)
{
	return (uint8_t)(dir * 131u + seq * 7u + i * 13u + (i >> 8));
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static void make_rec(uint8_t *p, uint32_t dir, uint32_t seq, uint32_t len)
{
	struct rec_hdr h = { REC_MAGIC, dir, seq, len, 0 };
	uint32_t i;

	for (i = HDR; i < len; i++)
		p[i] = ibyte(dir, seq, i);
	h.sum = fnv(p + HDR, len - HDR);
	memcpy(p, &h, HDR);
}

enum { END_SHUT, END_KILL };
enum { RX_RUNNING, RX_EOF, RX_RESET, RX_GONE, RX_FAILED };
/*
 * Outcomes of an integrity call: done; EAGAIN; refused for what we did
 * (a bad buffer, a record too large, no room to grow a ring: nothing
 * sent or consumed, try again); the connection was reset or is gone for
 * this side; a failure.
 */
enum { IR_OK, IR_AGAIN, IR_RETRY, IR_RESET, IR_GONE, IR_FAIL };

struct iside {
	int fd;			/* stays this number: a kill dup2()s over it */
	unsigned int vm, port;	/* this side's address on the connection */
	uint32_t max_rec;	/* IVSHMEM_MAX_RECORD of its sending side */
	unsigned int quota;	/* records its sender sends, at most */
	int tx_end;		/* what the sender does after its last */
	atomic_bool killed;	/* set before the descriptor is replaced */
	atomic_bool rd_shut, wr_shut;	/* set before shutdown() is called */
	atomic_bool reset_seen;	/* a call on it returned ECONNRESET */
	atomic_uint sent;	/* records sent, = the next sequence number */
	atomic_uint got;	/* records received and checked */
	atomic_bool tx_done, rx_done;
	atomic_int rx_end;
	atomic_ullong kill_ms;	/* when it was closed under its threads */
};

struct lane;

struct iconn {
	unsigned int lane, id;
	struct iside s[2];	/* [0] connected, [1] accepted */
	atomic_bool stop;	/* senders: finish now */
	uint64_t start_ms;
	struct lane *L;
	int fate, fk;
	atomic_bool dumped;
};

static void conn_dump(struct lane *L, struct iconn *c, int fate, int fk);

/* After the first failure on @c: everything known about it, once. */
static void conn_failed(struct iconn *c)
{
	if (!atomic_exchange(&c->dumped, true))
		conn_dump(c->L, c, c->fate, c->fk);
}

/* A failure about connection @c: say it, then dump the connection. */
#define fail_conn(c, ...) do { failf(__VA_ARGS__); conn_failed(c); } while (0)

/* The last calls of an integrity thread, printed when a count fails. */
#define NTRACE	16

struct tr {
	uint64_t ms;
	const char *call;
	int flags;
	uint32_t seq;		/* the first record of the call */
	uint32_t len;
	long long ret;
	int err;
};

struct ithr {
	pthread_t th;
	struct iconn *c;
	int side;
	struct rng r;
	uint8_t *buf, *edge;
	size_t buflen;
	unsigned int ntr;
	struct tr tr[NTRACE];
};

static void trace(struct ithr *t, const char *call, int flags, uint32_t seq,
		  uint32_t len, long long ret, int err)
{
	struct tr *e = &t->tr[t->ntr++ % NTRACE];

	e->ms = ivshm_now_ms();
	e->call = call;
	e->flags = flags;
	e->seq = seq;
	e->len = len;
	e->ret = ret;
	e->err = ret < 0 ? err : 0;
}

struct lane {
	pthread_t th;
	unsigned int idx;
	int lfd;
	struct rng r;
	struct ithr t[4];	/* tx 0, tx 1, rx 0, rx 1 */
	uint8_t *pbuf;		/* for the lane's own peeks */
};

static bool any_killed(struct iconn *c)
{
	return atomic_load(&c->s[0].killed) || atomic_load(&c->s[1].killed);
}

/*
 * Close side @s under its threads: a fresh, unconnected socket is put in
 * its place with dup2(), which closes the old file as close() does, while
 * the number stays ours (calls on it now fail with ENOTCONN); calls under
 * way on the old file finish on it, and the socket is released after the
 * last of them.
 */
static void side_kill(struct iside *s)
{
	int t;

	if (atomic_exchange(&s->killed, true))
		return;
	atomic_store(&s->kill_ms, ivshm_now_ms());
	atomic_fetch_add(&sh->kills, 1);
	t = socket(af, SOCK_SEQPACKET, 0);
	op_done(OP_SOCKET);
	if (t < 0) {
		failf("socket() for a kill: %s", strerror(errno));
		return;
	}
	if (dup2(t, s->fd) < 0)
		failf("dup2(%d, %d): %s", t, s->fd, strerror(errno));
	op_done(OP_CLOSE);
	close(t);
	op_done(OP_CLOSE);
}

/*
 * An integrity call on side @me failed with @e. Which errors a side may
 * see depends on what happened to the connection: EPIPE only once a side
 * shut or was closed, ECONNRESET only once one was closed (with records
 * unread), ENOTCONN only on the replaced descriptor. @bad: the call had a
 * bad buffer (EFAULT); @big: its record was above IVSHMEM_MAX_RECORD.
 */
static int ierr(struct iconn *c, int side, bool tx, const char *call, int e,
		bool bad, bool big)
{
	struct iside *me = &c->s[side], *peer = &c->s[!side];

	switch (e) {
	case EAGAIN:
		return IR_AGAIN;
	case EFAULT:
		if (bad) {
			atomic_fetch_add_explicit(&sh->efaults, 1,
						  memory_order_relaxed);
			return IR_RETRY;
		}
		break;
	case EMSGSIZE:
		if (tx && big)
			return IR_RETRY;
		break;
	case ENOBUFS:
		/* A ring that shrank while idle may find no room to grow. */
		if (tx)
			return IR_RETRY;
		break;
	case ECONNRESET:
		atomic_store(&me->reset_seen, true);
		if (any_killed(c))
			return IR_RESET;
		break;
	case EPIPE:
		if (tx && (atomic_load(&me->wr_shut) ||
			   atomic_load(&peer->rd_shut) || any_killed(c)))
			return IR_GONE;
		break;
	case ENOTCONN:
		if (atomic_load(&me->killed))
			return IR_GONE;
		break;
	}
	failf("conn %u (lane %u) side %d: %s failed with %s (%d); side %d killed %d rd_shut %d wr_shut %d, side %d killed %d rd_shut %d wr_shut %d",
	      c->id, c->lane, side, call, strerror(e), e, side,
	      atomic_load(&me->killed), atomic_load(&me->rd_shut),
	      atomic_load(&me->wr_shut), !side, atomic_load(&peer->killed),
	      atomic_load(&peer->rd_shut), atomic_load(&peer->wr_shut));
	conn_failed(c);
	return IR_FAIL;
}

/*
 * Is @p (@n bytes copied of a record of @real bytes, 0 if not known) the
 * record @want of the direction side @side receives? With @min set, any
 * sequence number from @want on will do (a peek beside the receiver).
 */
static bool check_rec(struct iconn *c, int side, const char *how,
		      const uint8_t *p, size_t n, size_t real, uint32_t want,
		      bool min, uint32_t *len_out)
{
	uint32_t dir = c->id * 2 + !side, i;
	struct rec_hdr h;

	if (n < HDR) {
		fail_conn(c, "conn %u side %d %s: %zu bytes, less than a header (want seq %u)",
		      c->id, side, how, n, want);
		return false;
	}
	memcpy(&h, p, HDR);
	if (h.magic != REC_MAGIC) {
		fail_conn(c, "conn %u side %d %s: not an integrity record (magic %#x, %zu bytes), want seq %u",
		      c->id, side, how, h.magic, n, want);
		return false;
	}
	if (h.dir != dir) {
		fail_conn(c, "conn %u side %d %s: record %u of direction %u delivered to direction %u (misdelivered)",
		      c->id, side, how, h.seq, h.dir, dir);
		return false;
	}
	if (min ? h.seq < want : h.seq != want) {
		fail_conn(c, "conn %u side %d %s: sequence number %u where %s%u was due: %s",
		      c->id, side, how, h.seq, min ? "at least " : "", want,
		      h.seq < want ? "a record delivered twice or out of order" :
				     "records lost or out of order");
		return false;
	}
	if (h.len < HDR || h.len < n || (real && h.len != real)) {
		fail_conn(c, "conn %u side %d %s: record %u says %u bytes, %zu copied, real length %zu",
		      c->id, side, how, h.seq, h.len, n, real);
		return false;
	}
	for (i = HDR; i < n; i++)
		if (p[i] != ibyte(dir, h.seq, i)) {
			fail_conn(c, "conn %u side %d %s: record %u of %u bytes damaged at byte %u",
			      c->id, side, how, h.seq, h.len, i);
			return false;
		}
	if (n == h.len && fnv(p + HDR, n - HDR) != h.sum) {
		fail_conn(c, "conn %u side %d %s: record %u checksum wrong", c->id,
		      side, how, h.seq);
		return false;
	}
	if (len_out)
		*len_out = h.len;
	return true;
}

static uint32_t int_len(struct rng *r, uint32_t max)
{
	unsigned int w = below(r, 100);
	uint32_t hi;

	if (pct(r, 2))
		return max;
	if (w < 60)
		hi = 256;
	else if (w < 85)
		hi = 4096;
	else if (w < 97)
		hi = 32768;
	else
		hi = max;
	if (hi > max)
		hi = max;
	return HDR + below(r, hi - HDR + 1);
}

/* Wait a little for room or records after EAGAIN, not spinning. */
static void ipoll(struct ithr *t, int fd, short ev)
{
	struct pollfd p = { .fd = fd, .events = ev };

	if (poll(&p, 1, 1 + (int)below(&t->r, 50)) < 0)
		failf("poll(%d) on an integrity socket: %s", fd,
		      strerror(errno));
	op_done(OP_POLL);
}

/* One side's sender: records 0 .. quota-1, then its end. */
static void *itx(void *arg)
{
	struct ithr *t = arg;
	struct iconn *c = t->c;
	struct iside *me = &c->s[t->side];
	struct rng *r = &t->r;
	uint32_t dir = c->id * 2 + t->side, seq = 0;
	int fd = me->fd, res = IR_OK;
	/*
	 * sendmmsg() returned short, even at a message of ours with an
	 * unusable buffer: the error of the message that failed is lost
	 * (sendmmsg(2)), and it may have been the ECONNRESET of a reset. After a reset the next send fails with
	 * EPIPE; a reset that nobody saw may have dropped records unread, so
	 * the counts of this connection are then not exact.
	 */
	bool lost = false;

	while (seq < me->quota && !atomic_load(&c->stop) && res != IR_FAIL) {
		int flags = MSG_NOSIGNAL, m = (int)below(r, 100), e;
		bool bad = pct(r, 3), big = false;
		size_t usable;
		ssize_t n;

		if (pct(r, 15))
			flags |= MSG_DONTWAIT;
		if (pct(r, 15))
			flags |= MSG_MORE;
		if (pct(r, 10))
			flags |= MSG_EOR;
		if (pct(r, 3))
			flags |= MSG_CONFIRM;
		if (m < 55) {
			uint32_t len = int_len(r, me->max_rec);
			uint8_t *p = t->buf;

			if (pct(r, 2)) {
				big = true;
				len = me->max_rec + 1 + below(r, 64);
			}
			make_rec(t->buf, dir, seq, big ? HDR : len);
			if (bad)
				p = bad_buf(r, t->buf, t->edge, len, true,
					    &usable);
			if (m < 20) {
				n = send(fd, p, len, flags);
			} else if (m < 30) {
				struct sockaddr_ivshmem to =
					ivshm_addr(af, below(r, NDEV),
						   (uint32_t)rnd(r), 0);

				/* The address is ignored, as on AF_UNIX. */
				n = sendto(fd, p, len, flags,
					   (struct sockaddr *)&to, sizeof(to));
			} else {
				struct iovec iov[6];
				struct msghdr mh = { 0 };
				int k;

				mh.msg_iov = iov;
				mh.msg_iovlen = (size_t)split_iov(r, iov, 6,
								 t->buf, len);
				if (bad) {
					/* Wholly unusable: see c_send(). */
					p = bad_ptr(r, t->edge);
					for (k = 0; k < (int)mh.msg_iovlen; k++)
						if (iov[k].iov_len) {
							iov[k].iov_base = p;
							break;
						}
				}
				n = sendmsg(fd, &mh, flags);
			}
			e = errno;
			op_done(OP_SEND);
			trace(t, m < 20 ? "send" : m < 30 ? "sendto" : "sendmsg",
			      flags | (bad ? 1 << 30 : 0), seq, len, n, e);
			if (n >= 0 && (bad || big || (size_t)n != len)) {
				fail_conn(c, "conn %u side %d: send of record %u (%u bytes%s) returned %zd",
				      c->id, t->side, seq, len,
				      bad ? ", unusable buffer" :
				      big ? ", above IVSHMEM_MAX_RECORD" : "", n);
				break;
			}
			if (n >= 0) {
				atomic_store(&me->sent, ++seq);
				lost = false;
				continue;
			}
			res = ierr(c, t->side, true, m < 20 ? "send" :
				   m < 30 ? "sendto" : "sendmsg", e, bad, big);
		} else {
			struct mmsghdr mm[8];
			struct iovec iov[8];
			uint32_t vlen = 1 + below(r, 8), i, b = UINT32_MAX;
			uint32_t lens[8];

			if (vlen > me->quota - seq)
				vlen = me->quota - seq;
			memset(mm, 0, sizeof(mm));
			for (i = 0; i < vlen; i++) {
				lens[i] = int_len(r, ISEG < me->max_rec ?
						  ISEG : me->max_rec);
				make_rec(t->buf + i * ISEG, dir, seq + i,
					 lens[i]);
				iov[i].iov_base = t->buf + i * ISEG;
				iov[i].iov_len = lens[i];
				mm[i].msg_hdr.msg_iov = &iov[i];
				mm[i].msg_hdr.msg_iovlen = 1;
			}
			if (bad) {
				b = below(r, vlen);
				iov[b].iov_base = bad_buf(r, t->buf + b * ISEG,
							  t->edge, lens[b],
							  true, &usable);
			}
			n = sendmmsg(fd, mm, vlen, flags);
			e = errno;
			op_done(OP_SEND);
			trace(t, "sendmmsg", flags | (bad ? 1 << 30 : 0), seq, vlen,
			      n, e);
			if (n > (ssize_t)vlen || (b != UINT32_MAX && n > (ssize_t)b)) {
				fail_conn(c, "conn %u side %d: sendmmsg of %u records from %u (bad one: %d) returned %zd",
				      c->id, t->side, vlen, seq, (int)b, n);
				break;
			}
			if (n > 0) {
				for (i = 0; i < (uint32_t)n; i++)
					if (mm[i].msg_len != lens[i])
						fail_conn(c, "conn %u side %d: sendmmsg record %u of %u bytes sent as %u",
						      c->id, t->side, seq + i,
						      lens[i], mm[i].msg_len);
				seq += (uint32_t)n;
				atomic_store(&me->sent, seq);
				/* Short even at the bad message: the socket
				 * looks for a pending error before it copies,
				 * so message b may have failed with the reset.
				 */
				lost = (uint32_t)n < vlen;
				continue;
			}
			res = ierr(c, t->side, true, "sendmmsg", e,
				   b == 0, false);
		}
		if (res == IR_GONE || res == IR_RESET) {
			if (lost && e == EPIPE)
				atomic_store(&me->reset_seen, true);
			break;
		}
		/* Only the socket's own answer says that no reset came.
		 * EFAULT may come from the syscall layer (an iovec at a
		 * kernel address fails access_ok() in import_iovec())
		 * before the socket is looked at, and then says nothing.
		 */
		if (res == IR_AGAIN || (res == IR_RETRY && e != EFAULT))
			lost = false;
		if (res == IR_AGAIN && (flags & MSG_DONTWAIT))
			ipoll(t, fd, POLLOUT);
		else if (res == IR_RETRY && e == ENOBUFS)
			usleep(1000);
	}
	if (lost)	/* stopped right after: it cannot be told */
		atomic_store(&me->reset_seen, true);
	if (!atomic_load(&me->killed)) {
		if (me->tx_end == END_KILL) {
			side_kill(me);
		} else {
			atomic_store(&me->wr_shut, true);
			if (shutdown(fd, SHUT_WR) &&
			    !(errno == ENOTCONN && atomic_load(&me->killed)))
				fail_conn(c, "conn %u side %d: shutdown(SHUT_WR) after the last record: %s",
				      c->id, t->side, strerror(errno));
			op_done(OP_SHUTDOWN);
		}
	}
	atomic_store(&me->tx_done, true);
	return NULL;
}

struct rxcall {
	int flags;
	bool must;		/* a record or the end is there: no EAGAIN */
	uint32_t want_len;	/* what the last peek or SIOCINQ saw, or 0 */
};

/* A record was received whole or in part: check it and count it. */
static int irecord(struct ithr *t, uint32_t *want, const struct rxcall *rc,
		   const char *call, const uint8_t *p, size_t n, size_t cap,
		   int flags, int mf)
{
	struct iconn *c = t->c;
	size_t copied = n < cap ? n : cap;
	/* The record's real length, where the call tells it. */
	size_t real = (flags & MSG_TRUNC) ? n :
		      mf >= 0 ? ((mf & MSG_TRUNC) ? 0 : n) :
		      n < cap ? n : 0;
	uint32_t len;

	if (mf >= 0 && !(mf & MSG_EOR))
		fail_conn(c, "conn %u side %d: %s: a record of %zu bytes without MSG_EOR",
		      c->id, t->side, call, n);
	if (!(flags & MSG_TRUNC) && n > cap)
		fail_conn(c, "conn %u side %d: %s returned %zu into %zu bytes",
		      c->id, t->side, call, n, cap);
	if (!check_rec(c, t->side, call, p, copied, real, *want, false, &len))
		return IR_FAIL;
	if (mf >= 0 && !(mf & MSG_TRUNC) != !(len > cap)) {
		fail_conn(c, "conn %u side %d: %s: MSG_TRUNC %s for a record of %u bytes into %zu",
		      c->id, t->side, call, (mf & MSG_TRUNC) ? "set" : "clear",
		      len, cap);
		return IR_FAIL;
	}
	if (rc->want_len && len != rc->want_len) {
		fail_conn(c, "conn %u side %d: %s: record %u is %u bytes, a moment ago (peek or SIOCINQ) %u",
		      c->id, t->side, call, *want, len, rc->want_len);
		return IR_FAIL;
	}
	atomic_store(&c->s[t->side].got, ++*want);
	atomic_fetch_add_explicit(&sh->records, 1, memory_order_relaxed);
	return IR_OK;
}

/*
 * One receive call of side t->side, by a random method. Returns IR_OK with
 * *eof set at the end of the stream, or as ierr() does.
 */
static int irecv(struct ithr *t, uint32_t *want, const struct rxcall *rc,
		 bool *eof)
{
	struct iconn *c = t->c;
	struct iside *me = &c->s[t->side], *peer = &c->s[!t->side];
	struct rng *r = &t->r;
	size_t full = peer->max_rec + 64, cap = full, usable = full;
	int fd = me->fd, flags = rc->flags, m = (int)below(r, 100), e, k;
	uint8_t *p = t->buf;
	bool bad = pct(r, 3);
	ssize_t n;

	if (pct(r, 20))
		cap = HDR + below(r, (uint32_t)(full - HDR));	/* truncates */
	if (pct(r, 15))
		flags |= MSG_TRUNC;
	*eof = false;
	if (m < 35) {
		const char *call = m < 25 ? "recv" : "recvfrom";
		struct sockaddr_ivshmem from;
		socklen_t fl = sizeof(from);

		/* Here a buffer may have room for a short record. */
		if (bad)
			p = bad_buf(r, t->buf, t->edge, cap, false, &usable);
		if (m < 25)
			n = recv(fd, p, cap, flags);
		else
			n = recvfrom(fd, p, cap, flags, (struct sockaddr *)&from,
				     &fl);
		e = errno;
		op_done(OP_RECV);
		trace(t, call, flags, *want, (uint32_t)cap, n, e);
		if (n < 0)
			return ierr(c, t->side, false, call, e, bad, false);
		if (!n) {
			*eof = true;	/* no zero-length record is ever sent */
			return IR_OK;
		}
		if (m >= 25 && !any_killed(c) &&
		    (fl != sizeof(from) || from.sivshm_vm != peer->vm ||
		     from.sivshm_port != peer->port))
			fail_conn(c, "conn %u side %d: recvfrom gave vm %u port %u, length %u; the peer is vm %u port %u",
			      c->id, t->side, from.sivshm_vm, from.sivshm_port,
			      fl, peer->vm, peer->port);
		if (bad && ((size_t)n < cap ? (size_t)n : cap) > usable) {
			fail_conn(c, "conn %u side %d: %s into %p (%zu usable bytes) returned %zd",
			      c->id, t->side, call, (void *)p, usable, n);
			return IR_FAIL;
		}
		return irecord(t, want, rc, call, p, (size_t)n, cap, flags, -1);
	} else if (m < 70) {
		struct iovec iov[4];
		struct msghdr mh = { 0 };
		size_t before = cap;

		mh.msg_iov = iov;
		mh.msg_iovlen = (size_t)split_iov(r, iov, 4, t->buf, cap);
		if (bad)
			for (k = 0; k < (int)mh.msg_iovlen; k++)
				if (iov[k].iov_len) {
					before = (size_t)((uint8_t *)iov[k].iov_base -
							  t->buf);
					iov[k].iov_base = bad_ptr(r, t->edge);
					break;
				}
		n = recvmsg(fd, &mh, flags);
		e = errno;
		op_done(OP_RECV);
		trace(t, "recvmsg", flags | (mh.msg_flags << 16), *want,
		      (uint32_t)cap, n, e);
		if (n < 0)
			return ierr(c, t->side, false, "recvmsg", e, bad, false);
		if (!n && !(mh.msg_flags & MSG_EOR)) {
			*eof = true;
			return IR_OK;
		}
		if (!n) {
			fail_conn(c, "conn %u side %d: a zero-length record, never sent",
			      c->id, t->side);
			return IR_FAIL;
		}
		/* A bad iovec may only be passed by a record that ends before it. */
		if (((size_t)n < cap ? (size_t)n : cap) > before) {
			fail_conn(c, "conn %u side %d: recvmsg of %zd bytes went past an unusable iovec at %zu",
			      c->id, t->side, n, before);
			return IR_FAIL;
		}
		return irecord(t, want, rc, "recvmsg", t->buf, (size_t)n, cap,
			       flags, mh.msg_flags);
	} else {
		struct mmsghdr mm[IRXN];
		struct iovec iov[IRXN];
		struct timespec ts = { 0, 50000000 };
		uint32_t vlen = 1 + below(r, IRXN), i;
		int res;

		memset(mm, 0, sizeof(mm));
		for (i = 0; i < vlen; i++) {
			iov[i].iov_base = t->buf + i * IRXSEG;
			iov[i].iov_len = i ? full : cap;
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
		}
		/*
		 * A bad buffer only in the first message: a failure after the
		 * first would be stored in sk_err, where it could replace a
		 * reset that the exact count relies on seeing.
		 */
		if (bad)
			iov[0].iov_base = bad_ptr(r, t->edge);
		if (pct(r, 60))
			flags |= MSG_WAITFORONE;
		n = recvmmsg(fd, mm, vlen, flags, pct(r, 30) ? &ts : NULL);
		e = errno;
		op_done(OP_RECV);
		trace(t, "recvmmsg", flags, *want, vlen, n, e);
		if (n < 0)
			return ierr(c, t->side, false, "recvmmsg", e, bad, false);
		if (!n || n > (ssize_t)vlen) {
			fail_conn(c, "conn %u side %d: recvmmsg of %u returned %zd",
			      c->id, t->side, vlen, n);
			return IR_FAIL;
		}
		for (i = 0; i < (uint32_t)n; i++) {
			int mf = mm[i].msg_hdr.msg_flags;

			if (!mm[i].msg_len && !(mf & MSG_EOR)) {
				*eof = true;	/* and every later one too */
				continue;
			}
			if (*eof) {
				fail_conn(c, "conn %u side %d: recvmmsg: a record after the end of file",
				      c->id, t->side);
				return IR_FAIL;
			}
			if (i == 0 && bad) {
				fail_conn(c, "conn %u side %d: recvmmsg into an unusable buffer got %u bytes",
				      c->id, t->side, mm[i].msg_len);
				return IR_FAIL;
			}
			res = irecord(t, want, i ? &(struct rxcall){ 0 } : rc,
				      "recvmmsg", t->buf + i * IRXSEG,
				      mm[i].msg_len, iov[i].iov_len, flags, mf);
			if (res != IR_OK)
				return res;
		}
		return IR_OK;
	}
}

/* One side's receiver: every record in order, then the end. */
static void *irx(void *arg)
{
	struct ithr *t = arg;
	struct iconn *c = t->c;
	struct iside *me = &c->s[t->side], *peer = &c->s[!t->side];
	struct rng *r = &t->r;
	int fd = me->fd, end = RX_FAILED, res, ep;
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	uint32_t want = 0;
	bool eof;

	ep = epoll_create1(EPOLL_CLOEXEC);
	op_done(OP_EPOLL);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev)) {
		fail_conn(c, "conn %u side %d: epoll: %s", c->id, t->side,
		      strerror(errno));
		goto out;
	}
	op_done(OP_EPOLL);
	for (;;) {
		struct rxcall rc = { 0 };
		unsigned int m = below(r, 100);

		if (m < 8) {
			struct pollfd p = { .fd = fd,
					    .events = POLLIN | POLLRDHUP };
			int n;

			if (pct(r, 30))
				p.events |= POLLOUT | POLLPRI;
			n = poll(&p, 1, (int)below(r, 200));
			op_done(OP_POLL);
			if (n < 0) {
				fail_conn(c, "conn %u side %d: poll: %s", c->id,
				      t->side, strerror(errno));
				break;
			}
			if (!n)
				continue;
			if (p.revents & POLLIN) {
				rc.must = true;
				rc.flags = MSG_DONTWAIT;
			}
		} else if (m < 14) {
			struct epoll_event out;
			int n = epoll_wait(ep, &out, 1, (int)below(r, 200));

			op_done(OP_EPOLL);
			if (n < 0) {
				fail_conn(c, "conn %u side %d: epoll_wait: %s", c->id,
				      t->side, strerror(errno));
				break;
			}
			if (!n)
				continue;
			if (out.events & EPOLLIN) {
				rc.must = true;
				rc.flags = MSG_DONTWAIT;
			}
		} else if (m < 20) {
			int v = -1;

			if (ioctl(fd, SIOCINQ, &v) || v < 0) {
				fail_conn(c, "conn %u side %d: SIOCINQ: %d, %s", c->id,
				      t->side, v, strerror(errno));
				break;
			}
			op_done(OP_IOCTL);
			if (v > 0) {
				/* The next record, unless the connection
				 * goes meanwhile; it cannot be too short.
				 */
				if ((uint32_t)v < HDR)
					fail_conn(c, "conn %u side %d: SIOCINQ says %d bytes",
					      c->id, t->side, v);
				rc.must = true;
				rc.flags = MSG_DONTWAIT;
				rc.want_len = (uint32_t)v;
				atomic_fetch_add_explicit(&sh->rechecked, 1,
							  memory_order_relaxed);
			}
		} else if (m < 32) {
			/* MSG_PEEK, then the same record must come. */
			size_t cap = peer->max_rec + 64;
			int fl = MSG_PEEK | (pct(r, 50) ? MSG_DONTWAIT : 0);
			ssize_t n = recv(fd, t->buf, cap, fl);
			uint32_t len;
			int e = errno;

			op_done(OP_RECV);
			trace(t, "peek", fl, want, (uint32_t)cap, n, e);
			if (n < 0) {
				res = ierr(c, t->side, false, "recv(MSG_PEEK)",
					   e, false, false);
				if (res == IR_AGAIN || res == IR_RETRY)
					continue;
				end = res == IR_RESET ? RX_RESET :
				      res == IR_GONE ? RX_GONE : RX_FAILED;
				break;
			}
			if (n > 0) {
				if (!check_rec(c, t->side, "recv(MSG_PEEK)",
					       t->buf, (size_t)n, (size_t)n,
					       want, false, &len))
					break;
				rc.must = true;
				rc.flags = MSG_DONTWAIT;
				rc.want_len = len;
				atomic_fetch_add_explicit(&sh->rechecked, 1,
							  memory_order_relaxed);
			}
		} else if (pct(r, 20)) {
			rc.flags = MSG_DONTWAIT;
		}
		res = irecv(t, &want, &rc, &eof);
		if (res == IR_RETRY)
			continue;
		if (res == IR_AGAIN && rc.must) {
			if (!any_killed(c))
				fail_conn(c, "conn %u side %d: record %u was announced (peek, SIOCINQ or poll), then recv found none",
				      c->id, t->side, want);
			else
				continue;
			break;
		}
		if (res == IR_AGAIN) {
			if (rc.flags & MSG_DONTWAIT)
				ipoll(t, fd, POLLIN);
			continue;
		}
		if (res == IR_OK && !eof)
			continue;
		if (res == IR_OK) {
			char b[64];
			ssize_t n;

			/* The end stays the end. */
			n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
			op_done(OP_RECV);
			trace(t, "recv after EOF", MSG_DONTWAIT, want, sizeof(b), n,
			      errno);
			if (n > 0)
				fail_conn(c, "conn %u side %d: %zd bytes after the end of file (after %u records)",
				      c->id, t->side, n, want);
			else if (n < 0)
				ierr(c, t->side, false, "recv after EOF", errno,
				     false, false);
			end = RX_EOF;
			break;
		}
		end = res == IR_RESET ? RX_RESET : res == IR_GONE ? RX_GONE :
		      RX_FAILED;
		break;
	}
out:
	if (ep >= 0)
		close(ep);
	atomic_store(&me->rx_end, end);
	atomic_store(&me->rx_done, true);
	return NULL;
}

static bool conn_done(struct iconn *c)
{
	int i;

	for (i = 0; i < 2; i++)
		if (!atomic_load(&c->s[i].tx_done) ||
		    !atomic_load(&c->s[i].rx_done))
			return false;
	return true;
}

static void set_itimeo(struct rng *r, int fd)
{
	set_timeo(fd, SO_RCVTIMEO, 100 + below(r, 1400));
	set_timeo(fd, SO_SNDTIMEO, 100 + below(r, 1400));
}

/* Calls beside the two threads of side k, that must not change a thing. */
static void disturb(struct lane *L, struct iconn *c)
{
	struct rng *r = &L->r;
	int k = (int)below(r, 2), fd = c->s[k].fd;
	struct iside *s = &c->s[k], *o = &c->s[!k];
	unsigned int w = below(r, 10);
	int v = 0, ret, e;
	socklen_t len = sizeof(v);

	switch (w) {
	case 0: {
		struct pollfd p = { .fd = fd, .events = (short)rnd(r) };

		ret = poll(&p, 1, 0);
		op_done(OP_POLL);
		if (ret < 0 || (p.revents & ~(p.events | POLLERR | POLLHUP |
					      POLLNVAL)))
			fail_conn(c, "conn %u side %d: poll(%#x) gave %d, revents %#x",
			      c->id, k, (unsigned short)p.events, ret,
			      (unsigned short)p.revents);
		break;
	}
	case 1:
		ret = getsockopt(fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &v, &len);
		op_done(OP_SOCKOPT);
		/*
		 * It keeps the value it had at connect, as do the names and
		 * the peer, until the connection is reset: only a close of
		 * either side (with records unread) may do that.
		 */
		if ((ret || (uint32_t)v != s->max_rec) &&
		    !any_killed(c))
			fail_conn(c, "conn %u side %d: IVSHMEM_MAX_RECORD %d (ret %d), was %u",
			      c->id, k, v, ret, s->max_rec);
		break;
	case 2: {
		struct ivshmem_peer pe;

		len = sizeof(pe);
		ret = getsockopt(fd, SOL_IVSHMEM, IVSHMEM_PEER, &pe, &len);
		op_done(OP_SOCKOPT);
		if (!any_killed(c) &&
		    (ret || pe.vm != o->vm || pe.port != o->port ||
		     pe.pid != getpid()))
			fail_conn(c, "conn %u side %d: IVSHMEM_PEER %d: vm %u port %u pid %d, want %u %u %d",
			      c->id, k, ret, pe.vm, pe.port, pe.pid, o->vm,
			      o->port, (int)getpid());
		break;
	}
	case 3:
	case 4: {
		struct sockaddr_ivshmem a;
		bool peer = w == 3;

		len = sizeof(a);
		ret = peer ? getpeername(fd, (struct sockaddr *)&a, &len) :
			     getsockname(fd, (struct sockaddr *)&a, &len);
		op_done(OP_NAME);
		if (!any_killed(c) &&
		    (ret || len != sizeof(a) ||
		     a.sivshm_vm != (peer ? o->vm : s->vm) ||
		     a.sivshm_port != (peer ? o->port : s->port)))
			fail_conn(c, "conn %u side %d: %s: %d, vm %u port %u, want %u %u",
			      c->id, k, peer ? "getpeername" : "getsockname", ret,
			      a.sivshm_vm, a.sivshm_port, peer ? o->vm : s->vm,
			      peer ? o->port : s->port);
		break;
	}
	case 5:
		ret = ioctl(fd, pct(r, 50) ? SIOCOUTQ : SIOCINQ, &v);
		op_done(OP_IOCTL);
		if (ret || v < 0)
			fail_conn(c, "conn %u side %d: SIOCINQ/SIOCOUTQ: %d, %d", c->id,
			      k, ret, v);
		break;
	case 6: {
		/* A peek beside the receiver: its next record or a later one. */
		uint32_t g0 = atomic_load(&s->got);
		size_t cap = o->max_rec + 64;
		ssize_t n = recv(fd, L->pbuf, cap, MSG_PEEK | MSG_DONTWAIT);

		e = errno;
		op_done(OP_RECV);
		if (n > 0) {
			if (check_rec(c, k, "peek beside", L->pbuf, (size_t)n,
				      (size_t)n, g0, true, NULL))
				atomic_fetch_add_explicit(&sh->rechecked, 1,
							  memory_order_relaxed);
		} else if (n < 0) {
			ierr(c, k, false, "peek beside", e, false, false);
		}
		break;
	}
	case 7:
		set_itimeo(r, fd);
		break;
	default:
		len = sizeof(v);
		ret = getsockopt(fd, SOL_SOCKET, pct(r, 50) ? SO_TYPE : SO_DOMAIN,
				 &v, &len);
		op_done(OP_SOCKOPT);
		if (ret || (v != SOCK_SEQPACKET && v != af))
			fail_conn(c, "conn %u side %d: SO_TYPE/SO_DOMAIN: %d, %d",
			      c->id, k, ret, v);
		break;
	}
}

enum { F_ORDERLY, F_TXKILL, F_KILL, F_SHUT, F_KILLBOTH, F_NR };

/* Open connection @c through the lane's listener; false on failure. */
static bool int_open(struct lane *L, struct iconn *c)
{
	struct rng *r = &L->r;
	unsigned int a = below(r, NDEV), b = below(r, NDEV), i;
	struct sockaddr_ivshmem to, pa;
	socklen_t pl = sizeof(pa);
	uint64_t t0 = ivshm_now_ms();
	int fd, afd, v;

	for (;;) {
		fd = socket(af, SOCK_SEQPACKET | (pct(r, 50) ? SOCK_CLOEXEC : 0),
			    0);
		op_done(OP_SOCKET);
		if (fd < 0) {
			failf("lane %u: socket: %s", L->idx, strerror(errno));
			return false;
		}
		if (pct(r, 40)) {
			v = (int)(8192 + below(r, 200000));
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
			op_done(OP_SOCKOPT);
		}
		to = ivshm_addr(af, a == b && pct(r, 50) ? IVSHMEM_VM_LOCAL : b,
				INT_PORT + L->idx, a + 1);
		if (!connect(fd, (struct sockaddr *)&to, sizeof(to))) {
			op_done(OP_CONNECT);
			break;
		}
		op_done(OP_CONNECT);
		v = errno;
		close(fd);
		op_done(OP_CLOSE);
		/* The chaos may have filled the region for a moment. */
		if ((v == ENOBUFS || v == ETIMEDOUT) &&
		    ivshm_now_ms() - t0 < 30000 && !stopping()) {
			atomic_fetch_add(&sh->enobufs, 1);
			ivshm_sleep_ms(50);
			continue;
		}
		if (!stopping())
			failf("lane %u: connect from ivshm%u to vm %u port %u: %s",
			      L->idx, a, b, INT_PORT + L->idx, strerror(v));
		return false;
	}
	atomic_fetch_add(&sh->connections, 1);
	afd = accept4(L->lfd, (struct sockaddr *)&pa, &pl,
		      pct(r, 50) ? SOCK_CLOEXEC : 0);
	op_done(OP_ACCEPT);
	if (afd < 0) {
		failf("lane %u: accept after a successful connect: %s", L->idx,
		      strerror(errno));
		close(fd);
		return false;
	}
	atomic_fetch_add(&sh->accepted, 1);
	memset(c->s, 0, sizeof(c->s));
	c->s[0].fd = fd;
	c->s[1].fd = afd;
	c->s[0].vm = a;
	c->s[1].vm = b;
	c->s[0].port = ivshm_local_port(fd);
	op_done(OP_NAME);
	c->s[1].port = INT_PORT + L->idx;
	/* The connection accepted must be the one just made. */
	if (pl != sizeof(pa) || pa.sivshm_vm != a ||
	    pa.sivshm_port != c->s[0].port) {
		failf("lane %u: accepted a connection from vm %u port %u, but vm %u port %u connected",
		      L->idx, pa.sivshm_vm, pa.sivshm_port, a, c->s[0].port);
		close(fd);
		close(afd);
		return false;
	}
	for (i = 0; i < 2; i++) {
		socklen_t len = sizeof(v);

		set_itimeo(r, c->s[i].fd);
		if (getsockopt(c->s[i].fd, SOL_IVSHMEM, IVSHMEM_MAX_RECORD, &v,
			       &len) || v < (int)HDR || (uint32_t)v > IMAX) {
			failf("lane %u: IVSHMEM_MAX_RECORD %d", L->idx, v);
			close(fd);
			close(afd);
			return false;
		}
		op_done(OP_SOCKOPT);
		c->s[i].max_rec = (uint32_t)v;
	}
	return true;
}

static void dump_line(void *arg, unsigned int dev, bool ours,
		      const char *line)
{
	(void)arg;
	(void)ours;
	fprintf(stderr, "#  ivshm%u: %s", dev, line);
}

/* Everything known about connection @c, when a count does not add up. */
static void conn_dump(struct lane *L, struct iconn *c, int fate, int fk)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	const struct ivshm_conn_ends ends = {
		.vm = c->s[0].vm, .port = c->s[0].port,
		.peer_vm = c->s[1].vm, .peer_port = c->s[1].port,
	};
	unsigned int i, k;

	pthread_mutex_lock(&lock);
	fprintf(stderr, "# conn %u lane %u: fate %d on side %d, started %llu ms ago\n",
		c->id, c->lane, fate, fk,
		(unsigned long long)(ivshm_now_ms() - c->start_ms));
	for (i = 0; i < 2; i++) {
		struct iside *s = &c->s[i];
		unsigned long long km = atomic_load(&s->kill_ms);

		fprintf(stderr, "#  side %u: vm %u port %u fd %d max_rec %u quota %u tx_end %d sent %u got %u rx_end %d killed %d (%lld ms after start) rd_shut %d wr_shut %d reset_seen %d\n",
			i, s->vm, s->port, s->fd, s->max_rec, s->quota,
			s->tx_end, atomic_load(&s->sent), atomic_load(&s->got),
			atomic_load(&s->rx_end), atomic_load(&s->killed),
			km ? (long long)(km - c->start_ms) : -1LL,
			atomic_load(&s->rd_shut), atomic_load(&s->wr_shut),
			atomic_load(&s->reset_seen));
	}
	for (i = 0; i < 4; i++) {
		struct ithr *t = &L->t[i];

		fprintf(stderr, "#  %s of side %d, last calls (ms after start, call, flags, seq, len, ret, errno):\n",
			i < 2 ? "sender" : "receiver", t->side);
		for (k = t->ntr > NTRACE ? t->ntr - NTRACE : 0; k < t->ntr; k++) {
			struct tr *e = &t->tr[k % NTRACE];

			fprintf(stderr, "#   %6lld %-14s %#10x %6u %7u %7lld %d\n",
				(long long)(e->ms - c->start_ms), e->call,
				(unsigned int)e->flags, e->seq, e->len, e->ret,
				e->err);
		}
	}
	/* What the devices still hold of it. */
	ivshm_conn_channels(&ends, dump_line, NULL);
	pthread_mutex_unlock(&lock);
}

static void *lane_main(void *arg)
{
	struct lane *L = arg;
	struct rng *r = &L->r;
	static struct iconn conns[NLANES];
	struct iconn *c = &conns[L->idx];
	unsigned int gen, i;

	for (gen = 0; !stopping(); gen++) {
		int fate = (int)below(r, F_NR), fk = (int)below(r, 2);
		uint64_t start, fate_at, last_change;
		unsigned long long progress = 0, p;
		bool fate_done = false;

		c->lane = L->idx;
		c->id = L->idx * 1000000u + gen;
		c->L = L;
		c->fate = fate;
		c->fk = fk;
		atomic_store(&c->stop, false);
		atomic_store(&c->dumped, false);
		if (!int_open(L, c))
			break;
		atomic_fetch_add(&sh->int_conns, 1);
		for (i = 0; i < 2; i++) {
			c->s[i].quota = 20 + below(r, 1500);
			c->s[i].tx_end = END_SHUT;
		}
		if (fate == F_TXKILL)
			c->s[fk].tx_end = END_KILL;
		c->start_ms = ivshm_now_ms();
		for (i = 0; i < 4; i++) {
			struct ithr *t = &L->t[i];

			t->c = c;
			t->side = (int)(i % 2);
			t->ntr = 0;
			rng_seed(&t->r, sh->seed,
				 ((uint64_t)c->id << 3) + 100 + i);
			if (pthread_create(&t->th, NULL, i < 2 ? itx : irx, t)) {
				failf("lane %u: pthread_create", L->idx);
				_exit(3);
			}
		}
		start = last_change = c->start_ms;
		fate_at = start + below(r, 600);
		while (!conn_done(c)) {
			uint64_t now = ivshm_now_ms();

			if (stopping())
				atomic_store(&c->stop, true);
			if (!fate_done && now >= fate_at &&
			    (fate == F_KILL || fate == F_SHUT ||
			     fate == F_KILLBOTH)) {
				fate_done = true;
				if (fate == F_KILL) {
					side_kill(&c->s[fk]);
				} else if (fate == F_KILLBOTH) {
					side_kill(&c->s[fk]);
					side_kill(&c->s[!fk]);
				} else {
					static const int hows[] = {
						SHUT_RD, SHUT_WR, SHUT_RDWR,
						-1, 3 };
					int how = hows[below(r, pct(r, 90) ?
							     3 : 5)];
					struct iside *s = &c->s[fk];

					if (how == SHUT_RD || how == SHUT_RDWR)
						atomic_store(&s->rd_shut, true);
					if (how == SHUT_WR || how == SHUT_RDWR)
						atomic_store(&s->wr_shut, true);
					if (shutdown(s->fd, how) &&
					    !(errno == EINVAL &&
					      (how < 0 || how > 2)))
						failf("conn %u side %d: shutdown(%d): %s",
						      c->id, fk, how,
						      strerror(errno));
					op_done(OP_SHUTDOWN);
				}
			}
			disturb(L, c);
			usleep(below(r, 4000));
			/* Nothing moving for 30 s: a hang, not slowness. */
			p = 0;
			for (i = 0; i < 2; i++)
				p += atomic_load(&c->s[i].sent) * 3ull +
				     atomic_load(&c->s[i].got) * 5ull +
				     atomic_load(&c->s[i].tx_done) +
				     atomic_load(&c->s[i].rx_done) * 2ull;
			if (p != progress) {
				progress = p;
				last_change = now;
			} else if (now - last_change > 30000) {
				failf("conn %u stuck for 30 s: side 0 sent %u got %u tx %d rx %d killed %d, side 1 sent %u got %u tx %d rx %d killed %d",
				      c->id, atomic_load(&c->s[0].sent),
				      atomic_load(&c->s[0].got),
				      atomic_load(&c->s[0].tx_done),
				      atomic_load(&c->s[0].rx_done),
				      atomic_load(&c->s[0].killed),
				      atomic_load(&c->s[1].sent),
				      atomic_load(&c->s[1].got),
				      atomic_load(&c->s[1].tx_done),
				      atomic_load(&c->s[1].rx_done),
				      atomic_load(&c->s[1].killed));
				conn_failed(c);
				_exit(3);
			}
		}
		for (i = 0; i < 4; i++)
			pthread_join(L->t[i].th, NULL);
		/*
		 * Nothing lost: where the receiving side was not closed or
		 * shut for reading and saw no reset, it ended at the end of
		 * file having every record its peer's sends reported sent,
		 * and no more. (A closed sender loses nothing either.)
		 */
		for (i = 0; i < 2; i++) {
			struct iside *tx = &c->s[i], *rx = &c->s[!i];
			unsigned int sent = atomic_load(&tx->sent);
			unsigned int got = atomic_load(&rx->got);

			if (atomic_load(&rx->rx_end) != RX_EOF ||
			    atomic_load(&rx->killed) ||
			    atomic_load(&rx->rd_shut) ||
			    atomic_load(&rx->reset_seen) ||
			    atomic_load(&tx->reset_seen))
				continue;
			if (got != sent)
				fail_conn(c, "conn %u (fate %d): side %u sent %u records, side %u received %u before the end of file",
					  c->id, fate, i, sent, !i, got);
			atomic_fetch_add(&sh->exact, 1);
		}
		for (i = 0; i < 2; i++) {
			close(c->s[i].fd);
			op_done(OP_CLOSE);
		}
	}
	return NULL;
}

static int integ_main(void)
{
	static struct lane lanes[NLANES];
	unsigned int i, j;

	close_inherited();
	for (i = 0; i < NLANES; i++) {
		struct lane *L = &lanes[i];
		int v;

		L->idx = i;
		rng_seed(&L->r, sh->seed, 5000 + i);
		L->lfd = ivshm_listen_on(af, INT_PORT + i, IVSHMEM_DEV_ANY, 4);
		op_done(OP_SOCKET);
		op_done(OP_BIND);
		op_done(OP_LISTEN);
		if (L->lfd < 0) {
			failf("lane %u: cannot listen on port %u: %s", i,
			      INT_PORT + i, strerror(errno));
			return 2;
		}
		set_timeo(L->lfd, SO_RCVTIMEO, 10000);
		/* Accepted sockets size their rings after the listener. */
		if (pct(&L->r, 60)) {
			v = (int)(8192 + below(&L->r, 200000));
			setsockopt(L->lfd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
			op_done(OP_SOCKOPT);
		}
		L->pbuf = map_buf(IRXSEG);
		for (j = 0; j < 4; j++) {
			L->t[j].buflen = j < 2 ? 8 * ISEG + IRXSEG : IRXN * IRXSEG;
			L->t[j].buf = map_buf(L->t[j].buflen);
			L->t[j].edge = map_edge();
			if (!L->t[j].buf || !L->t[j].edge || !L->pbuf) {
				failf("lane %u: out of memory", i);
				return 2;
			}
		}
	}
	for (i = 0; i < NLANES; i++)
		if (pthread_create(&lanes[i].th, NULL, lane_main, &lanes[i])) {
			failf("cannot start lane %u", i);
			return 2;
		}
	for (i = 0; i < NLANES; i++)
		pthread_join(lanes[i].th, NULL);
	for (i = 0; i < NLANES; i++) {
		close(lanes[i].lfd);
		op_done(OP_CLOSE);
	}
	return 0;
}

/* ---- the test ---- */

static pid_t spawn(int which)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid)
		return pid;
	/* The harness kills the test on a timeout: take our part down too. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	part = which;
	_exit(which ? integ_main() : chaos_main());
}

static unsigned long long total_ops(void)
{
	return atomic_load(&sh->part_ops[0]) + atomic_load(&sh->part_ops[1]);
}

static void summary(uint64_t ms)
{
	char ops[512];
	size_t off = 0;
	unsigned long long n;
	int o;

	for (o = 0; o < OP_NR; o++) {
		n = atomic_load(&sh->ops[0][o]) + atomic_load(&sh->ops[1][o]);
		off += (size_t)snprintf(ops + off, sizeof(ops) - off, "%s%llu %s",
					o ? ", " : "", n, op_name[o]);
		if (off >= sizeof(ops))
			break;
	}
	printf("sysfuzz: %llu operations (%s), %llu records checked, %llu connections, seed %llu\n",
	       total_ops(), ops, (unsigned long long)atomic_load(&sh->records),
	       (unsigned long long)atomic_load(&sh->connections),
	       (unsigned long long)sh->seed);
	printf("sysfuzz: %.1f s; chaos %llu operations, integrity %llu; %llu integrity connections (%llu sockets closed under use, %llu directions counted exact), %llu records rechecked by MSG_PEEK/SIOCINQ, %llu chaos records checked, %llu accepted, %llu EFAULT, %llu EINTR, %llu connects retried\n",
	       ms / 1000.0, (unsigned long long)atomic_load(&sh->part_ops[0]),
	       (unsigned long long)atomic_load(&sh->part_ops[1]),
	       (unsigned long long)atomic_load(&sh->int_conns),
	       (unsigned long long)atomic_load(&sh->kills),
	       (unsigned long long)atomic_load(&sh->exact),
	       (unsigned long long)atomic_load(&sh->rechecked),
	       (unsigned long long)atomic_load(&sh->chaos_records),
	       (unsigned long long)atomic_load(&sh->accepted),
	       (unsigned long long)atomic_load(&sh->efaults),
	       (unsigned long long)atomic_load(&sh->eintrs),
	       (unsigned long long)atomic_load(&sh->enobufs));
	fflush(stdout);
}

/*
 * The module announces every value that failed a check (proto_errors) on
 * its netlink event group, saying which check: listen, and say it too.
 */
#define NEVENTS	256

/* One event of the module, as the watcher keeps it. */
struct nlev {
	uint64_t ms;
	uint8_t cmd;
	char dev[8];
	long long idx, sender, receiver, lport, pport, size, vm;
};

struct pewatch {
	struct tnl t;
	pthread_t th;
	atomic_bool stop;
	uint64_t t0;
	unsigned int nev;
	struct nlev ev[NEVENTS];
};

static const char *nl_cmd_name(unsigned int cmd)
{
	switch (cmd) {
	case IVSHMEM_CMD_PEER_UP:
		return "peer up";
	case IVSHMEM_CMD_PEER_DOWN:
		return "peer down";
	case IVSHMEM_CMD_CHAN_NEW:
		return "chan new";
	case IVSHMEM_CMD_CHAN_RESIZED:
		return "chan resized";
	case IVSHMEM_CMD_CHAN_DEL:
		return "chan del";
	case IVSHMEM_CMD_PROTO_ERROR:
		return "proto error";
	default:
		return "other";
	}
}

static void nlev_print(const struct pewatch *w, const struct nlev *e)
{
	fprintf(stderr, "#   %7.3f s %s %-12s chan %lld sender %lld receiver %lld ports %lld/%lld size %lld vm %lld\n",
		(e->ms - w->t0) / 1000.0, e->dev, nl_cmd_name(e->cmd), e->idx,
		e->sender, e->receiver, e->lport, e->pport, e->size, e->vm);
}

/* Every channel line of every device's debugfs, prefixed. */
static void dump_channels(const char *prefix)
{
	char path[128], line[1024];
	unsigned int d;
	FILE *f;

	for (d = 0; d < NDEV; d++) {
		snprintf(path, sizeof(path), IVSHM_DEBUGFS "/ivshm%u/channels", d);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			fprintf(stderr, "%sivshm%u: %s", prefix, d, line);
		fclose(f);
	}
}

static void *pewatch_main(void *arg)
{
	struct pewatch *w = arg;
	static unsigned char buf[TNL_BUF];
	struct timeval tv = { 0, 200000 };
	unsigned int k;

	int big = 1 << 20;

	setsockopt(w->t.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(w->t.fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	while (!atomic_load(&w->stop)) {
		ssize_t n = recv(w->t.fd, buf, sizeof(buf), 0);
		struct nlmsghdr *nh = (struct nlmsghdr *)buf;
		size_t left = n > 0 ? (size_t)n : 0;

		for (; left >= sizeof(*nh) && nh->nlmsg_len >= sizeof(*nh) &&
		       nh->nlmsg_len <= left;
		     left -= NLMSG_ALIGN(nh->nlmsg_len) < left ?
			     NLMSG_ALIGN(nh->nlmsg_len) : left,
		     nh = (struct nlmsghdr *)((char *)nh +
					      NLMSG_ALIGN(nh->nlmsg_len))) {
			struct genlmsghdr *g = NLMSG_DATA(nh);
			char *a = (char *)g + GENL_HDRLEN;
			char *end = (char *)nh + nh->nlmsg_len;
			const char *what = "?";
			struct nlev *e;

			if (nh->nlmsg_type != w->t.family ||
			    nh->nlmsg_len < NLMSG_HDRLEN + GENL_HDRLEN)
				continue;
			e = &w->ev[w->nev++ % NEVENTS];
			memset(e, 0, sizeof(*e));
			e->ms = ivshm_now_ms();
			e->cmd = g->cmd;
			e->idx = e->sender = e->receiver = e->lport = -1;
			e->pport = e->size = e->vm = -1;
			while (a + NLA_HDRLEN <= end) {
				struct nlattr *na = (struct nlattr *)a;
				char *v = a + NLA_HDRLEN;
				size_t vl;
				long long u = -1;

				if (na->nla_len < NLA_HDRLEN ||
				    a + na->nla_len > end)
					break;
				vl = na->nla_len - NLA_HDRLEN;
				if (vl == 4) {
					uint32_t x;

					memcpy(&x, v, 4);
					u = x;
				}
				switch (na->nla_type) {
				case IVSHMEM_A_DEV_NAME:
					if (vl && !v[vl - 1])
						snprintf(e->dev, sizeof(e->dev),
							 "%s", v);
					break;
				case IVSHMEM_A_ERROR_MSG:
					if (vl && !v[vl - 1])
						what = v;
					break;
				case IVSHMEM_A_CHAN_INDEX:
					e->idx = u;
					break;
				case IVSHMEM_A_CHAN_SENDER_VM:
					e->sender = u;
					break;
				case IVSHMEM_A_CHAN_RECEIVER_VM:
					e->receiver = u;
					break;
				case IVSHMEM_A_CHAN_LOCAL_PORT:
					e->lport = u;
					break;
				case IVSHMEM_A_CHAN_PEER_PORT:
					e->pport = u;
					break;
				case IVSHMEM_A_CHAN_SIZE:
					e->size = u;
					break;
				case IVSHMEM_A_PEER_VM:
					e->vm = u;
					break;
				}
				a += NLA_ALIGN(na->nla_len);
			}
			if (g->cmd == IVSHMEM_CMD_PEER_UP ||
			    g->cmd == IVSHMEM_CMD_PEER_DOWN) {
				fprintf(stderr, "# sysfuzz: %s: VM %lld\n",
					nl_cmd_name(g->cmd), e->vm);
				nlev_print(w, e);
			}
			if (g->cmd != IVSHMEM_CMD_PROTO_ERROR)
				continue;
			fprintf(stderr, "# sysfuzz: %.1f s: %s counted a protocol error on channel %lld: %s; the events of the last second:\n",
				(ivshm_now_ms() - w->t0) / 1000.0, e->dev, e->idx,
				what);
			for (k = w->nev > NEVENTS ? w->nev - NEVENTS : 0;
			     k < w->nev; k++)
				if (w->ev[k % NEVENTS].ms + 1000 >= e->ms)
					nlev_print(w, &w->ev[k % NEVENTS]);
			dump_channels("#  now: ");
		}
	}
	return NULL;
}

static bool pewatch_start(struct pewatch *w)
{
	memset(w, 0, sizeof(*w));
	w->t0 = ivshm_now_ms();
	if (tnl_open(&w->t) || !w->t.events ||
	    setsockopt(w->t.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP,
		       &w->t.events, sizeof(w->t.events)))
		return false;
	if (pthread_create(&w->th, NULL, pewatch_main, w)) {
		tnl_close(&w->t);
		return false;
	}
	return true;
}

static void pewatch_stop(struct pewatch *w)
{
	atomic_store(&w->stop, true);
	pthread_join(w->th, NULL);
	tnl_close(&w->t);
}

static const char *devname(unsigned int d)
{
	static char name[NDEV][8];

	snprintf(name[d], sizeof(name[d]), "ivshm%u", d);
	return name[d];
}

TEST(random_calls_hold_invariants)
{
	uint64_t cap_ms = ivshm_cmdline_ull("fuzz_s", 400) * 1000;
	uint64_t t0, now, last = 0, end, ms;
	long long perr[NDEV];
	int status[2] = { -1, -1 }, i;
	pid_t kid[2];
	bool capped = false, watching;
	struct pewatch pw;

	for (i = 0; i < NDEV; i++) {
		ASSERT_EQ(i, ivshm_dev_attr_ll(devname(i), "info", "own_id"))
			TH_LOG("needs dev_shm with four virtual peers");
		perr[i] = ivshm_dev_attr_ll(devname(i), "doorbells",
					    "proto_errors");
	}
	fprintf(stderr, "# sysfuzz: seed %llu (replay with ivshm.fuzz_seed=%llu), budget %llu chaos + %llu integrity operations, cap %llu s\n",
		(unsigned long long)sh->seed, (unsigned long long)sh->seed,
		(unsigned long long)sh->budget[0],
		(unsigned long long)sh->budget[1],
		(unsigned long long)(cap_ms / 1000));
	t0 = ivshm_now_ms();
	kid[0] = spawn(0);
	kid[1] = spawn(1);
	ASSERT_LT(0, kid[0]);
	ASSERT_LT(0, kid[1]);
	/* After the forks: a thread may hold a stdio lock when one forks. */
	watching = pewatch_start(&pw);
	if (!watching)
		fprintf(stderr, "# sysfuzz: cannot listen to the module's events: protocol errors only counted\n");
	for (;;) {
		ivshm_sleep_ms(100);
		now = ivshm_now_ms();
		if (stopping())
			break;
		if (atomic_load(&sh->part_ops[0]) >= sh->budget[0] &&
		    atomic_load(&sh->part_ops[1]) >= sh->budget[1])
			break;
		if (now - t0 >= cap_ms) {
			capped = true;
			break;
		}
		if (now - t0 >= last + 10000) {
			last = now - t0;
			fprintf(stderr, "# sysfuzz: %llu s: %llu chaos, %llu integrity operations, %llu records\n",
				(unsigned long long)(last / 1000),
				(unsigned long long)atomic_load(&sh->part_ops[0]),
				(unsigned long long)atomic_load(&sh->part_ops[1]),
				(unsigned long long)atomic_load(&sh->records));
		}
	}
	ms = now - t0;
	atomic_store(&sh->stop, 1);
	/* Both wind down: senders finish, receivers drain, threads join. */
	end = ivshm_now_ms() + 90000;
	for (i = 0; i < 2; i++) {
		while (waitpid(kid[i], &status[i], WNOHANG) == 0) {
			if (ivshm_now_ms() > end) {
				kill(kid[i], SIGKILL);
				waitpid(kid[i], &status[i], 0);
				failf("the %s process did not end within 90 s of the stop",
				      i ? "integrity" : "chaos");
				break;
			}
			ivshm_sleep_ms(50);
		}
	}
	summary(ms);
	for (i = 0; i < (int)atomic_load(&sh->nfail) && i < NFAIL; i++)
		TH_LOG("failure %d: %s", i + 1, sh->fail[i]);
	EXPECT_EQ(0u, atomic_load(&sh->nfail));
	EXPECT_FALSE(capped)
		TH_LOG("the %llu s cap came after %llu operations, before the budget of %llu + %llu",
		       (unsigned long long)(cap_ms / 1000), total_ops(),
		       (unsigned long long)sh->budget[0],
		       (unsigned long long)sh->budget[1]);
	EXPECT_LE(sh->budget[0] + sh->budget[1], total_ops());
	EXPECT_TRUE(WIFEXITED(status[0]) && !WEXITSTATUS(status[0]))
		TH_LOG("chaos process: status %#x", status[0]);
	EXPECT_TRUE(WIFEXITED(status[1]) && !WEXITSTATUS(status[1]))
		TH_LOG("integrity process: status %#x", status[1]);
	EXPECT_LT(0ull, atomic_load(&sh->records));
	EXPECT_LT(0ull, atomic_load(&sh->exact));
	/* Between peers of one kernel, no value may ever fail a check. */
	for (i = 0; i < NDEV; i++) {
		EXPECT_EQ(perr[i], ivshm_dev_attr_ll(devname(i), "doorbells",
						     "proto_errors"))
			TH_LOG("%s counted protocol errors", devname(i));
	}
	if (watching)
		pewatch_stop(&pw);
}

/*
 * Every socket is gone: the module's references are back to what they
 * were before the run (a channel may outlive its socket until its reader
 * lets go, at most 30 s), and the whole data area is free again, by the
 * counter, by the bitmap and by the channel count.
 */
TEST(nothing_left_behind)
{
	uint64_t end = ivshm_now_ms() + 40000;
	long long total, fb = -1, bf = -1, act = -1;
	long refs;
	int i;

	while ((refs = ivshm_module_refs("af_ivshmem")) > (long)refs_before &&
	       ivshm_now_ms() < end)
		ivshm_sleep_ms(100);
	EXPECT_EQ((long)refs_before, refs)
		TH_LOG("af_ivshmem references: %llu before the run, %ld after",
		       refs_before, refs);
	for (i = 0; i < NDEV; i++) {
		total = ivshm_dev_attr_ll(devname(i), "info", "data_blocks");
		do {
			fb = ivshm_dev_attr_ll(devname(i), "info", "free_blocks");
			bf = ivshm_dev_attr_ll(devname(i), "info", "bitmap_free");
			act = ivshm_dev_attr_ll(devname(i), "info",
						"active_channels");
			if (total > 0 && fb == total && bf == total && !act)
				break;
			ivshm_sleep_ms(100);
		} while (ivshm_now_ms() < end);
		EXPECT_TRUE(total > 0 && fb == total && bf == total && !act)
			TH_LOG("%s: data_blocks %lld, free_blocks %lld, bitmap_free %lld, active_channels %lld",
			       devname(i), total, fb, bf, act);
	}
}

int main(int argc, char **argv)
{
	unsigned long long ops;

	(void)argc;
	af = ivshm_family();
	if (af < 0) {
		fprintf(stderr, "sysfuzz_test: af_ivshmem is not loaded\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 1;
	sh->seed = ivshm_cmdline_ull("fuzz_seed",
				     ivshm_cmdline_ull("token", ivshm_now_ms()));
	/* Half the budget each: chaos calls are cheap, records are not. */
	ops = ivshm_cmdline_ull("ops", 100000);
	sh->budget[0] = ops / 2;
	sh->budget[1] = ops - ops / 2;
	refs_before = (unsigned long long)ivshm_module_refs("af_ivshmem");
	return test_harness_run(1, argv);
}
