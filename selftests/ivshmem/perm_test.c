// SPDX-License-Identifier: GPL-2.0
/*
 * Permissions, in a guest whose af_ivshmem owns a real ivshmem PCI device
 * (guest b of the doorbell and plain placements):
 *
 *  - ports below 1024 need CAP_NET_BIND_SERVICE in the initial user
 *    namespace: uid 65534, root without the capability and root of a user
 *    namespace are refused with EACCES and nothing stays bound;
 *  - configuration: DEV_SET needs CAP_NET_ADMIN, of the caller and of
 *    whoever opened the netlink socket (EPERM, value unchanged); module
 *    parameters have no write path at all; debugfs and the driver's sysfs
 *    files are root's;
 *  - records: a port held by another socket cannot be taken, with or
 *    without SO_REUSEADDR/SO_REUSEPORT; each accepted socket gets its own
 *    connection's records and nothing else; channel dumps carry no payload;
 *  - the region: no device node belongs to the driver; the BARs' sysfs
 *    resource files and /dev/mem refuse mapping and reading even to root
 *    while the driver owns the device (and allow it once it is unbound:
 *    the claim is what refuses); /proc/iomem shows the claim; sockets
 *    cannot be mapped;
 *  - uio_pci_generic cannot take the device through new_id, bind or
 *    driver_override, and takes it as soon as af_ivshmem lets go.
 *
 * Every unprivileged check runs in a child that became uid/gid 65534 with
 * no capability left (and checks that it has none). The uio modules come
 * from /lib/modules/extra (Debian's, copied by the runner) unless the
 * kernel has them built in (the debug kernel).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/genetlink.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>
#include <linux/netlink.h>

#include "kselftest_harness.h"
#include "ivshm_nl.h"
#include "ivshm_test.h"

/* Unbinding and rebinding the device takes seconds on the debug kernel. */
#undef TEST_TIMEOUT_DEFAULT
#define TEST_TIMEOUT_DEFAULT	120

#define NOBODY		65534
#define DEV		"ivshm0"
#define DRIVER		"af_ivshmem"
#define DRV_DIR		"/sys/bus/pci/drivers/" DRIVER
#define UIO		"uio_pci_generic"
#define UIO_DIR		"/sys/bus/pci/drivers/" UIO
#define EXTRA_MODS	"/lib/modules/extra"
#define PCI_ID		"1af4 1110"
#define JOIN_MS		20000

/* include/linux/ioport.h: the flags of a BAR in sysfs "resource". */
#define IORESOURCE_MEM		0x00000200
#define IORESOURCE_PREFETCH	0x00002000

static int af;

/* ---- helpers -------------------------------------------------------- */

/* errno of a failed call, 0 for a successful one. */
#define ERR(expr)	((expr) < 0 ? errno : 0)

/* The same for mmap(); whatever it mapped is unmapped again. */
static int mmap_err(int fd, size_t len, off_t off)
{
	void *p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, off);

	if (p == MAP_FAILED)
		return errno;
	munmap(p, len);
	return 0;
}

/*
 * Checks inside child processes, which cannot use the harness's asserts:
 * they print what failed (the runner shows it with the test) and make the
 * child exit 1.
 */
#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "#   pid %d uid %d: %s:%d: %s (errno %d: %s)\n", \
			getpid(), getuid(), __FILE__, __LINE__, #cond,	\
			errno, strerror(errno));			\
		return 1;						\
	}								\
} while (0)

#define CHECK_IS(want, errval) do {					\
	int e_ = (errval);						\
	if (e_ != (want)) {						\
		fprintf(stderr, "#   pid %d uid %d: %s:%d: %s: want %s, got %s\n", \
			getpid(), getuid(), __FILE__, __LINE__, #errval, \
			(want) ? strerror(want) : "success",		\
			e_ ? strerror(e_) : "success");			\
		return 1;						\
	}								\
} while (0)

/* @expr is a call returning -1 and setting errno on failure. */
#define CHECK_ERR(want, expr)	CHECK_IS(want, ERR(expr))

static int sock_new(void)
{
	return socket(af, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
}

static int do_bind(int fd, unsigned int vm, unsigned int port,
		   unsigned int dev)
{
	struct sockaddr_ivshmem a = ivshm_addr(af, vm, port, dev);

	return bind(fd, (struct sockaddr *)&a, sizeof(a));
}

/* A fresh socket bound to @port on every VM id and device: errno or 0. */
static int try_bind(unsigned int port)
{
	int fd = sock_new(), e;

	if (fd < 0)
		return errno;
	e = ERR(do_bind(fd, IVSHMEM_VM_ANY, port, IVSHMEM_DEV_ANY));
	close(fd);
	return e;
}

static int connect_local(unsigned int port)
{
	return ivshm_connect_to(af, IVSHMEM_VM_LOCAL, port, IVSHMEM_DEV_ANY);
}

static void set_rcvtimeo(int fd, unsigned int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Receive one record into @buf (NUL-terminated); its length or -1. */
static ssize_t recv_rec(int fd, char *buf, size_t cap, int flags)
{
	ssize_t n = recv(fd, buf, cap - 1, flags);

	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* One of /proc/self/status's capability sets, or -1. */
static long long cap_set_of(const char *name)
{
	char line[256];
	long long v = -1;
	size_t len = strlen(name);
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, len) && line[len] == ':')
			v = strtoll(line + len + 1, NULL, 16);
	fclose(f);
	return v;
}

static bool no_caps(void)
{
	return !cap_set_of("CapEff") && !cap_set_of("CapPrm") &&
	       !cap_set_of("CapInh") && !cap_set_of("CapAmb");
}

/* Become uid/gid 65534 without supplementary groups or capabilities. */
static int become_nobody(void)
{
	CHECK(!setgroups(0, NULL));
	CHECK(!setresgid(NOBODY, NOBODY, NOBODY));
	CHECK(!setresuid(NOBODY, NOBODY, NOBODY));
	CHECK(getuid() == NOBODY && geteuid() == NOBODY);
	CHECK(getgid() == NOBODY && getegid() == NOBODY);
	CHECK(no_caps());
	return 0;
}

/*
 * Run @fn(@arg) in a child process, as uid 65534 when @nobody is set.
 * Returns its exit status: 0 when all its checks held.
 */
static int run_child(bool nobody, int (*fn)(void *), void *arg)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (!pid) {
		if (nobody && become_nobody())
			_exit(100);
		_exit(fn(arg));
	}
	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Capabilities of this process, through the raw system calls. */
static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return (int)syscall(SYS_capget, &h, d);
}

static int caps_put(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return (int)syscall(SYS_capset, &h, d);
}

/* Switch capability @cap in the effective set on or off; 0 or -1. */
static int cap_effective(int cap, bool on)
{
	struct __user_cap_data_struct d[2];
	uint32_t bit = 1u << (cap % 32);

	if (caps_get(d))
		return -1;
	if (on)
		d[cap / 32].effective |= bit;
	else
		d[cap / 32].effective &= ~bit;
	return caps_put(d);
}

static bool cap_in_effective(int cap)
{
	long long eff = cap_set_of("CapEff");

	return eff >= 0 && (eff >> cap) & 1;
}

static const char *pci_dev(void)
{
	static char path[PATH_MAX];
	const char *d = ivshm_pci_device();

	if (!d || !realpath(d, path))
		return NULL;
	return path;
}

static const char *pci_slot(void)
{
	const char *d = pci_dev();

	return d ? strrchr(d, '/') + 1 : NULL;
}

