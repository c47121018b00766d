// SPDX-License-Identifier: GPL-2.0
/*
 * ivshm chan show [ dev DEV ] [ vm N ]
 *
 * Each side of a connection this guest holds: a channel it sends on (tx)
 * or one it reads (rx). Both filters go to the kernel in the request.
 */
#include <inttypes.h>
#include <stdio.h>

#include "ivshm.h"

/* Indexed by the kernel's TCP_* states, which the sockets reuse. */
const char *const ivshm_sock_states[12] = {
	[1]	= "established",
	[2]	= "syn-sent",
	[3]	= "syn-recv",
	[4]	= "fin-wait1",
	[5]	= "fin-wait2",
	[6]	= "time-wait",
	[7]	= "close",
	[8]	= "close-wait",
	[9]	= "last-ack",
	[10]	= "listen",
	[11]	= "closing",
};

static const char *const dirs[] = {
	[IVSHMEM_CHAN_DIR_TX]	= "tx",
	[IVSHMEM_CHAN_DIR_RX]	= "rx",
};

static const char *const states[] = {
	[IVSHMEM_CHAN_FREE]	= "free",
	[IVSHMEM_CHAN_ALLOC]	= "alloc",
	[IVSHMEM_CHAN_CONNECT]	= "connect",
	[IVSHMEM_CHAN_OPEN]	= "open",
	[IVSHMEM_CHAN_CLOSED]	= "closed",
};

static const struct {
	uint16_t attr;
	const char *key;	/* JSON key; '_' becomes '-' in plain output */
} stats[] = {
	{ IVSHMEM_CHAN_STAT_RECORDS,		"records" },
	{ IVSHMEM_CHAN_STAT_BYTES,		"bytes" },
	{ IVSHMEM_CHAN_STAT_NOTIFIES,		"notifies" },
	{ IVSHMEM_CHAN_STAT_DOORBELLS,		"doorbells" },
	{ IVSHMEM_CHAN_STAT_SUPPRESSED,		"suppressed" },
	{ IVSHMEM_CHAN_STAT_WAKEUPS,		"wakeups" },
	{ IVSHMEM_CHAN_STAT_PROTO_ERRORS,	"proto_errors" },
	{ IVSHMEM_CHAN_STAT_RESIZES,		"resizes" },
};

struct chan_show {
	struct ivshm_ctx *ctx;
	struct ivshm_filter filter;
};

void chan_usage(FILE *f)
{
	fputs("Usage: ivshm chan show [ dev DEV ] [ vm N ]\n"
	      "       ivshm chan help\n", f);
}

/* An enum attribute as its name, or "label N" if the value is unknown. */
static void enum_word(struct ivshm_line *l, const char *label,
		      const char *const *names, size_t n,
		      const struct nlattr *a)
{
	const char *s;

	if (!a)
		return;
	s = ivshm_enum_name(names, n, ivshm_attr_uint(a));
	if (s)
		ivshm_line_add(l, "%s", s);
	else
		ivshm_line_add(l, "%s %" PRIu64, label, ivshm_attr_uint(a));
}

static void uint_word(struct ivshm_line *l, const char *label,
		      const struct nlattr *a)
{
	if (a)
		ivshm_line_add(l, "%s %" PRIu64, label, ivshm_attr_uint(a));
}

