// SPDX-License-Identifier: GPL-2.0
/*
 * ivshm - configure and observe AF_IVSHMEM devices
 *
 *	ivshm [ OPTIONS ] OBJECT { COMMAND | help }
 *
 * This file has the front end: global options, the object words, the
 * helpers every object uses to parse its words and print its answers,
 * and the attribute sets of the "ivshmem" generic netlink family
 * (include/uapi/linux/ivshmem_netlink.h). Each object's commands live in
 * a file of its own. Every word is checked before anything is sent, so a
 * usage error (exit 2) never reaches the kernel.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ivshm.h"

static const enum mnl_attr_data_type attr_types[IVSHMEM_A_MAX + 1] = {
	[IVSHMEM_A_DEV_ID]		= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_NAME]		= MNL_TYPE_NUL_STRING,
	[IVSHMEM_A_DEV_TRANSPORT]	= MNL_TYPE_NUL_STRING,
	[IVSHMEM_A_DEV_PARENT]		= MNL_TYPE_NUL_STRING,
	[IVSHMEM_A_DEV_MODE]		= MNL_TYPE_U8,
	[IVSHMEM_A_DEV_VECTORS]		= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_REGION_SIZE]	= MNL_TYPE_U64,
	[IVSHMEM_A_DEV_PROTOCOL]	= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_INITIALISED]	= MNL_TYPE_FLAG,
	[IVSHMEM_A_DEV_JOINED]		= MNL_TYPE_FLAG,
	[IVSHMEM_A_DEV_VM_ID]		= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_INCARNATION]	= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_MAX_PEERS]	= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_PEERS]		= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_MAX_CHANNELS]	= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_CHANNELS]	= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_BLOCK_SIZE]	= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_BLOCKS]		= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_BLOCKS_FREE]	= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_POLL_US]		= MNL_TYPE_U32,
	[IVSHMEM_A_DEV_PARAMS]		= MNL_TYPE_NESTED,
	[IVSHMEM_A_DEV_STATS]		= MNL_TYPE_NESTED,
	[IVSHMEM_A_PEER_VM]		= MNL_TYPE_U32,
	[IVSHMEM_A_PEER_STATE]		= MNL_TYPE_U8,
	[IVSHMEM_A_PEER_INCARNATION]	= MNL_TYPE_U32,
	[IVSHMEM_A_PEER_HEARTBEAT]	= MNL_TYPE_U64,
	[IVSHMEM_A_PEER_BEAT_AGE_MS]	= MNL_TYPE_U32,
	[IVSHMEM_A_PEER_VECTORS]	= MNL_TYPE_U32,
	[IVSHMEM_A_PEER_SELF]		= MNL_TYPE_FLAG,
	[IVSHMEM_A_CHAN_INDEX]		= MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_DIR]		= MNL_TYPE_U8,
	[IVSHMEM_A_CHAN_STATE]		= MNL_TYPE_U8,
	[IVSHMEM_A_CHAN_SOCK_STATE]	= MNL_TYPE_U8,
	[IVSHMEM_A_CHAN_SENDER_VM]	= MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_RECEIVER_VM]	= MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_SENDER_PID]	= MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_LOCAL_PORT]	= MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_PEER_PORT]	= MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_OFFSET]		= MNL_TYPE_U64,
	[IVSHMEM_A_CHAN_SIZE]		= MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_OLD_SIZE]	= MNL_TYPE_U32,
	[IVSHMEM_A_CHAN_QUEUED]		= MNL_TYPE_U64,
	[IVSHMEM_A_CHAN_HEAD]		= MNL_TYPE_U64,
	[IVSHMEM_A_CHAN_TAIL]		= MNL_TYPE_U64,
	[IVSHMEM_A_CHAN_HEAD_TOUCH]	= MNL_TYPE_U64,
	[IVSHMEM_A_CHAN_FULL]		= MNL_TYPE_FLAG,
	[IVSHMEM_A_CHAN_FIXED]		= MNL_TYPE_FLAG,
	[IVSHMEM_A_CHAN_STATS]		= MNL_TYPE_NESTED,
	[IVSHMEM_A_ERROR_MSG]		= MNL_TYPE_NUL_STRING,
};

struct nl_policy ivshm_attr_policy = {
	.types = attr_types,
	.max = IVSHMEM_A_MAX,
	.what = "ivshmem",
};

static const enum mnl_attr_data_type param_types[IVSHMEM_PARAM_MAX + 1] = {
	[IVSHMEM_PARAM_REBALANCE]		= MNL_TYPE_U8,
	[IVSHMEM_PARAM_REBALANCE_INTERVAL]	= MNL_TYPE_U32,
	[IVSHMEM_PARAM_REBALANCE_MS]		= MNL_TYPE_U32,
	[IVSHMEM_PARAM_REBALANCE_IDLE_MS]	= MNL_TYPE_U32,
	[IVSHMEM_PARAM_CHAN_INITIAL]		= MNL_TYPE_U32,
	[IVSHMEM_PARAM_CHAN_MIN]		= MNL_TYPE_U32,
	[IVSHMEM_PARAM_CHAN_MAX]		= MNL_TYPE_U32,
	[IVSHMEM_PARAM_POLL_MIN_US]		= MNL_TYPE_U32,
	[IVSHMEM_PARAM_POLL_MAX_US]		= MNL_TYPE_U32,
	[IVSHMEM_PARAM_COALESCE_US]		= MNL_TYPE_U32,
	[IVSHMEM_PARAM_COALESCE_BULK]		= MNL_TYPE_U32,
	[IVSHMEM_PARAM_COALESCE_IDLE_US]	= MNL_TYPE_U32,
	[IVSHMEM_PARAM_PEER_TIMEOUT_MS]	= MNL_TYPE_U32,
};

struct nl_policy ivshm_param_policy = {
	.types = param_types,
	.max = IVSHMEM_PARAM_MAX,
	.what = "ivshmem parameter",
};

/* Counters are all u64; PAD only aligns them and is left out. */
static const enum mnl_attr_data_type stat_types[IVSHMEM_STAT_MAX + 1] = {
	[IVSHMEM_STAT_TX_RECORDS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_TX_BYTES]		= MNL_TYPE_U64,
	[IVSHMEM_STAT_RX_RECORDS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_RX_BYTES]		= MNL_TYPE_U64,
	[IVSHMEM_STAT_NOTIFIES]		= MNL_TYPE_U64,
	[IVSHMEM_STAT_SUPPRESSED]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_DOORBELLS_TX]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_DOORBELL_ERRORS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_DOORBELLS_RX]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_NAPI_POLLS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_DATA_EVENTS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_MODERATED]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_CTRL_POLLS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_CTRL_EVENTS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_CTRL_FLOODS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_PROTO_ERRORS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_PEERS_LOST]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_REBALANCES]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_GROWN]		= MNL_TYPE_U64,
	[IVSHMEM_STAT_SHRUNK]		= MNL_TYPE_U64,
	[IVSHMEM_STAT_GROW_FAILED]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_LOCK_BREAKS]	= MNL_TYPE_U64,
	[IVSHMEM_STAT_LOCK_LOST]	= MNL_TYPE_U64,
};

