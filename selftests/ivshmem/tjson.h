/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A strict JSON reader for the tests of the tool's -j output: the whole
 * text must be one well-formed value, or parsing fails. Numbers keep their
 * integer value when they have one.
 */
#ifndef TJSON_H
#define TJSON_H

#include <stdbool.h>
#include <stddef.h>

enum tj_type { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ };

struct tj {
	enum tj_type type;
	bool b;
	long long i;			/* TJ_NUM */
	char *s;			/* TJ_STR; the key of an object member */
	char *key;
	struct tj *kids;		/* TJ_ARR, TJ_OBJ: array of @n */
	size_t n;
};

/* Parse @text; NULL if it is not exactly one JSON value. */
struct tj *tj_parse(const char *text);
void tj_free(struct tj *v);
/* Free what tj_parse() returned (NULL is fine). */
void tj_release(struct tj *v);

/* Member @key of an object, element @i of an array; NULL if none. */
const struct tj *tj_get(const struct tj *obj, const char *key);
const struct tj *tj_at(const struct tj *arr, size_t i);
/* Member @key as a number (-1 if absent or not one), a string ("" if
 * not), a bool (false if not).
 */
long long tj_num(const struct tj *obj, const char *key);
const char *tj_str(const struct tj *obj, const char *key);
bool tj_bool(const struct tj *obj, const char *key);

#endif /* TJSON_H */
