// SPDX-License-Identifier: GPL-2.0
/*
 * ivshm peer show [ dev DEV ] [ vm N ]
 *
 * The VM slots in use in each device's region. The device filter goes to
 * the kernel in the dump request; PEER_GET takes no VM filter, so that
 * one is applied here.
 */
#include <inttypes.h>
#include <stdio.h>

#include "ivshm.h"

const char *const ivshm_peer_states[4] = {
	[IVSHMEM_PEER_FREE]	= "free",
	[IVSHMEM_PEER_ALIVE]	= "alive",
	[IVSHMEM_PEER_DEAD]	= "dead",
	[IVSHMEM_PEER_CLAIMED]	= "claimed",
};

struct peer_show {
	struct ivshm_ctx *ctx;
	struct ivshm_filter filter;
};

void peer_usage(FILE *f)
{
	fputs("Usage: ivshm peer show [ dev DEV ] [ vm N ]\n"
	      "       ivshm peer help\n", f);
}

static void peer_plain(const struct nlattr **tb)
{
	char buf[IVSHM_NAME_BUF], safe[IVSHM_SAFE_BUF];
	const char *name = ivshm_dev_name(tb, buf), *s;
	struct ivshm_line l;
	uint8_t state;

	ivshm_line_begin(&l, stdout, "");
	ivshm_line_add(&l, "%s:",
		       name ? ivshm_safe(safe, sizeof(safe), name) : "?");
	if (tb[IVSHMEM_A_PEER_VM])
		ivshm_line_add(&l, "vm %" PRIu32,
			       mnl_attr_get_u32(tb[IVSHMEM_A_PEER_VM]));
	if (tb[IVSHMEM_A_PEER_STATE]) {
		state = mnl_attr_get_u8(tb[IVSHMEM_A_PEER_STATE]);
		s = IVSHM_ENUM(ivshm_peer_states, state);
		if (s)
			ivshm_line_add(&l, "%s", s);
		else
			ivshm_line_add(&l, "state %u", state);
	}
	if (tb[IVSHMEM_A_PEER_INCARNATION])
		ivshm_line_add(&l, "incarnation %" PRIu32,
			       mnl_attr_get_u32(tb[IVSHMEM_A_PEER_INCARNATION]));
	if (tb[IVSHMEM_A_PEER_HEARTBEAT])
		ivshm_line_add(&l, "heartbeat %" PRIu64,
			       mnl_attr_get_u64(tb[IVSHMEM_A_PEER_HEARTBEAT]));
	if (tb[IVSHMEM_A_PEER_BEAT_AGE_MS])
		ivshm_line_add(&l, "beat-age %" PRIu32 "ms",
			       mnl_attr_get_u32(tb[IVSHMEM_A_PEER_BEAT_AGE_MS]));
	if (tb[IVSHMEM_A_PEER_VECTORS])
		ivshm_line_add(&l, "vectors %" PRIu32,
			       mnl_attr_get_u32(tb[IVSHMEM_A_PEER_VECTORS]));
	if (tb[IVSHMEM_A_PEER_SELF])
		ivshm_line_add(&l, "self");
	ivshm_line_end(&l);
}

static void peer_json(struct ivshm_ctx *ctx, const struct nlattr **tb)
{
	struct json *j = &ctx->jw;
	char buf[IVSHM_NAME_BUF];
	const char *name = ivshm_dev_name(tb, buf);

	ivshm_list_item(ctx);
	json_obj_open(j, NULL);
	if (name)
		json_str(j, "dev", name);
	ivshm_json_uint(j, "vm", tb[IVSHMEM_A_PEER_VM]);
	ivshm_json_enum(j, "state", ivshm_peer_states,
			ARRAY_SIZE(ivshm_peer_states),
			tb[IVSHMEM_A_PEER_STATE]);
	ivshm_json_uint(j, "incarnation", tb[IVSHMEM_A_PEER_INCARNATION]);
	ivshm_json_uint(j, "heartbeat", tb[IVSHMEM_A_PEER_HEARTBEAT]);
	ivshm_json_uint(j, "beat_age_ms", tb[IVSHMEM_A_PEER_BEAT_AGE_MS]);
	ivshm_json_uint(j, "vectors", tb[IVSHMEM_A_PEER_VECTORS]);
	json_bool(j, "self", !!tb[IVSHMEM_A_PEER_SELF]);
	json_obj_close(j);
}

static int peer_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *tb[IVSHMEM_A_MAX + 1];
	struct peer_show *ps = data;

	if (!nl_parse_msg(nlh, &ivshm_attr_policy, tb))
		return MNL_CB_OK;
	if (ivshm_filter_dev_skip(&ps->filter, tb))
		return MNL_CB_OK;
	if (ps->filter.has_vm && (!tb[IVSHMEM_A_PEER_VM] ||
				  mnl_attr_get_u32(tb[IVSHMEM_A_PEER_VM]) !=
				  ps->filter.vm))
		return MNL_CB_OK;
	if (ps->ctx->json)
		peer_json(ps->ctx, tb);
	else
		peer_plain(tb);
	return MNL_CB_OK;
}

static int peer_show(struct ivshm_ctx *ctx, int argc, char **argv)
{
	struct peer_show ps = { .ctx = ctx };
	struct nlmsghdr *nlh;
	char what[64];
	int rc, err;

	rc = ivshm_parse_filter("peer show", argc, argv, true, &ps.filter);
	if (rc)
		return rc;
	if (ps.filter.help) {
		peer_usage(stdout);
		return IVSHM_EXIT_OK;
	}

	rc = ivshm_connect(ctx);
	if (rc)
		return rc;
	nlh = nl_request(&ctx->nl, IVSHMEM_CMD_PEER_GET, NLM_F_DUMP);
	if (ps.filter.dev) {
		mnl_attr_put_strz(nlh, IVSHMEM_A_DEV_NAME, ps.filter.dev);
		snprintf(what, sizeof(what), "peer show dev %s",
			 ps.filter.dev);
	} else {
		snprintf(what, sizeof(what), "peer show");
	}
	err = nl_transact(&ctx->nl, nlh, peer_cb, &ps);
	ivshm_list_end(ctx, err);
	return err ? ivshm_failed(what, err, NULL) : IVSHM_EXIT_OK;
}

int do_peer(struct ivshm_ctx *ctx, int argc, char **argv)
{
	if (!argc || ivshm_matches(*argv, "show"))
		return peer_show(ctx, argc ? argc - 1 : 0, argv + 1);
	if (ivshm_matches(*argv, "help")) {
		peer_usage(stdout);
		return IVSHM_EXIT_OK;
	}
	return ivshm_usage_err("peer", "peer: unknown command '%s'", *argv);
}