struct nl_policy ivshm_stat_policy = {
	.types = stat_types,
	.max = IVSHMEM_STAT_MAX,
	.what = "ivshmem counter",
};

static const enum mnl_attr_data_type
chan_stat_types[IVSHMEM_CHAN_STAT_MAX + 1] = {
	[IVSHMEM_CHAN_STAT_RECORDS]	= MNL_TYPE_U64,
	[IVSHMEM_CHAN_STAT_BYTES]	= MNL_TYPE_U64,
	[IVSHMEM_CHAN_STAT_NOTIFIES]	= MNL_TYPE_U64,
	[IVSHMEM_CHAN_STAT_DOORBELLS]	= MNL_TYPE_U64,
	[IVSHMEM_CHAN_STAT_SUPPRESSED]	= MNL_TYPE_U64,
	[IVSHMEM_CHAN_STAT_WAKEUPS]	= MNL_TYPE_U64,
	[IVSHMEM_CHAN_STAT_PROTO_ERRORS] = MNL_TYPE_U64,
	[IVSHMEM_CHAN_STAT_RESIZES]	= MNL_TYPE_U64,
};

struct nl_policy ivshm_chan_stat_policy = {
	.types = chan_stat_types,
	.max = IVSHMEM_CHAN_STAT_MAX,
	.what = "ivshmem channel counter",
};

