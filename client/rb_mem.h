/*
 * rb_mem.h - the private arena behind a struct rb_resp or a decoded
 * request: one list of blocks freed with one call. Internal to client/.
 */
#ifndef RB_MEM_H
#define RB_MEM_H

#include <stdarg.h>
#include <stddef.h>

struct rb_mem;

/* A new empty arena, or NULL when out of memory. */
struct rb_mem *rb_mem_new(void);

/* n zeroed bytes (aligned for any type) owned by the arena, or NULL when
 * out of memory or n is absurd. n == 0 gives a valid unique pointer. */
void *rb_mem_alloc(struct rb_mem *m, size_t n);

/* A NUL-terminated copy of s[0..n) owned by the arena, or NULL. */
char *rb_mem_strndup(struct rb_mem *m, const char *s, size_t n);

/* Frees every block. NULL-safe. */
void rb_mem_free(struct rb_mem *m);

struct rb_resp;

/* Sets resp->err = err and resp->msg to the formatted message (copied into
 * resp's arena; `fallback` when that cannot be allocated), keeping what
 * resp already holds (a server's header); fills NULL leader_url/endpoint
 * with "". Returns err. */
int rb_resp_fail_v(struct rb_resp *resp, int err, const char *fallback,
	const char *fmt, va_list ap);

#endif /* RB_MEM_H */
