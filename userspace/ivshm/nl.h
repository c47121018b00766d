/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Generic netlink plumbing for ivshm: one libmnl socket, the "ivshmem"
 * family and its "events" group resolved through nlctrl, requests that
 * wait for their ack or the end of their dump, and validated parsing of
 * the attributes the kernel sends.
 */
#ifndef IVSHM_NL_H
#define IVSHM_NL_H

#include <stdbool.h>
#include <stdint.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>

/*
 * Large enough for any message the kernel sends: it never builds a dump
 * message larger than 32 KiB, nor a notification larger than a page.
 */
#define NL_RXBUF_SIZE	65536
/* A request is one header and at most a few dozen small attributes. */
#define NL_TXBUF_SIZE	4096

struct ivshm_nl {
	struct mnl_socket *sock;
	char *rxbuf;
	char txbuf[NL_TXBUF_SIZE];
	unsigned int portid;
	unsigned int seq;
	uint16_t family;
	uint32_t version;	/* of the kernel's family */
	uint32_t events_group;	/* 0 if the family has no "events" group */
	bool warned_intr;
};

/*
 * Open the socket and resolve the family. Returns 0, -ENOENT if the
 * kernel has no "ivshmem" family, or another negative errno.
 */
int nl_open(struct ivshm_nl *nl);
void nl_close(struct ivshm_nl *nl);

/* Start a request for @cmd of the family in nl->txbuf. */
struct nlmsghdr *nl_request(struct ivshm_nl *nl, uint8_t cmd, uint16_t flags);

/*
 * Send @req and pass each reply message to @cb until the ack or the end
 * of the dump. Returns 0 or the negative errno the kernel answered, after
 * printing its extended ack message, if any, as "Error: ...".
 */
int nl_transact(struct ivshm_nl *nl, struct nlmsghdr *req, mnl_cb_t cb,
		void *data);

/* Join the family's "events" group. */
int nl_join_events(struct ivshm_nl *nl);
int nl_fd(const struct ivshm_nl *nl);
/*
 * Read what is waiting on the socket and pass each event to @cb.
 * Returns 0 or a negative errno; -ENOBUFS means events were lost.
 */
int nl_recv_events(struct ivshm_nl *nl, mnl_cb_t cb, void *data);

/*
 * Validated attribute parsing. @types[i] is the type attribute i must
 * have (MNL_TYPE_UNSPEC for ones this tool does not know, which are
 * skipped, as are those of the wrong type or length: a malformed value is
 * left out of the output rather than misread). @tb has @max + 1 entries.
 */
struct nl_policy {
	const enum mnl_attr_data_type *types;
	unsigned int max;
	const char *what;	/* names the attribute set in warnings */
	uint64_t warned[2];	/* types already reported as malformed */
};

/* The generic netlink header of @nlh, or NULL if it has none. */
const struct genlmsghdr *nl_genl_hdr(const struct nlmsghdr *nlh);
/* Parse the attributes of a generic netlink message; false if none. */
bool nl_parse_msg(const struct nlmsghdr *nlh, struct nl_policy *pol,
		  const struct nlattr **tb);
void nl_parse_nested(const struct nlattr *nest, struct nl_policy *pol,
		     const struct nlattr **tb);

#endif /* IVSHM_NL_H */
