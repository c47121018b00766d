// SPDX-License-Identifier: GPL-2.0
/*
 * ivshm monitor [ dev DEV ]
 *
 * Join the family's "events" group and print each event as it comes,
 * one line each (one compact JSON object with -j), until SIGINT or
 * SIGTERM. The signals are taken through a signalfd polled with the
 * socket, so that one arriving at any moment ends the loop cleanly, with
 * everything freed, rather than killing the process or being missed
 * between a check and a blocking read.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "ivshm.h"

static const char *const events[] = {
	[IVSHMEM_CMD_PEER_UP]		= "peer_up",
	[IVSHMEM_CMD_PEER_DOWN]		= "peer_down",
	[IVSHMEM_CMD_CHAN_NEW]		= "chan_new",
	[IVSHMEM_CMD_CHAN_RESIZED]	= "chan_resized",
	[IVSHMEM_CMD_CHAN_DEL]		= "chan_del",
	[IVSHMEM_CMD_PROTO_ERROR]	= "proto_error",
	[IVSHMEM_CMD_DEV_CHANGED]	= "dev_changed",
};

struct monitor {
	struct ivshm_ctx *ctx;
	struct ivshm_filter filter;
	int write_errno;	/* stdout failed with it */
};

void monitor_usage(FILE *f)
{
	fputs("Usage: ivshm monitor [ dev DEV ]\n"
	      "       ivshm monitor help\n", f);
}

/* " label N", or " label ?" when the event lacks the attribute. */
static void u32_part(const char *label, const struct nlattr *a)
{
	if (a)
		printf(" %s %" PRIu32, label, mnl_attr_get_u32(a));
	else
		printf(" %s ?", label);
}

static void event_json(uint8_t cmd, const char *dev, const struct nlattr **tb)
{
	struct json j;
	const char *name = IVSHM_ENUM(events, cmd);

	/* One object a line whatever -p says: readers split on lines. */
	json_init(&j, stdout, false);
	json_obj_open(&j, NULL);
	if (name)
		json_str(&j, "event", name);
	else
		json_u64(&j, "event", cmd);
	if (dev)
		json_str(&j, "dev", dev);
	ivshm_json_uint(&j, "vm", tb[IVSHMEM_A_PEER_VM]);
	ivshm_json_uint(&j, "incarnation", tb[IVSHMEM_A_PEER_INCARNATION]);
	ivshm_json_enum(&j, "state", ivshm_peer_states,
			ARRAY_SIZE(ivshm_peer_states),
			tb[IVSHMEM_A_PEER_STATE]);
	ivshm_json_uint(&j, "index", tb[IVSHMEM_A_CHAN_INDEX]);
	ivshm_json_uint(&j, "sender_vm", tb[IVSHMEM_A_CHAN_SENDER_VM]);
	ivshm_json_uint(&j, "receiver_vm", tb[IVSHMEM_A_CHAN_RECEIVER_VM]);
	ivshm_json_uint(&j, "size", tb[IVSHMEM_A_CHAN_SIZE]);
	ivshm_json_uint(&j, "local_port", tb[IVSHMEM_A_CHAN_LOCAL_PORT]);
	ivshm_json_uint(&j, "peer_port", tb[IVSHMEM_A_CHAN_PEER_PORT]);
	ivshm_json_str(&j, "message", tb[IVSHMEM_A_ERROR_MSG]);
	if (tb[IVSHMEM_A_DEV_PARAMS])
		dev_params_json(&j, "params", tb[IVSHMEM_A_DEV_PARAMS]);
	json_obj_close(&j);
}

/* "(vm 0 -> 1, port 49152 -> 5000)", with what of it there is. */
static void chan_detail(const struct nlattr **tb, bool ports)
{
	const struct nlattr *lp = tb[IVSHMEM_A_CHAN_LOCAL_PORT];
	const struct nlattr *pp = tb[IVSHMEM_A_CHAN_PEER_PORT];
	const char *sep = " (";

	if (tb[IVSHMEM_A_CHAN_SENDER_VM] || tb[IVSHMEM_A_CHAN_RECEIVER_VM]) {
		fputs(sep, stdout);
		sep = ", ";
		if (tb[IVSHMEM_A_CHAN_SENDER_VM])
			printf("vm %" PRIu32, mnl_attr_get_u32(tb[IVSHMEM_A_CHAN_SENDER_VM]));
		else
			fputs("vm ?", stdout);
		if (tb[IVSHMEM_A_CHAN_RECEIVER_VM])
			printf(" -> %" PRIu32, mnl_attr_get_u32(tb[IVSHMEM_A_CHAN_RECEIVER_VM]));
		else
			fputs(" -> ?", stdout);
	}
	/* Events are about channels this guest sends on: local is sender. */
	if (ports && (lp || pp)) {
		fputs(sep, stdout);
		sep = ", ";
		if (lp)
			printf("port %" PRIu32, mnl_attr_get_u32(lp));
		else
			fputs("port ?", stdout);
		if (pp)
			printf(" -> %" PRIu32, mnl_attr_get_u32(pp));
		else
			fputs(" -> ?", stdout);
	}
	if (sep[0] == ',')
		fputc(')', stdout);
}