/* The name of the driver bound to the device, "" for none. */
static const char *pci_driver(void)
{
	static char name[PATH_MAX];
	char link[PATH_MAX + 16];
	ssize_t n;

	snprintf(link, sizeof(link), "%s/driver", pci_dev() ?: "/nonexistent");
	n = readlink(link, name, sizeof(name) - 1);
	if (n < 0)
		return "";
	name[n] = '\0';
	return strrchr(name, '/') ? strrchr(name, '/') + 1 : name;
}

/* Start, end and flags of BAR @bar, from the device's "resource" file. */
static int bar_info(int bar, unsigned long long *start,
		    unsigned long long *end, unsigned long long *flags)
{
	char path[PATH_MAX + 16], line[128];
	int i = 0, ret = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/resource", pci_dev() ?: "/nonexistent");
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (i++ != bar)
			continue;
		if (sscanf(line, "%llx %llx %llx", start, end, flags) == 3)
			ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* Has the device joined its region (debugfs shows an incarnation)? */
static bool joined(void)
{
	return ivshm_dev_attr_ll(DEV, "info", "incarnation") >= 0;
}

static bool wait_joined(unsigned int ms)
{
	uint64_t deadline = ivshm_now_ms() + ms;

	while (!joined()) {
		if (ivshm_now_ms() > deadline)
			return false;
		ivshm_sleep_ms(50);
	}
	return true;
}

/* Wait until the device has driver @drv ("" for none). */
static bool wait_driver(const char *drv, unsigned int ms)
{
	uint64_t deadline = ivshm_now_ms() + ms;

	while (strcmp(pci_driver(), drv)) {
		if (ivshm_now_ms() > deadline)
			return false;
		ivshm_sleep_ms(20);
	}
	return true;
}

/*
 * A record each way over a loopback connection through the device: the
 * device works. Retried while the region is being joined again.
 */
static int loopback_works(unsigned int port)
{
	uint64_t deadline = ivshm_now_ms() + JOIN_MS;
	int l, c = -1, a;
	char buf[64];

	l = ivshm_listen_on(af, port, IVSHMEM_DEV_ANY, 4);
	if (l < 0)
		return -1;
	while ((c = connect_local(port)) < 0 && ivshm_now_ms() < deadline)
		ivshm_sleep_ms(100);
	if (c < 0) {
		close(l);
		return -1;
	}
	set_rcvtimeo(l, 10000);
	set_rcvtimeo(c, 10000);
	a = accept(l, NULL, NULL);
	close(l);
	if (a < 0) {
		close(c);
		return -1;
	}
	set_rcvtimeo(a, 10000);
	if (send(c, "ping", 4, 0) != 4 || recv_rec(a, buf, sizeof(buf), 0) != 4 ||
	    strcmp(buf, "ping") || send(a, "pong", 4, 0) != 4 ||
	    recv_rec(c, buf, sizeof(buf), 0) != 4 || strcmp(buf, "pong")) {
		close(a);
		close(c);
		return -1;
	}
	close(a);
	close(c);
	return 0;
}

/*
 * Value of CONFIG_@name in the running kernel's configuration into @val
 * ("y", "m"; "" when it is not set): from /boot/config-RELEASE (the runner
 * copies Debian's) or /proc/config.gz (the debug kernel). False when
 * neither is there.
 */
static bool kconfig(const char *name, char *val, size_t vlen)
{
	char path[128], line[512], key[128];
	struct utsname u;
	size_t klen;
	bool gz = false;
	FILE *f;

	uname(&u);
	snprintf(path, sizeof(path), "/boot/config-%s", u.release);
	f = fopen(path, "r");
	if (!f && !access("/proc/config.gz", R_OK)) {
		/* The guest's /init may leave PATH unset. */
		f = popen("/bin/busybox zcat /proc/config.gz", "r");
		gz = true;
	}
	if (!f)
		return false;
	snprintf(key, sizeof(key), "CONFIG_%s=", name);
	klen = strlen(key);
	val[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen))
			continue;
		snprintf(val, vlen, "%s", line + klen);
		val[strcspn(val, "\n")] = '\0';
	}
	if (gz)
		pclose(f);
	else
		fclose(f);
	return true;
}

/* ---- netlink ---------------------------------------------------------- */

#define NL_OUT	(256 * 1024)

/*
 * Send @m on @t and gather the data messages of the answer, whole, into
 * @out (*@len bytes). Returns the answer's error (0 or -errno) or the
 * socket's. With @plain_write, the request goes by write(), without a
 * destination address.
 */
static int nl_collect_how(struct tnl *t, struct tnl_msg *m, unsigned char *out,
			  size_t *len, bool plain_write)
{
	static union {
		char buf[65536];
		struct nlmsghdr align;
	} rx;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct nlmsghdr *req = (struct nlmsghdr *)m->buf;
	uint32_t seq = ++t->seq;

	*len = 0;
	req->nlmsg_len = (uint32_t)m->len;
	req->nlmsg_seq = seq;
	if (plain_write ? write(t->fd, m->buf, m->len) < 0 :
	    sendto(t->fd, m->buf, m->len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(t->fd, rx.buf, sizeof(rx.buf), 0);
		struct nlmsghdr *h;

		if (n < 0)
			return -errno;
		for (h = &rx.align; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR)
				return ((struct nlmsgerr *)NLMSG_DATA(h))->error;
			if (h->nlmsg_type == NLMSG_DONE)
				return *(int *)NLMSG_DATA(h);
			if (*len + h->nlmsg_len > NL_OUT)
				return -ENOBUFS;
			memcpy(out + *len, h, h->nlmsg_len);
			*len += NLMSG_ALIGN(h->nlmsg_len);
		}
	}
}

static int nl_collect(struct tnl *t, struct tnl_msg *m, unsigned char *out,
		      size_t *len)
{
	return nl_collect_how(t, m, out, len, false);
}

