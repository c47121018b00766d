// SPDX-License-Identifier: GPL-2.0
/*
 * ivshm dev show [ [ dev ] DEV ]
 * ivshm dev set [ dev ] DEV PARAM VALUE [ PARAM VALUE ... ]
 *
 * One table describes the device parameters: the word dev set takes, the
 * JSON key, the attribute, the range the tool checks before sending (the
 * kernel's own, so that a typo costs no round trip) and the help text.
 * Rules between parameters (chan-min <= chan-initial <= chan-max,
 * poll-min-us <= poll-max-us) involve the device's current values and are
 * left to the kernel.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ivshm.h"

enum param_kind { PARAM_BOOL, PARAM_U32, PARAM_SIZE };

struct dev_param {
	const char *name;	/* dev set keyword, plain output label */
	const char *key;	/* JSON key */
	uint16_t attr;
	enum param_kind kind;
	uint32_t min, max;
	bool block;		/* whole 4 KiB blocks */
	unsigned int line;	/* plain output: one line per group */
	const char *value;	/* usage: what the value is */
	const char *help;
};

static const struct dev_param params[] = {
	{
		.name = "rebalance", .key = "rebalance",
		.attr = IVSHMEM_PARAM_REBALANCE, .kind = PARAM_BOOL,
		.min = 0, .max = 1, .line = 0, .value = "on | off",
		.help = "resize channels by their traffic",
	}, {
		.name = "rebalance-interval", .key = "rebalance_interval",
		.attr = IVSHMEM_PARAM_REBALANCE_INTERVAL, .kind = PARAM_U32,
		.min = 0, .max = 1000000, .line = 0, .value = "N",
		.help = "doorbells between passes, 0: by time only",
	}, {
		.name = "rebalance-ms", .key = "rebalance_ms",
		.attr = IVSHMEM_PARAM_REBALANCE_MS, .kind = PARAM_U32,
		.min = 1, .max = 60000, .line = 0, .value = "MS",
		.help = "polled devices: milliseconds between passes",
	}, {
		.name = "rebalance-idle-ms", .key = "rebalance_idle_ms",
		.attr = IVSHMEM_PARAM_REBALANCE_IDLE_MS, .kind = PARAM_U32,
		.min = 1, .max = 600000, .line = 0, .value = "MS",
		.help = "longest milliseconds between passes",
	}, {
		.name = "chan-initial", .key = "chan_initial",
		.attr = IVSHMEM_PARAM_CHAN_INITIAL, .kind = PARAM_SIZE,
		.min = IVSHMEM_RING_MIN, .max = IVSHMEM_RING_MAX,
		.block = true, .line = 1, .value = "SIZE",
		.help = "bytes of a new channel",
	}, {
		.name = "chan-min", .key = "chan_min",
		.attr = IVSHMEM_PARAM_CHAN_MIN, .kind = PARAM_SIZE,
		.min = IVSHMEM_RING_MIN, .max = IVSHMEM_RING_MAX,
		.block = true, .line = 1, .value = "SIZE",
		.help = "bytes an idle channel shrinks to",
	}, {
		.name = "chan-max", .key = "chan_max",
		.attr = IVSHMEM_PARAM_CHAN_MAX, .kind = PARAM_SIZE,
		.min = IVSHMEM_RING_MIN, .max = IVSHMEM_RING_MAX,
		.block = true, .line = 1, .value = "SIZE",
		.help = "bytes a busy channel grows to",
	}, {
		.name = "poll-min-us", .key = "poll_min_us",
		.attr = IVSHMEM_PARAM_POLL_MIN_US, .kind = PARAM_U32,
		.min = 1, .max = 1000000, .line = 2, .value = "US",
		.help = "polled devices: interval after a poll that found work",
	}, {
		.name = "poll-max-us", .key = "poll_max_us",
		.attr = IVSHMEM_PARAM_POLL_MAX_US, .kind = PARAM_U32,
		.min = 1, .max = 1000000, .line = 2, .value = "US",
		.help = "polled devices: longest idle interval",
	}, {
		.name = "coalesce-us", .key = "coalesce_us",
		.attr = IVSHMEM_PARAM_COALESCE_US, .kind = PARAM_U32,
		.min = 0, .max = 100000, .line = 2, .value = "US",
		.help = "poll interval in a bulk period, 0: no moderation",
	}, {
		.name = "coalesce-bulk", .key = "coalesce_bulk",
		.attr = IVSHMEM_PARAM_COALESCE_BULK, .kind = PARAM_SIZE,
		.min = 1, .max = 16U << 20, .line = 2, .value = "SIZE",
		.help = "bytes waiting that start a bulk period",
	}, {
		.name = "coalesce-idle-us", .key = "coalesce_idle_us",
		.attr = IVSHMEM_PARAM_COALESCE_IDLE_US, .kind = PARAM_U32,
		.min = 1, .max = 10000000, .line = 2, .value = "US",
		.help = "a bulk period ends this long after its last bulk poll",
	}, {
		.name = "peer-timeout-ms", .key = "peer_timeout_ms",
		.attr = IVSHMEM_PARAM_PEER_TIMEOUT_MS, .kind = PARAM_U32,
		.min = 500, .max = 3600000, .line = 3, .value = "MS",
		.help = "a peer whose heartbeat stands still this long is dead",
	},
};