static void event_plain(uint8_t cmd, const char *dev,
			const struct nlattr **tb)
{
	const struct nlattr *size = tb[IVSHMEM_A_CHAN_SIZE];
	const struct nlattr *state = tb[IVSHMEM_A_PEER_STATE];
	const struct nlattr *inc = tb[IVSHMEM_A_PEER_INCARNATION];
	const struct nlattr *index = tb[IVSHMEM_A_CHAN_INDEX];
	char safe[IVSHM_SAFE_BUF];
	struct ivshm_line l;
	const char *s;

	printf("%s:", dev ? ivshm_safe(safe, sizeof(safe), dev) : "?");
	switch (cmd) {
	case IVSHMEM_CMD_PEER_UP:
	case IVSHMEM_CMD_PEER_DOWN:
		u32_part("peer", tb[IVSHMEM_A_PEER_VM]);
		fputs(cmd == IVSHMEM_CMD_PEER_UP ? " up" : " down", stdout);
		if (!state && !inc)
			break;
		fputs(" (", stdout);
		if (state) {
			s = IVSHM_ENUM(ivshm_peer_states,
				       mnl_attr_get_u8(state));
			if (s)
				fputs(s, stdout);
			else
				printf("state %u", mnl_attr_get_u8(state));
		}
		if (inc)
			printf("%sincarnation %" PRIu32, state ? ", " : "",
			       mnl_attr_get_u32(inc));
		fputc(')', stdout);
		break;
	case IVSHMEM_CMD_CHAN_NEW:
	case IVSHMEM_CMD_CHAN_RESIZED:
	case IVSHMEM_CMD_CHAN_DEL:
		u32_part("chan", index);
		fputs(cmd == IVSHMEM_CMD_CHAN_NEW ? " new" :
		      cmd == IVSHMEM_CMD_CHAN_DEL ? " deleted" : " resized",
		      stdout);
		if (size)
			printf(" %" PRIu32, mnl_attr_get_u32(size));
		chan_detail(tb, cmd != IVSHMEM_CMD_CHAN_RESIZED);
		break;
	case IVSHMEM_CMD_PROTO_ERROR:
		fputs(" protocol error", stdout);
		if (index)
			printf(" on chan %" PRIu32, mnl_attr_get_u32(index));
		if (tb[IVSHMEM_A_ERROR_MSG])
			printf(": %s",
			       ivshm_safe(safe, sizeof(safe),
					  mnl_attr_get_str(tb[IVSHMEM_A_ERROR_MSG])));
		break;
	case IVSHMEM_CMD_DEV_CHANGED:
		fputs(" parameters changed", stdout);
		if (!tb[IVSHMEM_A_DEV_PARAMS])
			break;
		fputc(':', stdout);
		/* The words follow on this line, after one space each. */
		ivshm_line_begin(&l, stdout, " ");
		dev_params_words(&l, tb[IVSHMEM_A_DEV_PARAMS]);
		break;
	default:
		printf(" event %u", cmd);
		break;
	}
	fputc('\n', stdout);
}

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IVSHMEM_A_MAX + 1];
	const struct genlmsghdr *genl = nl_genl_hdr(nlh);
	struct monitor *m = data;
	char buf[IVSHM_NAME_BUF];
	const char *dev;

	if (!nl_parse_msg(nlh, &ivshm_attr_policy, tb))
		return MNL_CB_OK;
	dev = ivshm_dev_name(tb, buf);
	/* Every event names its device; one that does not is no match. */
	if (m->filter.dev && (!dev || strcmp(dev, m->filter.dev)))
		return MNL_CB_OK;
	if (m->ctx->json)
		event_json(genl->cmd, dev, tb);
	else
		event_plain(genl->cmd, dev, tb);
	/* A file or a pipe sees each event at once. */
	if ((fflush(stdout) || ferror(stdout)) && !m->write_errno)
		m->write_errno = errno ? errno : EIO;
	return MNL_CB_OK;
}

static int monitor_loop(struct monitor *m, int sfd)
{
	struct ivshm_nl *nl = &m->ctx->nl;
	struct pollfd fds[2] = {
		{ .fd = nl_fd(nl), .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};
	int err;

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return ivshm_failed("monitor: poll", -errno, NULL);
		}
		/* SIGINT or SIGTERM: the normal end. */
		if (fds[1].revents)
			return IVSHM_EXIT_OK;
		if (!fds[0].revents)
			continue;
		err = nl_recv_events(nl, event_cb, m);
		if (err == -ENOBUFS) {
			fprintf(stderr,
				"ivshm: monitor: warning: events were lost (socket receive buffer overrun)\n");
			continue;
		}
		if (err)
			return ivshm_failed("monitor", err, NULL);
		if (m->write_errno)
			return ivshm_failed("monitor: writing the output",
					    -m->write_errno, NULL);
	}
}

int do_monitor(struct ivshm_ctx *ctx, int argc, char **argv)
{
	struct monitor m = { .ctx = ctx };
	sigset_t mask;
	int rc, err, sfd;

	rc = ivshm_parse_filter("monitor", argc, argv, false, &m.filter);
	if (rc)
		return rc;
	if (m.filter.help) {
		monitor_usage(stdout);
		return IVSHM_EXIT_OK;
	}

	/*
	 * Blocked from here on, the signals wait in the signalfd, so one
	 * that comes while we connect still ends the loop at once. They
	 * stay blocked until exit: unblocking one still pending would kill
	 * us before main() has freed everything.
	 */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return ivshm_failed("monitor: sigprocmask", -errno, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return ivshm_failed("monitor: signalfd", -errno, NULL);

	rc = ivshm_connect(ctx);
	if (rc)
		goto out;
	err = nl_join_events(&ctx->nl);
	if (err == -ENOENT) {
		fprintf(stderr, "ivshm: monitor: the ivshmem family has no \"%s\" group\n",
			IVSHMEM_GENL_MCGRP_EVENTS);
		rc = IVSHM_EXIT_FAIL;
		goto out;
	}
	if (err) {
		rc = ivshm_failed("monitor: joining the events group", err,
				  NULL);
		goto out;
	}
	rc = monitor_loop(&m, sfd);
out:
	close(sfd);
	return rc;
}
