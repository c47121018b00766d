// SPDX-License-Identifier: GPL-2.0
/*
 * ivshmem-server - host-side server for QEMU's ivshmem-doorbell device
 *
 * The server owns one shared memory object and, for every connected
 * client (a QEMU ivshmem-doorbell device, or any other program speaking
 * the protocol), one eventfd per interrupt vector.  It only hands out
 * file descriptors; it never touches the shared memory nor the eventfds
 * afterwards, so interrupts go directly from peer to peer.
 *
 * Protocol (QEMU docs/specs/ivshmem-spec.rst, "The ivshmem Client-Server
 * Protocol"): the server listens on a UNIX stream socket.  Traffic is
 * one way, server to client.  Every message is a signed 64-bit
 * little-endian integer, optionally accompanied by exactly one file
 * descriptor passed with SCM_RIGHTS.  On connect a client receives, in
 * this order:
 *
 *   1. 0                   the protocol version, no fd
 *   2. ID                  the client's own peer id (0..65535), no fd
 *   3. -1                  with the shared memory fd
 *   4. PEER, N times       for every other connected peer, one message
 *                          per vector 0..N-1, each with the fd that
 *                          interrupts PEER on that vector
 *   5. ID, N times         one message per vector, each with the fd on
 *                          which the client receives its own interrupts
 *
 * Afterwards, whenever a peer joins, every other client receives step 4
 * for it (PEER with an fd, N times), and whenever a peer leaves, every
 * other client receives its id once without an fd.  A client never
 * sends anything; the server treats EOF, an error or any received data
 * as a disconnect.  Ids start at 0, because QEMU exposes the id to the
 * guest (IVPosition register) and the first client is documented to get
 * 0.  A new client gets the lowest id never given out before, and only
 * once every id has been used, the lowest free one: QEMU's ivshmem device
 * (7.2, as in Debian 12) frees a departed peer's eventfd array without
 * forgetting it, so the other QEMUs corrupt their heap when that id
 * connects again.
 *
 * AF_IVSHMEM regions: when a peer leaves and the region carries the
 * AF_IVSHMEM protocol (magic, version 1, READY), the server also marks the
 * peer's slot in the region's peer table DEAD, if it was ALIVE, and rings
 * vector 0 of every remaining peer, so that their modules reset the
 * departed peer's connections at once instead of waiting for its
 * heartbeat to time out (Documentation/protocol.md). It reads only the
 * header fields it checks and writes only that one state word.
 *
 * The server runs in the foreground around a single epoll loop.  Client
 * sockets are non-blocking; a send that cannot complete within a short
 * deadline drops that client instead of stalling everybody else.
 * SIGTERM, SIGINT and SIGHUP, read through a signalfd, stop it cleanly.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <endian.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>

#define IVS_PROG		"ivshmem-server"
#define IVS_PROTOCOL_VERSION	0
#define IVS_SHM_MSG		(-1)

#define IVS_EXIT_OK		0
#define IVS_EXIT_FAILURE	1
#define IVS_EXIT_USAGE		2

#define IVS_MIN_SIZE		4096ULL
/* Keeps the size arithmetic and the off_t conversion far from overflow. */
#define IVS_MAX_SIZE		(1ULL << 46)
#define IVS_DEFAULT_SIZE	(4ULL << 20)
#define IVS_MAX_VECTORS		64
#define IVS_DEFAULT_VECTORS	2
/* The Doorbell register carries the peer id in 16 bits. */
#define IVS_MAX_PEERS		65535
#define IVS_DEFAULT_PEERS	16

#define IVS_LISTEN_BACKLOG	64
/* How long one client may hold up the server before it is dropped. */
#define IVS_SEND_TIMEOUT_MS	1000
/* Room for a few hundred queued messages per client before we block. */
#define IVS_SNDBUF		(1 << 20)
#define IVS_MAX_EVENTS		64
/* Bounds the work done per listening-socket wakeup so signals stay timely. */
#define IVS_ACCEPT_BURST	32

/* epoll tokens; peer tokens are (serial << 16 | id) with serial >= 1 */
#define IVS_TOK_LISTEN		0
#define IVS_TOK_SIGNAL		1

struct ivs_peer {
	int sock;
	uint16_t id;
	bool dead;
	uint64_t serial;
	const char *why;		/* reason it is going away */
	struct ivs_peer *next_dead;
	int efd[];			/* one eventfd per vector */
};

struct ivs_server {
	/* configuration */
	const char *sock_path;
	const char *shm_name;		/* NULL: use memfd_create() */
	const char *pidfile;
	uint64_t shm_size;
	unsigned int vectors;
	unsigned int max_peers;
	bool verbose;

