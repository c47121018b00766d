/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ivshm: configure and observe AF_IVSHMEM devices over the "ivshmem"
 * generic netlink family. What the object files (dev.c, peer.c, chan.c,
 * monitor.c) share with the front end (ivshm.c).
 */
#ifndef IVSHM_H
#define IVSHM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <linux/ivshmem.h>
#include <linux/ivshmem_netlink.h>

#include "json.h"
#include "nl.h"

#define IVSHM_VERSION		"1.0"
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
/* Device names: the kernel's policy allows 15 bytes. */
#define IVSHM_NAME_MAX		15
/* Big enough for any device name ivshm prints, derived ones included. */
#define IVSHM_NAME_BUF		24

enum ivshm_exit {
	IVSHM_EXIT_OK		= 0,
	IVSHM_EXIT_FAIL		= 1,	/* the request failed */
	IVSHM_EXIT_USAGE	= 2,	/* bad command line; nothing sent */
	IVSHM_EXIT_NOFAMILY	= 3,	/* no "ivshmem" family in the kernel */
};

struct ivshm_ctx {
	bool stats;		/* -s */
	bool json;		/* -j, or -p */
	bool pretty;		/* -p */
	bool listing;		/* the JSON array of a show is open */
	struct json jw;
	struct ivshm_nl nl;
};

/* Object entry points: the words after the object, usage checked first. */
int do_dev(struct ivshm_ctx *ctx, int argc, char **argv);
int do_peer(struct ivshm_ctx *ctx, int argc, char **argv);
int do_chan(struct ivshm_ctx *ctx, int argc, char **argv);
int do_monitor(struct ivshm_ctx *ctx, int argc, char **argv);

/* Usage texts, for "help" (stdout) and the top-level usage. */
void dev_usage(FILE *f);
void dev_set_usage(FILE *f);
void peer_usage(FILE *f);
void chan_usage(FILE *f);
void monitor_usage(FILE *f);

/* Command line (ivshm.c) */

/* @word is a non-empty prefix of @keyword (or all of it). */
bool ivshm_matches(const char *word, const char *keyword);
/*
 * Report a usage error: "ivshm: <msg>" and a pointer to "ivshm @topic
 * help". Returns IVSHM_EXIT_USAGE.
 */
int ivshm_usage_err(const char *topic, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Value parsers. Each reports its own usage error, naming @cmd (the
 * command, "dev set") and @name (the parameter), and returns 0 or
 * IVSHM_EXIT_USAGE. Numbers are decimal, without sign or blanks.
 */
int ivshm_parse_u32(const char *cmd, const char *name, const char *s,
		    uint32_t min, uint32_t max, uint32_t *val);
/* Bytes, or with suffix k/K (KiB) or m/M (MiB); @block: multiple of 4 KiB */
int ivshm_parse_size(const char *cmd, const char *name, const char *s,
		     uint32_t min, uint32_t max, bool block, uint32_t *val);
/* A plausible device name. */
int ivshm_parse_dev(const char *cmd, const char *s);
/* Take the value of keyword argv[0] from argv[1]; false if missing. */
bool ivshm_next_arg(int *argc, char ***argv);

/* [ dev DEV ] [ vm N ] of peer show, chan show and (dev only) monitor */
struct ivshm_filter {
	const char *dev;
	bool has_vm;
	uint32_t vm;
	bool help;		/* "help" was among the words */
};

int ivshm_parse_filter(const char *cmd, int argc, char **argv, bool vm_ok,
		       struct ivshm_filter *f);
/* A message naming another device than the filter's (see peer.c). */
bool ivshm_filter_dev_skip(const struct ivshm_filter *f,
			   const struct nlattr *const *tb);

/* Netlink (ivshm.c) */

/* Open the socket and resolve the family; returns an exit code. */
int ivshm_connect(struct ivshm_ctx *ctx);
/*
 * Report a failed request: "ivshm: @what: <error>[ (@hint)]". Returns
 * IVSHM_EXIT_FAIL.
 */
int ivshm_failed(const char *what, int err, const char *hint);

/* Attribute sets the kernel sends, for nl_parse_msg()/nl_parse_nested(). */
extern struct nl_policy ivshm_attr_policy;	/* IVSHMEM_A_* */
extern struct nl_policy ivshm_param_policy;	/* IVSHMEM_PARAM_* */
extern struct nl_policy ivshm_stat_policy;	/* IVSHMEM_STAT_* */
extern struct nl_policy ivshm_chan_stat_policy;	/* IVSHMEM_CHAN_STAT_* */

/* Output (ivshm.c) */

/* Any unsigned attribute (validated, so its length gives its width). */
uint64_t ivshm_attr_uint(const struct nlattr *a);
/*
 * The device a message names: IVSHMEM_A_DEV_NAME, or "ivshmN" made from
 * IVSHMEM_A_DEV_ID if the name is missing; NULL if neither is there.
 */
const char *ivshm_dev_name(const struct nlattr *const *tb,
			   char buf[IVSHM_NAME_BUF]);
/* Name of enum value @v, or NULL if @v is not one of the @n @names. */
const char *ivshm_enum_name(const char *const *names, size_t n, uint64_t v);
#define IVSHM_ENUM(names, v) ivshm_enum_name(names, ARRAY_SIZE(names), v)
/*
 * @s for plain output, in @buf: control characters become '?', so that a
 * string from the kernel cannot break lines or drive the terminal.
 */
const char *ivshm_safe(char *buf, size_t len, const char *s);
#define IVSHM_SAFE_BUF		256
/* "4MiB", "16KiB" when exact, else the bytes. */
const char *ivshm_size_str(char *buf, size_t len, uint64_t v);

/* JSON members from attributes; nothing when @a is NULL. */
void ivshm_json_uint(struct json *j, const char *key,
		     const struct nlattr *a);
void ivshm_json_str(struct json *j, const char *key, const struct nlattr *a);
/* The name if @v is known, otherwise the number. */
void ivshm_json_enum(struct json *j, const char *key,
		     const char *const *names, size_t n,
		     const struct nlattr *a);

/*
 * The array a show prints in JSON, opened at its first element so that
 * a request failing at once prints nothing; closed by ivshm_list_end()
 * (on error too, once opened, so that what was printed stays valid).
 */
void ivshm_list_item(struct ivshm_ctx *ctx);
void ivshm_list_end(struct ivshm_ctx *ctx, int err);

/*
 * A line of plain output, words separated by one space. Nothing is
 * written until the first word, so a line with none is not printed.
 */
struct ivshm_line {
	FILE *f;
	const char *indent;
	bool words;
};

void ivshm_line_begin(struct ivshm_line *l, FILE *f, const char *indent);
void ivshm_line_add(struct ivshm_line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ivshm_line_end(struct ivshm_line *l);

/* Device parameters (dev.c), also printed by the monitor. */
void dev_params_json(struct json *j, const char *key,
		     const struct nlattr *nest);
/* Append "name value" to @l for each parameter in @nest. */
void dev_params_words(struct ivshm_line *l, const struct nlattr *nest);

/* TCP_* names of IVSHMEM_A_CHAN_SOCK_STATE (chan.c) */
extern const char *const ivshm_sock_states[12];
extern const char *const ivshm_peer_states[4];

#endif /* IVSHM_H */