#define NPARAMS ARRAY_SIZE(params)

struct dev_stat {
	uint16_t attr;
	const char *key;	/* JSON key; '_' becomes '-' in plain output */
	unsigned int line;
};

static const struct dev_stat stats[] = {
	{ IVSHMEM_STAT_TX_RECORDS,	"tx_records",		0 },
	{ IVSHMEM_STAT_TX_BYTES,	"tx_bytes",		0 },
	{ IVSHMEM_STAT_RX_RECORDS,	"rx_records",		0 },
	{ IVSHMEM_STAT_RX_BYTES,	"rx_bytes",		0 },
	{ IVSHMEM_STAT_NOTIFIES,	"notifies",		1 },
	{ IVSHMEM_STAT_SUPPRESSED,	"suppressed",		1 },
	{ IVSHMEM_STAT_DOORBELLS_TX,	"doorbells_tx",		1 },
	{ IVSHMEM_STAT_DOORBELL_ERRORS,	"doorbell_errors",	1 },
	{ IVSHMEM_STAT_DOORBELLS_RX,	"doorbells_rx",		1 },
	{ IVSHMEM_STAT_NAPI_POLLS,	"napi_polls",		2 },
	{ IVSHMEM_STAT_DATA_EVENTS,	"data_events",		2 },
	{ IVSHMEM_STAT_MODERATED,	"moderated",		2 },
	{ IVSHMEM_STAT_CTRL_POLLS,	"ctrl_polls",		3 },
	{ IVSHMEM_STAT_CTRL_EVENTS,	"ctrl_events",		3 },
	{ IVSHMEM_STAT_CTRL_FLOODS,	"ctrl_floods",		3 },
	{ IVSHMEM_STAT_PROTO_ERRORS,	"proto_errors",		3 },
	{ IVSHMEM_STAT_PEERS_LOST,	"peers_lost",		3 },
	{ IVSHMEM_STAT_REBALANCES,	"rebalances",		4 },
	{ IVSHMEM_STAT_GROWN,		"grown",		4 },
	{ IVSHMEM_STAT_SHRUNK,		"shrunk",		4 },
	{ IVSHMEM_STAT_GROW_FAILED,	"grow_failed",		4 },
	{ IVSHMEM_STAT_LOCK_BREAKS,	"lock_breaks",		5 },
	{ IVSHMEM_STAT_LOCK_LOST,	"lock_lost",		5 },
};

#define NSTATS ARRAY_SIZE(stats)

static const char *const modes[] = {
	[IVSHMEM_MODE_DOORBELL]	= "doorbell",
	[IVSHMEM_MODE_PLAIN]	= "plain",
};

#define INDENT "    "

