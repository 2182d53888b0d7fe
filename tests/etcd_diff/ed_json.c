/*
 * ed_json.c - string buffer, base64 and a minimal JSON reader for the etcd
 * differential test (see ed_json.h). Written for etcd's gateway output only.
 */
#include "ed_json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q) {
		fprintf(stderr, "etcd_diff: out of memory\n");
		abort();
	}
	return q;
}

void ed_buf_init(struct ed_buf *b)
{
	b->p = xrealloc(NULL, 64);
	b->p[0] = '\0';
	b->len = 0;
	b->cap = 64;
}

void ed_buf_free(struct ed_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void ed_buf_clear(struct ed_buf *b)
{
	b->len = 0;
	b->p[0] = '\0';
}

static void buf_reserve(struct ed_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	while (b->len + extra + 1 > b->cap)
		b->cap *= 2;
	b->p = xrealloc(b->p, b->cap);
}

void ed_buf_add(struct ed_buf *b, const void *data, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void ed_buf_printf(struct ed_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		abort();
	buf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void ed_buf_base64(struct ed_buf *b, const uint8_t *data, size_t n)
{
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)data[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)data[i + 1] << 8;
		if (i + 2 < n)
			v |= data[i + 2];
		char out[4] = {
			b64_alphabet[(v >> 18) & 63], b64_alphabet[(v >> 12) & 63],
			i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=',
			i + 2 < n ? b64_alphabet[v & 63] : '=',
		};
		ed_buf_add(b, out, 4);
	}
}

void ed_buf_escaped(struct ed_buf *b, const uint8_t *data, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (data[i] >= 0x21 && data[i] < 0x7f && data[i] != '\\')
			ed_buf_add(b, &data[i], 1);
		else
			ed_buf_printf(b, "\\x%02x", data[i]);
	}
}

static int b64_value(char c)
{
	const char *p = c ? strchr(b64_alphabet, c) : NULL;
	return p ? (int)(p - b64_alphabet) : -1;
}

bool ed_base64_decode(const char *text, size_t len, struct ed_buf *b)
{
	ed_buf_clear(b);
	while (len > 0 && text[len - 1] == '=')
		len--;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value(text[i]);
		if (v < 0)
			return false;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			uint8_t byte = (uint8_t)(acc >> bits);
			ed_buf_add(b, &byte, 1);
		}
	}
	return true;
}

/* ---- JSON reader -------------------------------------------------------- */

struct parser {
	const char *s;
	size_t len;
	size_t pos;
};

static bool parse_value(struct parser *p, struct ed_json *out, int depth);
static void free_node(struct ed_json *j);

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && strchr(" \t\r\n", p->s[p->pos]))
		p->pos++;
}

static bool parse_string_raw(struct parser *p, char **out, size_t *out_len)
{
	struct ed_buf b;
	if (p->pos >= p->len || p->s[p->pos] != '"')
		return false;
	p->pos++;
	ed_buf_init(&b);
	while (p->pos < p->len && p->s[p->pos] != '"') {
		char c = p->s[p->pos++];
		if (c == '\\') {
			if (p->pos >= p->len)
				goto out_free_buf;
			char e = p->s[p->pos++];
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
			const char *hit = strchr(from, e);
			if (e == 'u' && p->pos + 4 <= p->len) {
				/* etcd only escapes ASCII control characters. */
				unsigned v = (unsigned)strtoul(
					(char[5]){ p->s[p->pos], p->s[p->pos + 1],
						p->s[p->pos + 2], p->s[p->pos + 3], 0 },
					NULL, 16);
				p->pos += 4;
				c = (char)(v & 0x7f);
			} else if (hit && e) {
				c = to[hit - from];
			} else {
				goto out_free_buf;
			}
		}
		ed_buf_add(&b, &c, 1);
	}
	if (p->pos >= p->len)
		goto out_free_buf;
	p->pos++;
	*out = b.p;
	*out_len = b.len;
	return true;
out_free_buf:
	ed_buf_free(&b);
	return false;
}