static void chan_plain(struct ivshm_ctx *ctx, const struct nlattr **tb)
{
	const struct nlattr *stb[IVSHMEM_CHAN_STAT_MAX + 1];
	char buf[IVSHM_NAME_BUF], label[32], safe[IVSHM_SAFE_BUF], *c;
	const char *name = ivshm_dev_name(tb, buf);
	const struct nlattr *snd = tb[IVSHMEM_A_CHAN_SENDER_VM];
	const struct nlattr *rcv = tb[IVSHMEM_A_CHAN_RECEIVER_VM];
	struct ivshm_line l;
	size_t i;

	ivshm_line_begin(&l, stdout, "");
	ivshm_line_add(&l, "%s:",
		       name ? ivshm_safe(safe, sizeof(safe), name) : "?");
	uint_word(&l, "chan", tb[IVSHMEM_A_CHAN_INDEX]);
	enum_word(&l, "dir", dirs, ARRAY_SIZE(dirs), tb[IVSHMEM_A_CHAN_DIR]);
	enum_word(&l, "state", states, ARRAY_SIZE(states),
		  tb[IVSHMEM_A_CHAN_STATE]);
	enum_word(&l, "sock-state", ivshm_sock_states,
		  ARRAY_SIZE(ivshm_sock_states), tb[IVSHMEM_A_CHAN_SOCK_STATE]);
	/* Sender to receiver, whichever end this guest is. */
	if (snd && rcv)
		ivshm_line_add(&l, "vm %" PRIu32 " -> %" PRIu32,
			       mnl_attr_get_u32(snd), mnl_attr_get_u32(rcv));
	else
		uint_word(&l, snd ? "sender-vm" : "receiver-vm",
			  snd ? snd : rcv);
	/* 0 is "unknown". */
	if (tb[IVSHMEM_A_CHAN_SENDER_PID] &&
	    mnl_attr_get_u32(tb[IVSHMEM_A_CHAN_SENDER_PID]))
		uint_word(&l, "pid", tb[IVSHMEM_A_CHAN_SENDER_PID]);
	uint_word(&l, "port", tb[IVSHMEM_A_CHAN_LOCAL_PORT]);
	uint_word(&l, "peer-port", tb[IVSHMEM_A_CHAN_PEER_PORT]);
	uint_word(&l, "offset", tb[IVSHMEM_A_CHAN_OFFSET]);
	uint_word(&l, "size", tb[IVSHMEM_A_CHAN_SIZE]);
	/* Only while a move is pending. */
	if (tb[IVSHMEM_A_CHAN_OLD_SIZE] &&
	    mnl_attr_get_u32(tb[IVSHMEM_A_CHAN_OLD_SIZE]))
		uint_word(&l, "old-size", tb[IVSHMEM_A_CHAN_OLD_SIZE]);
	uint_word(&l, "queued", tb[IVSHMEM_A_CHAN_QUEUED]);
	uint_word(&l, "head", tb[IVSHMEM_A_CHAN_HEAD]);
	uint_word(&l, "tail", tb[IVSHMEM_A_CHAN_TAIL]);
	uint_word(&l, "head-touch", tb[IVSHMEM_A_CHAN_HEAD_TOUCH]);
	if (tb[IVSHMEM_A_CHAN_FULL])
		ivshm_line_add(&l, "full");
	if (tb[IVSHMEM_A_CHAN_FIXED])
		ivshm_line_add(&l, "fixed");
	ivshm_line_end(&l);

	if (!ctx->stats || !tb[IVSHMEM_A_CHAN_STATS])
		return;
	nl_parse_nested(tb[IVSHMEM_A_CHAN_STATS], &ivshm_chan_stat_policy,
			stb);
	ivshm_line_begin(&l, stdout, "    ");
	for (i = 0; i < ARRAY_SIZE(stats); i++) {
		snprintf(label, sizeof(label), "%s", stats[i].key);
		for (c = label; *c; c++)
			if (*c == '_')
				*c = '-';
		uint_word(&l, label, stb[stats[i].attr]);
	}
	ivshm_line_end(&l);
}