void dev_usage(FILE *f)
{
	fputs("Usage: ivshm dev show [ [ dev ] DEV ]\n"
	      "       ivshm dev set [ dev ] DEV PARAM VALUE [ PARAM VALUE ... ]\n"
	      "       ivshm dev help\n"
	      "       ivshm dev set help\n"
	      "where  PARAM := { rebalance { on | off } | rebalance-interval N |\n"
	      "                  rebalance-ms MS | rebalance-idle-ms MS |\n"
	      "                  chan-initial SIZE | chan-min SIZE | chan-max SIZE |\n"
	      "                  poll-min-us US | poll-max-us US | coalesce-us US |\n"
	      "                  coalesce-bulk SIZE | coalesce-idle-us US }\n"
	      "       SIZE := bytes, or with suffix k (KiB) or m (MiB)\n", f);
}

void dev_set_usage(FILE *f)
{
	const struct dev_param *p;
	char range[48];

	fputs("Usage: ivshm dev set [ dev ] DEV PARAM VALUE [ PARAM VALUE ... ]\n"
	      "\n"
	      "PARAM              VALUE       RANGE                MEANING\n", f);
	for (p = params; p < params + NPARAMS; p++) {
		if (p->kind == PARAM_BOOL)
			snprintf(range, sizeof(range), "-");
		else
			snprintf(range, sizeof(range), "%" PRIu32 "..%" PRIu32 "%s",
				 p->min, p->max, p->block ? " x4k" : "");
		fprintf(f, "%-18s %-11s %-20s %s\n", p->name, p->value, range,
			p->help);
	}
	fputs("\n"
	      "SIZE is bytes, or a number with suffix k or K (x1024) or m or M\n"
	      "(x1048576); chan-* sizes are whole 4 KiB blocks (x4k). The kernel\n"
	      "also requires chan-min <= chan-initial <= chan-max and\n"
	      "poll-min-us <= poll-max-us, given the values not being changed.\n"
	      "Changing parameters needs CAP_NET_ADMIN.\n", f);
}

/* An exact name, or else a prefix of exactly one name. */
static const struct dev_param *param_find(const char *word, int *rc)
{
	const struct dev_param *p, *found = NULL;
	char list[256] = "";
	size_t n = 0;

	*rc = 0;
	for (p = params; p < params + NPARAMS; p++)
		if (!strcmp(word, p->name))
			return p;
	for (p = params; p < params + NPARAMS; p++) {
		if (!ivshm_matches(word, p->name))
			continue;
		found = p;
		n++;
		snprintf(list + strlen(list), sizeof(list) - strlen(list),
			 "%s%s", n > 1 ? ", " : "", p->name);
	}
	if (n == 1)
		return found;
	if (n)
		*rc = ivshm_usage_err("dev set",
				      "dev set: parameter '%s' is ambiguous: %s",
				      word, list);
	else
		*rc = ivshm_usage_err("dev set",
				      "dev set: unknown parameter '%s'", word);
	return NULL;
}

static int param_value(const struct dev_param *p, const char *s,
		       uint32_t *val)
{
	switch (p->kind) {
	case PARAM_BOOL:
		if (!strcmp(s, "on")) {
			*val = 1;
			return 0;
		}
		if (!strcmp(s, "off")) {
			*val = 0;
			return 0;
		}
		return ivshm_usage_err("dev set",
				       "dev set: %s: '%s' is not on or off",
				       p->name, s);
	case PARAM_U32:
		return ivshm_parse_u32("dev set", p->name, s, p->min, p->max,
				       val);
	case PARAM_SIZE:
		return ivshm_parse_size("dev set", p->name, s, p->min, p->max,
					p->block, val);
	}
	return IVSHM_EXIT_USAGE;
}

static void param_words(struct ivshm_line *l, const struct dev_param *p,
			const struct nlattr *a)
{
	uint64_t v = ivshm_attr_uint(a);
	char buf[32];

	switch (p->kind) {
	case PARAM_BOOL:
		ivshm_line_add(l, "%s %s", p->name, v ? "on" : "off");
		break;
	case PARAM_U32:
		ivshm_line_add(l, "%s %" PRIu64, p->name, v);
		break;
	case PARAM_SIZE:
		ivshm_line_add(l, "%s %s", p->name,
			       ivshm_size_str(buf, sizeof(buf), v));
		break;
	}
}