/* Attribute @type among the @len bytes of attributes at @p, or NULL. */
static const struct nlattr *nla_find(const void *p, size_t len, int type)
{
	size_t off = 0;

	while (off + NLA_HDRLEN <= len) {
		const struct nlattr *a = (const void *)((const char *)p + off);

		if (a->nla_len < NLA_HDRLEN || off + a->nla_len > len)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		off += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

static const void *nla_data(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

/* The attributes of genetlink message @h, and their length. */
static const void *genl_attrs(const struct nlmsghdr *h, size_t *len)
{
	*len = h->nlmsg_len - NLMSG_HDRLEN - GENL_HDRLEN;
	return (const char *)h + NLMSG_HDRLEN + GENL_HDRLEN;
}

/* Parameter @attr (u32) of device DEV, read through DEV_GET; or -errno. */
static long long nl_get_param(int attr)
{
	static unsigned char out[NL_OUT] __attribute__((aligned(8)));
	const struct nlattr *params, *p;
	struct tnl_msg m;
	const void *attrs;
	struct tnl t;
	size_t len, alen;
	uint32_t v;
	int ret;

	ret = tnl_open(&t);
	if (ret)
		return ret;
	tnl_msg_init(&m, t.family, NLM_F_REQUEST | NLM_F_ACK,
		     IVSHMEM_CMD_DEV_GET, IVSHMEM_GENL_VERSION);
	tnl_put_str(&m, IVSHMEM_A_DEV_NAME, DEV);
	ret = nl_collect(&t, &m, out, &len);
	tnl_close(&t);
	if (ret)
		return ret;
	if (!len)
		return -ENODATA;
	attrs = genl_attrs((const struct nlmsghdr *)out, &alen);
	params = nla_find(attrs, alen, IVSHMEM_A_DEV_PARAMS);
	if (!params)
		return -ENODATA;
	p = nla_find(nla_data(params), params->nla_len - NLA_HDRLEN, attr);
	if (!p || p->nla_len != NLA_HDRLEN + sizeof(v))
		return -ENODATA;
	memcpy(&v, nla_data(p), sizeof(v));
	return v;
}

/*
 * DEV_SET of one u32 parameter of DEV on @t: 0 or -errno. By write()
 * with @plain_write (see opened_by_nobody()).
 */
static int nl_set_how(struct tnl *t, int attr, uint32_t v, bool plain_write)
{
	static unsigned char out[NL_OUT] __attribute__((aligned(8)));
	struct tnl_msg m;
	size_t nest, len;

	tnl_msg_init(&m, t->family, NLM_F_REQUEST | NLM_F_ACK,
		     IVSHMEM_CMD_DEV_SET, IVSHMEM_GENL_VERSION);
	tnl_put_str(&m, IVSHMEM_A_DEV_NAME, DEV);
	nest = tnl_nest_start(&m, IVSHMEM_A_DEV_PARAMS);
	tnl_put_u32(&m, (uint16_t)attr, v);
	tnl_nest_end(&m, nest);
	return nl_collect_how(t, &m, out, &len, plain_write);
}

static int nl_set(struct tnl *t, int attr, uint32_t v)
{
	return nl_set_how(t, attr, v, false);
}

/* The same on a socket of its own. */
static int nl_set_fresh(int attr, uint32_t v)
{
	struct tnl t;
	int ret = tnl_open(&t);

	if (ret)
		return ret;
	ret = nl_set(&t, attr, v);
	tnl_close(&t);
	return ret;
}

/* ---- 1. privileged ports ----------------------------------------------- */

/* Each test closes what it bound, so tests may share these ports. */
#define PRIV_PORT	1023
#define PRIV_PORT2	7
#define FREE_PORT	1024

static int nobody_binds(void *unused)
{
	int fd;

	(void)unused;
	/* Every port below 1024, 0 included, is privileged. */
	fd = sock_new();
	CHECK(fd >= 0);
	CHECK_ERR(EACCES, do_bind(fd, IVSHMEM_VM_ANY, PRIV_PORT, IVSHMEM_DEV_ANY));
	CHECK_ERR(EACCES, do_bind(fd, IVSHMEM_VM_ANY, PRIV_PORT2, IVSHMEM_DEV_ANY));
	CHECK_ERR(EACCES, do_bind(fd, IVSHMEM_VM_ANY, 0, IVSHMEM_DEV_ANY));
	CHECK_ERR(EACCES, do_bind(fd, IVSHMEM_VM_ANY, PRIV_PORT, 1));
	/* A refused bind leaves the socket unbound: it can still bind. */
	CHECK_ERR(0, do_bind(fd, IVSHMEM_VM_ANY, FREE_PORT, IVSHMEM_DEV_ANY));
	CHECK(ivshm_local_port(fd) == FREE_PORT);
	close(fd);
	/* An ephemeral port needs nothing either. */
	fd = sock_new();
	CHECK(fd >= 0);
	CHECK_ERR(0, do_bind(fd, IVSHMEM_VM_ANY, IVSHMEM_PORT_ANY,
			     IVSHMEM_DEV_ANY));
	CHECK(ivshm_local_port(fd) >= IVSHMEM_PORT_EPHEMERAL_FIRST);
	close(fd);
	return 0;
}

TEST(unprivileged_user_cannot_bind_below_1024)
{
	ASSERT_EQ(0, run_child(true, nobody_binds, NULL));
	/* Nothing was left bound: root takes the same ports now. */
	ASSERT_EQ(0, try_bind(PRIV_PORT));
	ASSERT_EQ(0, try_bind(PRIV_PORT2));
	ASSERT_EQ(0, try_bind(0));
	ASSERT_EQ(0, try_bind(FREE_PORT));
}

static int root_without_cap(void *unused)
{
	(void)unused;
	CHECK(geteuid() == 0 && cap_in_effective(CAP_NET_BIND_SERVICE));
	/* Root without the capability is refused: uid 0 counts for nothing. */
	CHECK(!cap_effective(CAP_NET_BIND_SERVICE, false));
	CHECK(!cap_in_effective(CAP_NET_BIND_SERVICE));
	CHECK(geteuid() == 0);
	CHECK_IS(EACCES, try_bind(PRIV_PORT));
	CHECK_IS(0, try_bind(FREE_PORT));
	/* ... and with it back, allowed: it is exactly this capability. */
	CHECK(!cap_effective(CAP_NET_BIND_SERVICE, true));
	CHECK_IS(0, try_bind(PRIV_PORT));
	return 0;
}

/* uid 65534 that kept CAP_NET_BIND_SERVICE alone: allowed. */
static int nobody_with_cap(void *unused)
{
	struct __user_cap_data_struct d[2];
	uint32_t bit = 1u << CAP_NET_BIND_SERVICE;

	(void)unused;
	CHECK(!prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
	CHECK(!setgroups(0, NULL));
	CHECK(!setresgid(NOBODY, NOBODY, NOBODY));
	CHECK(!setresuid(NOBODY, NOBODY, NOBODY));
	memset(d, 0, sizeof(d));
	d[0].permitted = d[0].effective = bit;
	CHECK(!caps_put(d));
	CHECK(cap_set_of("CapEff") == (long long)bit);
	CHECK_IS(0, try_bind(PRIV_PORT));
	/* Dropped again, refused again. */
	CHECK(!cap_effective(CAP_NET_BIND_SERVICE, false));
	CHECK(cap_set_of("CapEff") == 0);
	CHECK_IS(EACCES, try_bind(PRIV_PORT));
	return 0;
}

TEST(privileged_ports_follow_cap_net_bind_service)
{
	ASSERT_EQ(0, run_child(false, root_without_cap, NULL));
	ASSERT_EQ(0, run_child(false, nobody_with_cap, NULL));
}

#define NETNS_PORT	7608

/*
 * Root of a user namespace has every capability there, none in the
 * initial one, which is where the region lives: still unprivileged.
 * Exit status 2: no user namespaces on this kernel (or none allowed).
 */
static int userns_root(void *unused)
{
	int fd;

	(void)unused;
	if (unshare(CLONE_NEWUSER))
		return errno == EINVAL || errno == EPERM || errno == ENOSPC ?
		       2 : 1;
	CHECK(cap_in_effective(CAP_NET_BIND_SERVICE));
	CHECK(cap_in_effective(CAP_NET_ADMIN));
	CHECK_IS(EACCES, try_bind(PRIV_PORT));
	CHECK_IS(EPERM, -nl_set_fresh(IVSHMEM_PARAM_REBALANCE_MS, 777));
	/* A network namespace of its own changes nothing either. */
	CHECK(!unshare(CLONE_NEWNET));
	fd = sock_new();
	if (fd < 0) {
		fprintf(stderr, "#   socket() in a new network namespace: %s\n",
			strerror(errno));
		return 0;
	}
	CHECK_ERR(EACCES, do_bind(fd, IVSHMEM_VM_ANY, PRIV_PORT,
				  IVSHMEM_DEV_ANY));
	close(fd);
	/*
	 * Not a rule of the family, so only reported (the results file has
	 * it): are ports and listeners shared with the initial namespace?
	 */
	fd = connect_local(NETNS_PORT);
	fprintf(stderr, "#   note: from a new network namespace, connect to a listener of the initial one: %s; binding its port: %s\n",
		fd >= 0 ? "connected" : strerror(errno),
		try_bind(NETNS_PORT) ? strerror(try_bind(NETNS_PORT)) : "bound");
	if (fd >= 0)
		close(fd);
	return 0;
}

TEST(user_namespace_root_is_unprivileged)
{
	long long before = nl_get_param(IVSHMEM_PARAM_REBALANCE_MS);
	int st, l;

	ASSERT_LT(0, before);
	l = ivshm_listen_on(af, NETNS_PORT, IVSHMEM_DEV_ANY, 4);
	ASSERT_LE(0, l);
	st = run_child(true, userns_root, NULL);
	close(l);
	if (st == 2)
		SKIP(return, "this kernel has no user namespaces for uid 65534");
	ASSERT_EQ(0, st);
	ASSERT_EQ(before, nl_get_param(IVSHMEM_PARAM_REBALANCE_MS));
	ASSERT_EQ(0, try_bind(PRIV_PORT));
}

/* ---- 2. configuration ------------------------------------------------ */

static int nobody_sets(void *arg)
{
	uint32_t v = *(uint32_t *)arg;
	long long got;

	CHECK_IS(EPERM, -nl_set_fresh(IVSHMEM_PARAM_REBALANCE_MS, v));
	CHECK_IS(EPERM, -ivshm_nl_set_param(DEV, IVSHMEM_PARAM_REBALANCE, 0));
	/* Looking is allowed. */
	got = nl_get_param(IVSHMEM_PARAM_REBALANCE_MS);
	CHECK(got > 0 && got != v);
	return 0;
}

/*
 * A netlink socket opened by root and inherited by a process that then
 * dropped to uid 65534: the sender's capability counts.
 */
static int inherited_root_socket(void *arg)
{
	struct tnl *t = arg;

	CHECK(!become_nobody());
	CHECK_IS(EPERM, -nl_set(t, IVSHMEM_PARAM_REBALANCE_MS, 4321));
	return 0;
}

/*
 * A socket opened while the effective uid was 65534 (no effective
 * capabilities), written to by root once its capabilities are back: the
 * opener's capability counts too, so that a privileged program cannot be
 * made to write an unprivileged user's requests, say as its stdout
 * (netlink_capable() checks the opener's credentials for messages without
 * a destination address; a sendto() naming the kernel is the sender's own
 * choice and only the sender counts). This holds because DEV_SET is
 * GENL_ADMIN_PERM, not a capable() inside the handler.
 */
static int opened_by_nobody(void *unused)
{
	struct tnl t;

	(void)unused;
	CHECK(!setresuid(-1, NOBODY, -1));
	CHECK(cap_set_of("CapEff") == 0);
	CHECK(!tnl_open(&t));
	CHECK(!setresuid(-1, 0, -1));
	CHECK(cap_in_effective(CAP_NET_ADMIN));
	CHECK_IS(EPERM, -nl_set_how(&t, IVSHMEM_PARAM_REBALANCE_MS, 4321, true));
	tnl_close(&t);
	return 0;
}

TEST(configuration_needs_cap_net_admin)
{
	long long before = nl_get_param(IVSHMEM_PARAM_REBALANCE_MS);
	uint32_t v;
	struct tnl t;

	ASSERT_LT(0, before);
	v = (uint32_t)(before % 60000) + 1;
	ASSERT_EQ(0, run_child(true, nobody_sets, &v));
	ASSERT_EQ(before, nl_get_param(IVSHMEM_PARAM_REBALANCE_MS));

	ASSERT_EQ(0, tnl_open(&t));
	ASSERT_EQ(0, run_child(false, inherited_root_socket, &t));
	ASSERT_EQ(0, run_child(false, opened_by_nobody, NULL));
	ASSERT_EQ(before, nl_get_param(IVSHMEM_PARAM_REBALANCE_MS));

	/* The very request is one root may make: the refusals were EPERM
	 * for the credentials, not for the request.
	 */
	ASSERT_EQ(0, nl_set(&t, IVSHMEM_PARAM_REBALANCE_MS, v));
	ASSERT_EQ(v, nl_get_param(IVSHMEM_PARAM_REBALANCE_MS));
	ASSERT_EQ(0, nl_set(&t, IVSHMEM_PARAM_REBALANCE_MS, (uint32_t)before));
	ASSERT_EQ(before, nl_get_param(IVSHMEM_PARAM_REBALANCE_MS));
	tnl_close(&t);
}

/*
 * Module parameters are 0444, and registered without a store operation:
 * even root, even after making a file writable, changes nothing.
 */
TEST(module_parameters_are_read_only)
{
	const char *dir = "/sys/module/" DRIVER "/parameters";
	char path[512], before[128], after[128];
	struct dirent *e;
	unsigned int n = 0;
	DIR *d = opendir(dir);

	ASSERT_NE(NULL, d);
	while ((e = readdir(d))) {
		struct stat st;
		int fd, open_err, write_err;
		ssize_t k;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ASSERT_EQ(0, stat(path, &st));
		ASSERT_EQ(0, st.st_mode & 0222) {
			TH_LOG("%s has mode %o", path, st.st_mode & 07777);
		}
		ASSERT_EQ(EACCES, ERR(open(path, O_WRONLY)));
		fd = open(path, O_RDONLY);
		ASSERT_LE(0, fd);
		k = read(fd, before, sizeof(before) - 1);
		close(fd);
		ASSERT_LT(0, k);
		before[k] = '\0';

		/* Root may chmod sysfs files; the write still has nowhere to
		 * go (module_attr_store(): EIO without a store operation).
		 */
		ASSERT_EQ(0, chmod(path, 0644));
		fd = open(path, O_WRONLY);
		open_err = fd < 0 ? errno : 0;
		write_err = fd < 0 ? -1 : ERR(write(fd, "1", 1));
		if (fd >= 0)
			close(fd);
		chmod(path, st.st_mode & 07777);
		ASSERT_EQ(0, open_err);
		ASSERT_EQ(EIO, write_err) {
			TH_LOG("%s: writing after chmod", path);
		}
		fd = open(path, O_RDONLY);
		ASSERT_LE(0, fd);
		k = read(fd, after, sizeof(after) - 1);
		close(fd);
		ASSERT_LT(0, k);
		after[k] = '\0';
		ASSERT_STREQ(before, after);
		n++;
	}
	closedir(d);
	/* family and the device defaults of params.c at least. */
	ASSERT_LE(2, n);
}

static int nobody_debugfs(void *unused)
{
	static const char *const files[] = { "info", "doorbells", "channels" };
	char path[256];
	unsigned int i;

	(void)unused;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), IVSHM_DEBUGFS "/" DEV "/%s",
			 files[i]);
		CHECK_ERR(EACCES, open(path, O_RDONLY));
	}
	CHECK_ERR(EACCES, open(IVSHM_DEBUGFS "/" DEV "/ring", O_WRONLY));
	return 0;
}

TEST(debugfs_is_root_only)
{
	char path[512];
	struct dirent *e;
	unsigned int n = 0;
	DIR *d = opendir(IVSHM_DEBUGFS "/" DEV);

	ASSERT_NE(NULL, d);
	/* The module's own modes, whatever debugfs was mounted with. */
	while ((e = readdir(d))) {
		struct stat st;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), IVSHM_DEBUGFS "/" DEV "/%s",
			 e->d_name);
		ASSERT_EQ(0, stat(path, &st));
		ASSERT_EQ(0, st.st_mode & 077) {
			TH_LOG("%s has mode %o", path, st.st_mode & 07777);
		}
		n++;
	}
	closedir(d);
	ASSERT_EQ(4, n);
	ASSERT_EQ(0, run_child(true, nobody_debugfs, NULL));
}