bool ivshm_matches(const char *word, const char *keyword)
{
	size_t len = strlen(word);

	return len && !strncmp(word, keyword, len);
}

int ivshm_usage_err(const char *topic, const char *fmt, ...)
{
	va_list ap;

	fputs("ivshm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'ivshm %s%shelp'.\n", topic ? topic : "",
		topic ? " " : "");
	return IVSHM_EXIT_USAGE;
}

bool ivshm_next_arg(int *argc, char ***argv)
{
	if (*argc < 2)
		return false;
	(*argc)--;
	(*argv)++;
	return true;
}

int ivshm_parse_filter(const char *cmd, int argc, char **argv, bool vm_ok,
		       struct ivshm_filter *f)
{
	const char *kw;
	int rc;

	memset(f, 0, sizeof(*f));
	for (; argc; argc--, argv++) {
		if (ivshm_matches(*argv, "dev")) {
			kw = "dev";
			if (f->dev)
				return ivshm_usage_err(cmd, "%s: dev given twice",
						       cmd);
		} else if (vm_ok && ivshm_matches(*argv, "vm")) {
			kw = "vm";
			if (f->has_vm)
				return ivshm_usage_err(cmd, "%s: vm given twice",
						       cmd);
		} else if (ivshm_matches(*argv, "help")) {
			f->help = true;
			return IVSHM_EXIT_OK;
		} else {
			return ivshm_usage_err(cmd, "%s: unknown argument '%s'",
					       cmd, *argv);
		}
		if (!ivshm_next_arg(&argc, &argv))
			return ivshm_usage_err(cmd, "%s: %s needs a value",
					       cmd, kw);
		if (kw[0] == 'd') {
			rc = ivshm_parse_dev(cmd, *argv);
			f->dev = *argv;
		} else {
			rc = ivshm_parse_u32(cmd, "vm", *argv, 0, UINT32_MAX,
					     &f->vm);
			f->has_vm = true;
		}
		if (rc)
			return rc;
	}
	return IVSHM_EXIT_OK;
}

/*
 * The kernel filters by the device named in the request already; this
 * only keeps a kernel that ignored the attribute from showing others.
 */
bool ivshm_filter_dev_skip(const struct ivshm_filter *f,
			   const struct nlattr *const *tb)
{
	char buf[IVSHM_NAME_BUF];
	const char *name;

	if (!f->dev)
		return false;
	name = ivshm_dev_name(tb, buf);
	return name && strcmp(name, f->dev);
}

enum num_err { NUM_OK, NUM_BAD, NUM_NEGATIVE, NUM_OVERFLOW };

/*
 * Leading decimal digits of @s into @val; @end is left after them. Our
 * own loop rather than strtoull(), which takes blanks, signs and a
 * minus sign that wraps around.
 */
