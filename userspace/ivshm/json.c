// SPDX-License-Identifier: GPL-2.0
/*
 * JSON writer (json.h). Strings are escaped as RFC 8259 requires, and
 * bytes that are not valid UTF-8 become U+FFFD: the strings come from the
 * kernel and from the command line, and one stray byte must not make the
 * whole document unparsable.
 */
#include <inttypes.h>
#include <stddef.h>

#include "json.h"

void json_init(struct json *j, FILE *out, bool pretty)
{
	j->out = out;
	j->pretty = pretty;
	j->comma = false;
	j->depth = 0;
}

static void json_indent(struct json *j)
{
	unsigned int i;

	fputc('\n', j->out);
	for (i = 0; i < j->depth; i++)
		fputs("  ", j->out);
}

/* Separator, line break and key before a member. */
static void json_member(struct json *j, const char *key)
{
	if (j->comma)
		fputc(',', j->out);
	if (j->pretty && j->depth)
		json_indent(j);
	if (key) {
		json_write_string(j->out, key);
		fputs(j->pretty ? ": " : ":", j->out);
	}
}

/* After a value: a separator before the next one, a newline at the end. */
static void json_done(struct json *j)
{
	j->comma = true;
	if (!j->depth) {
		fputc('\n', j->out);
		j->comma = false;
	}
}

static void json_open(struct json *j, const char *key, char c)
{
	json_member(j, key);
	fputc(c, j->out);
	j->depth++;
	j->comma = false;
}

static void json_close(struct json *j, char c)
{
	bool empty = !j->comma;

	if (j->depth)
		j->depth--;
	if (j->pretty && !empty)
		json_indent(j);
	fputc(c, j->out);
	json_done(j);
}

void json_obj_open(struct json *j, const char *key)
{
	json_open(j, key, '{');
}

void json_obj_close(struct json *j)
{
	json_close(j, '}');
}

void json_arr_open(struct json *j, const char *key)
{
	json_open(j, key, '[');
}

void json_arr_close(struct json *j)
{
	json_close(j, ']');
}

void json_str(struct json *j, const char *key, const char *val)
{
	json_member(j, key);
	json_write_string(j->out, val);
	json_done(j);
}

void json_u64(struct json *j, const char *key, uint64_t val)
{
	json_member(j, key);
	fprintf(j->out, "%" PRIu64, val);
	json_done(j);
}

void json_s64(struct json *j, const char *key, int64_t val)
{
	json_member(j, key);
	fprintf(j->out, "%" PRId64, val);
	json_done(j);
}

void json_bool(struct json *j, const char *key, bool val)
{
	json_member(j, key);
	fputs(val ? "true" : "false", j->out);
	json_done(j);
}

void json_null(struct json *j, const char *key)
{
	json_member(j, key);
	fputs("null", j->out);
	json_done(j);
}

/*
 * Length of the well-formed UTF-8 sequence at @s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 if there is none.
 */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0], lo = 0x80, hi = 0xbf;
	size_t n, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return 0;
	}
	/* Only the second byte has the narrowed range. */
	for (i = 1; i < n; i++) {
		if (s[i] < lo || s[i] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return n;
}

void json_write_string(FILE *out, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	fputc('"', out);
	while (*s) {
		switch (*s) {
		case '"':
			fputs("\\\"", out);
			break;
		case '\\':
			fputs("\\\\", out);
			break;
		case '\b':
			fputs("\\b", out);
			break;
		case '\f':
			fputs("\\f", out);
			break;
		case '\n':
			fputs("\\n", out);
			break;
		case '\r':
			fputs("\\r", out);
			break;
		case '\t':
			fputs("\\t", out);
			break;
		default:
			if (*s < 0x20 || *s == 0x7f) {
				fprintf(out, "\\u%04x", *s);
				break;
			}
			n = utf8_len(s);
			if (!n) {
				fputs("\\ufffd", out);
				break;
			}
			fwrite(s, 1, n, out);
			s += n - 1;
			break;
		}
		s++;
	}
	fputc('"', out);
}
