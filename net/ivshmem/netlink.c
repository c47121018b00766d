// SPDX-License-Identifier: GPL-2.0
/*
 * The "ivshmem" generic netlink family: devices, peers and channels for
 * administrators, parameters to change, and events to watch. The ABI and
 * what each command does are in <uapi/linux/ivshmem_netlink.h>.
 *
 * Requests are validated by per-command policies, strictly (the family
 * starts its strict operations at the first command): an attribute a
 * command does not take, a wrong length or a value out of range is refused
 * by the netlink core with an extended ack naming it; what the policies
 * cannot say (which device, block multiples, one parameter against
 * another) is refused here, with a message too.
 *
 * Locking: the family is parallel_ops, so a channel dump waiting for a
 * socket lock holds up no other family; ivshm_nl_set_lock serialises
 * DEV_SET, which reads, changes and writes a device's parameters without
 * another set in between. Device and peer messages are
 * filled under ivshm_devices_lock (ivshm_dev_walk()), which keeps the
 * device registered. Channel dumps take socket locks, which rank above
 * ivshm_devices_lock (connect() looks devices up under its socket lock),
 * so they hold a device reference instead (ivshm_dev_get_from()).
 *
 * Events are multicast from wherever they happen, in process or softirq
 * context, with GFP_ATOMIC and only when someone listens. What they report
 * of the region was read once and is reported as read, never used.
 */

#include <linux/device.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>
#include <linux/jiffies.h>
#include <linux/mutex.h>
#include <net/genetlink.h>
#include <net/netlink.h>

#include "chan.h"
#include "device.h"
#include "netlink.h"
#include "params.h"
#include "rebalance.h"
#include "socket.h"
#include "stats.h"

enum ivshm_nl_mcgrp {
	IVSHM_NL_MCGRP_EVENTS,
};

static const struct genl_multicast_group ivshm_nl_mcgrps[] = {
	[IVSHM_NL_MCGRP_EVENTS] = { .name = IVSHMEM_GENL_MCGRP_EVENTS },
};

static struct genl_family ivshm_nl_family;

/* --- policies ------------------------------------------------------------ */

/* Not const: the 6.1 policy macros take the ranges by plain pointer. */

static struct netlink_range_validation ivshm_nl_dev_id_range __ro_after_init = {
	.min = 1, .max = INT_MAX,
};

static struct netlink_range_validation ivshm_nl_vm_range __ro_after_init = {
	.max = IVSHM_MAX_PEER_ID,
};

static struct netlink_range_validation ivshm_nl_interval_range __ro_after_init = {
	.max = IVSHM_P_INTERVAL_MAX,
};

static struct netlink_range_validation ivshm_nl_ms_range __ro_after_init = {
	.min = 1, .max = IVSHM_P_MS_MAX,
};

static struct netlink_range_validation ivshm_nl_idle_ms_range __ro_after_init = {
	.min = 1, .max = IVSHM_P_IDLE_MS_MAX,
};

static struct netlink_range_validation ivshm_nl_ring_range __ro_after_init = {
	.min = IVSHMEM_RING_MIN, .max = IVSHMEM_RING_MAX,
};

static struct netlink_range_validation ivshm_nl_poll_range __ro_after_init = {
	.min = 1, .max = IVSHM_P_POLL_US_MAX,
};

static struct netlink_range_validation ivshm_nl_coalesce_range __ro_after_init = {
	.max = IVSHM_P_COALESCE_US_MAX,
};

static struct netlink_range_validation ivshm_nl_bulk_range __ro_after_init = {
	.min = 1, .max = IVSHMEM_RING_MAX,
};

static struct netlink_range_validation ivshm_nl_idle_us_range __ro_after_init = {
	.min = 1, .max = IVSHM_P_IDLE_US_MAX,
};

static struct netlink_range_validation ivshm_nl_peer_ms_range __ro_after_init = {
	.min = IVSHM_P_PEER_MS_MIN, .max = IVSHM_P_PEER_MS_MAX,
};

static const struct nla_policy ivshm_nl_param_policy[IVSHMEM_PARAM_MAX + 1] = {
	[IVSHMEM_PARAM_REBALANCE] = NLA_POLICY_MAX(NLA_U8, 1),
	[IVSHMEM_PARAM_REBALANCE_INTERVAL] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_interval_range),
	[IVSHMEM_PARAM_REBALANCE_MS] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_ms_range),
	[IVSHMEM_PARAM_REBALANCE_IDLE_MS] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_idle_ms_range),
	[IVSHMEM_PARAM_CHAN_INITIAL] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_ring_range),
	[IVSHMEM_PARAM_CHAN_MIN] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_ring_range),
	[IVSHMEM_PARAM_CHAN_MAX] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_ring_range),
	[IVSHMEM_PARAM_POLL_MIN_US] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_poll_range),
	[IVSHMEM_PARAM_POLL_MAX_US] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_poll_range),
	[IVSHMEM_PARAM_COALESCE_US] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_coalesce_range),
	[IVSHMEM_PARAM_COALESCE_BULK] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_bulk_range),
	[IVSHMEM_PARAM_COALESCE_IDLE_US] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_idle_us_range),
	[IVSHMEM_PARAM_PEER_TIMEOUT_MS] =
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_peer_ms_range),
};