	/* runtime state */
	int listen_fd;
	int shm_fd;
	void *shm_map;			/* for marking departed peers */
	int sig_fd;
	int ep_fd;
	int spare_fd;
	bool sock_created;
	dev_t sock_dev;
	ino_t sock_ino;
	bool shm_created;
	bool pidfile_created;
	struct ivs_peer **peers;	/* indexed by id, max_peers slots */
	bool *used;			/* ids given out at least once */
	unsigned int npeers;
	uint64_t next_serial;
	struct ivs_peer *dead_list;
};

#define __printf(a, b)	__attribute__((format(printf, a, b)))
#define __noreturn	__attribute__((noreturn))

static __printf(1, 2) void ivs_err(const char *fmt, ...);
static __printf(2, 3) void ivs_log(const struct ivs_server *srv,
				   const char *fmt, ...);
static __printf(1, 2) __noreturn void ivs_usage_error(const char *fmt, ...);

/* One line on stderr, prefixed with the program name. */
static void ivs_vmsg(const char *fmt, va_list ap)
{
	fprintf(stderr, IVS_PROG ": ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void ivs_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ivs_vmsg(fmt, ap);
	va_end(ap);
}

static void ivs_log(const struct ivs_server *srv, const char *fmt, ...)
{
	va_list ap;

	if (!srv->verbose)
		return;
	va_start(ap, fmt);
	ivs_vmsg(fmt, ap);
	va_end(ap);
}

static void ivs_usage(FILE *out)
{
	fprintf(out,
		"Usage: " IVS_PROG " -S PATH [options]\n"
		"Serve shared memory and interrupt eventfds to QEMU ivshmem-doorbell\n"
		"devices (ivshmem server protocol version 0).\n"
		"\n"
		"  -S, --socket PATH     UNIX socket to listen on (required)\n"
		"  -m, --shm NAME        POSIX shared memory object name (shm_open)\n"
		"  -M, --memfd           use an anonymous memfd instead (default)\n"
		"  -l, --size SIZE       shared memory size, power of two >= 4K,\n"
		"                        optional K/M/G suffix (default 4M)\n"
		"  -n, --vectors N       interrupt vectors per peer, 1..%d (default %d)\n"
		"  -p, --max-peers N     maximum connected peers, 1..%d (default %d)\n"
		"  -F, --foreground      accepted for compatibility; always foreground\n"
		"  -v, --verbose         log peers joining and leaving to stderr\n"
		"      --pidfile PATH    write the pid to PATH once listening\n"
		"  -h, --help            show this help and exit\n"
		"\n"
		"Exit status: 0 on SIGTERM/SIGINT, 1 on runtime failure, 2 on bad usage.\n",
		IVS_MAX_VECTORS, IVS_DEFAULT_VECTORS,
		IVS_MAX_PEERS, IVS_DEFAULT_PEERS);
}

static void ivs_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ivs_vmsg(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '" IVS_PROG " --help' for more information.\n");
	exit(IVS_EXIT_USAGE);
}

/*
 * strtoull() alone happily accepts leading blanks, a minus sign (and
 * wraps it), and trailing junk; reject all of those explicitly so that a
 * typo never silently turns into some other size.
 */
static int ivs_parse_u64(const char *s, uint64_t *out, const char **end)
{
	unsigned long long v;
	char *e;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &e, 10);
	if (errno)
		return -errno;
	*out = v;
	*end = e;
	return 0;
}

static void ivs_parse_size(const char *arg, uint64_t *size)
{
	const char *end;
	uint64_t v;
	unsigned int shift = 0;

	switch (ivs_parse_u64(arg, &v, &end)) {
	case 0:
		break;
	case -ERANGE:
		ivs_usage_error("invalid size '%s': too large (maximum %" PRIu64 "G)",
				arg, (uint64_t)(IVS_MAX_SIZE >> 30));
	default:
		ivs_usage_error("invalid size '%s': expected a number with an optional K, M or G suffix",
				arg);
	}
	switch (*end) {
	case '\0':
		break;
	case 'k': case 'K':
		shift = 10;
		break;
	case 'm': case 'M':
		shift = 20;
		break;
	case 'g': case 'G':
		shift = 30;
		break;
	default:
		ivs_usage_error("invalid size '%s': unexpected '%s' (use a K, M or G suffix)",
				arg, end);
	}
	if (shift && end[1] != '\0')
		ivs_usage_error("invalid size '%s': unexpected '%s' after the suffix",
				arg, end + 1);
	if (v > (IVS_MAX_SIZE >> shift))
		ivs_usage_error("invalid size '%s': too large (maximum %" PRIu64 "G)",
				arg, (uint64_t)(IVS_MAX_SIZE >> 30));
	v <<= shift;
	/* QEMU maps the object as a PCI BAR, and BAR sizes are powers of 2. */
	if (v & (v - 1))
		ivs_usage_error("invalid size '%s': not a power of two", arg);
	if (v < IVS_MIN_SIZE)
		ivs_usage_error("invalid size '%s': too small (minimum 4K)", arg);
	*size = v;
}

