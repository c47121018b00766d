// SPDX-License-Identifier: GPL-2.0
/*
 * Generic netlink plumbing (nl.h).
 *
 * The receive loop is our own rather than mnl_cb_run(): libmnl treats a
 * dump marked NLM_F_DUMP_INTR as a failure and drops the rest of it, and
 * it gives no access to the extended ack. We warn about an interrupted
 * dump instead, as iproute2 does, and print the kernel's message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/ivshmem_netlink.h>

#include "nl.h"

/* State of one request while its answers are read. */
struct nl_ctl {
	struct ivshm_nl *nl;
	mnl_cb_t cb;
	void *data;
	int err;
	bool done;
};

static const enum mnl_attr_data_type extack_types[NLMSGERR_ATTR_MAX + 1] = {
	[NLMSGERR_ATTR_MSG]		= MNL_TYPE_NUL_STRING,
	[NLMSGERR_ATTR_MISS_TYPE]	= MNL_TYPE_U32,
};

static struct nl_policy extack_policy = {
	.types = extack_types,
	.max = NLMSGERR_ATTR_MAX,
	.what = "extended ack",
};

static const enum mnl_attr_data_type ctrl_types[CTRL_ATTR_MAX + 1] = {
	[CTRL_ATTR_FAMILY_ID]		= MNL_TYPE_U16,
	[CTRL_ATTR_FAMILY_NAME]		= MNL_TYPE_NUL_STRING,
	[CTRL_ATTR_VERSION]		= MNL_TYPE_U32,
	[CTRL_ATTR_MCAST_GROUPS]	= MNL_TYPE_NESTED,
};

static struct nl_policy ctrl_policy = {
	.types = ctrl_types,
	.max = CTRL_ATTR_MAX,
	.what = "nlctrl",
};

static const enum mnl_attr_data_type grp_types[CTRL_ATTR_MCAST_GRP_MAX + 1] = {
	[CTRL_ATTR_MCAST_GRP_NAME]	= MNL_TYPE_NUL_STRING,
	[CTRL_ATTR_MCAST_GRP_ID]	= MNL_TYPE_U32,
};

static struct nl_policy grp_policy = {
	.types = grp_types,
	.max = CTRL_ATTR_MCAST_GRP_MAX,
	.what = "nlctrl multicast group",
};

static void nl_parse_attrs(const void *buf, size_t len,
			   struct nl_policy *pol, const struct nlattr **tb)
{
	const struct nlattr *a = buf;
	const char *end = (const char *)buf + len;
	uint16_t type;

	memset(tb, 0, (pol->max + 1) * sizeof(*tb));
	for (; mnl_attr_ok(a, end - (const char *)a); a = mnl_attr_next(a)) {
		type = mnl_attr_get_type(a);
		/* Newer kernels may add attributes; they are not ours. */
		if (type > pol->max || pol->types[type] == MNL_TYPE_UNSPEC)
			continue;
		if (mnl_attr_validate(a, pol->types[type]) < 0) {
			if (type < 128 &&
			    !(pol->warned[type / 64] & (1ULL << (type % 64)))) {
				pol->warned[type / 64] |= 1ULL << (type % 64);
				fprintf(stderr,
					"ivshm: warning: ignoring malformed %s attribute %u (%u bytes)\n",
					pol->what, type,
					mnl_attr_get_payload_len(a));
			}
			continue;
		}
		tb[type] = a;
	}
}

const struct genlmsghdr *nl_genl_hdr(const struct nlmsghdr *nlh)
{
	if (mnl_nlmsg_get_payload_len(nlh) < GENL_HDRLEN)
		return NULL;
	return mnl_nlmsg_get_payload(nlh);
}

bool nl_parse_msg(const struct nlmsghdr *nlh, struct nl_policy *pol,
		  const struct nlattr **tb)
{
	if (!nl_genl_hdr(nlh)) {
		memset(tb, 0, (pol->max + 1) * sizeof(*tb));
		return false;
	}
	nl_parse_attrs(mnl_nlmsg_get_payload_offset(nlh, GENL_HDRLEN),
		       mnl_nlmsg_get_payload_len(nlh) - GENL_HDRLEN, pol, tb);
	return true;
}

void nl_parse_nested(const struct nlattr *nest, struct nl_policy *pol,
		     const struct nlattr **tb)
{
	nl_parse_attrs(mnl_attr_get_payload(nest),
		       mnl_attr_get_payload_len(nest), pol, tb);
}