#define IVSHM_NL_DEV_POLICY						\
	[IVSHMEM_A_DEV_ID] =						\
		NLA_POLICY_FULL_RANGE(NLA_U32, &ivshm_nl_dev_id_range),	\
	[IVSHMEM_A_DEV_NAME] = { .type = NLA_NUL_STRING,		\
				 .len = sizeof_field(struct ivshm_dev, name) - 1 }

/* DEV_GET and PEER_GET: a device, or none. */
static const struct nla_policy ivshm_nl_dev_policy[IVSHMEM_A_DEV_NAME + 1] = {
	IVSHM_NL_DEV_POLICY,
};

static const struct nla_policy ivshm_nl_set_policy[IVSHMEM_A_DEV_PARAMS + 1] = {
	IVSHM_NL_DEV_POLICY,
	[IVSHMEM_A_DEV_PARAMS] = NLA_POLICY_NESTED(ivshm_nl_param_policy),
};

static const struct nla_policy ivshm_nl_chan_policy[IVSHMEM_A_PEER_VM + 1] = {
	IVSHM_NL_DEV_POLICY,
	[IVSHMEM_A_PEER_VM] = NLA_POLICY_FULL_RANGE(NLA_U32,
						    &ivshm_nl_vm_range),
};

/* --- which device a request names ---------------------------------------- */

struct ivshm_nl_sel {
	const struct nlattr *id, *name;	/* NULL: any */
};

static bool ivshm_nl_sel_match(const struct ivshm_nl_sel *sel,
			       const struct ivshm_dev *idev)
{
	if (sel->id && nla_get_u32(sel->id) != (u32)idev->index + 1)
		return false;
	if (sel->name && nla_strcmp(sel->name, idev->name))
		return false;
	return true;
}

static void ivshm_nl_sel_init(struct ivshm_nl_sel *sel, struct nlattr **tb)
{
	sel->id = tb ? tb[IVSHMEM_A_DEV_ID] : NULL;
	sel->name = tb ? tb[IVSHMEM_A_DEV_NAME] : NULL;
}

/* A doit must name its device; say which attribute would have. */
static int ivshm_nl_sel_required(const struct ivshm_nl_sel *sel,
				 struct genl_info *info)
{
	if (sel->id || sel->name)
		return 0;
	NL_SET_ERR_MSG(info->extack,
		       "a device is required: IVSHMEM_A_DEV_ID or IVSHMEM_A_DEV_NAME");
	NL_SET_ERR_ATTR_MISS(info->extack, NULL, IVSHMEM_A_DEV_NAME);
	return -EINVAL;
}

static void ivshm_nl_no_dev(const struct ivshm_nl_sel *sel,
			    struct netlink_ext_ack *extack)
{
	NL_SET_ERR_MSG_ATTR(extack, sel->name ? sel->name : sel->id,
			    "no such device");
}

/* A dump that names a device (args[3]: one matched) fails without one. */
static int ivshm_nl_dump_end(struct sk_buff *skb, struct netlink_callback *cb,
			     const struct ivshm_nl_sel *sel)
{
	if ((sel->id || sel->name) && !cb->args[3]) {
		ivshm_nl_no_dev(sel, cb->extack);
		return -ENODEV;
	}
	return skb->len;
}

static struct nlattr **ivshm_nl_dump_attrs(struct netlink_callback *cb)
{
#ifdef IVSHM_HAVE_GENL_INFO_DUMP
	return genl_info_dump(cb)->attrs;
#else
	return genl_dumpit_info(cb)->attrs;
#endif
}

/* --- device messages ----------------------------------------------------- */

static int ivshm_nl_put_dev_id(struct sk_buff *skb,
			       const struct ivshm_dev *idev)
{
	if (nla_put_u32(skb, IVSHMEM_A_DEV_ID, idev->index + 1) ||
	    nla_put_string(skb, IVSHMEM_A_DEV_NAME, idev->name))
		return -EMSGSIZE;
	return 0;
}

static int ivshm_nl_put_params(struct sk_buff *skb,
			       const struct ivshm_params *p)
{
	struct nlattr *nest = nla_nest_start(skb, IVSHMEM_A_DEV_PARAMS);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u8(skb, IVSHMEM_PARAM_REBALANCE, p->rebalance) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_REBALANCE_INTERVAL,
			p->rebalance_interval) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_REBALANCE_MS, p->rebalance_ms) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_REBALANCE_IDLE_MS,
			p->rebalance_idle_ms) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_CHAN_INITIAL, p->chan_initial) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_CHAN_MIN, p->chan_min) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_CHAN_MAX, p->chan_max) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_POLL_MIN_US, p->poll_min_us) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_POLL_MAX_US, p->poll_max_us) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_COALESCE_US, p->coalesce_us) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_COALESCE_BULK, p->coalesce_bulk) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_COALESCE_IDLE_US,
			p->coalesce_idle_us) ||
	    nla_put_u32(skb, IVSHMEM_PARAM_PEER_TIMEOUT_MS,
			p->peer_timeout_ms)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