static int nobody_driver_files(void *unused)
{
	static const char *const files[] = {
		DRV_DIR "/bind", DRV_DIR "/unbind", DRV_DIR "/new_id",
		DRV_DIR "/remove_id",
	};
	char path[PATH_MAX + 32];
	unsigned int i;

	(void)unused;
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		CHECK_ERR(EACCES, open(files[i], O_WRONLY));
	snprintf(path, sizeof(path), "%s/driver_override", pci_dev());
	CHECK_ERR(EACCES, open(path, O_WRONLY));
	snprintf(path, sizeof(path), "%s/remove", pci_dev());
	CHECK_ERR(EACCES, open(path, O_WRONLY));
	/* Nor unload the module. */
	CHECK_ERR(EPERM, syscall(SYS_delete_module, DRIVER, O_NONBLOCK));
	return 0;
}

/* Nor can an unprivileged user detach the driver from the device. */
TEST(driver_cannot_be_unbound_by_unprivileged_user)
{
	ASSERT_NE(NULL, pci_dev());
	ASSERT_EQ(0, run_child(true, nobody_driver_files, NULL));
	ASSERT_STREQ(DRIVER, pci_driver());
}

/* ---- 3. other sockets' records --------------------------------------- */

#define HELD_PORT	7601

struct held {
	unsigned int port, vm;
};