void dev_params_words(struct ivshm_line *l, const struct nlattr *nest)
{
	const struct nlattr *tb[IVSHMEM_PARAM_MAX + 1];
	const struct dev_param *p;

	nl_parse_nested(nest, &ivshm_param_policy, tb);
	for (p = params; p < params + NPARAMS; p++)
		if (tb[p->attr])
			param_words(l, p, tb[p->attr]);
}

/* dev show: the parameters on lines of their own, by group. */
static void params_lines(const struct nlattr *nest)
{
	const struct nlattr *tb[IVSHMEM_PARAM_MAX + 1];
	const struct dev_param *p;
	struct ivshm_line l;
	unsigned int line = 0;

	nl_parse_nested(nest, &ivshm_param_policy, tb);
	ivshm_line_begin(&l, stdout, INDENT);
	for (p = params; p < params + NPARAMS; p++) {
		if (!tb[p->attr])
			continue;
		if (p->line != line) {
			ivshm_line_end(&l);
			line = p->line;
		}
		param_words(&l, p, tb[p->attr]);
	}
	ivshm_line_end(&l);
}

void dev_params_json(struct json *j, const char *key,
		     const struct nlattr *nest)
{
	const struct nlattr *tb[IVSHMEM_PARAM_MAX + 1];
	const struct dev_param *p;

	nl_parse_nested(nest, &ivshm_param_policy, tb);
	json_obj_open(j, key);
	for (p = params; p < params + NPARAMS; p++) {
		if (!tb[p->attr])
			continue;
		if (p->kind == PARAM_BOOL)
			json_bool(j, p->key, ivshm_attr_uint(tb[p->attr]));
		else
			json_u64(j, p->key, ivshm_attr_uint(tb[p->attr]));
	}
	json_obj_close(j);
}

static void stats_lines(const struct nlattr *nest)
{
	const struct nlattr *tb[IVSHMEM_STAT_MAX + 1];
	const struct dev_stat *s;
	struct ivshm_line l;
	unsigned int line = 0;
	char label[32], *c;

	nl_parse_nested(nest, &ivshm_stat_policy, tb);
	ivshm_line_begin(&l, stdout, INDENT);
	for (s = stats; s < stats + NSTATS; s++) {
		if (!tb[s->attr])
			continue;
		if (s->line != line) {
			ivshm_line_end(&l);
			line = s->line;
		}
		snprintf(label, sizeof(label), "%s", s->key);
		for (c = label; *c; c++)
			if (*c == '_')
				*c = '-';
		ivshm_line_add(&l, "%s %" PRIu64, label,
			       mnl_attr_get_u64(tb[s->attr]));
	}
	ivshm_line_end(&l);
}

static void stats_json(struct json *j, const struct nlattr *nest)
{
	const struct nlattr *tb[IVSHMEM_STAT_MAX + 1];
	const struct dev_stat *s;

	nl_parse_nested(nest, &ivshm_stat_policy, tb);
	json_obj_open(j, "stats");
	for (s = stats; s < stats + NSTATS; s++)
		ivshm_json_uint(j, s->key, tb[s->attr]);
	json_obj_close(j);
}

static void u32_word(struct ivshm_line *l, const char *label,
		     const struct nlattr *a)
{
	if (a)
		ivshm_line_add(l, "%s %" PRIu32, label, mnl_attr_get_u32(a));
}

/* "peers 4/16": in use of the maximum, or whichever of them is there. */
static void pair_word(struct ivshm_line *l, const char *label,
		      const struct nlattr *used, const struct nlattr *max)
{
	if (used && max)
		ivshm_line_add(l, "%s %" PRIu32 "/%" PRIu32, label,
			       mnl_attr_get_u32(used), mnl_attr_get_u32(max));
	else if (used)
		u32_word(l, label, used);
	else if (max)
		ivshm_line_add(l, "max-%s %" PRIu32, label,
			       mnl_attr_get_u32(max));
}