/* The uapi attribute of each device counter (stats.h). */
static const u16 ivshm_nl_stat_attr[IVSHM_STAT_NR] = {
	[IVSHM_STAT_TX_RECORDS] = IVSHMEM_STAT_TX_RECORDS,
	[IVSHM_STAT_TX_BYTES] = IVSHMEM_STAT_TX_BYTES,
	[IVSHM_STAT_RX_RECORDS] = IVSHMEM_STAT_RX_RECORDS,
	[IVSHM_STAT_RX_BYTES] = IVSHMEM_STAT_RX_BYTES,
	[IVSHM_STAT_NOTIFIES] = IVSHMEM_STAT_NOTIFIES,
	[IVSHM_STAT_SUPPRESSED] = IVSHMEM_STAT_SUPPRESSED,
	[IVSHM_STAT_RINGS] = IVSHMEM_STAT_DOORBELLS_TX,
	[IVSHM_STAT_RING_ERRORS] = IVSHMEM_STAT_DOORBELL_ERRORS,
	[IVSHM_STAT_NAPI_POLLS] = IVSHMEM_STAT_NAPI_POLLS,
	[IVSHM_STAT_DATA_EVENTS] = IVSHMEM_STAT_DATA_EVENTS,
	[IVSHM_STAT_MODERATED] = IVSHMEM_STAT_MODERATED,
	[IVSHM_STAT_CTRL_POLLS] = IVSHMEM_STAT_CTRL_POLLS,
	[IVSHM_STAT_CTRL_EVENTS] = IVSHMEM_STAT_CTRL_EVENTS,
	[IVSHM_STAT_CTRL_FLOODS] = IVSHMEM_STAT_CTRL_FLOODS,
	[IVSHM_STAT_PROTO_ERRORS] = IVSHMEM_STAT_PROTO_ERRORS,
	[IVSHM_STAT_PEERS_LOST] = IVSHMEM_STAT_PEERS_LOST,
	[IVSHM_STAT_REBALANCES] = IVSHMEM_STAT_REBALANCES,
	[IVSHM_STAT_GROWN] = IVSHMEM_STAT_GROWN,
	[IVSHM_STAT_SHRUNK] = IVSHMEM_STAT_SHRUNK,
	[IVSHM_STAT_GROW_FAILED] = IVSHMEM_STAT_GROW_FAILED,
	[IVSHM_STAT_LOCK_BREAKS] = IVSHMEM_STAT_LOCK_BREAKS,
	[IVSHM_STAT_LOCK_LOST] = IVSHMEM_STAT_LOCK_LOST,
};

static int ivshm_nl_put_dev_stats(struct sk_buff *skb, struct ivshm_dev *idev)
{
	struct nlattr *nest = nla_nest_start(skb, IVSHMEM_A_DEV_STATS);
	u64 v[IVSHM_STAT_NR], rx = 0;
	unsigned int i;

	if (!nest)
		return -EMSGSIZE;
	ivshm_stats_read(idev, v);
	for (i = 0; i < idev->nr_vectors; i++)
		rx += atomic64_read(&idev->doorbells[i]);
	for (i = 0; i < IVSHM_STAT_NR; i++)
		if (nla_put_u64_64bit(skb, ivshm_nl_stat_attr[i], v[i],
				      IVSHMEM_STAT_PAD))
			goto cancel;
	if (nla_put_u64_64bit(skb, IVSHMEM_STAT_DOORBELLS_RX, rx,
			      IVSHMEM_STAT_PAD))
		goto cancel;
	nla_nest_end(skb, nest);
	return 0;
cancel:
	nla_nest_cancel(skb, nest);
	return -EMSGSIZE;
}

/* Caller holds ivshm_devices_lock. */
static int ivshm_nl_fill_dev(struct sk_buff *skb, struct ivshm_dev *idev,
			     u32 portid, u32 seq, int flags, u8 cmd)
{
	const struct ivshm_layout *l = &idev->layout;
	struct ivshm_region_view v;
	struct ivshm_params p;
	void *hdr;

	hdr = genlmsg_put(skb, portid, seq, &ivshm_nl_family, flags, cmd);
	if (!hdr)
		return -EMSGSIZE;
	ivshm_params_read(idev, &p);
	/* Region values, read once: what the peers' bookkeeping says. */
	ivshm_view_region(l, &v);
	if (ivshm_nl_put_dev_id(skb, idev) ||
	    nla_put_string(skb, IVSHMEM_A_DEV_TRANSPORT, idev->transport) ||
	    (idev->parent &&
	     nla_put_string(skb, IVSHMEM_A_DEV_PARENT,
			    dev_name(idev->parent))) ||
	    nla_put_u8(skb, IVSHMEM_A_DEV_MODE,
		       idev->nr_vectors ? IVSHMEM_MODE_DOORBELL :
					  IVSHMEM_MODE_PLAIN) ||
	    nla_put_u32(skb, IVSHMEM_A_DEV_VECTORS, idev->nr_vectors) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_DEV_REGION_SIZE,
			      idev->region_size, IVSHMEM_A_PAD) ||
	    nla_put_u32(skb, IVSHMEM_A_DEV_PROTOCOL, IVSHM_VERSION) ||
	    (idev->initialised &&
	     nla_put_flag(skb, IVSHMEM_A_DEV_INITIALISED)) ||
	    nla_put_u32(skb, IVSHMEM_A_DEV_MAX_PEERS, l->max_peers) ||
	    nla_put_u32(skb, IVSHMEM_A_DEV_MAX_CHANNELS, l->max_channels) ||
	    nla_put_u32(skb, IVSHMEM_A_DEV_BLOCK_SIZE, IVSHM_BLOCK_SIZE) ||
	    nla_put_u32(skb, IVSHMEM_A_DEV_BLOCKS, l->nr_blocks) ||
	    nla_put_u32(skb, IVSHMEM_A_DEV_PEERS, v.peers_alive) ||
	    (!idev->nr_vectors &&
	     nla_put_u32(skb, IVSHMEM_A_DEV_POLL_US,
			 READ_ONCE(idev->poll_us))) ||
	    ivshm_nl_put_params(skb, &p) ||
	    ivshm_nl_put_dev_stats(skb, idev))
		goto cancel;
	if (READ_ONCE(idev->joined) &&
	    (nla_put_flag(skb, IVSHMEM_A_DEV_JOINED) ||
	     nla_put_u32(skb, IVSHMEM_A_DEV_VM_ID, idev->own_id) ||
	     nla_put_u32(skb, IVSHMEM_A_DEV_INCARNATION, READ_ONCE(idev->inc)) ||
	     nla_put_u32(skb, IVSHMEM_A_DEV_CHANNELS, v.active_channels) ||
	     nla_put_u32(skb, IVSHMEM_A_DEV_BLOCKS_FREE, v.bitmap_free)))
		goto cancel;
	genlmsg_end(skb, hdr);
	return 0;
cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

struct ivshm_nl_get {
	const struct ivshm_nl_sel *sel;
	struct sk_buff *skb;
	struct genl_info *info;
};

static int ivshm_nl_get_one(struct ivshm_dev *idev, void *arg)
{
	struct ivshm_nl_get *g = arg;

	if (!ivshm_nl_sel_match(g->sel, idev))
		return 0;
	return ivshm_nl_fill_dev(g->skb, idev, g->info->snd_portid,
				 g->info->snd_seq, 0, IVSHMEM_CMD_DEV_GET) ?:
	       1;
}

static int ivshm_nl_dev_get_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct ivshm_nl_get g = { .info = info };
	struct ivshm_nl_sel sel;
	int ret;

	ivshm_nl_sel_init(&sel, info->attrs);
	ret = ivshm_nl_sel_required(&sel, info);
	if (ret)
		return ret;
	g.sel = &sel;
	g.skb = genlmsg_new(NLMSG_GOODSIZE, GFP_KERNEL);
	if (!g.skb)
		return -ENOMEM;
	ret = ivshm_dev_walk(0, ivshm_nl_get_one, &g);
	if (ret == 1)
		return genlmsg_reply(g.skb, info);
	nlmsg_free(g.skb);
	if (!ret || ret == -ENODEV) {
		ivshm_nl_no_dev(&sel, info->extack);
		return -ENODEV;
	}
	return ret;
}

struct ivshm_nl_dump {
	struct sk_buff *skb;
	struct netlink_callback *cb;
	struct ivshm_nl_sel sel;
};

static int ivshm_nl_dump_one(struct ivshm_dev *idev, void *arg)
{
	struct ivshm_nl_dump *d = arg;
	int ret;

	if (!ivshm_nl_sel_match(&d->sel, idev))
		return 0;
	d->cb->args[3] = 1;
	ret = ivshm_nl_fill_dev(d->skb, idev, NETLINK_CB(d->cb->skb).portid,
				d->cb->nlh->nlmsg_seq, NLM_F_MULTI,
				IVSHMEM_CMD_DEV_GET);
	if (ret)
		return ret;
	d->cb->args[0] = idev->index + 1;
	return 0;
}

/* A dump that calls @fn for the devices from index cb->args[0] on. */
static int ivshm_nl_walk_dump(struct sk_buff *skb, struct netlink_callback *cb,
			      int (*fn)(struct ivshm_dev *idev, void *arg))
{
	struct ivshm_nl_dump d = { .skb = skb, .cb = cb };
	int ret;

	ivshm_nl_sel_init(&d.sel, ivshm_nl_dump_attrs(cb));
	ret = ivshm_dev_walk(cb->args[0], fn, &d);
	/* A full skb ends this part of the dump, not the dump. */
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	if (ret && ret != -ENODEV)
		return ret;
	return ivshm_nl_dump_end(skb, cb, &d.sel);
}

static int ivshm_nl_dev_dumpit(struct sk_buff *skb,
			       struct netlink_callback *cb)
{
	return ivshm_nl_walk_dump(skb, cb, ivshm_nl_dump_one);
}

/* --- setting parameters -------------------------------------------------- */

/* One DEV_SET at a time: each reads, changes and writes a whole set. */
static DEFINE_MUTEX(ivshm_nl_set_lock);

struct ivshm_nl_set {
	const struct ivshm_nl_sel *sel;
	struct nlattr **tb;
	struct netlink_ext_ack *extack;
};

static void ivshm_nl_get_u32(struct nlattr **tb, int type, u32 *v)
{
	if (tb[type])
		*v = nla_get_u32(tb[type]);
}

static void ivshm_nl_notify_dev(struct ivshm_dev *idev,
				const struct ivshm_params *p);