/*
 * The extended ack's attributes start @off bytes into the payload of an
 * NLMSG_ERROR or NLMSG_DONE message. A message on success is a warning.
 */
static void nl_extack(const struct nlmsghdr *nlh, size_t off, int err)
{
	const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];
	size_t plen = mnl_nlmsg_get_payload_len(nlh);

	if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || off >= plen)
		return;
	nl_parse_attrs((const char *)mnl_nlmsg_get_payload(nlh) + off,
		       plen - off, &extack_policy, tb);
	if (tb[NLMSGERR_ATTR_MSG])
		fprintf(stderr, "%s: %s\n", err ? "Error" : "Warning",
			mnl_attr_get_str(tb[NLMSGERR_ATTR_MSG]));
	else if (err && tb[NLMSGERR_ATTR_MISS_TYPE])
		fprintf(stderr, "Error: missing attribute %u\n",
			mnl_attr_get_u32(tb[NLMSGERR_ATTR_MISS_TYPE]));
}

static void nl_error(struct nl_ctl *ctl, const struct nlmsghdr *nlh)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off = sizeof(*e);

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*e)) {
		ctl->err = -EBADMSG;
		return;
	}
	ctl->err = e->error > 0 ? -e->error : e->error;
	/* Without NETLINK_CAP_ACK the request follows, then the TLVs. */
	if (!(nlh->nlmsg_flags & NLM_F_CAPPED) &&
	    e->msg.nlmsg_len >= sizeof(struct nlmsghdr))
		off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
	nl_extack(nlh, MNL_ALIGN(off), ctl->err);
}

/* The end of a dump carries the dump's error, and its own extack. */
static void nl_done(struct nl_ctl *ctl, const struct nlmsghdr *nlh)
{
	int err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(err))
		return;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	ctl->err = err > 0 ? -err : err;
	nl_extack(nlh, MNL_ALIGN(sizeof(err)), ctl->err);
}

/*
 * Like libmnl, accept 0 as sequence number and port id: a kernel side
 * that leaves them out of its replies must not make us wait for ever.
 */
static bool nl_ours(const struct nl_ctl *ctl, const struct nlmsghdr *nlh,
		    unsigned int seq)
{
	return (!nlh->nlmsg_seq || nlh->nlmsg_seq == seq) &&
	       (!nlh->nlmsg_pid || nlh->nlmsg_pid == ctl->nl->portid);
}

static void nl_run(struct nl_ctl *ctl, unsigned int seq, int len)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)ctl->nl->rxbuf;
	int ret;

	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		if (!nl_ours(ctl, nlh, seq))
			continue;
		if ((nlh->nlmsg_flags & NLM_F_DUMP_INTR) &&
		    !ctl->nl->warned_intr) {
			ctl->nl->warned_intr = true;
			fprintf(stderr,
				"ivshm: warning: the dump was interrupted by a change and may be inconsistent\n");
		}
		switch (nlh->nlmsg_type) {
		case NLMSG_ERROR:
			nl_error(ctl, nlh);
			ctl->done = true;
			return;
		case NLMSG_DONE:
			nl_done(ctl, nlh);
			ctl->done = true;
			return;
		case NLMSG_OVERRUN:
			ctl->err = -EOVERFLOW;
			ctl->done = true;
			return;
		default:
			if (nlh->nlmsg_type < NLMSG_MIN_TYPE || !ctl->cb)
				continue;
			ret = ctl->cb(nlh, ctl->data);
			if (ret <= MNL_CB_STOP) {
				if (ret == MNL_CB_ERROR)
					ctl->err = -EPROTO;
				ctl->done = true;
				return;
			}
		}
	}
}

static struct nlmsghdr *nl_put(struct ivshm_nl *nl, uint16_t type,
			       uint8_t cmd, uint8_t version, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(nl->txbuf);
	struct genlmsghdr *genl;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++nl->seq;
	genl = mnl_nlmsg_put_extra_header(nlh, sizeof(*genl));
	genl->cmd = cmd;
	genl->version = version;
	return nlh;
}

struct nlmsghdr *nl_request(struct ivshm_nl *nl, uint8_t cmd, uint16_t flags)
{
	return nl_put(nl, nl->family, cmd, IVSHMEM_GENL_VERSION, flags);
}