static void dev_plain(struct ivshm_ctx *ctx, const struct nlattr **tb)
{
	char buf[IVSHM_NAME_BUF], sz[32], safe[IVSHM_SAFE_BUF];
	const char *name = ivshm_dev_name(tb, buf), *s;
	struct ivshm_line l;

	ivshm_line_begin(&l, stdout, "");
	ivshm_line_add(&l, "%s:",
		       name ? ivshm_safe(safe, sizeof(safe), name) : "?");
	if (tb[IVSHMEM_A_DEV_MODE]) {
		s = IVSHM_ENUM(modes, mnl_attr_get_u8(tb[IVSHMEM_A_DEV_MODE]));
		if (s)
			ivshm_line_add(&l, "%s", s);
		else
			ivshm_line_add(&l, "mode %u",
				       mnl_attr_get_u8(tb[IVSHMEM_A_DEV_MODE]));
	}
	u32_word(&l, "vectors", tb[IVSHMEM_A_DEV_VECTORS]);
	u32_word(&l, "vm", tb[IVSHMEM_A_DEV_VM_ID]);
	if (!tb[IVSHMEM_A_DEV_JOINED])
		ivshm_line_add(&l, "not-joined");
	u32_word(&l, "incarnation", tb[IVSHMEM_A_DEV_INCARNATION]);
	if (tb[IVSHMEM_A_DEV_TRANSPORT])
		ivshm_line_add(&l, "transport %s",
			       ivshm_safe(safe, sizeof(safe),
					  mnl_attr_get_str(tb[IVSHMEM_A_DEV_TRANSPORT])));
	if (tb[IVSHMEM_A_DEV_PARENT]) {
		s = mnl_attr_get_str(tb[IVSHMEM_A_DEV_PARENT]);
		ivshm_line_add(&l, "parent %s",
			       *s ? ivshm_safe(safe, sizeof(safe), s) : "-");
	}
	ivshm_line_end(&l);

	ivshm_line_begin(&l, stdout, INDENT);
	if (tb[IVSHMEM_A_DEV_REGION_SIZE])
		ivshm_line_add(&l, "region %s",
			       ivshm_size_str(sz, sizeof(sz),
					      mnl_attr_get_u64(tb[IVSHMEM_A_DEV_REGION_SIZE])));
	u32_word(&l, "protocol", tb[IVSHMEM_A_DEV_PROTOCOL]);
	if (tb[IVSHMEM_A_DEV_INITIALISED])
		ivshm_line_add(&l, "initialised");
	pair_word(&l, "peers", tb[IVSHMEM_A_DEV_PEERS],
		  tb[IVSHMEM_A_DEV_MAX_PEERS]);
	pair_word(&l, "channels", tb[IVSHMEM_A_DEV_CHANNELS],
		  tb[IVSHMEM_A_DEV_MAX_CHANNELS]);
	if (tb[IVSHMEM_A_DEV_BLOCKS_FREE] && tb[IVSHMEM_A_DEV_BLOCKS])
		ivshm_line_add(&l, "blocks %" PRIu32 "/%" PRIu32 " free",
			       mnl_attr_get_u32(tb[IVSHMEM_A_DEV_BLOCKS_FREE]),
			       mnl_attr_get_u32(tb[IVSHMEM_A_DEV_BLOCKS]));
	else if (tb[IVSHMEM_A_DEV_BLOCKS])
		u32_word(&l, "blocks", tb[IVSHMEM_A_DEV_BLOCKS]);
	else
		u32_word(&l, "blocks-free", tb[IVSHMEM_A_DEV_BLOCKS_FREE]);
	if (tb[IVSHMEM_A_DEV_BLOCK_SIZE])
		ivshm_line_add(&l, "block-size %s",
			       ivshm_size_str(sz, sizeof(sz),
					      mnl_attr_get_u32(tb[IVSHMEM_A_DEV_BLOCK_SIZE])));
	u32_word(&l, "poll-us", tb[IVSHMEM_A_DEV_POLL_US]);
	ivshm_line_end(&l);

	if (tb[IVSHMEM_A_DEV_PARAMS])
		params_lines(tb[IVSHMEM_A_DEV_PARAMS]);
	if (ctx->stats && tb[IVSHMEM_A_DEV_STATS])
		stats_lines(tb[IVSHMEM_A_DEV_STATS]);
}