static int ivshm_nl_set_one(struct ivshm_dev *idev, void *arg)
{
	static const int sizes[] = {
		IVSHMEM_PARAM_CHAN_INITIAL, IVSHMEM_PARAM_CHAN_MIN,
		IVSHMEM_PARAM_CHAN_MAX,
	};
	struct ivshm_nl_set *s = arg;
	struct nlattr **tb = s->tb;
	struct ivshm_params p;
	const char *why;
	unsigned int i;
	int bad;

	if (!ivshm_nl_sel_match(s->sel, idev))
		return 0;
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		if (tb[sizes[i]] &&
		    nla_get_u32(tb[sizes[i]]) % IVSHM_BLOCK_SIZE) {
			NL_SET_ERR_MSG_ATTR(s->extack, tb[sizes[i]],
					    "channel size must be a multiple of 4096");
			return -EINVAL;
		}
	}
	ivshm_params_read(idev, &p);
	if (tb[IVSHMEM_PARAM_REBALANCE])
		p.rebalance = nla_get_u8(tb[IVSHMEM_PARAM_REBALANCE]);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_REBALANCE_INTERVAL,
			 &p.rebalance_interval);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_REBALANCE_MS, &p.rebalance_ms);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_REBALANCE_IDLE_MS,
			 &p.rebalance_idle_ms);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_CHAN_INITIAL, &p.chan_initial);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_CHAN_MIN, &p.chan_min);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_CHAN_MAX, &p.chan_max);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_POLL_MIN_US, &p.poll_min_us);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_POLL_MAX_US, &p.poll_max_us);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_COALESCE_US, &p.coalesce_us);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_COALESCE_BULK, &p.coalesce_bulk);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_COALESCE_IDLE_US,
			 &p.coalesce_idle_us);
	ivshm_nl_get_u32(tb, IVSHMEM_PARAM_PEER_TIMEOUT_MS,
			 &p.peer_timeout_ms);
	if (tb[IVSHMEM_PARAM_CHAN_INITIAL] &&
	    p.chan_initial > (u64)idev->layout.nr_blocks << IVSHM_BLOCK_SHIFT) {
		NL_SET_ERR_MSG_ATTR(s->extack, tb[IVSHMEM_PARAM_CHAN_INITIAL],
				    "chan_initial is larger than the region's data area");
		return -EINVAL;
	}
	why = ivshm_params_check(&p, &bad);
	if (why) {
		/* Blame the attribute sent, else the one it clashes with. */
		if (!tb[bad] && bad == IVSHMEM_PARAM_CHAN_MIN)
			bad = IVSHMEM_PARAM_CHAN_INITIAL;
		else if (!tb[bad] && bad == IVSHMEM_PARAM_CHAN_MAX)
			bad = IVSHMEM_PARAM_CHAN_INITIAL;
		else if (!tb[bad] && bad == IVSHMEM_PARAM_POLL_MIN_US)
			bad = IVSHMEM_PARAM_POLL_MAX_US;
		/* A constant from ivshm_params_check(), as extack wants. */
		s->extack->_msg = why;
		NL_SET_BAD_ATTR(s->extack, tb[bad]);
		return -EINVAL;
	}
	ivshm_params_write(idev, &p);
	ivshm_rebal_params_changed(idev);
	ivshm_nl_notify_dev(idev, &p);
	return 1;
}

static int ivshm_nl_dev_set_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct nlattr *tb[IVSHMEM_PARAM_MAX + 1];
	struct ivshm_nl_set s = { .tb = tb, .extack = info->extack };
	struct ivshm_nl_sel sel;
	int ret;

	ivshm_nl_sel_init(&sel, info->attrs);
	ret = ivshm_nl_sel_required(&sel, info);
	if (ret)
		return ret;
	if (!info->attrs[IVSHMEM_A_DEV_PARAMS]) {
		NL_SET_ERR_MSG(info->extack,
			       "no parameters to set: IVSHMEM_A_DEV_PARAMS");
		NL_SET_ERR_ATTR_MISS(info->extack, NULL, IVSHMEM_A_DEV_PARAMS);
		return -EINVAL;
	}
	ret = nla_parse_nested(tb, IVSHMEM_PARAM_MAX,
			       info->attrs[IVSHMEM_A_DEV_PARAMS],
			       ivshm_nl_param_policy, info->extack);
	if (ret)
		return ret;
	s.sel = &sel;
	mutex_lock(&ivshm_nl_set_lock);
	ret = ivshm_dev_walk(0, ivshm_nl_set_one, &s);
	mutex_unlock(&ivshm_nl_set_lock);
	if (ret == 1)
		return 0;
	if (!ret || ret == -ENODEV) {
		ivshm_nl_no_dev(&sel, info->extack);
		return -ENODEV;
	}
	return ret;
}

/* --- peers --------------------------------------------------------------- */

static int ivshm_nl_fill_peer(struct sk_buff *skb, struct ivshm_dev *idev,
			      u32 vm, struct netlink_callback *cb)
{
	bool self = READ_ONCE(idev->joined) && vm == idev->own_id;
	struct ivshm_peer_seen *seen = &idev->seen[vm];
	struct ivshm_peer_slot p;
	void *hdr;

	if (!ivshm_peer_read(&idev->layout, vm, &p) ||
	    p.state == IVSHM_PEER_FREE)
		return 0;
	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
			  cb->nlh->nlmsg_seq, &ivshm_nl_family, NLM_F_MULTI,
			  IVSHMEM_CMD_PEER_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (ivshm_nl_put_dev_id(skb, idev) ||
	    nla_put_u32(skb, IVSHMEM_A_PEER_VM, vm) ||
	    nla_put_u8(skb, IVSHMEM_A_PEER_STATE, min(p.state, 255u)) ||
	    nla_put_u32(skb, IVSHMEM_A_PEER_INCARNATION, p.incarnation) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_PEER_HEARTBEAT, p.heartbeat,
			      IVSHMEM_A_PAD) ||
	    nla_put_u32(skb, IVSHMEM_A_PEER_VECTORS, p.vectors))
		goto cancel;
	if (self) {
		if (nla_put_flag(skb, IVSHMEM_A_PEER_SELF) ||
		    nla_put_u32(skb, IVSHMEM_A_PEER_BEAT_AGE_MS, 0))
			goto cancel;
	} else if (READ_ONCE(idev->joined) && READ_ONCE(seen->known)) {
		unsigned long age = jiffies - READ_ONCE(seen->changed);

		if (nla_put_u32(skb, IVSHMEM_A_PEER_BEAT_AGE_MS,
				jiffies_to_msecs(age)))
			goto cancel;
	}
	genlmsg_end(skb, hdr);
	return 0;
