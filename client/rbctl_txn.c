/*
 * rbctl_txn.c - etcdctl's txn text format, read into a struct rb_txn:
 *
 *     compares            one per line: TARGET("key") OP "value"
 *     <blank line>
 *     success requests    one per line: get/put/del with their flags
 *     <blank line>
 *     failure requests
 *     <blank line>
 *
 * Like etcdctl, every section must end with a newline-terminated blank
 * line; input that ends earlier is "EOF" (exit 3). Quoted strings follow
 * Go's syntax (%q / strconv.Unquote): "..." with backslash escapes.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rb_mem.h"
#include "rbctl.h"

#define RBCTL_TXN_TOKENS_MAX 16u

static int txn_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return RBCTL_EXIT_INVALID_INPUT;
}

/* Reads one '\n'-terminated line without it (and without a '\r' before
 * it). Returns its length, -1 at EOF (or an unterminated last line, as Go's
 * ReadString), -2 when longer than the buffer. */
static long read_line(FILE *in, char *buf, size_t cap)
{
	size_t n = 0;
	int ch;
	while ((ch = fgetc(in)) != EOF) {
		if (ch == '\n') {
			if (n && buf[n - 1] == '\r')
				n--;
			buf[n] = '\0';
			return (long)n;
		}
		if (n + 1 >= cap)
			return -2;
		buf[n++] = (char)ch;
	}
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends the UTF-8 encoding of code point cp. */
static size_t put_utf8(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* One escape after a backslash at *p; writes bytes to out. */
static bool unescape(const char **p, char *out, size_t *n)
{
	char c = *(*p)++;
	static const char from[] = "abfnrtv\\\"'", to[] = "\a\b\f\n\r\t\v\\\"'";
	const char *hit = c ? strchr(from, c) : NULL;
	if (hit) {
		out[(*n)++] = to[hit - from];
		return true;
	}
	if (c == 'x' || c == 'u' || c == 'U') {
		int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
		uint32_t v = 0;
		for (int i = 0; i < digits; i++) {
			int h = hexval((*p)[i]);
			if (h < 0)
				return false;
			v = v << 4 | (uint32_t)h;
		}
		*p += digits;
		if (c == 'x')
			out[(*n)++] = (char)v;
		else if (v > 0x10ffff)
			return false;
		else
			*n += put_utf8(v, out + *n);
		return true;
	}
	if (c >= '0' && c <= '7') {
		uint32_t v = (uint32_t)(c - '0');
		for (int i = 0; i < 2; i++) {
			if ((*p)[i] < '0' || (*p)[i] > '7')
				return false;
			v = v * 8 + (uint32_t)((*p)[i] - '0');
		}
		*p += 2;
		if (v > 255)
			return false;
		out[(*n)++] = (char)v;
		return true;
	}
	return false;
}

/* A Go quoted string at *p ("..." or `...`) into out (capacity at least
 * strlen(*p) + 1); advances *p past it. */
static bool unquote(const char **p, char *out, size_t *out_len)
{
	char q = **p;
	size_t n = 0;
	if (q != '"' && q != '`')
		return false;
	(*p)++;
	while (**p && **p != q) {
		if (q == '"' && **p == '\\') {
			(*p)++;
			if (!unescape(p, out, &n))
				return false;
		} else {
			out[n++] = *(*p)++;
		}
	}
	if (**p != q)
		return false;
	(*p)++;
	out[n] = '\0';
	*out_len = n;
	return true;
}

static const char *skip_spaces(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static uint8_t *mem_copy(struct rb_mem *m, const void *p, size_t n)
{
	uint8_t *d = rb_mem_alloc(m, n ? n : 1);
	if (d && n)
		memcpy(d, p, n);
	return d;
}

/* TARGET("key") OP "value" -> *c (bytes copied into m). */
static int parse_compare(const char *line, struct rb_mem *m, struct rb_compare *c,
	char *err, size_t errlen)
{
	size_t len = strlen(line);
	char *key = rb_mem_alloc(m, len + 1), *val = rb_mem_alloc(m, len + 1);
	char op[8] = "", target[16] = "";
	size_t key_len = 0, val_len = 0;
	const char *lp = strchr(line, '(');
	if (key == NULL || val == NULL)
		return txn_fail(err, errlen, "out of memory");
	if (lp == NULL || (size_t)(lp - line) >= sizeof(target))
		return txn_fail(err, errlen, "malformed comparison: %s", line);
	memcpy(target, line, (size_t)(lp - line));
	const char *p = lp + 1;
	if (!unquote(&p, key, &key_len) || *p++ != ')' || (*p != ' ' && *p != '\t'))
		return txn_fail(err, errlen, "malformed comparison: %s", line);
	p = skip_spaces(p);
	size_t on = strcspn(p, " \t");
	if (on == 0 || on >= sizeof(op))
		return txn_fail(err, errlen, "malformed comparison: %s", line);
	memcpy(op, p, on);
	p = skip_spaces(p + on);
	if (!unquote(&p, val, &val_len) || *skip_spaces(p) != '\0')
		return txn_fail(err, errlen, "malformed comparison: %s", line);
	static const struct { const char *s; uint8_t r; } ops[] = {
		{ "=", RB_CMP_EQUAL }, { "==", RB_CMP_EQUAL }, { "!=", RB_CMP_NOT_EQUAL },
		{ "<", RB_CMP_LESS }, { ">", RB_CMP_GREATER },
	};
	size_t i = 0;
	while (i < sizeof(ops) / sizeof(ops[0]) && strcmp(ops[i].s, op) != 0)
		i++;
	if (i == sizeof(ops) / sizeof(ops[0]))
		return txn_fail(err, errlen, "malformed comparison: %s (unknown operator %s)",
			line, op);
	c->result = ops[i].r;
	c->key = (const uint8_t *)key;
	c->key_len = key_len;
	int base = 10;
	if (strcmp(target, "ver") == 0 || strcmp(target, "version") == 0)
		c->target = RB_CMP_VERSION;
	else if (strcmp(target, "c") == 0 || strcmp(target, "create") == 0)
		c->target = RB_CMP_CREATE;
	else if (strcmp(target, "m") == 0 || strcmp(target, "mod") == 0)
		c->target = RB_CMP_MOD;
	else if (strcmp(target, "lease") == 0) {
		c->target = RB_CMP_LEASE;
		base = 16;
	} else if (strcmp(target, "val") == 0 || strcmp(target, "value") == 0) {
		c->target = RB_CMP_VALUE;
		c->value = (const uint8_t *)val;
		c->value_len = val_len;
		return 0;
	} else
		return txn_fail(err, errlen, "malformed comparison: %s (unknown target %s)",
			line, target);
	char *end;
	c->number = strtoll(val, &end, base);
	if (val_len == 0 || *end != '\0')
		return txn_fail(err, errlen, "invalid txn compare request: %s", line);
	return 0;
}

/* Splits an op line into tokens: "quoted" (unquoted) or runs of non-space. */
static int tokenize(const char *line, char *buf, char **tok, size_t *tok_n)
{
	const char *p = skip_spaces(line);
	size_t n = 0;
	while (*p) {
		if (n == RBCTL_TXN_TOKENS_MAX)
			return -1;
		size_t len;
		tok[n] = buf;
		if (*p == '"' || *p == '`') {
			if (!unquote(&p, buf, &len))
				return -1;
		} else {
			len = strcspn(p, " \t");
			memcpy(buf, p, len);
			buf[len] = '\0';
			p += len;
		}
		buf += len + 1;
		n++;
		p = skip_spaces(p);
	}
	*tok_n = n;
	return 0;
}

/* Copies every byte string of a parsed op into m (argv dies after). */
static int own_op(struct rb_mem *m, struct rb_op *op)
{
	const uint8_t **ptrs[3];
	size_t lens[3], n = 0;
	if (op->type == RB_OP_PUT) {
		ptrs[n] = &op->u.put.key, lens[n++] = op->u.put.key_len;
		ptrs[n] = &op->u.put.value, lens[n++] = op->u.put.value_len;
	} else if (op->type == RB_OP_RANGE) {
		ptrs[n] = &op->u.range.key, lens[n++] = op->u.range.key_len;
		ptrs[n] = &op->u.range.range_end, lens[n++] = op->u.range.range_end_len;
	} else {
		ptrs[n] = &op->u.delete_range.key, lens[n++] = op->u.delete_range.key_len;
		ptrs[n] = &op->u.delete_range.range_end,
			lens[n++] = op->u.delete_range.range_end_len;
	}
	for (size_t i = 0; i < n; i++) {
		if (*ptrs[i] == NULL)
			continue;
		*ptrs[i] = mem_copy(m, *ptrs[i], lens[i]);
		if (*ptrs[i] == NULL)
			return -1;
	}
	return 0;
}

/* "get/put/del ARGS..." through the command line parser. */
static int parse_op(const char *line, struct rb_mem *m, struct rb_op *op,
	char *err, size_t errlen)
{
	size_t len = strlen(line);
	char *buf = malloc(2 * len + RBCTL_TXN_TOKENS_MAX + 2);
	char *tok[RBCTL_TXN_TOKENS_MAX + 1];
	size_t n = 0;
	int rc = RBCTL_EXIT_INVALID_INPUT;
	if (buf == NULL)
		return txn_fail(err, errlen, "out of memory");
	tok[0] = (char *)"raftbusctl";
	if (tokenize(line, buf, tok + 1, &n) != 0 || n == 0 ||
	    (strcmp(tok[1], "get") && strcmp(tok[1], "put") && strcmp(tok[1], "del")))
		goto out_invalid;
	struct rbctl_args a = { 0 };
	/* etcdctl runs the get/put/del command itself: its argument errors
	 * (and exit codes) come out as they would on the command line */
	rc = rbctl_parse((int)n + 1, tok, NULL, &a, err, errlen);
	if (rc == 0 && a.value_from_stdin) {
		snprintf(err, errlen, "put command needs 1 argument and input from "
			"stdin or 2 arguments");
		rc = RBCTL_EXIT_BAD_ARGS;
	}
	if (rc != 0 || a.print_value_only || a.cmd == RBCTL_CMD_HELP) {
		rbctl_args_free(&a);
		free(buf);
		return rc ? rc : txn_fail(err, errlen, "invalid txn request: %s", line);
	}
	*op = a.op;
	rc = own_op(m, op) == 0 ? 0 : txn_fail(err, errlen, "out of memory");
	rbctl_args_free(&a);
	free(buf);
	return rc;

out_invalid:
	free(buf);
	return txn_fail(err, errlen, "invalid txn request: %s", line);
}

/* Reads one section up to its blank line. */
static int read_section(FILE *in, bool compares, struct rb_mem *m, void *items,
	size_t *n, char *err, size_t errlen)
{
	char *line = malloc(RBCTL_TXN_LINE_BYTES_MAX);
	int rc = 0;
	if (line == NULL)
		return txn_fail(err, errlen, "out of memory");
	*n = 0;
	for (;;) {
		long len = read_line(in, line, RBCTL_TXN_LINE_BYTES_MAX);
		if (len == -1) {
			rc = txn_fail(err, errlen, "EOF");
			break;
		}
		if (len == -2) {
			rc = txn_fail(err, errlen, "txn line longer than %u bytes",
				RBCTL_TXN_LINE_BYTES_MAX);
			break;
		}
		if (len == 0)
			break;
		if (*n == RBCTL_TXN_ITEMS_MAX) {
			rc = txn_fail(err, errlen, "more than %u lines in a txn section",
				RBCTL_TXN_ITEMS_MAX);
			break;
		}
		rc = compares ?
			parse_compare(line, m, &((struct rb_compare *)items)[*n], err, errlen) :
			parse_op(line, m, &((struct rb_op *)items)[*n], err, errlen);
		if (rc)
			break;
		(*n)++;
	}
	free(line);
	return rc;
}

int rbctl_txn_read(FILE *in, FILE *prompt, struct rb_txn *txn,
	struct rb_mem **mem_out, char *err, size_t errlen)
{
	struct rb_mem *m = rb_mem_new();
	int rc;
	*mem_out = NULL;
	memset(txn, 0, sizeof(*txn));
	if (m == NULL)
		return txn_fail(err, errlen, "out of memory");
	struct rb_compare *cmps = rb_mem_alloc(m, RBCTL_TXN_ITEMS_MAX * sizeof(*cmps));
	struct rb_op *succ = rb_mem_alloc(m, RBCTL_TXN_ITEMS_MAX * sizeof(*succ));
	struct rb_op *fail = rb_mem_alloc(m, RBCTL_TXN_ITEMS_MAX * sizeof(*fail));
	if (cmps == NULL || succ == NULL || fail == NULL) {
		rc = txn_fail(err, errlen, "out of memory");
		goto out_free_mem;
	}
	if (prompt)
		fputs("compares:\n", prompt);
	if ((rc = read_section(in, true, m, cmps, &txn->compares_n, err, errlen)))
		goto out_free_mem;
	if (prompt)
		fputs("success requests (get, put, del):\n", prompt);
	if ((rc = read_section(in, false, m, succ, &txn->success_n, err, errlen)))
		goto out_free_mem;
	if (prompt)
		fputs("failure requests (get, put, del):\n", prompt);
	if ((rc = read_section(in, false, m, fail, &txn->failure_n, err, errlen)))
		goto out_free_mem;
	txn->compares = cmps;
	txn->success = succ;
	txn->failure = fail;
	*mem_out = m;
	return 0;

out_free_mem:
	rb_mem_free(m);
	memset(txn, 0, sizeof(*txn));
	return rc;
}

void rbctl_txn_free(struct rb_mem *mem)
{
	rb_mem_free(mem);
}