static void dev_json(struct ivshm_ctx *ctx, const struct nlattr **tb)
{
	struct json *j = &ctx->jw;
	char buf[IVSHM_NAME_BUF];
	const char *name = ivshm_dev_name(tb, buf);

	ivshm_list_item(ctx);
	json_obj_open(j, NULL);
	if (name)
		json_str(j, "name", name);
	ivshm_json_uint(j, "id", tb[IVSHMEM_A_DEV_ID]);
	ivshm_json_str(j, "transport", tb[IVSHMEM_A_DEV_TRANSPORT]);
	ivshm_json_str(j, "parent", tb[IVSHMEM_A_DEV_PARENT]);
	ivshm_json_enum(j, "mode", modes, ARRAY_SIZE(modes),
			tb[IVSHMEM_A_DEV_MODE]);
	ivshm_json_uint(j, "vectors", tb[IVSHMEM_A_DEV_VECTORS]);
	ivshm_json_uint(j, "region_size", tb[IVSHMEM_A_DEV_REGION_SIZE]);
	ivshm_json_uint(j, "protocol", tb[IVSHMEM_A_DEV_PROTOCOL]);
	json_bool(j, "initialised", !!tb[IVSHMEM_A_DEV_INITIALISED]);
	json_bool(j, "joined", !!tb[IVSHMEM_A_DEV_JOINED]);
	ivshm_json_uint(j, "vm_id", tb[IVSHMEM_A_DEV_VM_ID]);
	ivshm_json_uint(j, "incarnation", tb[IVSHMEM_A_DEV_INCARNATION]);
	ivshm_json_uint(j, "max_peers", tb[IVSHMEM_A_DEV_MAX_PEERS]);
	ivshm_json_uint(j, "peers", tb[IVSHMEM_A_DEV_PEERS]);
	ivshm_json_uint(j, "max_channels", tb[IVSHMEM_A_DEV_MAX_CHANNELS]);
	ivshm_json_uint(j, "channels", tb[IVSHMEM_A_DEV_CHANNELS]);
	ivshm_json_uint(j, "block_size", tb[IVSHMEM_A_DEV_BLOCK_SIZE]);
	ivshm_json_uint(j, "blocks", tb[IVSHMEM_A_DEV_BLOCKS]);
	ivshm_json_uint(j, "blocks_free", tb[IVSHMEM_A_DEV_BLOCKS_FREE]);
	ivshm_json_uint(j, "poll_us", tb[IVSHMEM_A_DEV_POLL_US]);
	if (tb[IVSHMEM_A_DEV_PARAMS])
		dev_params_json(j, "params", tb[IVSHMEM_A_DEV_PARAMS]);
	if (ctx->stats && tb[IVSHMEM_A_DEV_STATS])
		stats_json(j, tb[IVSHMEM_A_DEV_STATS]);
	json_obj_close(j);
}

static int dev_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IVSHMEM_A_MAX + 1];
	struct ivshm_ctx *ctx = data;

	if (!nl_parse_msg(nlh, &ivshm_attr_policy, tb))
		return MNL_CB_OK;
	if (ctx->json)
		dev_json(ctx, tb);
	else
		dev_plain(ctx, tb);
	return MNL_CB_OK;
}

static int dev_show(struct ivshm_ctx *ctx, int argc, char **argv)
{
	const char *dev = NULL;
	struct nlmsghdr *nlh;
	char what[64];
	int rc, err;

	for (; argc; argc--, argv++) {
		if (ivshm_matches(*argv, "dev")) {
			if (!ivshm_next_arg(&argc, &argv))
				return ivshm_usage_err("dev show",
						       "dev show: dev needs a device name");
		} else if (ivshm_matches(*argv, "help")) {
			dev_usage(stdout);
			return IVSHM_EXIT_OK;
		}
		if (dev)
			return ivshm_usage_err("dev show",
					       "dev show: unexpected argument '%s' (one device at most)",
					       *argv);
		rc = ivshm_parse_dev("dev show", *argv);
		if (rc)
			return rc;
		dev = *argv;
	}

	rc = ivshm_connect(ctx);
	if (rc)
		return rc;
	if (dev) {
		nlh = nl_request(&ctx->nl, IVSHMEM_CMD_DEV_GET, 0);
		mnl_attr_put_strz(nlh, IVSHMEM_A_DEV_NAME, dev);
		snprintf(what, sizeof(what), "dev show %s", dev);
	} else {
		nlh = nl_request(&ctx->nl, IVSHMEM_CMD_DEV_GET, NLM_F_DUMP);
		snprintf(what, sizeof(what), "dev show");
	}
	err = nl_transact(&ctx->nl, nlh, dev_cb, ctx);
	ivshm_list_end(ctx, err);
	return err ? ivshm_failed(what, err, NULL) : IVSHM_EXIT_OK;
}