cancel:
	genlmsg_cancel(skb, hdr);
	return -EMSGSIZE;
}

static int ivshm_nl_peer_dump_one(struct ivshm_dev *idev, void *arg)
{
	struct ivshm_nl_dump *d = arg;
	struct netlink_callback *cb = d->cb;
	u32 vm;
	int ret;

	if (!ivshm_nl_sel_match(&d->sel, idev))
		return 0;
	cb->args[3] = 1;
	/* args[0]: the device index to go on with, args[1]: its next VM id. */
	if (cb->args[0] != idev->index) {
		cb->args[0] = idev->index;
		cb->args[1] = 0;
	}
	for (vm = cb->args[1]; vm < idev->layout.max_peers; vm++) {
		ret = ivshm_nl_fill_peer(d->skb, idev, vm, cb);
		if (ret)
			return ret;
		cb->args[1] = vm + 1;
	}
	cb->args[0] = idev->index + 1;
	cb->args[1] = 0;
	return 0;
}

static int ivshm_nl_peer_dumpit(struct sk_buff *skb,
				struct netlink_callback *cb)
{
	return ivshm_nl_walk_dump(skb, cb, ivshm_nl_peer_dump_one);
}

/* --- channels ------------------------------------------------------------ */

static int ivshm_nl_put_chan_stats(struct sk_buff *skb,
				   const struct ivshm_sock_info *in, bool rx)
{
	const struct ivshm_conn_stats *cs = &in->cs;
	struct nlattr *nest = nla_nest_start(skb, IVSHMEM_A_CHAN_STATS);

	if (!nest)
		return -EMSGSIZE;
	if (nla_put_u64_64bit(skb, IVSHMEM_CHAN_STAT_RECORDS,
			      rx ? cs->rx_records : cs->tx_records,
			      IVSHMEM_CHAN_STAT_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_CHAN_STAT_BYTES,
			      rx ? cs->rx_bytes : cs->tx_bytes,
			      IVSHMEM_CHAN_STAT_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_CHAN_STAT_NOTIFIES, cs->notifies,
			      IVSHMEM_CHAN_STAT_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_CHAN_STAT_DOORBELLS, cs->rings,
			      IVSHMEM_CHAN_STAT_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_CHAN_STAT_SUPPRESSED,
			      cs->suppressed, IVSHMEM_CHAN_STAT_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_CHAN_STAT_WAKEUPS,
			      rx ? cs->rx_wakeups : cs->tx_wakeups,
			      IVSHMEM_CHAN_STAT_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_CHAN_STAT_PROTO_ERRORS,
			      cs->proto_errors, IVSHMEM_CHAN_STAT_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_CHAN_STAT_RESIZES, cs->resizes,
			      IVSHMEM_CHAN_STAT_PAD)) {
		nla_nest_cancel(skb, nest);
		return -EMSGSIZE;
	}
	nla_nest_end(skb, nest);
	return 0;
}

static int ivshm_nl_fill_chan(struct sk_buff *skb, struct ivshm_dev *idev,
			      u32 idx, bool rx,
			      const struct ivshm_sock_info *in,
			      struct netlink_callback *cb)
{
	u32 own = idev->own_id;
	void *hdr;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid,
			  cb->nlh->nlmsg_seq, &ivshm_nl_family, NLM_F_MULTI,
			  IVSHMEM_CMD_CHAN_GET);
	if (!hdr)
		return -EMSGSIZE;
	if (ivshm_nl_put_dev_id(skb, idev) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_INDEX, idx) ||
	    nla_put_u8(skb, IVSHMEM_A_CHAN_DIR,
		       rx ? IVSHMEM_CHAN_DIR_RX : IVSHMEM_CHAN_DIR_TX) ||
	    nla_put_u8(skb, IVSHMEM_A_CHAN_STATE, min(in->chan_state, 255u)) ||
	    nla_put_u8(skb, IVSHMEM_A_CHAN_SOCK_STATE, in->state) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_SENDER_VM, rx ? in->peer_vm : own) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_RECEIVER_VM,
			rx ? own : in->peer_vm) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_SENDER_PID,
			(u32)(rx ? in->peer_pid : in->owner_pid)) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_LOCAL_PORT, in->local_port) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_PEER_PORT, in->peer_port) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_CHAN_OFFSET, in->offset,
			      IVSHMEM_A_PAD) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_SIZE, in->ring) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_OLD_SIZE, in->old_ring) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_CHAN_QUEUED, in->queued,
			      IVSHMEM_A_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_CHAN_HEAD, in->head,
			      IVSHMEM_A_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_CHAN_TAIL, in->tail,
			      IVSHMEM_A_PAD) ||
	    nla_put_u64_64bit(skb, IVSHMEM_A_CHAN_HEAD_TOUCH, in->touch,
			      IVSHMEM_A_PAD) ||
	    (in->full && nla_put_flag(skb, IVSHMEM_A_CHAN_FULL)) ||
	    (in->fixed && nla_put_flag(skb, IVSHMEM_A_CHAN_FIXED)) ||
	    ivshm_nl_put_chan_stats(skb, in, rx)) {
		genlmsg_cancel(skb, hdr);
		return -EMSGSIZE;
	}
	genlmsg_end(skb, hdr);
	return 0;
}

