/*
 * rb_wire.h - the client wire format of raftbus: msgpack messages carried
 * one per nng req/rep message, shared by libraftbus and the server (the
 * server links rb_wire_dep and nothing else of client/).
 *
 * The message layout is in docs/protocol.md. Requests and replies are the
 * plain structs of client/raftbus.h (struct rb_op, struct rb_resp):
 *   client: rb_wire_encode_request() -> send ... recv -> rb_wire_decode_reply()
 *   server: recv -> rb_wire_decode_request() ... rb_wire_encode_reply() -> send
 *
 * Decoding never crashes, over-reads or allocates more than a small multiple
 * of the message on any input: every length and element count is checked
 * against the bytes left, nesting is bounded (RB_WIRE_TXN_DEPTH_MAX), and
 * counts per array are capped (RB_WIRE_ARRAY_MAX). Limits on key, value and
 * op counts beyond that are the server's business (it answers with etcd's
 * errors); the codec only refuses what cannot be represented.
 *
 * Threads: every function is reentrant and may be called from any thread.
 */
#ifndef RB_WIRE_H
#define RB_WIRE_H
/* API FROZEN */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raftbus.h"

/* Protocol version in every envelope. A decoder refuses other versions
 * (RB_ERR_BAD_REQUEST / RB_ERR_PROTOCOL) but still reports the request id
 * and op so that the server can answer with an error reply. */
#define RB_WIRE_VERSION 1u
/* Nesting depth of txns in a request or reply (top-level txn = 1). Equal to
 * the store's ST_TXN_DEPTH_MAX. */
#define RB_WIRE_TXN_DEPTH_MAX 8u
/* Elements in any one array (ops of a branch, compares, kvs, keys, ids,
 * members). Larger arrays are refused: the server limits txns to 128 ops,
 * and a range reply of more kvs must be paged with `limit`. */
#define RB_WIRE_ARRAY_MAX 1000000u
/* Longest text field (messages, URLs, names, versions). */
#define RB_WIRE_TEXT_BYTES_MAX 4096u

/* ---- requests ----------------------------------------------------------- */

/* Encodes request `op` with id `req_id` into a malloc'ed buffer *buf_out of
 * *len_out bytes; the caller frees it with free(). The op is checked for
 * shape only: known op type, non-NULL pointers where a length is nonzero,
 * txn branch ops of an allowed type, nesting within RB_WIRE_TXN_DEPTH_MAX.
 * Errors: RB_ERR_INVALID (bad shape; nothing allocated), RB_ERR_NOMEM. */
int rb_wire_encode_request(uint64_t req_id, const struct rb_op *op,
	uint8_t **buf_out, size_t *len_out);

/* A decoded request: the op and the memory behind all its pointers. */
typedef struct rb_wire_request rb_wire_request;

/* Decodes buf[0..len) (borrowed; copied, not referenced after return).
 * On success *out is a new request freed with rb_wire_request_free().
 * On failure *out is NULL and, when the envelope was readable that far,
 * *req_id_out and *op_out tell what to answer (else 0 and RB_OP_NONE);
 * both may be NULL if not wanted.
 * Errors: RB_ERR_BAD_REQUEST (garbage, truncated, trailing bytes, wrong
 * types, unknown op or flag bits, other version, nesting too deep, array
 * too long, len > RB_MSG_BYTES_MAX), RB_ERR_NOMEM. */
int rb_wire_decode_request(const uint8_t *buf, size_t len,
	uint64_t *req_id_out, uint8_t *op_out, rb_wire_request **out);

/* The request's id and op; valid until rb_wire_request_free(). */
uint64_t rb_wire_request_id(const rb_wire_request *r);
const struct rb_op *rb_wire_request_op(const rb_wire_request *r);

/* NULL-safe. */
void rb_wire_request_free(rb_wire_request *r);

/* ---- replies ------------------------------------------------------------ */

/* Encodes the reply to request (req_id, op) into a malloc'ed *buf_out of
 * *len_out bytes (caller frees with free()). resp is borrowed: the server
 * fills header, and either err (< 0) with msg (NULL = rb_strerror(err)),
 * leader_id/leader_url (NOT_LEADER) and compact_revision (COMPACTED), or
 * err == 0 and body (body.type must equal op; ops without a response body
 * may leave body.type RB_OP_NONE). resp->endpoint and resp->mem are
 * ignored. Errors: RB_ERR_INVALID (err not an rb_err, body of another op,
 * NULL pointer with nonzero count, nesting too deep), RB_ERR_NOMEM. */
int rb_wire_encode_reply(uint64_t req_id, uint8_t op, const struct rb_resp *resp,
	uint8_t **buf_out, size_t *len_out);

/* Decodes a reply into *out (which must be zeroed or freed; release it with
 * rb_resp_free() whatever this returns). buf is borrowed and copied. On
 * success out->err is the server's error (0 or an rb_err; an unknown
 * negative code becomes RB_ERR_UNKNOWN) and the function returns 0: the
 * return value says whether the MESSAGE was valid, out->err whether the
 * request succeeded. *req_id_out / *op_out (may be NULL) receive the
 * envelope's id and op. Errors: RB_ERR_PROTOCOL (garbage, other version,
 * truncated, ...; out is then zeroed), RB_ERR_NOMEM. */
int rb_wire_decode_reply(const uint8_t *buf, size_t len, uint64_t *req_id_out,
	uint8_t *op_out, struct rb_resp *out);

/* Copies the encoded reply buf[0..len) with its req_id replaced by req_id
 * into a malloc'ed *buf_out of *len_out bytes (caller frees): a reply
 * encoded once is sent to many requests (watch fan-out). Errors:
 * RB_ERR_INVALID (not a reply envelope), RB_ERR_NOMEM. */
int rb_wire_reply_restamp(const uint8_t *buf, size_t len, uint64_t req_id,
	uint8_t **buf_out, size_t *len_out);

#endif /* RB_WIRE_H */
