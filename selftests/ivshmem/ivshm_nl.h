/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small generic netlink client for the in-guest tests: raw messages to
 * the "ivshmem" family, so that tests can set parameters without the tool,
 * send malformed requests on purpose, and read the kernel's extended ack.
 * The guests' tests are static binaries, so this does not use libmnl.
 */
#ifndef IVSHM_NL_H
#define IVSHM_NL_H

#include <stddef.h>
#include <stdint.h>

#define TNL_BUF		8192

struct tnl {
	int fd;
	uint16_t family;		/* 0 until resolved */
	uint32_t events;		/* multicast group id, 0 if none */
	uint32_t seq;
};

/* A request being built: netlink header, genl header, attributes. */
struct tnl_msg {
	union {
		unsigned char buf[TNL_BUF];
		uint32_t align;
	};
	size_t len;
};

/* The answer to a request. */
struct tnl_reply {
	int err;			/* 0 or -errno */
	char msg[256];			/* extack message, "" if none */
	unsigned int data;		/* data messages that came before it */
};

/*
 * Open a socket and resolve the family (which loads af_ivshmem through its
 * alias when it is not loaded). 0 or -errno (-ENOENT: no such family).
 */
int tnl_open(struct tnl *t);
void tnl_close(struct tnl *t);

void tnl_msg_init(struct tnl_msg *m, uint16_t type, uint16_t flags,
		  uint8_t cmd, uint8_t version);
void tnl_put(struct tnl_msg *m, uint16_t type, const void *data, size_t len);
void tnl_put_u32(struct tnl_msg *m, uint16_t type, uint32_t v);
void tnl_put_str(struct tnl_msg *m, uint16_t type, const char *s);
/* Nests: start returns the offset that end fills in. */
size_t tnl_nest_start(struct tnl_msg *m, uint16_t type);
void tnl_nest_end(struct tnl_msg *m, size_t start);

/*
 * Send @m (its sequence number is set here) and read until its ack, error
 * or end of dump. Returns 0, or -errno of the socket itself.
 */
int tnl_request(struct tnl *t, struct tnl_msg *m, struct tnl_reply *r);

/*
 * Set one parameter (IVSHMEM_PARAM_*) of device @dev ("ivshm0"), or of
 * every device when @dev is NULL. 0 or the first -errno.
 */
int ivshm_nl_set_param(const char *dev, int attr, uint32_t v);

#endif /* IVSHM_NL_H */
