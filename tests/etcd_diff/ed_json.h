/*
 * ed_json.h - the small pieces of text handling the etcd differential test
 * needs to talk to etcd's JSON gateway: a growable string buffer, base64,
 * and a minimal JSON reader.
 *
 * The reader builds a tree from one response body. It accepts what etcd's
 * grpc-gateway emits (objects, arrays, strings with simple escapes, numbers,
 * true/false/null) and rejects anything else; it is test code, not a general
 * JSON library. Every tree is owned by the caller and freed with
 * ed_json_free(). Single-threaded.
 */
#ifndef ED_JSON_H
#define ED_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Growable NUL-terminated byte string. Aborts on out of memory (test code). */
struct ed_buf {
	char *p;
	size_t len;
	size_t cap;
};

void ed_buf_init(struct ed_buf *b);
void ed_buf_free(struct ed_buf *b);
void ed_buf_clear(struct ed_buf *b);
void ed_buf_add(struct ed_buf *b, const void *data, size_t n);
void ed_buf_printf(struct ed_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Appends data as base64 (standard alphabet, padded). */
void ed_buf_base64(struct ed_buf *b, const uint8_t *data, size_t n);
/* Appends data readably: printable ASCII as is, other bytes as \xHH. */
void ed_buf_escaped(struct ed_buf *b, const uint8_t *data, size_t n);

/* Decodes base64 text into b (cleared first). Returns false on bad input. */
bool ed_base64_decode(const char *text, size_t len, struct ed_buf *b);

enum ed_json_type {
	ED_JSON_NULL, ED_JSON_BOOL, ED_JSON_NUMBER, ED_JSON_STRING,
	ED_JSON_ARRAY, ED_JSON_OBJECT,
};

/* A node. Objects and arrays hold children in `kids`; object children carry
 * their member name in `name`. Strings hold decoded text in `str`; numbers
 * keep their source text in `str`; booleans use `truth`. */
struct ed_json {
	enum ed_json_type type;
	char *name;
	char *str;
	size_t str_len;
	bool truth;
	struct ed_json *kids;
	size_t kids_n;
};

/* Parses text[0..len). Returns a new tree, or NULL if the text is not JSON
 * of the accepted subset (or nests deeper than ED_JSON_DEPTH_MAX). */
#define ED_JSON_DEPTH_MAX 64
struct ed_json *ed_json_parse(const char *text, size_t len);
void ed_json_free(struct ed_json *j);

/* Member `name` of object j, or NULL (also when j is NULL or no object). */
const struct ed_json *ed_json_get(const struct ed_json *j, const char *name);
/* Integer value of member `name`: etcd sends int64 as strings, small ints
 * and enums sometimes as numbers; a missing member is 0 (proto3 default). */
int64_t ed_json_int(const struct ed_json *j, const char *name);
/* Boolean member; missing is false. */
bool ed_json_bool(const struct ed_json *j, const char *name);
/* Base64-decoded member into out (cleared); missing is empty. Returns false
 * when the member is present but not valid base64. */
bool ed_json_bytes(const struct ed_json *j, const char *name,
	struct ed_buf *out);

#endif /* ED_JSON_H */
