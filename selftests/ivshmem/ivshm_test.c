// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ivshm_test.h"

const char *ivshm_cmdline(const char *key)
{
	static char cmdline[4096], val[256];
	char pat[64], *p;
	size_t n;
	FILE *f;

	f = fopen("/proc/cmdline", "r");
	if (!f)
		return NULL;
	n = fread(cmdline, 1, sizeof(cmdline) - 1, f);
	fclose(f);
	cmdline[n] = '\0';

	snprintf(pat, sizeof(pat), "ivshm.%s=", key);
	for (p = strstr(cmdline, pat); p; p = strstr(p + 1, pat)) {
		if (p != cmdline && p[-1] != ' ')
			continue;
		p += strlen(pat);
		n = strcspn(p, " \n");
		if (n >= sizeof(val))
			return NULL;
		memcpy(val, p, n);
		val[n] = '\0';
		return val;
	}
	return NULL;
}

unsigned long long ivshm_cmdline_ull(const char *key, unsigned long long def)
{
	const char *v = ivshm_cmdline(key);

	return v ? strtoull(v, NULL, 0) : def;
}

int ivshm_insmod(const char *name, const char *params)
{
	char path[256];
	int fd, ret = 0;

	snprintf(path, sizeof(path), IVSHM_MODDIR "/%s.ko", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, params ? params : "", 0))
		ret = -errno;
	close(fd);
	return ret;
}

int ivshm_rmmod(const char *name)
{
	if (syscall(SYS_delete_module, name, O_NONBLOCK))
		return -errno;
	return 0;
}

bool ivshm_module_loaded(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "/sys/module/%s/initstate", name);
	return access(path, F_OK) == 0;
}

long ivshm_module_refs(const char *name)
{
	char path[256], buf[32] = "";
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/%s/refcnt", name);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	return atol(buf);
}

int ivshm_family(void)
{
	FILE *f = fopen("/sys/module/af_ivshmem/parameters/family", "r");
	int fam = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &fam) != 1)
		fam = -1;
	fclose(f);
	return fam;
}

int ivshm_dev_attr(const char *dev, const char *file, const char *key,
		   char *val, size_t len)
{
	char path[256], line[256];
	size_t klen = strlen(key);
	int ret = -ENOENT;
	FILE *f;

	snprintf(path, sizeof(path), IVSHM_DEBUGFS "/%s/%s", dev, file);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, key, klen) || line[klen] != ':')
			continue;
		snprintf(val, len, "%s", line + klen + 2);
		val[strcspn(val, "\n")] = '\0';
		ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

long long ivshm_dev_attr_ll(const char *dev, const char *file,
			    const char *key)
{
	char val[64], *end;
	long long v;

	if (ivshm_dev_attr(dev, file, key, val, sizeof(val)))
		return -1;
	errno = 0;
	v = strtoll(val, &end, 0);
	if (errno || end == val || *end)
		return -1;
	return v;
}

long long ivshm_doorbells(const char *dev, unsigned int vector)
{
	char key[32];

	snprintf(key, sizeof(key), "vector%u", vector);
	return ivshm_dev_attr_ll(dev, "doorbells", key);
}

int ivshm_write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	ssize_t n;
	int fd;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	if (n < 0) {
		n = -errno;
		close(fd);
		return n;
	}
	close(fd);
	return (size_t)n == len ? 0 : -EIO;
}

long long ivshm_proc_interrupts(const char *name)
{
	long long total = -1;
	char line[1024];
	FILE *f;

	f = fopen("/proc/interrupts", "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *end = line + strcspn(line, "\n"), *p;
		size_t nlen = strlen(name);
		long long sum = 0;

		*end = '\0';
		if ((size_t)(end - line) < nlen ||
		    strcmp(end - nlen, name) || end[-nlen - 1] != ' ')
			continue;
		/* "IRQ:" then one count per CPU, then the chip description. */
		p = strchr(line, ':');
		if (!p)
			continue;
		p++;
		for (;;) {
			char *q;
			long long v = strtoll(p, &q, 10);

			if (q == p)
				break;
			sum += v;
			p = q;
		}
		total = total < 0 ? sum : total + sum;
	}
	fclose(f);
	return total;
}

const char *ivshm_pci_device(void)
{
	static char path[512];
	struct dirent *de;
	DIR *d;

	d = opendir("/sys/bus/pci/devices");
	if (!d)
		return NULL;
	while ((de = readdir(d))) {
		char file[512], buf[32];
		unsigned int vendor = 0, device = 0;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "/sys/bus/pci/devices/%s/vendor",
			 de->d_name);
		f = fopen(file, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f))
			vendor = strtoul(buf, NULL, 16);
		fclose(f);
		snprintf(file, sizeof(file), "/sys/bus/pci/devices/%s/device",
			 de->d_name);
		f = fopen(file, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f))
			device = strtoul(buf, NULL, 16);
		fclose(f);
		if (vendor == 0x1af4 && device == 0x1110) {
			snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s",
				 de->d_name);
			closedir(d);
			return path;
		}
	}
	closedir(d);
	return NULL;
}