static unsigned int ivs_parse_count(const char *what, const char *arg,
				    unsigned int min, unsigned int max)
{
	const char *end;
	uint64_t v;

	if (ivs_parse_u64(arg, &v, &end) || *end != '\0')
		ivs_usage_error("invalid %s '%s': not a number", what, arg);
	if (v < min || v > max)
		ivs_usage_error("invalid %s '%s': must be between %u and %u",
				what, arg, min, max);
	return (unsigned int)v;
}

enum {
	IVS_OPT_PIDFILE = 256,
};

static const struct option ivs_options[] = {
	{ "socket",	required_argument,	NULL, 'S' },
	{ "shm",	required_argument,	NULL, 'm' },
	{ "memfd",	no_argument,		NULL, 'M' },
	{ "size",	required_argument,	NULL, 'l' },
	{ "vectors",	required_argument,	NULL, 'n' },
	{ "max-peers",	required_argument,	NULL, 'p' },
	{ "foreground",	no_argument,		NULL, 'F' },
	{ "verbose",	no_argument,		NULL, 'v' },
	{ "pidfile",	required_argument,	NULL, IVS_OPT_PIDFILE },
	{ "help",	no_argument,		NULL, 'h' },
	{ NULL,		0,			NULL, 0 },
};

/*
 * getopt does not say whether the offending option was written in long
 * or short form; guess from the argument it stopped at.  optopt is 0 for
 * an unknown long option, and a long option that was given a value it
 * does not take always carries '='.
 */
static bool ivs_is_long(const char *arg, int opt)
{
	if (strncmp(arg, "--", 2) != 0)
		return false;
	return opt == 0 || strchr(arg, '=') != NULL;
}

static const char *ivs_opt_name(const char *arg, int opt)
{
	static char buf[3];

	if (strncmp(arg, "--", 2) == 0 || opt <= 0 || opt >= 256)
		return arg;
	buf[0] = '-';
	buf[1] = (char)opt;
	buf[2] = '\0';
	return buf;
}

/* shm_open() names: one optional leading '/', then a single component. */
static void ivs_check_shm_name(const char *name)
{
	const char *base = name[0] == '/' ? name + 1 : name;

	if (name[0] == '\0')
		ivs_usage_error("invalid shm name: empty");
	if (base[0] == '\0' || strchr(base, '/') || !strcmp(base, ".") ||
	    !strcmp(base, ".."))
		ivs_usage_error("invalid shm name '%s': must be a single name like 'ivshmem', without '/'",
				name);
	if (strlen(base) > NAME_MAX)
		ivs_usage_error("invalid shm name '%s': longer than %d bytes",
				name, NAME_MAX);
}

static void ivs_parse_args(struct ivs_server *srv, int argc, char **argv)
{
	bool memfd = false;
	int c;

	/* We print our own messages so that they name the culprit. */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":S:m:Ml:n:p:Fvh",
				ivs_options, NULL)) != -1) {
		switch (c) {
		case 'S':
			srv->sock_path = optarg;
			break;
		case 'm':
			srv->shm_name = optarg;
			break;
		case 'M':
			memfd = true;
			break;
		case 'l':
			ivs_parse_size(optarg, &srv->shm_size);
			break;
		case 'n':
			srv->vectors = ivs_parse_count("vector count", optarg,
						       1, IVS_MAX_VECTORS);
			break;
		case 'p':
			srv->max_peers = ivs_parse_count("peer limit", optarg,
							 1, IVS_MAX_PEERS);
			break;
		case 'F':
			break;
		case 'v':
			srv->verbose = true;
			break;
		case IVS_OPT_PIDFILE:
			srv->pidfile = optarg;
			break;
		case 'h':
			ivs_usage(stdout);
			exit(IVS_EXIT_OK);
		case ':':
			ivs_usage_error("option '%s' requires an argument",
					ivs_opt_name(argv[optind - 1], optopt));
		default:
			if (!ivs_is_long(argv[optind - 1], optopt))
				ivs_usage_error("unknown option '-%c'", optopt);
			if (optopt)
				ivs_usage_error("option '%s' does not take an argument",
						argv[optind - 1]);
			ivs_usage_error("unknown or ambiguous option '%s'",
					argv[optind - 1]);
		}
	}
	if (optind < argc)
		ivs_usage_error("unexpected argument '%s'", argv[optind]);
	if (!srv->sock_path)
		ivs_usage_error("missing required option -S/--socket PATH");
	if (srv->sock_path[0] == '\0')
		ivs_usage_error("invalid socket path: empty");
	if (strlen(srv->sock_path) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		ivs_usage_error("invalid socket path '%s': longer than %zu bytes",
				srv->sock_path,
				sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (memfd && srv->shm_name)
		ivs_usage_error("options -m/--shm and -M/--memfd are mutually exclusive");
	if (srv->shm_name)
		ivs_check_shm_name(srv->shm_name);
	if (srv->pidfile && srv->pidfile[0] == '\0')
		ivs_usage_error("invalid pidfile path: empty");
}

static int64_t ivs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Send one protocol message.  The socket is non-blocking: when the
 * client's receive queue is full we wait for room, but only until
 * @deadline, so that one stuck client cannot freeze the whole server.
 */
static int ivs_send(int sock, int64_t value, int fd, int64_t deadline)
{
	uint64_t le = htole64((uint64_t)value);
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { .iov_base = &le, .iov_len = sizeof(le) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;
	size_t done = 0;

	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof(ctl.buf);
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	}

	while (done < sizeof(le)) {
		struct pollfd pfd = { .fd = sock, .events = POLLOUT };
		int64_t left;
		ssize_t n;

		iov.iov_base = (char *)&le + done;
		iov.iov_len = sizeof(le) - done;
		n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			done += n;
			/* The fd rode along with the first byte. */
			msg.msg_control = NULL;
			msg.msg_controllen = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return -1;
		left = deadline - ivs_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&pfd, 1, (int)left);
		if (n < 0 && errno != EINTR)
			return -1;
	}
	return 0;
}