static int steal_port(void *arg)
{
	const struct held *h = arg;
	int fd = sock_new(), one = 1;

	CHECK(fd >= 0);
	/* SO_REUSEADDR is the core's flag, which the family ignores;
	 * SO_REUSEPORT is for inet sockets only (EOPNOTSUPP since 6.7, and
	 * in 6.1.y).
	 */
	CHECK_ERR(0, setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	CHECK_ERR(EOPNOTSUPP, setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one,
					 sizeof(one)));
	CHECK_ERR(EADDRINUSE, do_bind(fd, IVSHMEM_VM_ANY, h->port,
				      IVSHMEM_DEV_ANY));
	CHECK_ERR(EADDRINUSE, do_bind(fd, h->vm, h->port, IVSHMEM_DEV_ANY));
	CHECK_ERR(EADDRINUSE, do_bind(fd, h->vm, h->port, 1));
	CHECK_ERR(EADDRINUSE, do_bind(fd, IVSHMEM_VM_ANY, h->port, 1));
	close(fd);
	return 0;
}

TEST(held_port_cannot_be_shared)
{
	struct held h = { .port = HELD_PORT };
	long long vm = ivshm_dev_attr_ll(DEV, "info", "own_id");
	int l, s, one = 1;

	ASSERT_LE(0, vm);
	h.vm = (unsigned int)vm;
	l = sock_new();
	ASSERT_LE(0, l);
	ASSERT_EQ(0, setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	ASSERT_EQ(0, do_bind(l, IVSHMEM_VM_ANY, HELD_PORT, IVSHMEM_DEV_ANY));
	ASSERT_EQ(0, listen(l, 4));

	/* Not root either, both sockets asking for reuse. */
	s = sock_new();
	ASSERT_LE(0, s);
	ASSERT_EQ(0, setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)));
	ASSERT_EQ(EADDRINUSE, ERR(do_bind(s, IVSHMEM_VM_ANY, HELD_PORT,
					  IVSHMEM_DEV_ANY)));
	close(s);
	ASSERT_EQ(0, run_child(true, steal_port, &h));

	/* The listener's is the only reason: closed, the port is free. */
	close(l);
	ASSERT_EQ(0, try_bind(HELD_PORT));
}

#define REC_PORT	7602
#define REC_TIMEO	10000

struct rec_ctx {
	int c2p[2], p2c[2];
	int root_fds[2];	/* root's listener and connection: closed */
	unsigned int a_port;	/* root's connection's local port */
};

/*
 * uid 65534's side: connect to root's listener (allowed, as with TCP),
 * send its record, then receive exactly the one record root's acceptor
 * sends on this connection and none of those of root's connection.
 */
static int nobody_connection(void *arg)
{
	struct rec_ctx *x = arg;
	char buf[256], go;
	int b;

	close(x->c2p[0]);
	close(x->p2c[1]);
	b = connect_local(REC_PORT);
	CHECK(b >= 0);
	set_rcvtimeo(b, REC_TIMEO);
	CHECK(send(b, "from-B", 6, 0) == 6);
	/* Root's connection's port and the listener's: taken. */
	CHECK_IS(EADDRINUSE, try_bind(x->a_port));
	CHECK_IS(EADDRINUSE, try_bind(REC_PORT));
	CHECK(write(x->c2p[1], "r", 1) == 1);
	CHECK(read(x->p2c[0], &go, 1) == 1);
	CHECK(recv_rec(b, buf, sizeof(buf), 0) == 4);
	CHECK(!strcmp(buf, "to-B"));
	CHECK_ERR(EAGAIN, recv(b, buf, sizeof(buf), MSG_DONTWAIT));
	close(b);
	return 0;
}

TEST(each_connection_gets_only_its_own_records)
{
	struct rec_ctx x;
	struct sockaddr_ivshmem pa;
	socklen_t plen;
	char buf[256], r;
	int l, a, c[2], ca = -1, cb = -1, i, st;
	pid_t pid;

	l = ivshm_listen_on(af, REC_PORT, IVSHMEM_DEV_ANY, 4);
	ASSERT_LE(0, l);
	set_rcvtimeo(l, REC_TIMEO);
	a = connect_local(REC_PORT);
	ASSERT_LE(0, a);
	set_rcvtimeo(a, REC_TIMEO);
	ASSERT_EQ(6, send(a, "from-A", 6, 0));
	x.a_port = ivshm_local_port(a);
	ASSERT_NE(0, x.a_port);

	ASSERT_EQ(0, pipe(x.c2p));
	ASSERT_EQ(0, pipe(x.p2c));
	x.root_fds[0] = l;
	x.root_fds[1] = a;
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		/* Only what it opens itself: not root's sockets. */
		close(x.root_fds[0]);
		close(x.root_fds[1]);
		if (become_nobody())
			_exit(100);
		_exit(nobody_connection(&x));
	}
	close(x.c2p[1]);
	close(x.p2c[0]);
	ASSERT_EQ(1, read(x.c2p[0], &r, 1));

	/* Two connections queued; which is which, by the peer's port. */
	for (i = 0; i < 2; i++) {
		c[i] = accept(l, NULL, NULL);
		ASSERT_LE(0, c[i]);
		set_rcvtimeo(c[i], REC_TIMEO);
		plen = sizeof(pa);
		ASSERT_EQ(0, getpeername(c[i], (struct sockaddr *)&pa, &plen));
		if (pa.sivshm_port == x.a_port)
			ca = c[i];
		else
			cb = c[i];
	}
	ASSERT_LE(0, ca);
	ASSERT_LE(0, cb);
	/* Each acceptor holds its own connection's record, only that. */
	ASSERT_EQ(6, recv_rec(ca, buf, sizeof(buf), 0));
	ASSERT_STREQ("from-A", buf);
	ASSERT_EQ(EAGAIN, ERR(recv(ca, buf, sizeof(buf), MSG_DONTWAIT)));
	ASSERT_EQ(6, recv_rec(cb, buf, sizeof(buf), 0));
	ASSERT_STREQ("from-B", buf);
	ASSERT_EQ(EAGAIN, ERR(recv(cb, buf, sizeof(buf), MSG_DONTWAIT)));

	/* And back: to-A reaches root's connection only. */
	ASSERT_EQ(4, send(ca, "to-A", 4, 0));
	ASSERT_EQ(4, send(cb, "to-B", 4, 0));
	ASSERT_EQ(1, write(x.p2c[1], "g", 1));
	ASSERT_EQ(pid, waitpid(pid, &st, 0));
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	ASSERT_EQ(4, recv_rec(a, buf, sizeof(buf), 0));
	ASSERT_STREQ("to-A", buf);
	ASSERT_EQ(EAGAIN, ERR(recv(a, buf, sizeof(buf), MSG_DONTWAIT)));
	close(ca);
	close(cb);
	close(a);
	close(l);
}

