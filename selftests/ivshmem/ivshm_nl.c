// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/ivshmem_netlink.h>
#include <linux/netlink.h>

#include "ivshm_nl.h"
#include "ivshm_test.h"

#define TNL_ALIGN(n)	(((n) + 3) & ~(size_t)3)

static struct nlmsghdr *tnl_hdr(struct tnl_msg *m)
{
	return (struct nlmsghdr *)m->buf;
}

void tnl_msg_init(struct tnl_msg *m, uint16_t type, uint16_t flags,
		  uint8_t cmd, uint8_t version)
{
	struct genlmsghdr *g;

	memset(m->buf, 0, NLMSG_HDRLEN + GENL_HDRLEN);
	tnl_hdr(m)->nlmsg_type = type;
	tnl_hdr(m)->nlmsg_flags = flags;
	g = (struct genlmsghdr *)(m->buf + NLMSG_HDRLEN);
	g->cmd = cmd;
	g->version = version;
	m->len = NLMSG_HDRLEN + GENL_HDRLEN;
}

void tnl_put(struct tnl_msg *m, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)(m->buf + m->len);
	size_t total = TNL_ALIGN(NLA_HDRLEN + len);

	if (m->len + total > sizeof(m->buf))
		abort();
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy(m->buf + m->len + NLA_HDRLEN, data, len);
	memset(m->buf + m->len + NLA_HDRLEN + len, 0,
	       total - NLA_HDRLEN - len);
	m->len += total;
}

void tnl_put_u32(struct tnl_msg *m, uint16_t type, uint32_t v)
{
	tnl_put(m, type, &v, sizeof(v));
}

void tnl_put_str(struct tnl_msg *m, uint16_t type, const char *s)
{
	tnl_put(m, type, s, strlen(s) + 1);
}

size_t tnl_nest_start(struct tnl_msg *m, uint16_t type)
{
	size_t start = m->len;

	tnl_put(m, type | NLA_F_NESTED, NULL, 0);
	return start;
}

void tnl_nest_end(struct tnl_msg *m, size_t start)
{
	((struct nlattr *)(m->buf + start))->nla_len =
		(uint16_t)(m->len - start);
}

/* The extack message of an error or done message, if it has one. */
static void tnl_extack(const struct nlmsghdr *h, size_t skip, char *out,
		       size_t len)
{
	size_t off = NLMSG_HDRLEN + skip;

	out[0] = '\0';
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	while (off + NLA_HDRLEN <= h->nlmsg_len) {
		const struct nlattr *a = (const void *)((const char *)h + off);

		if (a->nla_len < NLA_HDRLEN || off + a->nla_len > h->nlmsg_len)
			return;
		if ((a->nla_type & NLA_TYPE_MASK) == NLMSGERR_ATTR_MSG &&
		    a->nla_len > NLA_HDRLEN) {
			size_t n = a->nla_len - NLA_HDRLEN;

			if (n >= len)
				n = len - 1;
			memcpy(out, (const char *)a + NLA_HDRLEN, n);
			out[n] = '\0';
			return;
		}
		off += TNL_ALIGN(a->nla_len);
	}
}

int tnl_request(struct tnl *t, struct tnl_msg *m, struct tnl_reply *r)
{
	static union {
		char buf[65536];
		struct nlmsghdr align;
	} rx;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	uint32_t seq = ++t->seq;

	memset(r, 0, sizeof(*r));
	tnl_hdr(m)->nlmsg_len = (uint32_t)m->len;
	tnl_hdr(m)->nlmsg_seq = seq;
	if (sendto(t->fd, m->buf, m->len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(t->fd, rx.buf, sizeof(rx.buf), 0);
		struct nlmsghdr *h;

		if (n < 0)
			return -errno;
		for (h = &rx.align; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				size_t skip = sizeof(*e);

				/* Without NETLINK_CAP_ACK the request follows. */
				if (!(h->nlmsg_flags & NLM_F_CAPPED))
					skip += e->msg.nlmsg_len - NLMSG_HDRLEN;
				r->err = e->error;
				tnl_extack(h, skip, r->msg, sizeof(r->msg));
				return 0;
			}
			if (h->nlmsg_type == NLMSG_DONE) {
				const int *e = NLMSG_DATA(h);

				r->err = h->nlmsg_len >= NLMSG_LENGTH(sizeof(int)) ?
					 *e : 0;
				tnl_extack(h, sizeof(int), r->msg,
					   sizeof(r->msg));
				return 0;
			}
			r->data++;
		}
	}
}