/* The channels of one device, from where the last part of the dump ended
 * (args[1]: channel, args[2]: side). Sleeps: takes socket locks.
 */
static int ivshm_nl_chan_dump_dev(struct sk_buff *skb, struct ivshm_dev *idev,
				  struct netlink_callback *cb,
				  const struct nlattr *vm_attr)
{
	struct ivshm_sock_info in;
	u32 i;
	int k, ret = 0;

	for (i = cb->args[1]; i < idev->layout.max_channels && !ret; i++) {
		struct ivshm_sock *isk[2];

		ivshm_slot_get(idev, i, isk);
		for (k = cb->args[2]; k < 2; k++) {
			if (!isk[k] || !ivshm_sock_info(isk[k], idev, i, k, &in))
				continue;
			if (vm_attr && nla_get_u32(vm_attr) != in.peer_vm)
				continue;
			ret = ivshm_nl_fill_chan(skb, idev, i, k, &in, cb);
			if (ret)
				break;
			cb->args[2] = k + 1;
		}
		ivshm_slot_put(isk);
		if (!ret) {
			cb->args[1] = i + 1;
			cb->args[2] = 0;
		}
	}
	return ret;
}

static int ivshm_nl_chan_dumpit(struct sk_buff *skb,
				struct netlink_callback *cb)
{
	struct nlattr **attrs = ivshm_nl_dump_attrs(cb);
	struct ivshm_nl_sel sel;
	struct ivshm_dev *idev;
	int index, ret = 0;

	ivshm_nl_sel_init(&sel, attrs);
	/* args[0]: the device index to go on with. */
	while ((idev = ivshm_dev_get_from(cb->args[0]))) {
		if (cb->args[0] != idev->index) {
			cb->args[0] = idev->index;
			cb->args[1] = 0;
			cb->args[2] = 0;
		}
		if (ivshm_nl_sel_match(&sel, idev)) {
			cb->args[3] = 1;
			ret = ivshm_nl_chan_dump_dev(skb, idev, cb,
						     attrs[IVSHMEM_A_PEER_VM]);
		}
		index = idev->index;
		/* The last reference may let unregister free it. */
		ivshm_dev_put(idev);
		if (ret)
			break;
		cb->args[0] = index + 1;
		cb->args[1] = 0;
		cb->args[2] = 0;
	}
	if (ret == -EMSGSIZE && skb->len)
		return skb->len;
	return ret ? ret : ivshm_nl_dump_end(skb, cb, &sel);
}

/* --- events -------------------------------------------------------------- */

static struct sk_buff *ivshm_nl_event_new(struct ivshm_dev *idev, u8 cmd,
					  void **hdr)
{
	struct sk_buff *skb;

	if (!genl_has_listeners(&ivshm_nl_family, &init_net,
				IVSHM_NL_MCGRP_EVENTS))
		return NULL;
	skb = genlmsg_new(NLMSG_GOODSIZE, GFP_ATOMIC);
	if (!skb)
		return NULL;
	*hdr = genlmsg_put(skb, 0, 0, &ivshm_nl_family, 0, cmd);
	if (!*hdr || ivshm_nl_put_dev_id(skb, idev)) {
		nlmsg_free(skb);
		return NULL;
	}
	return skb;
}

static void ivshm_nl_event_send(struct sk_buff *skb, void *hdr)
{
	genlmsg_end(skb, hdr);
	genlmsg_multicast(&ivshm_nl_family, skb, 0, IVSHM_NL_MCGRP_EVENTS,
			  GFP_ATOMIC);
}

/**
 * ivshm_nl_peer_event() - announce a VM that came or went
 * @idev: the device
 * @cmd: IVSHMEM_CMD_PEER_UP or IVSHMEM_CMD_PEER_DOWN
 * @vm: its VM id
 * @inc: its incarnation (for DOWN, the one that was lost)
 * @state: for DOWN, the state its slot was found in; -1 for none
 *
 * Context: any but hard interrupt.
 */
void ivshm_nl_peer_event(struct ivshm_dev *idev, u8 cmd, u32 vm, u32 inc,
			 int state)
{
	struct sk_buff *skb;
	void *hdr;

	skb = ivshm_nl_event_new(idev, cmd, &hdr);
	if (!skb)
		return;
	if (nla_put_u32(skb, IVSHMEM_A_PEER_VM, vm) ||
	    nla_put_u32(skb, IVSHMEM_A_PEER_INCARNATION, inc) ||
	    (state >= 0 &&
	     nla_put_u8(skb, IVSHMEM_A_PEER_STATE, min(state, 255)))) {
		nlmsg_free(skb);
		return;
	}
	ivshm_nl_event_send(skb, hdr);
}

/**
 * ivshm_nl_chan_event() - announce a channel of ours opened, resized, freed
 * @idev: the device
 * @cmd: IVSHMEM_CMD_CHAN_NEW, _RESIZED or _DEL
 * @c: the channel
 *
 * Context: any but hard interrupt.
 */