#define DUMP_PORT	7603

struct dump_ctx {
	char secret[2][64];
	unsigned int port;	/* the connector's */
};

/* Does a CHAN_GET dump show the connection, and no secret? 0 if so. */
static int check_chan_dump(void *arg)
{
	static unsigned char out[NL_OUT] __attribute__((aligned(8)));
	const struct dump_ctx *x = arg;
	unsigned int entries = 0, queued = 0;
	const struct nlmsghdr *h;
	struct tnl_msg m;
	struct tnl t;
	size_t len, off;
	int i;

	CHECK(!tnl_open(&t));
	tnl_msg_init(&m, t.family, NLM_F_REQUEST | NLM_F_DUMP,
		     IVSHMEM_CMD_CHAN_GET, IVSHMEM_GENL_VERSION);
	CHECK_IS(0, -nl_collect(&t, &m, out, &len));
	tnl_close(&t);
	for (off = 0; off < len; off += NLMSG_ALIGN(h->nlmsg_len)) {
		const struct nlattr *port, *q;
		const void *attrs;
		size_t alen;
		uint64_t v = 0;
		uint32_t p = 0;

		h = (const void *)(out + off);
		attrs = genl_attrs(h, &alen);
		entries++;
		port = nla_find(attrs, alen, IVSHMEM_A_CHAN_LOCAL_PORT);
		q = nla_find(attrs, alen, IVSHMEM_A_CHAN_QUEUED);
		/* u64 attributes are only 4-byte aligned. */
		if (q)
			memcpy(&v, nla_data(q), sizeof(v));
		if (port)
			memcpy(&p, nla_data(port), sizeof(p));
		if ((p == x->port || p == DUMP_PORT) &&
		    v >= strlen(x->secret[0]))
			queued++;
	}
	/* Both directions of the loopback connection hold a record. */
	CHECK(entries >= 4);
	CHECK(queued >= 2);
	for (i = 0; i < 2; i++)
		CHECK(!memmem(out, len, x->secret[i], strlen(x->secret[i])));
	return 0;
}

/*
 * Anyone may dump the channels (Documentation: reading needs nothing):
 * the dump says how much is queued, never what.
 */
TEST(channel_dumps_carry_no_payload)
{
	static char text[1 << 20];
	struct dump_ctx x;
	int l, a, c, fd, i;
	ssize_t n;
	size_t len = 0;

	for (i = 0; i < 2; i++)
		snprintf(x.secret[i], sizeof(x.secret[i]),
			 "perm-secret-%d-%s-%08x", i,
			 ivshm_cmdline("token") ?: "none",
			 (unsigned int)(ivshm_now_ms() * 2654435761u));
	l = ivshm_listen_on(af, DUMP_PORT, IVSHMEM_DEV_ANY, 4);
	ASSERT_LE(0, l);
	set_rcvtimeo(l, REC_TIMEO);
	c = connect_local(DUMP_PORT);
	ASSERT_LE(0, c);
	a = accept(l, NULL, NULL);
	ASSERT_LE(0, a);
	x.port = ivshm_local_port(c);
	/* Unread, both ways: the payload sits in the region's rings. */
	ASSERT_EQ((ssize_t)strlen(x.secret[0]),
		  send(c, x.secret[0], strlen(x.secret[0]), 0));
	ASSERT_EQ((ssize_t)strlen(x.secret[1]),
		  send(a, x.secret[1], strlen(x.secret[1]), 0));

	ASSERT_EQ(0, run_child(false, check_chan_dump, &x));
	ASSERT_EQ(0, run_child(true, check_chan_dump, &x));

	/* Nor does root's debugfs listing. */
	fd = open(IVSHM_DEBUGFS "/" DEV "/channels", O_RDONLY);
	ASSERT_LE(0, fd);
	while ((n = read(fd, text + len, sizeof(text) - len)) > 0)
		len += (size_t)n;
	close(fd);
	ASSERT_LT(0, len);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(NULL, memmem(text, len, x.secret[i],
				       strlen(x.secret[i])));
	close(a);
	close(c);
	close(l);
}

/* ---- 4. no device file or mapping ------------------------------------ */

/* Does any node under /sys/dev/@kind belong to the PCI device? */
static int nodes_of_device(struct __test_metadata *_metadata,
			   const char *kind, const char *dev)
{
	char dir[64], link[PATH_MAX], real[PATH_MAX];
	struct dirent *e;
	int found = 0;
	DIR *d;

	snprintf(dir, sizeof(dir), "/sys/dev/%s", kind);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		size_t dl = strlen(dev);

		if (e->d_name[0] == '.')
			continue;
		snprintf(link, sizeof(link), "%s/%s", dir, e->d_name);
		if (!realpath(link, real))
			continue;
		if (!strncmp(real, dev, dl) && (!real[dl] || real[dl] == '/')) {
			TH_LOG("%s node %s is %s", kind, e->d_name, real);
			found++;
		}
	}
	closedir(d);
	return found;
}

/* Lines of @path that mention @word. */
static int lines_with(struct __test_metadata *_metadata, const char *path,
		      const char *word)
{
	char line[512];
	int found = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, word)) {
			TH_LOG("%s: %s", path, line);
			found++;
		}
	fclose(f);
	return found;
}

TEST(no_device_node_belongs_to_the_driver)
{
	const char *dev = pci_dev();
	struct dirent *e;
	DIR *d;

	ASSERT_NE(NULL, dev);
	ASSERT_STREQ(DRIVER, pci_driver());
	ASSERT_EQ(0, nodes_of_device(_metadata, "char", dev));
	ASSERT_EQ(0, nodes_of_device(_metadata, "block", dev));
	/* No major or misc minor of ours, under any name. */
	ASSERT_EQ(0, lines_with(_metadata, "/proc/devices", "ivshm"));
	ASSERT_EQ(0, lines_with(_metadata, "/proc/misc", "ivshm"));
	d = opendir("/dev");
	ASSERT_NE(NULL, d);
	while ((e = readdir(d))) {
		EXPECT_EQ(NULL, strstr(e->d_name, "ivshm")) {
			TH_LOG("/dev/%s", e->d_name);
		}
	}
	closedir(d);
}

/* What the BAR's sysfs files let root do: open yes, map and read no. */
static void bar_files_refused(struct __test_metadata *_metadata, int bar,
			      bool wc)
{
	char path[PATH_MAX + 32], buf[64];
	int fd;

	snprintf(path, sizeof(path), "%s/resource%d%s", pci_dev(), bar,
		 wc ? "_wc" : "");
	fd = open(path, O_RDWR | O_SYNC);
	ASSERT_LE(0, fd) {
		TH_LOG("%s: %s", path, strerror(errno));
	}
	/* pci_mmap_resource(): iomem_is_exclusive() on a busy region. */
	EXPECT_EQ(EINVAL, mmap_err(fd, 4096, 0)) {
		TH_LOG("%s is mappable", path);
	}
	/* Memory BARs have no read method: sysfs_kf_bin_read() says EIO. */
	EXPECT_EQ(EIO, ERR(pread(fd, buf, sizeof(buf), 0))) {
		TH_LOG("%s is readable", path);
	}
	close(fd);
}