static bool add_kid(struct ed_json *parent, struct parser *p, int depth,
	bool named)
{
	struct ed_json kid;
	memset(&kid, 0, sizeof(kid));
	if (named) {
		size_t n;
		skip_ws(p);
		if (!parse_string_raw(p, &kid.name, &n))
			return false;
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != ':') {
			free(kid.name);
			return false;
		}
		p->pos++;
	}
	if (!parse_value(p, &kid, depth + 1)) {
		free_node(&kid);
		return false;
	}
	parent->kids = xrealloc(parent->kids,
		(parent->kids_n + 1) * sizeof(*parent->kids));
	parent->kids[parent->kids_n++] = kid;
	return true;
}

static bool parse_container(struct parser *p, struct ed_json *out, int depth)
{
	char close = p->s[p->pos] == '{' ? '}' : ']';
	out->type = close == '}' ? ED_JSON_OBJECT : ED_JSON_ARRAY;
	p->pos++;
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == close) {
		p->pos++;
		return true;
	}
	for (;;) {
		if (!add_kid(out, p, depth, close == '}'))
			return false;
		skip_ws(p);
		if (p->pos >= p->len)
			return false;
		char c = p->s[p->pos++];
		if (c == close)
			return true;
		if (c != ',')
			return false;
	}
}

static bool parse_value(struct parser *p, struct ed_json *out, int depth)
{
	if (depth > ED_JSON_DEPTH_MAX)
		return false;
	skip_ws(p);
	if (p->pos >= p->len)
		return false;
	char c = p->s[p->pos];
	if (c == '{' || c == '[')
		return parse_container(p, out, depth);
	if (c == '"') {
		out->type = ED_JSON_STRING;
		return parse_string_raw(p, &out->str, &out->str_len);
	}
	static const char *const words[] = { "true", "false", "null" };
	for (int i = 0; i < 3; i++) {
		size_t n = strlen(words[i]);
		if (p->len - p->pos >= n && !memcmp(p->s + p->pos, words[i], n)) {
			p->pos += n;
			out->type = i == 2 ? ED_JSON_NULL : ED_JSON_BOOL;
			out->truth = i == 0;
			return true;
		}
	}
	size_t start = p->pos;
	while (p->pos < p->len && strchr("+-0123456789.eE", p->s[p->pos]))
		p->pos++;
	if (p->pos == start)
		return false;
	out->type = ED_JSON_NUMBER;
	out->str_len = p->pos - start;
	out->str = xrealloc(NULL, out->str_len + 1);
	memcpy(out->str, p->s + start, out->str_len);
	out->str[out->str_len] = '\0';
	return true;
}

struct ed_json *ed_json_parse(const char *text, size_t len)
{
	struct parser p = { text, len, 0 };
	struct ed_json *j = xrealloc(NULL, sizeof(*j));
	memset(j, 0, sizeof(*j));
	if (!parse_value(&p, j, 0))
		goto out_free_tree;
	skip_ws(&p);
	if (p.pos != len)
		goto out_free_tree;
	return j;
out_free_tree:
	ed_json_free(j);
	return NULL;
}

static void free_node(struct ed_json *j)
{
	for (size_t i = 0; i < j->kids_n; i++)
		free_node(&j->kids[i]);
	free(j->kids);
	free(j->name);
	free(j->str);
}

void ed_json_free(struct ed_json *j)
{
	if (!j)
		return;
	free_node(j);
	free(j);
}

const struct ed_json *ed_json_get(const struct ed_json *j, const char *name)
{
	if (!j || j->type != ED_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < j->kids_n; i++)
		if (!strcmp(j->kids[i].name, name))
			return &j->kids[i];
	return NULL;
}

int64_t ed_json_int(const struct ed_json *j, const char *name)
{
	const struct ed_json *v = ed_json_get(j, name);
	if (!v || (v->type != ED_JSON_STRING && v->type != ED_JSON_NUMBER))
		return 0;
	return strtoll(v->str, NULL, 10);
}

bool ed_json_bool(const struct ed_json *j, const char *name)
{
	const struct ed_json *v = ed_json_get(j, name);
	return v && v->type == ED_JSON_BOOL && v->truth;
}

bool ed_json_bytes(const struct ed_json *j, const char *name,
	struct ed_buf *out)
{
	const struct ed_json *v = ed_json_get(j, name);
	ed_buf_clear(out);
	if (!v)
		return true;
	if (v->type != ED_JSON_STRING)
		return false;
	return ed_base64_decode(v->str, v->str_len, out);
}