void *ivshm_map_bar(int bar, size_t *len)
{
	const char *dev = ivshm_pci_device();
	char path[600];
	struct stat st;
	void *p;
	int fd;

	if (!dev) {
		errno = ENODEV;
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/resource%d", dev, bar);
	fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		close(fd);
		return NULL;
	}
	p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return NULL;
	*len = st.st_size;
	return p;
}

uint64_t ivshm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ivshm_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int ivshm_conn_ends(int fd, struct ivshm_conn_ends *e)
{
	struct sockaddr_ivshmem me, peer;
	socklen_t len = sizeof(me);

	if (getsockname(fd, (struct sockaddr *)&me, &len))
		return -1;
	len = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &len))
		return -1;
	e->vm = me.sivshm_vm;
	e->port = me.sivshm_port;
	e->peer_vm = peer.sivshm_vm;
	e->peer_port = peer.sivshm_port;
	return 0;
}

/* Devices a test may look at: dev_shm's virtual peers, or one PCI device. */
#define IVSHM_TEST_MAX_DEVS	8

int ivshm_conn_channels(const struct ivshm_conn_ends *e,
			void (*fn)(void *arg, unsigned int dev, bool ours,
				   const char *line),
			void *arg)
{
	char path[128], line[1024], dir[8];
	unsigned int d, ch, port, pvm, pport;
	int n = 0;
	bool ours;
	FILE *f;

	for (d = 0; d < IVSHM_TEST_MAX_DEVS; d++) {
		snprintf(path, sizeof(path), IVSHM_DEBUGFS "/ivshm%u/channels",
			 d);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "chan %u %7s port %u peer %u:%u", &ch,
				   dir, &port, &pvm, &pport) != 5)
				continue;
			ours = port == e->port && pvm == e->peer_vm &&
			       pport == e->peer_port;
			if (!ours && (port != e->peer_port || pvm != e->vm ||
				      pport != e->port))
				continue;
			fn(arg, d, ours, line);
			n++;
		}
		fclose(f);
	}
	return n;
}

static bool ivshm_ctrl_word(int fd, uint64_t *word)
{
	return pread(fd, word, sizeof(*word), IVSHM_REGION_CTRL_OFF) ==
	       sizeof(*word);
}

static bool ivshm_ctrl_set(int fd, uint64_t word)
{
	return pwrite(fd, &word, sizeof(word), IVSHM_REGION_CTRL_OFF) ==
	       sizeof(word);
}

bool ivshm_hold_ctrl_lock(int fd, unsigned int ms)
{
	long long inc2 = ivshm_dev_attr_ll("ivshm2", "info", "incarnation");
	long long inc3 = ivshm_dev_attr_ll("ivshm3", "info", "incarnation");
	/* Lock words are (incarnation << 32 | VM id + 1). */
	const uint64_t words[2] = { (uint64_t)inc2 << 32 | 3,
				    (uint64_t)inc3 << 32 | 4 };
	uint64_t end = ivshm_now_ms() + 5000, word = 1;
	unsigned int k = 0;

	/* Taken once free: a device may hold it for a moment. */
	while (ivshm_ctrl_word(fd, &word) && word && ivshm_now_ms() < end)
		ivshm_sleep_ms(1);
	if (word || !ivshm_ctrl_set(fd, words[0]))
		return false;
	end = ivshm_now_ms() + ms;
	while (ivshm_now_ms() < end) {
		ivshm_sleep_ms(50);
		/* Taken over (by the device it names), or freed. */
		if (!ivshm_ctrl_word(fd, &word) || word != words[k & 1])
			return false;
		if (!ivshm_ctrl_set(fd, words[++k & 1]))
			return false;
	}
	return ivshm_ctrl_set(fd, 0);
}

struct sockaddr_ivshmem ivshm_addr(int af, unsigned int vm, unsigned int port,
				   unsigned int dev)
{
	struct sockaddr_ivshmem a;

	memset(&a, 0, sizeof(a));
	a.sivshm_family = (unsigned short)af;
	a.sivshm_vm = vm;
	a.sivshm_port = port;
	a.sivshm_dev = dev;
	return a;
}

int ivshm_listen_on(int af, unsigned int port, unsigned int dev, int backlog)
{
	struct sockaddr_ivshmem a = ivshm_addr(af, IVSHMEM_VM_ANY, port, dev);
	int fd = socket(af, SOCK_SEQPACKET, 0);

	if (fd < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, backlog)) {
		close(fd);
		return -1;
	}
	return fd;
}

int ivshm_connect_to(int af, unsigned int vm, unsigned int port,
		     unsigned int dev)
{
	struct sockaddr_ivshmem a = ivshm_addr(af, vm, port, dev);
	int fd = socket(af, SOCK_SEQPACKET, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

unsigned int ivshm_local_port(int fd)
{
	struct sockaddr_ivshmem a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &len))
		return 0;
	return a.sivshm_port;
}