static int nobody_bar_files(void *unused)
{
	char path[PATH_MAX + 32];

	(void)unused;
	snprintf(path, sizeof(path), "%s/resource2", pci_dev());
	CHECK_ERR(EACCES, open(path, O_RDONLY));
	snprintf(path, sizeof(path), "%s/resource0", pci_dev());
	CHECK_ERR(EACCES, open(path, O_RDONLY));
	CHECK_ERR(EACCES, open("/dev/mem", O_RDONLY));
	return 0;
}

TEST(region_cannot_be_mapped_or_read)
{
	unsigned long long start, end, flags, r0, e0, f0;
	char path[PATH_MAX + 32], buf[64], strict[64], io_strict[64];
	int fd;

	ASSERT_STREQ(DRIVER, pci_driver());
	ASSERT_EQ(0, bar_info(2, &start, &end, &flags));
	ASSERT_EQ(0, bar_info(0, &r0, &e0, &f0));
	ASSERT_NE(0, flags & IORESOURCE_MEM);
	ASSERT_NE(0, f0 & IORESOURCE_MEM);
	ASSERT_EQ(ivshm_cmdline_ull("size", 0), end - start + 1);
	/*
	 * The refusals below are the kernel's for a region its driver
	 * claimed, with CONFIG_IO_STRICT_DEVMEM (pci.c relies on it), as
	 * Debian's kernels and the debug kernel are built.
	 */
	if (kconfig("STRICT_DEVMEM", strict, sizeof(strict)) &&
	    kconfig("IO_STRICT_DEVMEM", io_strict, sizeof(io_strict))) {
		ASSERT_STREQ("y", strict);
		ASSERT_STREQ("y", io_strict);
	} else {
		TH_LOG("no kernel configuration to read; asserting what these kernels do");
	}

	bar_files_refused(_metadata, 0, false);
	bar_files_refused(_metadata, 2, false);
	/*
	 * A prefetchable BAR has a write-combining twin when the kernel can
	 * map write-combined (pci-sysfs.c: arch_can_pci_mmap_wc(), which is
	 * pat_enabled() on x86; PAT, which shows as its debugfs memtype
	 * list, is off on the debug kernel, which has no MTRR).
	 */
	snprintf(path, sizeof(path), "%s/resource2_wc", pci_dev());
	if ((flags & IORESOURCE_PREFETCH) &&
	    !access("/sys/kernel/debug/x86/pat_memtype_list", F_OK))
		ASSERT_EQ(0, access(path, F_OK));
	if (!access(path, F_OK))
		bar_files_refused(_metadata, 2, true);

	/* /dev/mem: mmap_mem() -> range_is_allowed() -> devmem_is_allowed():
	 * busy I/O memory is refused with EPERM. read() only ever covers
	 * RAM below high_memory on x86 (valid_phys_addr_range(): EFAULT).
	 */
	fd = open("/dev/mem", O_RDONLY | O_SYNC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EPERM, mmap_err(fd, 4096, (off_t)start));
	EXPECT_EQ(EPERM, mmap_err(fd, 4096, (off_t)(end + 1 - 4096)));
	EXPECT_EQ(EPERM, mmap_err(fd, 4096, (off_t)(r0 & ~4095ull)));
	EXPECT_EQ(EFAULT, ERR(pread(fd, buf, sizeof(buf), (off_t)start)));
	close(fd);

	ASSERT_EQ(0, run_child(true, nobody_bar_files, NULL));
}

/*
 * /proc/iomem (as root, with addresses): BAR0 and BAR2 each have a child
 * resource named af_ivshmem spanning the whole BAR, right under the PCI
 * device's own line. Returns how many of the two are there.
 */
static int iomem_claims(struct __test_metadata *_metadata)
{
	unsigned long long bars[2][3];
	char line[512], prev[512] = "";
	const char *slot = pci_slot();
	int found = 0, i;
	FILE *f;

	if (bar_info(0, &bars[0][0], &bars[0][1], &bars[0][2]) ||
	    bar_info(2, &bars[1][0], &bars[1][1], &bars[1][2]))
		return -1;
	f = fopen("/proc/iomem", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long s, e, ps, pe;
		char name[128], pname[128];

		if (sscanf(line, " %llx-%llx : %127[^\n]", &s, &e, name) == 3 &&
		    !strcmp(name, DRIVER)) {
			for (i = 0; i < 2; i++) {
				if (s != bars[i][0] || e != bars[i][1])
					continue;
				if (sscanf(prev, " %llx-%llx : %127[^\n]", &ps,
					   &pe, pname) == 3 && ps == s &&
				    pe == e && !strcmp(pname, slot))
					found++;
				else
					TH_LOG("claim %s not under %s: %s",
					       line, slot, prev);
			}
		}
		snprintf(prev, sizeof(prev), "%s", line);
	}
	fclose(f);
	return found;
}

TEST(iomem_shows_the_claim)
{
	ASSERT_STREQ(DRIVER, pci_driver());
	ASSERT_EQ(2, iomem_claims(_metadata));
}

/* sock_no_mmap: no socket of the family maps anything. */
TEST(sockets_cannot_be_mapped)
{
	int l, c, a, u;

	u = sock_new();
	ASSERT_LE(0, u);
	EXPECT_EQ(ENODEV, mmap_err(u, 4096, 0));
	l = ivshm_listen_on(af, 7604, IVSHMEM_DEV_ANY, 4);
	ASSERT_LE(0, l);
	EXPECT_EQ(ENODEV, mmap_err(l, 4096, 0));
	c = connect_local(7604);
	ASSERT_LE(0, c);
	a = accept(l, NULL, NULL);
	ASSERT_LE(0, a);
	EXPECT_EQ(ENODEV, mmap_err(c, 4096, 0));
	EXPECT_EQ(ENODEV, mmap_err(a, 131072, 0));
	close(a);
	close(c);
	close(l);
	close(u);
}

/* Write @slot to the driver's @file (bind, unbind); 0 or -errno. */
static int drv_write(const char *drv, const char *file, const char *text)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/%s/%s", drv, file);
	return ivshm_write_file(path, text);
}

static int dev_write(const char *file, const char *text)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", pci_dev(), file);
	return ivshm_write_file(path, text);
}

/* Bind af_ivshmem again and wait until the device is in use. */
static int rebind(void)
{
	int ret = drv_write(DRIVER, "bind", pci_slot());

	if (ret && ret != -EBUSY)
		return ret;
	if (!wait_driver(DRIVER, 5000) || !wait_joined(JOIN_MS))
		return -ETIMEDOUT;
	return 0;
}

/*
 * The control of the two tests above: the same files with the driver
 * unbound map the region, /dev/mem too, and /proc/iomem shows no claim.
 * So the refusals are the claim's, and the tests would see it missing.
 */