static enum num_err parse_digits(const char *s, const char **end,
				 uint64_t *val)
{
	bool overflow = false;
	uint64_t v = 0;
	unsigned int d;

	if (*s == '-')
		return NUM_NEGATIVE;
	if (*s < '0' || *s > '9')
		return NUM_BAD;
	for (; *s >= '0' && *s <= '9'; s++) {
		d = *s - '0';
		if (v > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	*end = s;
	*val = v;
	return overflow ? NUM_OVERFLOW : NUM_OK;
}

int ivshm_parse_u32(const char *cmd, const char *name, const char *s,
		    uint32_t min, uint32_t max, uint32_t *val)
{
	const char *end;
	uint64_t v;

	switch (parse_digits(s, &end, &v)) {
	case NUM_NEGATIVE:
		return ivshm_usage_err(cmd,
				       "%s: %s: '%s' is negative (expected %"
				       PRIu32 "..%" PRIu32 ")",
				       cmd, name, s, min, max);
	case NUM_BAD:
		return ivshm_usage_err(cmd, "%s: %s: '%s' is not a decimal number",
				       cmd, name, s);
	case NUM_OVERFLOW:
		v = UINT64_MAX;
		break;
	case NUM_OK:
		if (*end)
			return ivshm_usage_err(cmd, "%s: %s: '%s' is not a decimal number (trailing '%s')",
					       cmd, name, s, end);
		break;
	}
	if (v < min || v > max)
		return ivshm_usage_err(cmd,
				       "%s: %s: '%s' is out of range (%"
				       PRIu32 "..%" PRIu32 ")",
				       cmd, name, s, min, max);
	*val = v;
	return 0;
}

int ivshm_parse_size(const char *cmd, const char *name, const char *s,
		     uint32_t min, uint32_t max, bool block, uint32_t *val)
{
	const char *end;
	uint64_t v, mult = 1;
	enum num_err e;

	e = parse_digits(s, &end, &v);
	if (e == NUM_NEGATIVE)
		return ivshm_usage_err(cmd,
				       "%s: %s: '%s' is negative (expected %"
				       PRIu32 "..%" PRIu32 " bytes)",
				       cmd, name, s, min, max);
	if (e == NUM_BAD)
		return ivshm_usage_err(cmd, "%s: %s: '%s' is not a size (bytes, or a number with suffix k or m)",
				       cmd, name, s);
	if (*end == 'k' || *end == 'K')
		mult = 1024;
	else if (*end == 'm' || *end == 'M')
		mult = 1024 * 1024;
	if (mult > 1)
		end++;
	if (*end)
		return ivshm_usage_err(cmd, "%s: %s: '%s' is not a size (trailing '%s'; suffixes are k and m)",
				       cmd, name, s, end);
	if (e == NUM_OVERFLOW || v > UINT64_MAX / mult)
		v = UINT64_MAX;
	else
		v *= mult;
	if (v < min || v > max)
		return ivshm_usage_err(cmd,
				       "%s: %s: '%s' is out of range (%"
				       PRIu32 "..%" PRIu32 " bytes)",
				       cmd, name, s, min, max);
	if (block && v % 4096)
		return ivshm_usage_err(cmd, "%s: %s: '%s' is not a multiple of 4096 bytes (4k)",
				       cmd, name, s);
	*val = v;
	return 0;
}

/*
 * What could be a device name (the kernel's policy allows 15 characters;
 * the rules are those of interface names), and no leading '-': that is an
 * option given after the object.
 */
int ivshm_parse_dev(const char *cmd, const char *s)
{
	if (!*s || strlen(s) > IVSHM_NAME_MAX)
		return ivshm_usage_err(cmd, "%s: '%s' is not a device name (1 to %d characters)",
				       cmd, s, IVSHM_NAME_MAX);
	if (*s == '-')
		return ivshm_usage_err(cmd, "%s: '%s' is not a device name (options go before the object)",
				       cmd, s);
	if (!strcmp(s, ".") || !strcmp(s, "..") || strpbrk(s, "/: \t\n\r\v\f"))
		return ivshm_usage_err(cmd, "%s: '%s' is not a device name",
				       cmd, s);
	return 0;
}

int ivshm_connect(struct ivshm_ctx *ctx)
{
	int err = nl_open(&ctx->nl);

	if (err == -ENOENT) {
		fprintf(stderr,
			"ivshm: the ivshmem generic netlink family is not available: af_ivshmem is not loaded (or this is not the initial network namespace)\n");
		return IVSHM_EXIT_NOFAMILY;
	}
	if (err) {
		fprintf(stderr, "ivshm: netlink: %s\n", strerror(-err));
		return IVSHM_EXIT_FAIL;
	}
	return IVSHM_EXIT_OK;
}

int ivshm_failed(const char *what, int err, const char *hint)
{
	/* What genetlink answers for a command the module does not have. */
	if (!hint && err == -EOPNOTSUPP)
		hint = "the loaded af_ivshmem does not support this request";
	fprintf(stderr, "ivshm: %s: %s%s%s%s\n", what, strerror(-err),
		hint ? " (" : "", hint ? hint : "", hint ? ")" : "");
	return IVSHM_EXIT_FAIL;
}

uint64_t ivshm_attr_uint(const struct nlattr *a)
{
	switch (mnl_attr_get_payload_len(a)) {
	case 1:
		return mnl_attr_get_u8(a);
	case 2:
		return mnl_attr_get_u16(a);
	case 4:
		return mnl_attr_get_u32(a);
	case 8:
		return mnl_attr_get_u64(a);
	}
	return 0;
}

const char *ivshm_dev_name(const struct nlattr *const *tb,
			   char buf[IVSHM_NAME_BUF])
{
	uint32_t id;

	if (tb[IVSHMEM_A_DEV_NAME])
		return mnl_attr_get_str(tb[IVSHMEM_A_DEV_NAME]);
	if (!tb[IVSHMEM_A_DEV_ID])
		return NULL;
	/* The header defines the id as N + 1 for ivshmN. */
	id = mnl_attr_get_u32(tb[IVSHMEM_A_DEV_ID]);
	if (!id)
		return NULL;
	snprintf(buf, IVSHM_NAME_BUF, "ivshm%" PRIu32, id - 1);
	return buf;
}

const char *ivshm_enum_name(const char *const *names, size_t n, uint64_t v)
{
	return v < n ? names[v] : NULL;
}

const char *ivshm_safe(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

const char *ivshm_size_str(char *buf, size_t len, uint64_t v)
{
	if (v && !(v % (1ULL << 30)))
		snprintf(buf, len, "%" PRIu64 "GiB", v >> 30);
	else if (v && !(v % (1ULL << 20)))
		snprintf(buf, len, "%" PRIu64 "MiB", v >> 20);
	else if (v && !(v % (1ULL << 10)))
		snprintf(buf, len, "%" PRIu64 "KiB", v >> 10);
	else
		snprintf(buf, len, "%" PRIu64, v);
	return buf;
}

void ivshm_json_uint(struct json *j, const char *key, const struct nlattr *a)
{
	if (a)
		json_u64(j, key, ivshm_attr_uint(a));
}

void ivshm_json_str(struct json *j, const char *key, const struct nlattr *a)
{
	if (a)
		json_str(j, key, mnl_attr_get_str(a));
}

void ivshm_json_enum(struct json *j, const char *key,
		     const char *const *names, size_t n,
		     const struct nlattr *a)
{
	const char *name;

	if (!a)
		return;
	name = ivshm_enum_name(names, n, ivshm_attr_uint(a));
	if (name)
		json_str(j, key, name);
	else
		json_u64(j, key, ivshm_attr_uint(a));
}

void ivshm_list_item(struct ivshm_ctx *ctx)
{
	if (ctx->json && !ctx->listing) {
		json_arr_open(&ctx->jw, NULL);
		ctx->listing = true;
	}
}

void ivshm_list_end(struct ivshm_ctx *ctx, int err)
{
	if (!ctx->json || (err && !ctx->listing))
		return;
	ivshm_list_item(ctx);
	json_arr_close(&ctx->jw);
	ctx->listing = false;
}

void ivshm_line_begin(struct ivshm_line *l, FILE *f, const char *indent)
{
	l->f = f;
	l->indent = indent;
	l->words = false;
}

void ivshm_line_add(struct ivshm_line *l, const char *fmt, ...)
{
	va_list ap;

	if (l->words)
		fputc(' ', l->f);
	else
		fputs(l->indent, l->f);
	l->words = true;
	va_start(ap, fmt);
	vfprintf(l->f, fmt, ap);
	va_end(ap);
}

void ivshm_line_end(struct ivshm_line *l)
{
	if (l->words)
		fputc('\n', l->f);
	l->words = false;
}

static void main_usage(FILE *f)
{
	fputs("Usage: ivshm [ OPTIONS ] OBJECT { COMMAND | help }\n"
	      "       ivshm help\n"
	      "where  OBJECT := { dev | peer | chan | monitor }\n"
	      "       OPTIONS := { -s[tatistics] | -j[son] | -p[retty] | -V[ersion] |\n"
	      "                    -h[elp] }\n"
	      "\n", f);
	dev_usage(f);
	fputc('\n', f);
	peer_usage(f);
	fputc('\n', f);
	chan_usage(f);
	fputc('\n', f);
	monitor_usage(f);
	fputs("\n"
	      "Options: -s statistics (counters), -j JSON output, -p pretty JSON\n"
	      "(implies -j), -V version, -h this help. Short options combine\n"
	      "(-js); long forms: --stats --json --pretty --version --help.\n"
	      "Exit status: 0 success, 1 the request failed, 2 usage error,\n"
	      "3 the ivshmem netlink family is not available.\n", f);
}

static int do_help(struct ivshm_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	if (argc)
		return ivshm_usage_err(NULL, "help: unexpected argument '%s'",
				       argv[0]);
	main_usage(stdout);
	return IVSHM_EXIT_OK;
}

/* Matched by prefix, in this order: "d" is dev, "p" peer, "m" monitor. */
static const struct {
	const char *name;
	int (*run)(struct ivshm_ctx *ctx, int argc, char **argv);
} objects[] = {
	{ "dev",	do_dev },
	{ "peer",	do_peer },
	{ "chan",	do_chan },
	{ "monitor",	do_monitor },
	{ "help",	do_help },
};

enum { OPT_STATS = 1, OPT_JSON = 2, OPT_PRETTY = 4, OPT_VERSION = 8,
	OPT_HELP = 16 };

/*
 * Long names: after "--" exactly; after "-" by prefix, as iproute2 takes
 * "-stat" or "-j". The order settles a prefix two of them share.
 * "-Version" is iproute2's spelling; "--" takes the GNU one only.
 */
static const struct {
	const char *name;
	int flag;
	bool dash_only;
} long_opts[] = {
	{ "statistics",	OPT_STATS,	false },
	{ "stats",	OPT_STATS,	false },
	{ "json",	OPT_JSON,	false },
	{ "pretty",	OPT_PRETTY,	false },
	{ "Version",	OPT_VERSION,	true },
	{ "version",	OPT_VERSION,	false },
	{ "help",	OPT_HELP,	false },
};

static int short_opt(char c)
{
	switch (c) {
	case 's':
		return OPT_STATS;
	case 'j':
		return OPT_JSON;
	case 'p':
		return OPT_PRETTY;
	case 'V':
		return OPT_VERSION;
	case 'h':
		return OPT_HELP;
	}
	return 0;
}

/* The flags one option word sets, or 0 if it is not one. */
static int parse_opt(const char *arg)
{
	const char *s;
	size_t i;
	int flags = 0;

	if (arg[1] == '-') {
		for (i = 0; i < ARRAY_SIZE(long_opts); i++)
			if (!long_opts[i].dash_only &&
			    !strcmp(arg + 2, long_opts[i].name))
				return long_opts[i].flag;
		return 0;
	}
	/*
	 * Letters that are all options are a cluster ("-js"), even where
	 * they also begin a long name ("-js" of "-json"): the cluster sets
	 * that one too.
	 */
	for (s = arg + 1; *s && short_opt(*s); s++)
		flags |= short_opt(*s);
	if (!*s)
		return flags;
	for (i = 0; i < ARRAY_SIZE(long_opts); i++)
		if (ivshm_matches(arg + 1, long_opts[i].name))
			return long_opts[i].flag;
	return 0;
}

int main(int argc, char **argv)
{
	struct ivshm_ctx ctx;
	int i, flags = 0, f, rc;
	size_t o;

	memset(&ctx, 0, sizeof(ctx));
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		f = parse_opt(argv[i]);
		if (!f)
			return ivshm_usage_err(NULL, "unknown option '%s'",
					       argv[i]);
		flags |= f;
	}
	if (flags & OPT_HELP) {
		main_usage(stdout);
		return IVSHM_EXIT_OK;
	}
	if (flags & OPT_VERSION) {
		printf("ivshm %s (ivshmem generic netlink version %d)\n",
		       IVSHM_VERSION, IVSHMEM_GENL_VERSION);
		return IVSHM_EXIT_OK;
	}
	ctx.stats = flags & OPT_STATS;
	ctx.pretty = flags & OPT_PRETTY;
	ctx.json = ctx.pretty || (flags & OPT_JSON);
	json_init(&ctx.jw, stdout, ctx.pretty);

	if (i == argc) {
		main_usage(stderr);
		return IVSHM_EXIT_USAGE;
	}
	for (o = 0; o < ARRAY_SIZE(objects); o++)
		if (ivshm_matches(argv[i], objects[o].name))
			break;
	if (o == ARRAY_SIZE(objects))
		return ivshm_usage_err(NULL, "unknown object '%s'", argv[i]);

	rc = objects[o].run(&ctx, argc - i - 1, argv + i + 1);
	nl_close(&ctx.nl);
	/*
	 * Output that did not reach its file is a failure (ENOSPC, EIO),
	 * unless one was reported already.
	 */
	if ((fflush(stdout) || ferror(stdout)) && rc == IVSHM_EXIT_OK) {
		fprintf(stderr, "ivshm: writing the output: %s\n",
			strerror(errno));
		rc = IVSHM_EXIT_FAIL;
	}
	return rc;
}