/* Region protocol v1 (Documentation/protocol.md): the words we check. */
#define IVS_REGION_MAGIC	0x4d485349u	/* "ISHM" */
#define IVS_REGION_PEERS_OFF	4096u
#define IVS_REGION_PEER_SLOT	64u
#define IVS_REGION_MAX_PEERS	64u
#define IVS_PEER_ALIVE		1u
#define IVS_PEER_DEAD		2u

static uint32_t ivs_le32_at(const void *base, size_t off)
{
	uint32_t v;

	memcpy(&v, (const char *)base + off, sizeof(v));
	return le32toh(v);
}

/*
 * Mark peer @id DEAD in an AF_IVSHMEM region, if the region is one and the
 * peer's slot says ALIVE. Every value is read once and only compared.
 */
static bool ivs_region_mark_dead(struct ivs_server *srv, unsigned int id)
{
	const void *b = srv->shm_map;
	uint32_t *state, want = htole32(IVS_PEER_ALIVE);
	uint64_t peers_off;

	if (!b || id >= IVS_REGION_MAX_PEERS ||
	    srv->shm_size < IVS_REGION_PEERS_OFF +
			    IVS_REGION_MAX_PEERS * IVS_REGION_PEER_SLOT)
		return false;
	memcpy(&peers_off, (const char *)b + 32, sizeof(peers_off));
	if (ivs_le32_at(b, 0) != IVS_REGION_MAGIC ||
	    (ivs_le32_at(b, 4) & 0xffff) != 1 ||	/* version */
	    __atomic_load_n((const uint32_t *)((const char *)b + 8),
			    __ATOMIC_ACQUIRE) != htole32(2) ||	/* READY */
	    ivs_le32_at(b, 24) != IVS_REGION_MAX_PEERS ||
	    le64toh(peers_off) != IVS_REGION_PEERS_OFF)
		return false;
	state = (uint32_t *)((char *)srv->shm_map + IVS_REGION_PEERS_OFF +
			     id * IVS_REGION_PEER_SLOT);
	return __atomic_compare_exchange_n(state, &want,
					   htole32(IVS_PEER_DEAD), false,
					   __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static void ivs_peer_free(struct ivs_server *srv, struct ivs_peer *peer)
{
	unsigned int v;

	if (peer->sock >= 0)
		close(peer->sock);
	for (v = 0; v < srv->vectors; v++)
		if (peer->efd[v] >= 0)
			close(peer->efd[v]);
	free(peer);
}

static inline bool ivs_alive(const struct ivs_peer *peer)
{
	return peer && !peer->dead;
}

/*
 * Removal is deferred to ivs_reap(): announcing a departure can itself
 * fail on another peer, and doing that recursively would free peers the
 * caller is still iterating over.
 */
static void ivs_peer_kill(struct ivs_server *srv, struct ivs_peer *peer,
			  const char *why)
{
	if (peer->dead)
		return;
	peer->dead = true;
	peer->why = why;
	peer->next_dead = srv->dead_list;
	srv->dead_list = peer;
}

static void ivs_reap(struct ivs_server *srv)
{
	struct ivs_peer *peer;
	unsigned int i;
	int64_t deadline;
	bool marked;

	while ((peer = srv->dead_list)) {
		srv->dead_list = peer->next_dead;
		srv->peers[peer->id] = NULL;
		srv->npeers--;
		ivs_log(srv, "peer %u left (%s)", peer->id, peer->why);
		marked = ivs_region_mark_dead(srv, peer->id);
		if (marked)
			ivs_log(srv, "peer %u marked dead in the region", peer->id);
		for (i = 0; i < srv->max_peers; i++) {
			struct ivs_peer *other = srv->peers[i];
			uint64_t one = 1;

			if (!ivs_alive(other))
				continue;
			deadline = ivs_now_ms() + IVS_SEND_TIMEOUT_MS;
			if (ivs_send(other->sock, peer->id, -1, deadline))
				ivs_peer_kill(srv, other, "send failed");
			/* Its module looks at the peer table at once. */
			else if (marked && srv->vectors &&
				 write(other->efd[0], &one, sizeof(one)) < 0)
				ivs_log(srv, "cannot ring peer %u: %s",
					other->id, strerror(errno));
		}
		ivs_peer_free(srv, peer);
	}
}

/* Everything the new peer must learn before it is announced to others. */
static int ivs_peer_welcome(struct ivs_server *srv, struct ivs_peer *peer)
{
	int64_t deadline = ivs_now_ms() + IVS_SEND_TIMEOUT_MS;
	unsigned int i, v;

	if (ivs_send(peer->sock, IVS_PROTOCOL_VERSION, -1, deadline) ||
	    ivs_send(peer->sock, peer->id, -1, deadline) ||
	    ivs_send(peer->sock, IVS_SHM_MSG, srv->shm_fd, deadline))
		return -1;
	for (i = 0; i < srv->max_peers; i++) {
		struct ivs_peer *other = srv->peers[i];

		if (!ivs_alive(other) || other == peer)
			continue;
		for (v = 0; v < srv->vectors; v++)
			if (ivs_send(peer->sock, other->id, other->efd[v],
				     deadline))
				return -1;
	}
	for (v = 0; v < srv->vectors; v++)
		if (ivs_send(peer->sock, peer->id, peer->efd[v], deadline))
			return -1;
	return 0;
}

static void ivs_peer_add(struct ivs_server *srv, int sock)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	struct ivs_peer *peer;
	unsigned int id, i, v;
	int sndbuf = IVS_SNDBUF;
	int64_t deadline;

	for (id = 0; id < srv->max_peers; id++)
		if (!srv->peers[id] && !srv->used[id])
			break;
	if (id == srv->max_peers)
		for (id = 0; id < srv->max_peers; id++)
			if (!srv->peers[id])
				break;
	if (id == srv->max_peers) {
		/* Closing right away is all the protocol lets us say. */
		ivs_log(srv, "refusing client: %u peers connected (maximum)",
			srv->npeers);
		close(sock);
		return;
	}

	peer = calloc(1, sizeof(*peer) + srv->vectors * sizeof(int));
	if (!peer) {
		ivs_err("refusing client: out of memory");
		close(sock);
		return;
	}
	peer->sock = sock;
	peer->id = (uint16_t)id;
	peer->serial = ++srv->next_serial;
	for (v = 0; v < srv->vectors; v++)
		peer->efd[v] = -1;
	for (v = 0; v < srv->vectors; v++) {
		peer->efd[v] = eventfd(0, EFD_CLOEXEC);
		if (peer->efd[v] < 0) {
			ivs_err("refusing client: eventfd: %s", strerror(errno));
			ivs_peer_free(srv, peer);
			return;
		}
	}
	/* Best effort: only makes a full queue, and thus a wait, rarer. */
	setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));

	ev.data.u64 = peer->serial << 16 | peer->id;
	if (epoll_ctl(srv->ep_fd, EPOLL_CTL_ADD, sock, &ev)) {
		ivs_err("refusing client: epoll_ctl: %s", strerror(errno));
		ivs_peer_free(srv, peer);
		return;
	}

	/*
	 * Set the newcomer up completely before telling anybody about it:
	 * if it vanishes half way, nobody else has heard of it and it can
	 * be dropped silently.
	 */
	if (ivs_peer_welcome(srv, peer)) {
		ivs_log(srv, "client for id %u dropped during setup: %s",
			id, strerror(errno));
		ivs_peer_free(srv, peer);
		return;
	}
	srv->peers[id] = peer;
	srv->used[id] = true;
	srv->npeers++;

	for (i = 0; i < srv->max_peers; i++) {
		struct ivs_peer *other = srv->peers[i];

		if (!ivs_alive(other) || other == peer)
			continue;
		deadline = ivs_now_ms() + IVS_SEND_TIMEOUT_MS;
		for (v = 0; v < srv->vectors; v++) {
			if (ivs_send(other->sock, peer->id, peer->efd[v],
				     deadline)) {
				ivs_peer_kill(srv, other, "send failed");
				break;
			}
		}
	}
	ivs_log(srv, "peer %u joined (%u peers connected)", id, srv->npeers);
}