static void chan_json(struct ivshm_ctx *ctx, const struct nlattr **tb)
{
	const struct nlattr *stb[IVSHMEM_CHAN_STAT_MAX + 1];
	struct json *j = &ctx->jw;
	char buf[IVSHM_NAME_BUF];
	const char *name = ivshm_dev_name(tb, buf);
	size_t i;

	ivshm_list_item(ctx);
	json_obj_open(j, NULL);
	if (name)
		json_str(j, "dev", name);
	ivshm_json_uint(j, "index", tb[IVSHMEM_A_CHAN_INDEX]);
	ivshm_json_enum(j, "dir", dirs, ARRAY_SIZE(dirs), tb[IVSHMEM_A_CHAN_DIR]);
	ivshm_json_enum(j, "state", states, ARRAY_SIZE(states),
			tb[IVSHMEM_A_CHAN_STATE]);
	ivshm_json_enum(j, "sock_state", ivshm_sock_states,
			ARRAY_SIZE(ivshm_sock_states),
			tb[IVSHMEM_A_CHAN_SOCK_STATE]);
	ivshm_json_uint(j, "sender_vm", tb[IVSHMEM_A_CHAN_SENDER_VM]);
	ivshm_json_uint(j, "receiver_vm", tb[IVSHMEM_A_CHAN_RECEIVER_VM]);
	ivshm_json_uint(j, "sender_pid", tb[IVSHMEM_A_CHAN_SENDER_PID]);
	ivshm_json_uint(j, "local_port", tb[IVSHMEM_A_CHAN_LOCAL_PORT]);
	ivshm_json_uint(j, "peer_port", tb[IVSHMEM_A_CHAN_PEER_PORT]);
	ivshm_json_uint(j, "offset", tb[IVSHMEM_A_CHAN_OFFSET]);
	ivshm_json_uint(j, "size", tb[IVSHMEM_A_CHAN_SIZE]);
	ivshm_json_uint(j, "old_size", tb[IVSHMEM_A_CHAN_OLD_SIZE]);
	ivshm_json_uint(j, "queued", tb[IVSHMEM_A_CHAN_QUEUED]);
	ivshm_json_uint(j, "head", tb[IVSHMEM_A_CHAN_HEAD]);
	ivshm_json_uint(j, "tail", tb[IVSHMEM_A_CHAN_TAIL]);
	ivshm_json_uint(j, "head_touch", tb[IVSHMEM_A_CHAN_HEAD_TOUCH]);
	json_bool(j, "full", !!tb[IVSHMEM_A_CHAN_FULL]);
	json_bool(j, "fixed", !!tb[IVSHMEM_A_CHAN_FIXED]);
	if (ctx->stats && tb[IVSHMEM_A_CHAN_STATS]) {
		nl_parse_nested(tb[IVSHMEM_A_CHAN_STATS],
				&ivshm_chan_stat_policy, stb);
		json_obj_open(j, "stats");
		for (i = 0; i < ARRAY_SIZE(stats); i++)
			ivshm_json_uint(j, stats[i].key, stb[stats[i].attr]);
		json_obj_close(j);
	}
	json_obj_close(j);
}

static int chan_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IVSHMEM_A_MAX + 1];
	struct chan_show *cs = data;

	if (!nl_parse_msg(nlh, &ivshm_attr_policy, tb))
		return MNL_CB_OK;
	if (ivshm_filter_dev_skip(&cs->filter, tb))
		return MNL_CB_OK;
	if (cs->ctx->json)
		chan_json(cs->ctx, tb);
	else
		chan_plain(cs->ctx, tb);
	return MNL_CB_OK;
}

static int chan_show(struct ivshm_ctx *ctx, int argc, char **argv)
{
	struct chan_show cs = { .ctx = ctx };
	struct nlmsghdr *nlh;
	char what[96];
	int rc, err, n;

	rc = ivshm_parse_filter("chan show", argc, argv, true, &cs.filter);
	if (rc)
		return rc;
	if (cs.filter.help) {
		chan_usage(stdout);
		return IVSHM_EXIT_OK;
	}

	rc = ivshm_connect(ctx);
	if (rc)
		return rc;
	nlh = nl_request(&ctx->nl, IVSHMEM_CMD_CHAN_GET, NLM_F_DUMP);
	n = snprintf(what, sizeof(what), "chan show");
	if (cs.filter.dev) {
		mnl_attr_put_strz(nlh, IVSHMEM_A_DEV_NAME, cs.filter.dev);
		n += snprintf(what + n, sizeof(what) - n, " dev %s",
			      cs.filter.dev);
	}
	if (cs.filter.has_vm) {
		mnl_attr_put_u32(nlh, IVSHMEM_A_PEER_VM, cs.filter.vm);
		snprintf(what + n, sizeof(what) - n, " vm %" PRIu32,
			 cs.filter.vm);
	}
	err = nl_transact(&ctx->nl, nlh, chan_cb, &cs);
	ivshm_list_end(ctx, err);
	return err ? ivshm_failed(what, err, NULL) : IVSHM_EXIT_OK;
}

int do_chan(struct ivshm_ctx *ctx, int argc, char **argv)
{
	if (!argc || ivshm_matches(*argv, "show"))
		return chan_show(ctx, argc ? argc - 1 : 0, argv + 1);
	if (ivshm_matches(*argv, "help")) {
		chan_usage(stdout);
		return IVSHM_EXIT_OK;
	}
	return ivshm_usage_err("chan", "chan: unknown command '%s'", *argv);
}