int nl_transact(struct ivshm_nl *nl, struct nlmsghdr *req, mnl_cb_t cb,
		void *data)
{
	struct nl_ctl ctl = { .nl = nl, .cb = cb, .data = data };
	ssize_t n;

	/* A request that is not a dump ends with its ack, so ask for one. */
	if ((req->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
		req->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0)
		return -errno;
	while (!ctl.done) {
		n = mnl_socket_recvfrom(nl->sock, nl->rxbuf, NL_RXBUF_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		nl_run(&ctl, req->nlmsg_seq, n);
	}
	return ctl.err;
}

static void nl_group(struct ivshm_nl *nl, const struct nlattr *grp)
{
	const struct nlattr *tb[CTRL_ATTR_MCAST_GRP_MAX + 1];

	nl_parse_nested(grp, &grp_policy, tb);
	if (tb[CTRL_ATTR_MCAST_GRP_NAME] && tb[CTRL_ATTR_MCAST_GRP_ID] &&
	    !strcmp(mnl_attr_get_str(tb[CTRL_ATTR_MCAST_GRP_NAME]),
		    IVSHMEM_GENL_MCGRP_EVENTS))
		nl->events_group = mnl_attr_get_u32(tb[CTRL_ATTR_MCAST_GRP_ID]);
}

static int nl_family_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[CTRL_ATTR_MAX + 1], *grp;
	const struct nlattr *groups;
	struct ivshm_nl *nl = data;

	nl_parse_msg(nlh, &ctrl_policy, tb);
	if (!tb[CTRL_ATTR_FAMILY_ID])
		return MNL_CB_OK;
	nl->family = mnl_attr_get_u16(tb[CTRL_ATTR_FAMILY_ID]);
	if (tb[CTRL_ATTR_VERSION])
		nl->version = mnl_attr_get_u32(tb[CTRL_ATTR_VERSION]);
	groups = tb[CTRL_ATTR_MCAST_GROUPS];
	if (!groups)
		return MNL_CB_OK;
	/* An array: nests numbered 1.., each one group. */
	mnl_attr_for_each_nested(grp, groups) {
		if (mnl_attr_validate(grp, MNL_TYPE_NESTED) == 0)
			nl_group(nl, grp);
	}
	return MNL_CB_OK;
}

static int nl_resolve(struct ivshm_nl *nl)
{
	struct nlmsghdr *nlh;
	int err;

	nlh = nl_put(nl, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, 0);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, IVSHMEM_GENL_NAME);
	err = nl_transact(nl, nlh, nl_family_cb, nl);
	if (err)
		return err;
	/* Family ids are above nlctrl's; anything else is not an answer. */
	if (nl->family <= GENL_ID_CTRL)
		return -EPROTO;
	return 0;
}

int nl_open(struct ivshm_nl *nl)
{
	int one = 1, err;

	memset(nl, 0, sizeof(*nl));
	nl->rxbuf = malloc(NL_RXBUF_SIZE);
	if (!nl->rxbuf)
		return -ENOMEM;
	nl->sock = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!nl->sock) {
		err = -errno;
		goto fail;
	}
	/*
	 * The extended ack carries the kernel's reason for a refusal; the
	 * capped ack spares it echoing our request. A kernel without them
	 * still answers, only more tersely, so failures are ignored.
	 */
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one,
				    sizeof(one));
	(void)mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one,
				    sizeof(one));
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = time(NULL);
	err = nl_resolve(nl);
	if (err)
		goto fail;
	return 0;
fail:
	nl_close(nl);
	return err;
}

void nl_close(struct ivshm_nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
	free(nl->rxbuf);
	nl->rxbuf = NULL;
}

int nl_join_events(struct ivshm_nl *nl)
{
	int grp = nl->events_group, size = 1 << 20, fd;

	if (!grp)
		return -ENOENT;
	if (mnl_socket_setsockopt(nl->sock, NETLINK_ADD_MEMBERSHIP, &grp,
				  sizeof(grp)) < 0)
		return -errno;
	fd = mnl_socket_get_fd(nl->sock);
	/*
	 * Room for a burst (a peer lost with all its channels) so that an
	 * overrun is rare; the kernel caps it at rmem_max without failing.
	 */
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	/* The caller polls; a spurious wakeup must not block in recv. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int nl_fd(const struct ivshm_nl *nl)
{
	return mnl_socket_get_fd(nl->sock);
}

int nl_recv_events(struct ivshm_nl *nl, mnl_cb_t cb, void *data)
{
	const struct nlmsghdr *nlh = (const struct nlmsghdr *)nl->rxbuf;
	ssize_t n;
	int len;

	n = mnl_socket_recvfrom(nl->sock, nl->rxbuf, NL_RXBUF_SIZE);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	len = n;
	for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
		if (nlh->nlmsg_type == nl->family)
			cb(nlh, data);
	}
	return 0;
}