static void ivs_accept(struct ivs_server *srv)
{
	int i, sock;

	for (i = 0; i < IVS_ACCEPT_BURST; i++) {
		sock = accept4(srv->listen_fd, NULL, NULL,
			       SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (sock < 0) {
			switch (errno) {
			case EAGAIN:
#if EAGAIN != EWOULDBLOCK
			case EWOULDBLOCK:
#endif
				return;
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
				continue;
			case EMFILE:
			case ENFILE:
				/*
				 * The pending connection would keep the
				 * (level-triggered) listener readable forever.
				 * Free the spare fd to accept it and shut it.
				 */
				ivs_err("refusing client: out of file descriptors");
				if (srv->spare_fd >= 0) {
					close(srv->spare_fd);
					sock = accept(srv->listen_fd, NULL, NULL);
					if (sock >= 0)
						close(sock);
					srv->spare_fd = open("/dev/null",
							     O_RDONLY | O_CLOEXEC);
				}
				return;
			default:
				ivs_err("accept: %s", strerror(errno));
				return;
			}
		}
		ivs_peer_add(srv, sock);
		ivs_reap(srv);
	}
}

static void ivs_peer_event(struct ivs_server *srv, uint64_t tok,
			   uint32_t events)
{
	struct ivs_peer *peer;
	char buf[64];
	ssize_t n;

	/*
	 * An earlier event of the same epoll batch may have removed this
	 * peer and handed its id to a newcomer; the serial tells them apart.
	 */
	peer = srv->peers[tok & 0xffff];
	if (!peer || peer->serial != tok >> 16 || peer->dead)
		return;

	if (events & EPOLLERR) {
		ivs_peer_kill(srv, peer, "socket error");
		return;
	}
	n = read(peer->sock, buf, sizeof(buf));
	if (n == 0)
		ivs_peer_kill(srv, peer, "disconnected");
	else if (n > 0)
		/* The protocol is one way; a talking client is not QEMU. */
		ivs_peer_kill(srv, peer, "sent data, protocol violation");
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		ivs_peer_kill(srv, peer, "read error");
	else if (events & (EPOLLHUP | EPOLLRDHUP))
		ivs_peer_kill(srv, peer, "disconnected");
}

/* Returns 0 on a stop signal, -1 on a fatal error. */
static int ivs_run(struct ivs_server *srv)
{
	struct epoll_event evs[IVS_MAX_EVENTS];
	struct signalfd_siginfo si;
	int i, n;

	for (;;) {
		n = epoll_wait(srv->ep_fd, evs, IVS_MAX_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ivs_err("epoll_wait: %s", strerror(errno));
			return -1;
		}
		for (i = 0; i < n; i++) {
			uint64_t tok = evs[i].data.u64;

			if (tok == IVS_TOK_SIGNAL) {
				if (read(srv->sig_fd, &si, sizeof(si)) ==
				    sizeof(si)) {
					ivs_log(srv, "caught signal %u, exiting",
						si.ssi_signo);
					return 0;
				}
			} else if (tok == IVS_TOK_LISTEN) {
				ivs_accept(srv);
			} else {
				ivs_peer_event(srv, tok, evs[i].events);
				ivs_reap(srv);
			}
		}
	}
}

static int ivs_shm_open(struct ivs_server *srv);

/* The region, opened, and mapped for ivs_region_mark_dead(). */
static int ivs_shm_setup(struct ivs_server *srv)
{
	void *p;

	if (ivs_shm_open(srv))
		return -1;
	p = mmap(NULL, srv->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 srv->shm_fd, 0);
	if (p == MAP_FAILED) {
		ivs_err("cannot map the shared memory: %s", strerror(errno));
		return -1;
	}
	srv->shm_map = p;
	return 0;
}

static int ivs_shm_open(struct ivs_server *srv)
{
	struct stat st;
	int fd;

	if (!srv->shm_name) {
		fd = memfd_create("ivshmem", MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (fd < 0) {
			ivs_err("memfd_create: %s", strerror(errno));
			return -1;
		}
		srv->shm_fd = fd;
		if (ftruncate(fd, (off_t)srv->shm_size)) {
			ivs_err("cannot size memfd to %" PRIu64 " bytes: %s",
				srv->shm_size, strerror(errno));
			return -1;
		}
		/*
		 * Clients get a writable fd; sealing the size keeps a buggy
		 * one from shrinking the region under the others (SIGBUS).
		 */
		fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
		return 0;
	}

	fd = shm_open(srv->shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
		      0600);
	if (fd >= 0)
		srv->shm_created = true;
	else if (errno == EEXIST)
		fd = shm_open(srv->shm_name, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0) {
		ivs_err("cannot open shm object '%s': %s", srv->shm_name,
			strerror(errno));
		return -1;
	}
	srv->shm_fd = fd;
	if (fstat(fd, &st)) {
		ivs_err("cannot stat shm object '%s': %s", srv->shm_name,
			strerror(errno));
		return -1;
	}
	/*
	 * Someone else's object may be mapped by running guests: never
	 * resize it under them, only adopt it if it already fits.
	 */
	if (st.st_size != 0 && (uint64_t)st.st_size != srv->shm_size) {
		ivs_err("shm object '%s' already exists with size %jd, not %" PRIu64,
			srv->shm_name, (intmax_t)st.st_size, srv->shm_size);
		return -1;
	}
	if (!srv->shm_created)
		ivs_log(srv, "using existing shm object '%s'", srv->shm_name);
	if (st.st_size == 0 && ftruncate(fd, (off_t)srv->shm_size)) {
		ivs_err("cannot size shm object '%s' to %" PRIu64 " bytes: %s",
			srv->shm_name, srv->shm_size, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * A leftover socket file makes bind() fail.  Only a connection attempt
 * tells a dead server's file from a live one: refused means nobody is
 * listening.  (A live ivshmem server briefly sees our probe as a peer
 * joining and leaving; guests cannot observe that.)
 */
static int ivs_check_stale_socket(struct ivs_server *srv,
				  const struct sockaddr_un *addr)
{
	struct stat st;
	int fd, ret;

	if (lstat(srv->sock_path, &st)) {
		if (errno == ENOENT)
			return 0;
		ivs_err("cannot stat '%s': %s", srv->sock_path,
			strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		ivs_err("'%s' exists and is not a socket; refusing to replace it",
			srv->sock_path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ivs_err("socket: %s", strerror(errno));
		return -1;
	}
	ret = connect(fd, (const struct sockaddr *)addr, sizeof(*addr));
	if (ret == 0 || errno == EAGAIN || errno == EINPROGRESS) {
		/* EAGAIN: the listener exists, its backlog is just full. */
		close(fd);
		ivs_err("socket '%s' is in use by a running server",
			srv->sock_path);
		return -1;
	}
	close(fd);
	if (errno != ECONNREFUSED) {
		ivs_err("cannot probe socket '%s': %s", srv->sock_path,
			strerror(errno));
		return -1;
	}
	if (unlink(srv->sock_path) && errno != ENOENT) {
		ivs_err("cannot remove stale socket '%s': %s", srv->sock_path,
			strerror(errno));
		return -1;
	}
	ivs_log(srv, "removed stale socket '%s'", srv->sock_path);
	return 0;
}

static int ivs_listen_setup(struct ivs_server *srv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	/* Length was checked while parsing the arguments. */
	memcpy(addr.sun_path, srv->sock_path, strlen(srv->sock_path) + 1);
	if (ivs_check_stale_socket(srv, &addr))
		return -1;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ivs_err("socket: %s", strerror(errno));
		return -1;
	}
	srv->listen_fd = fd;
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		ivs_err("cannot bind to '%s': %s", srv->sock_path,
			strerror(errno));
		return -1;
	}
	srv->sock_created = true;
	/* Remembered so that we never unlink a successor's socket. */
	if (stat(srv->sock_path, &st) == 0) {
		srv->sock_dev = st.st_dev;
		srv->sock_ino = st.st_ino;
	}
	if (listen(fd, IVS_LISTEN_BACKLOG)) {
		ivs_err("cannot listen on '%s': %s", srv->sock_path,
			strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The pid goes to a temporary file in the same directory that is renamed
 * into place once written and closed, so whoever sees the pidfile (a
 * service manager, a test waiting for readiness) never reads it empty or
 * half written, nor sees the server still holding a descriptor for it.
 */
static int ivs_pidfile_write(struct ivs_server *srv)
{
	char buf[32], *tmp;
	int fd, len;

	if (!srv->pidfile)
		return 0;
	if (asprintf(&tmp, "%s.XXXXXX", srv->pidfile) < 0) {
		ivs_err("out of memory");
		return -1;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		ivs_err("cannot create pidfile '%s': %s", srv->pidfile,
			strerror(errno));
		goto out_free;
	}
	len = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (fchmod(fd, 0644) || write(fd, buf, len) != len) {
		ivs_err("cannot write pidfile '%s': %s", srv->pidfile,
			strerror(errno));
		close(fd);
		goto out_unlink;
	}
	if (close(fd) || rename(tmp, srv->pidfile)) {
		ivs_err("cannot create pidfile '%s': %s", srv->pidfile,
			strerror(errno));
		goto out_unlink;
	}
	srv->pidfile_created = true;
	free(tmp);
	return 0;
out_unlink:
	unlink(tmp);
out_free:
	free(tmp);
	return -1;
}

static int ivs_epoll_setup(struct ivs_server *srv)
{
	struct epoll_event ev = { .events = EPOLLIN };

	srv->ep_fd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->ep_fd < 0) {
		ivs_err("epoll_create1: %s", strerror(errno));
		return -1;
	}
	ev.data.u64 = IVS_TOK_LISTEN;
	if (epoll_ctl(srv->ep_fd, EPOLL_CTL_ADD, srv->listen_fd, &ev))
		goto fail;
	ev.data.u64 = IVS_TOK_SIGNAL;
	if (epoll_ctl(srv->ep_fd, EPOLL_CTL_ADD, srv->sig_fd, &ev))
		goto fail;
	return 0;
fail:
	ivs_err("epoll_ctl: %s", strerror(errno));
	return -1;
}

/*
 * Signals are blocked before anything is created, so a SIGTERM that
 * arrives during start-up is not lost: it waits in the signalfd and the
 * cleanup path still runs.
 */
static int ivs_signal_setup(struct ivs_server *srv)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL)) {
		ivs_err("sigprocmask: %s", strerror(errno));
		return -1;
	}
	srv->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (srv->sig_fd < 0) {
		ivs_err("signalfd: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Each peer costs 1 + vectors descriptors; the default soft limit is low. */
static void ivs_rlimit_setup(struct ivs_server *srv)
{
	struct rlimit rl;
	uint64_t need;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	need = (uint64_t)srv->max_peers * (srv->vectors + 1) + 16;
	if (rl.rlim_cur != RLIM_INFINITY && need > rl.rlim_cur)
		ivs_err("warning: %u peers with %u vectors need about %" PRIu64
			" file descriptors, limit is %ju; extra clients will be refused",
			srv->max_peers, srv->vectors, need,
			(uintmax_t)rl.rlim_cur);
}

static void ivs_cleanup(struct ivs_server *srv)
{
	struct stat st;
	unsigned int i;

	/*
	 * No departure messages on shutdown: per the spec, clients of a
	 * vanished server may keep interrupting each other, which they
	 * could not do had we told them everybody left.
	 */
	if (srv->peers) {
		for (i = 0; i < srv->max_peers; i++)
			if (srv->peers[i])
				ivs_peer_free(srv, srv->peers[i]);
		free(srv->peers);
	}
	free(srv->used);
	if (srv->sock_created && stat(srv->sock_path, &st) == 0 &&
	    st.st_dev == srv->sock_dev && st.st_ino == srv->sock_ino)
		unlink(srv->sock_path);
	if (srv->shm_created)
		shm_unlink(srv->shm_name);
	if (srv->pidfile_created)
		unlink(srv->pidfile);
	if (srv->listen_fd >= 0)
		close(srv->listen_fd);
	if (srv->shm_map)
		munmap(srv->shm_map, srv->shm_size);
	if (srv->shm_fd >= 0)
		close(srv->shm_fd);
	if (srv->ep_fd >= 0)
		close(srv->ep_fd);
	if (srv->sig_fd >= 0)
		close(srv->sig_fd);
	if (srv->spare_fd >= 0)
		close(srv->spare_fd);
}

int main(int argc, char **argv)
{
	struct ivs_server srv = {
		.shm_size = IVS_DEFAULT_SIZE,
		.vectors = IVS_DEFAULT_VECTORS,
		.max_peers = IVS_DEFAULT_PEERS,
		.listen_fd = -1,
		.shm_fd = -1,
		.sig_fd = -1,
		.ep_fd = -1,
		.spare_fd = -1,
	};
	int ret = IVS_EXIT_FAILURE;

	ivs_parse_args(&srv, argc, argv);

	if (ivs_signal_setup(&srv))
		goto out;
	ivs_rlimit_setup(&srv);
	srv.peers = calloc(srv.max_peers, sizeof(*srv.peers));
	srv.used = calloc(srv.max_peers, sizeof(*srv.used));
	if (!srv.peers || !srv.used) {
		ivs_err("out of memory");
		goto out;
	}
	srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (ivs_listen_setup(&srv) || ivs_shm_setup(&srv) ||
	    ivs_epoll_setup(&srv) || ivs_pidfile_write(&srv))
		goto out;

	ivs_log(&srv, "listening on '%s': %s%s, %" PRIu64
		" bytes, %u vectors, at most %u peers",
		srv.sock_path, srv.shm_name ? "shm " : "memfd",
		srv.shm_name ? srv.shm_name : "", srv.shm_size, srv.vectors,
		srv.max_peers);

	if (ivs_run(&srv) == 0)
		ret = IVS_EXIT_OK;
out:
	ivs_cleanup(&srv);
	return ret;
}