void ivshm_nl_chan_event(struct ivshm_dev *idev, u8 cmd,
			 const struct ivshm_nl_chan *c)
{
	struct sk_buff *skb;
	void *hdr;

	skb = ivshm_nl_event_new(idev, cmd, &hdr);
	if (!skb)
		return;
	if (nla_put_u32(skb, IVSHMEM_A_CHAN_INDEX, c->idx) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_SENDER_VM, c->sender) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_RECEIVER_VM, c->receiver) ||
	    nla_put_u32(skb, IVSHMEM_A_CHAN_SIZE, c->size) ||
	    (c->ports &&
	     (nla_put_u32(skb, IVSHMEM_A_CHAN_LOCAL_PORT, c->sport) ||
	      nla_put_u32(skb, IVSHMEM_A_CHAN_PEER_PORT, c->dport)))) {
		nlmsg_free(skb);
		return;
	}
	ivshm_nl_event_send(skb, hdr);
}

/**
 * ivshm_nl_proto_error() - announce a peer's value that failed a check
 * @idev: the device
 * @idx: the channel concerned, or IVSHM_NL_NO_CHAN
 * @what: which check, a constant string
 *
 * A hostile peer can fail checks as fast as it writes, so at most a burst
 * of these per second and device reach the listeners; the device's
 * proto_errors counter counts them all.
 *
 * Context: any but hard interrupt.
 */
void ivshm_nl_proto_error(struct ivshm_dev *idev, u32 idx, const char *what)
{
	struct sk_buff *skb;
	void *hdr;

	if (!genl_has_listeners(&ivshm_nl_family, &init_net,
				IVSHM_NL_MCGRP_EVENTS) ||
	    !__ratelimit(&idev->nl_errors))
		return;
	skb = ivshm_nl_event_new(idev, IVSHMEM_CMD_PROTO_ERROR, &hdr);
	if (!skb)
		return;
	if ((idx != IVSHM_NL_NO_CHAN &&
	     nla_put_u32(skb, IVSHMEM_A_CHAN_INDEX, idx)) ||
	    nla_put_string(skb, IVSHMEM_A_ERROR_MSG, what)) {
		nlmsg_free(skb);
		return;
	}
	ivshm_nl_event_send(skb, hdr);
}

static void ivshm_nl_notify_dev(struct ivshm_dev *idev,
				const struct ivshm_params *p)
{
	struct sk_buff *skb;
	void *hdr;

	skb = ivshm_nl_event_new(idev, IVSHMEM_CMD_DEV_CHANGED, &hdr);
	if (!skb)
		return;
	if (ivshm_nl_put_params(skb, p)) {
		nlmsg_free(skb);
		return;
	}
	ivshm_nl_event_send(skb, hdr);
}

/* Most PROTO_ERROR events a device sends in a burst, and per second. */
#define IVSHM_NL_ERROR_BURST	10

void ivshm_nl_dev_init(struct ivshm_dev *idev)
{
	ratelimit_state_init(&idev->nl_errors, HZ, IVSHM_NL_ERROR_BURST);
	/* Dropped events are no news for the kernel log. */
	ratelimit_set_flags(&idev->nl_errors, RATELIMIT_MSG_ON_RELEASE);
}

/* --- the family ---------------------------------------------------------- */

static const struct genl_ops ivshm_nl_ops[] = {
	{
		.cmd = IVSHMEM_CMD_DEV_GET,
		.doit = ivshm_nl_dev_get_doit,
		.dumpit = ivshm_nl_dev_dumpit,
		.policy = ivshm_nl_dev_policy,
		.maxattr = ARRAY_SIZE(ivshm_nl_dev_policy) - 1,
	},
	{
		.cmd = IVSHMEM_CMD_DEV_SET,
		.doit = ivshm_nl_dev_set_doit,
		.policy = ivshm_nl_set_policy,
		.maxattr = ARRAY_SIZE(ivshm_nl_set_policy) - 1,
		.flags = GENL_ADMIN_PERM,
	},
	{
		.cmd = IVSHMEM_CMD_PEER_GET,
		.dumpit = ivshm_nl_peer_dumpit,
		.policy = ivshm_nl_dev_policy,
		.maxattr = ARRAY_SIZE(ivshm_nl_dev_policy) - 1,
	},
	{
		.cmd = IVSHMEM_CMD_CHAN_GET,
		.dumpit = ivshm_nl_chan_dumpit,
		.policy = ivshm_nl_chan_policy,
		.maxattr = ARRAY_SIZE(ivshm_nl_chan_policy) - 1,
	},
};

static struct genl_family ivshm_nl_family __ro_after_init = {
	.name = IVSHMEM_GENL_NAME,
	.version = IVSHMEM_GENL_VERSION,
	.module = THIS_MODULE,
	/* Channel dumps wait for socket locks: not under genl_mutex. */
	.parallel_ops = true,
	.ops = ivshm_nl_ops,
	.n_ops = ARRAY_SIZE(ivshm_nl_ops),
	/* Every command validates strictly, reserved header fields too. */
	.resv_start_op = IVSHMEM_CMD_DEV_GET,
	.mcgrps = ivshm_nl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(ivshm_nl_mcgrps),
};

int __init ivshm_nl_init(void)
{
	return genl_register_family(&ivshm_nl_family);
}

void ivshm_nl_exit(void)
{
	genl_unregister_family(&ivshm_nl_family);
}

MODULE_ALIAS_GENL_FAMILY(IVSHMEM_GENL_NAME);