/* Resolve "ivshmem" and its "events" group through nlctrl. */
static int tnl_resolve(struct tnl *t)
{
	static union {
		char buf[8192];
		struct nlmsghdr align;
	} rx;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	struct tnl_msg m;
	struct nlmsghdr *h;
	struct nlattr *a;
	ssize_t n;
	size_t off;

	tnl_msg_init(&m, GENL_ID_CTRL, NLM_F_REQUEST, CTRL_CMD_GETFAMILY, 1);
	tnl_put_str(&m, CTRL_ATTR_FAMILY_NAME, IVSHMEM_GENL_NAME);
	tnl_hdr(&m)->nlmsg_len = (uint32_t)m.len;
	tnl_hdr(&m)->nlmsg_seq = ++t->seq;
	if (sendto(t->fd, m.buf, m.len, 0, (struct sockaddr *)&kernel,
		   sizeof(kernel)) < 0)
		return -errno;
	n = recv(t->fd, rx.buf, sizeof(rx.buf), 0);
	if (n < 0)
		return -errno;
	h = &rx.align;
	if (!NLMSG_OK(h, (size_t)n))
		return -EPROTO;
	if (h->nlmsg_type == NLMSG_ERROR)
		return ((struct nlmsgerr *)NLMSG_DATA(h))->error ?: -EPROTO;
	for (off = NLMSG_HDRLEN + GENL_HDRLEN; off + NLA_HDRLEN <= h->nlmsg_len;
	     off += TNL_ALIGN(a->nla_len)) {
		a = (struct nlattr *)((char *)h + off);
		if (a->nla_len < NLA_HDRLEN)
			return -EPROTO;
		if (a->nla_type == CTRL_ATTR_FAMILY_ID)
			memcpy(&t->family, (char *)a + NLA_HDRLEN, 2);
		if ((a->nla_type & NLA_TYPE_MASK) == CTRL_ATTR_MCAST_GROUPS) {
			/* One nest per group: name and id. */
			size_t g = NLA_HDRLEN;

			while (g + NLA_HDRLEN <= a->nla_len) {
				struct nlattr *grp = (void *)((char *)a + g);
				size_t k = NLA_HDRLEN;
				uint32_t id = 0;
				int named = 0;

				if (grp->nla_len < NLA_HDRLEN)
					break;
				while (k + NLA_HDRLEN <= grp->nla_len) {
					struct nlattr *x = (void *)((char *)grp + k);

					if (x->nla_len < NLA_HDRLEN)
						break;
					if (x->nla_type == CTRL_ATTR_MCAST_GRP_ID)
						memcpy(&id, (char *)x + NLA_HDRLEN, 4);
					if (x->nla_type == CTRL_ATTR_MCAST_GRP_NAME &&
					    !strcmp((char *)x + NLA_HDRLEN,
						    IVSHMEM_GENL_MCGRP_EVENTS))
						named = 1;
					k += TNL_ALIGN(x->nla_len);
				}
				if (named)
					t->events = id;
				g += TNL_ALIGN(grp->nla_len);
			}
		}
	}
	return t->family ? 0 : -EPROTO;
}

int tnl_open(struct tnl *t)
{
	struct sockaddr_nl local = { .nl_family = AF_NETLINK };
	int one = 1, ret;

	memset(t, 0, sizeof(*t));
	t->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (t->fd < 0)
		return -errno;
	if (bind(t->fd, (struct sockaddr *)&local, sizeof(local)) ||
	    setsockopt(t->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one,
		       sizeof(one)) ||
	    setsockopt(t->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one,
		       sizeof(one))) {
		ret = -errno;
		goto err;
	}
	ret = tnl_resolve(t);
	if (ret)
		goto err;
	return 0;
err:
	close(t->fd);
	t->fd = -1;
	return ret;
}

void tnl_close(struct tnl *t)
{
	if (t->fd >= 0)
		close(t->fd);
	t->fd = -1;
}

static int tnl_set_one(struct tnl *t, const char *dev, int attr, uint32_t v)
{
	struct tnl_reply r;
	struct tnl_msg m;
	size_t nest;
	uint8_t b = (uint8_t)v;
	int ret;

	tnl_msg_init(&m, t->family, NLM_F_REQUEST | NLM_F_ACK,
		     IVSHMEM_CMD_DEV_SET, IVSHMEM_GENL_VERSION);
	tnl_put_str(&m, IVSHMEM_A_DEV_NAME, dev);
	nest = tnl_nest_start(&m, IVSHMEM_A_DEV_PARAMS);
	if (attr == IVSHMEM_PARAM_REBALANCE)
		tnl_put(&m, (uint16_t)attr, &b, 1);
	else
		tnl_put_u32(&m, (uint16_t)attr, v);
	tnl_nest_end(&m, nest);
	ret = tnl_request(t, &m, &r);
	return ret ? ret : r.err;
}

int ivshm_nl_set_param(const char *dev, int attr, uint32_t v)
{
	struct dirent *e;
	struct tnl t;
	DIR *d;
	int ret;

	ret = tnl_open(&t);
	if (ret)
		return ret;
	if (dev) {
		ret = tnl_set_one(&t, dev, attr, v);
		tnl_close(&t);
		return ret;
	}
	d = opendir(IVSHM_DEBUGFS);
	if (!d) {
		ret = -errno;
		tnl_close(&t);
		return ret;
	}
	while ((e = readdir(d)) && !ret)
		if (!strncmp(e->d_name, "ivshm", 5))
			ret = tnl_set_one(&t, e->d_name, attr, v);
	closedir(d);
	tnl_close(&t);
	return ret;
}