static int dev_set(struct ivshm_ctx *ctx, int argc, char **argv)
{
	uint32_t vals[NPARAMS];
	bool given[NPARAMS] = { false };
	const struct dev_param *p;
	const char *dev;
	struct nlmsghdr *nlh;
	struct nlattr *nest;
	char what[64];
	size_t i, n = 0;
	int rc, err;

	if (argc && ivshm_matches(*argv, "help")) {
		dev_set_usage(stdout);
		return IVSHM_EXIT_OK;
	}
	if (argc && ivshm_matches(*argv, "dev") &&
	    !ivshm_next_arg(&argc, &argv))
		return ivshm_usage_err("dev set",
				       "dev set: dev needs a device name");
	if (!argc)
		return ivshm_usage_err("dev set", "dev set: missing device");
	rc = ivshm_parse_dev("dev set", *argv);
	if (rc)
		return rc;
	dev = *argv;

	for (argc--, argv++; argc; argc--, argv++) {
		if (ivshm_matches(*argv, "help")) {
			dev_set_usage(stdout);
			return IVSHM_EXIT_OK;
		}
		p = param_find(*argv, &rc);
		if (!p)
			return rc;
		i = p - params;
		if (given[i])
			return ivshm_usage_err("dev set",
					       "dev set: %s given twice",
					       p->name);
		if (!ivshm_next_arg(&argc, &argv))
			return ivshm_usage_err("dev set",
					       "dev set: %s needs a value (%s)",
					       p->name, p->value);
		rc = param_value(p, *argv, &vals[i]);
		if (rc)
			return rc;
		given[i] = true;
		n++;
	}
	if (!n)
		return ivshm_usage_err("dev set",
				       "dev set: no parameter to set on %s",
				       dev);

	rc = ivshm_connect(ctx);
	if (rc)
		return rc;
	nlh = nl_request(&ctx->nl, IVSHMEM_CMD_DEV_SET, 0);
	mnl_attr_put_strz(nlh, IVSHMEM_A_DEV_NAME, dev);
	nest = mnl_attr_nest_start(nlh, IVSHMEM_A_DEV_PARAMS);
	for (i = 0; i < NPARAMS; i++) {
		if (!given[i])
			continue;
		if (params[i].kind == PARAM_BOOL)
			mnl_attr_put_u8(nlh, params[i].attr, vals[i]);
		else
			mnl_attr_put_u32(nlh, params[i].attr, vals[i]);
	}
	mnl_attr_nest_end(nlh, nest);
	snprintf(what, sizeof(what), "dev set %s", dev);
	err = nl_transact(&ctx->nl, nlh, NULL, NULL);
	if (err)
		return ivshm_failed(what, err, err == -EPERM ?
				    "changing parameters needs CAP_NET_ADMIN" :
				    NULL);
	return IVSHM_EXIT_OK;
}

int do_dev(struct ivshm_ctx *ctx, int argc, char **argv)
{
	/* Without a command, show, as "ip link" does. */
	if (!argc || ivshm_matches(*argv, "show"))
		return dev_show(ctx, argc ? argc - 1 : 0, argv + 1);
	if (ivshm_matches(*argv, "set"))
		return dev_set(ctx, argc - 1, argv + 1);
	if (ivshm_matches(*argv, "help")) {
		dev_usage(stdout);
		return IVSHM_EXIT_OK;
	}
	return ivshm_usage_err("dev", "dev: unknown command '%s'", *argv);
}
