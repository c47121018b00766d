/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small streaming JSON writer: containers are opened and closed in
 * order and values are written as they come, so nothing is buffered and
 * nothing needs freeing. Compact by default; pretty-printed (two spaces
 * per level) on request.
 */
#ifndef IVSHM_JSON_H
#define IVSHM_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct json {
	FILE *out;
	bool pretty;
	bool comma;		/* the next member needs a separator */
	unsigned int depth;
};

void json_init(struct json *j, FILE *out, bool pretty);

/*
 * Every call takes the member's key, which must be NULL at the top level
 * and inside arrays and non-NULL inside objects. Closing the outermost
 * container ends the line.
 */
void json_obj_open(struct json *j, const char *key);
void json_obj_close(struct json *j);
void json_arr_open(struct json *j, const char *key);
void json_arr_close(struct json *j);

void json_str(struct json *j, const char *key, const char *val);
void json_u64(struct json *j, const char *key, uint64_t val);
void json_s64(struct json *j, const char *key, int64_t val);
void json_bool(struct json *j, const char *key, bool val);
void json_null(struct json *j, const char *key);

/* Write @s as a JSON string literal, quotes included. */
void json_write_string(FILE *out, const char *s);

#endif /* IVSHM_JSON_H */