TEST(unclaimed_region_is_mappable)
{
	unsigned long long start, end, flags;
	char path[PATH_MAX + 32];
	int fd, map_sysfs, map_devmem = -1, claims;

	ASSERT_EQ(0, bar_info(2, &start, &end, &flags));
	ASSERT_EQ(0, drv_write(DRIVER, "unbind", pci_slot()));
	ASSERT_TRUE(wait_driver("", 5000));
	snprintf(path, sizeof(path), "%s/resource2", pci_dev());
	fd = open(path, O_RDWR | O_SYNC);
	map_sysfs = fd < 0 ? errno : mmap_err(fd, 4096, 0);
	if (fd >= 0)
		close(fd);
	fd = open("/dev/mem", O_RDONLY | O_SYNC);
	if (fd >= 0) {
		map_devmem = mmap_err(fd, 4096, (off_t)start);
		close(fd);
	}
	claims = iomem_claims(_metadata);
	/* Back before asserting anything, so that later steps have it. */
	ASSERT_EQ(0, rebind());
	EXPECT_EQ(0, map_sysfs);
	EXPECT_EQ(0, map_devmem);
	EXPECT_EQ(0, claims);
	/* And claimed again. */
	ASSERT_EQ(2, iomem_claims(_metadata));
	fd = open(path, O_RDWR | O_SYNC);
	ASSERT_LE(0, fd);
	EXPECT_EQ(EINVAL, mmap_err(fd, 4096, 0));
	close(fd);
	ASSERT_EQ(0, loopback_works(7605));
}

/* ---- 5. uio_pci_generic --------------------------------------------- */

/* uio devices there are (/sys/class/uio), and whether one is ours. */
static int uio_devices(const char *dev, bool *ours)
{
	char link[PATH_MAX], real[PATH_MAX];
	struct dirent *e;
	int n = 0;
	DIR *d = opendir("/sys/class/uio");

	*ours = false;
	if (!d)
		return 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n++;
		snprintf(link, sizeof(link), "/sys/class/uio/%s/device",
			 e->d_name);
		if (realpath(link, real) && !strcmp(real, dev))
			*ours = true;
	}
	closedir(d);
	return n;
}

/* Number of /dev/uioN nodes. */
static int uio_nodes(void)
{
	struct dirent *e;
	int n = 0;
	DIR *d = opendir("/dev");

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "uio", 3))
			n++;
	closedir(d);
	return n;
}

static int load_extra(const char *name)
{
	char path[256];
	int fd, ret = 0;

	snprintf(path, sizeof(path), EXTRA_MODS "/%s.ko", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", 0) && errno != EEXIST)
		ret = -errno;
	close(fd);
	return ret;
}

FIXTURE(uio) {
	bool loaded_uio, loaded_generic;
	bool new_id, override;
};

FIXTURE_SETUP(uio)
{
	if (access(UIO_DIR, F_OK)) {
		if (access(EXTRA_MODS "/" UIO ".ko", R_OK))
			SKIP(return, "uio_pci_generic is neither built in nor in " EXTRA_MODS);
		if (!ivshm_module_loaded("uio")) {
			ASSERT_EQ(0, load_extra("uio"));
			self->loaded_uio = true;
		}
		ASSERT_EQ(0, load_extra(UIO));
		self->loaded_generic = true;
	}
	ASSERT_EQ(0, access(UIO_DIR, F_OK));
	ASSERT_NE(NULL, pci_dev());
	ASSERT_STREQ(DRIVER, pci_driver());
	ASSERT_TRUE(joined());
}

/* Whatever happened, leave the device with af_ivshmem and uio gone. */
FIXTURE_TEARDOWN(uio)
{
	const char *drv = pci_driver();

	if (self->override)
		EXPECT_EQ(0, dev_write("driver_override", "\n"));
	if (self->new_id)
		EXPECT_EQ(0, drv_write(UIO, "remove_id", PCI_ID));
	if (strcmp(drv, DRIVER)) {
		if (*drv)
			EXPECT_EQ(0, drv_write(drv, "unbind", pci_slot()));
		EXPECT_EQ(0, rebind());
	}
	if (self->loaded_generic)
		EXPECT_EQ(0, ivshm_rmmod(UIO));
	if (self->loaded_uio)
		EXPECT_EQ(0, ivshm_rmmod("uio"));
	EXPECT_STREQ(DRIVER, pci_driver());
}

TEST_F(uio, uio_pci_generic_cannot_take_the_device)
{
	const char *dev = pci_dev(), *slot = pci_slot();
	int before, nodes;
	bool ours;

	before = uio_devices(dev, &ours);
	ASSERT_FALSE(ours);
	nodes = uio_nodes();

	/* Without an id, uio_pci_generic does not even match the device. */
	ASSERT_EQ(-ENODEV, drv_write(UIO, "bind", slot));
	/* A new id makes uio_pci_generic match the device, and attach to
	 * every matching device without a driver: not to ours.
	 */
	ASSERT_EQ(0, drv_write(UIO, "new_id", PCI_ID));
	self->new_id = true;
	ivshm_sleep_ms(200);
	ASSERT_STREQ(DRIVER, pci_driver());
	/* Asked to bind it, with the id matching: the device has a driver. */
	ASSERT_EQ(-EBUSY, drv_write(UIO, "bind", slot));
	ASSERT_STREQ(DRIVER, pci_driver());

	/* driver_override names the driver for the next probe; a probe of a
	 * device with a driver changes nothing (and succeeds).
	 */
	ASSERT_EQ(0, dev_write("driver_override", UIO));
	self->override = true;
	ASSERT_EQ(0, ivshm_write_file("/sys/bus/pci/drivers_probe", slot));
	ivshm_sleep_ms(200);
	ASSERT_STREQ(DRIVER, pci_driver());
	ASSERT_EQ(-EBUSY, drv_write(UIO, "bind", slot));
	ASSERT_STREQ(DRIVER, pci_driver());
	ASSERT_EQ(before, uio_devices(dev, &ours));
	ASSERT_FALSE(ours);
	ASSERT_EQ(nodes, uio_nodes());
	/* The device still carries records. */
	ASSERT_TRUE(joined());
	ASSERT_EQ(0, loopback_works(7606));

	/* The control: once af_ivshmem lets go, uio_pci_generic takes it at
	 * the next probe. So the refusals above were the claim's.
	 */
	ASSERT_EQ(0, drv_write(DRIVER, "unbind", slot));
	ASSERT_EQ(0, ivshm_write_file("/sys/bus/pci/drivers_probe", slot));
	ASSERT_TRUE(wait_driver(UIO, 5000)) {
		TH_LOG("driver after unbind and probe: '%s'", pci_driver());
	}
	ASSERT_EQ(before + 1, uio_devices(dev, &ours));
	ASSERT_TRUE(ours);

	/* Clean up: give the device back, and check it works. */
	ASSERT_EQ(0, drv_write(UIO, "unbind", slot));
	ASSERT_EQ(0, dev_write("driver_override", "\n"));
	self->override = false;
	ASSERT_EQ(0, drv_write(UIO, "remove_id", PCI_ID));
	self->new_id = false;
	ASSERT_EQ(0, rebind());
	ASSERT_STREQ(DRIVER, pci_driver());
	ASSERT_EQ(before, uio_devices(dev, &ours));
	ASSERT_FALSE(ours);
	ASSERT_EQ(0, loopback_works(7607));
}

int main(int argc, char **argv)
{
	af = ivshm_family();
	if (af < 0) {
		fprintf(stderr, "perm_test: af_ivshmem is not loaded\n");
		return 1;
	}
	/* module_test reloaded the module just before: let it join. */
	if (!wait_joined(JOIN_MS)) {
		fprintf(stderr, "perm_test: %s has not joined its region\n", DEV);
		return 1;
	}
	return test_harness_run(argc, argv);
}
