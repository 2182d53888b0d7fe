/*
 * test_pubsub.c - the pub/sub pieces that need no server: the message
 * envelope (encode/decode round trip, garbage and limits), message key
 * recognition, and raftbusctl's pub/sub/group/topic argument errors
 * (each rejected with its exit code before anything is dialled).
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdlib.h>
#include <string.h>

#include "rbctl.h"

static struct rb_kv kv_of(const uint8_t *v, size_t n)
{
	return (struct rb_kv){ .key = (const uint8_t *)"/t/00000000000000000007",
		.key_len = 23, .value = v, .value_len = n, .create_revision = 7,
		.mod_revision = 7, .version = 1 };
}

Test(envelope, round_trip_with_headers)
{
	struct rb_header_kv h[2] = {
		{ (const uint8_t *)"k1", 2, (const uint8_t *)"v1", 2 },
		{ (const uint8_t *)"empty", 5, NULL, 0 } };
	uint8_t payload[300];
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)i;
	uint8_t *buf;
	size_t len;
	cr_assert_eq(rb_message_encode(1700000000123ll, h, 2, payload,
		sizeof(payload), &buf, &len), 0);
	struct rb_kv kv = kv_of(buf, len);
	struct rb_message m;
	cr_assert_eq(rb_message_decode(&kv, &m), 0);
	cr_assert_eq(m.revision, 7);
	cr_assert_eq(m.publish_time_ms, 1700000000123ll);
	cr_assert_eq(m.headers_n, 2);
	cr_assert_eq(m.headers[0].key_len, 2);
	cr_assert_eq(memcmp(m.headers[0].value, "v1", 2), 0);
	cr_assert_eq(m.headers[1].key_len, 5);
	cr_assert_eq(m.headers[1].value_len, 0);
	cr_assert_eq(m.payload_len, sizeof(payload));
	cr_assert_eq(memcmp(m.payload, payload, sizeof(payload)), 0);
	cr_assert_eq(m.key_len, 23);
	free(buf);
}

Test(envelope, empty_payload_and_negative_time)
{
	uint8_t *buf;
	size_t len;
	cr_assert_eq(rb_message_encode(-5, NULL, 0, NULL, 0, &buf, &len), 0);
	struct rb_kv kv = kv_of(buf, len);
	struct rb_message m;
	cr_assert_eq(rb_message_decode(&kv, &m), 0);
	cr_assert_eq(m.publish_time_ms, -5);
	cr_assert_eq(m.payload_len, 0);
	cr_assert_eq(m.headers_n, 0);
	free(buf);
}

Test(envelope, refuses_garbage_truncation_and_trailing_bytes)
{
	uint8_t *buf;
	size_t len;
	struct rb_message m;
	cr_assert_eq(rb_message_encode(1, NULL, 0, (const uint8_t *)"abc", 3, &buf,
		&len), 0);
	for (size_t cut = 0; cut < len; cut++) {
		struct rb_kv kv = kv_of(buf, cut);
		cr_assert_eq(rb_message_decode(&kv, &m), RB_ERR_PROTOCOL, "cut %zu", cut);
	}
	uint8_t *more = malloc(len + 1);
	memcpy(more, buf, len);
	more[len] = 0xc0;
	struct rb_kv kv = kv_of(more, len + 1);
	cr_assert_eq(rb_message_decode(&kv, &m), RB_ERR_PROTOCOL);
	/* a plain value somebody put under the topic */
	kv = kv_of((const uint8_t *)"hello", 5);
	cr_assert_eq(rb_message_decode(&kv, &m), RB_ERR_PROTOCOL);
	/* another envelope version */
	memcpy(more, buf, len);
	more[1] = 2;
	kv = kv_of(more, len);
	cr_assert_eq(rb_message_decode(&kv, &m), RB_ERR_PROTOCOL);
	/* a header count above the limit, declared without the bytes */
	static const uint8_t huge[] = { 0x94, 0x01, 0x01, 0xdd, 0xff, 0xff, 0xff,
		0xff, 0xc4, 0x00 };
	kv = kv_of(huge, sizeof(huge));
	cr_assert_eq(rb_message_decode(&kv, &m), RB_ERR_PROTOCOL);
	free(more);
	free(buf);
}

Test(envelope, header_limit)
{
	static struct rb_header_kv h[RB_MESSAGE_HEADERS_MAX + 1];
	uint8_t *buf;
	size_t len;
	for (size_t i = 0; i <= RB_MESSAGE_HEADERS_MAX; i++)
		h[i] = (struct rb_header_kv){ (const uint8_t *)"k", 1,
			(const uint8_t *)"v", 1 };
	cr_assert_eq(rb_message_encode(1, h, RB_MESSAGE_HEADERS_MAX + 1, NULL, 0,
		&buf, &len), RB_ERR_INVALID);
	cr_assert_eq(rb_message_encode(1, h, RB_MESSAGE_HEADERS_MAX, NULL, 0,
		&buf, &len), 0);
	struct rb_kv kv = kv_of(buf, len);
	struct rb_message m;
	cr_assert_eq(rb_message_decode(&kv, &m), 0);
	cr_assert_eq(m.headers_n, RB_MESSAGE_HEADERS_MAX);
	free(buf);
}

Test(envelope, message_keys)
{
	const uint8_t *t = (const uint8_t *)"/t/";
	cr_assert(rb_message_key_of(t, 3, (const uint8_t *)"/t/00000000000000000012", 23));
	cr_assert_not(rb_message_key_of(t, 3, (const uint8_t *)"/t/0000000000000000012", 22));
	cr_assert_not(rb_message_key_of(t, 3, (const uint8_t *)"/t/0000000000000000001x", 23));
	cr_assert_not(rb_message_key_of(t, 3, (const uint8_t *)"/u/00000000000000000012", 23));
	cr_assert_not(rb_message_key_of(t, 3,
		(const uint8_t *)"/t/x/00000000000000000012", 25));
}

/* ---- CLI argument errors ---------------------------------------------- */

/* Runs one command line to its exit code; endpoints point at a port no
 * one listens on, so a command that got past its checks would fail with
 * a connection error, not with the code asserted. */
static int run(const char *line)
{
	char *argv[32], buf[512];
	int argc = 0;
	snprintf(buf, sizeof(buf), "raftbusctl --endpoints tcp://127.0.0.1:1 "
		"--dial-timeout 100ms --command-timeout 200ms %s", line);
	for (char *tok = strtok(buf, " "); tok && argc < 31; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	argv[argc] = NULL;
	const struct rbctl_ext_cmd *x = rbctl_ext_find(argc, argv);
	cr_assert_not_null(x, "no streaming command in: %s", line);
	struct rbctl_ext_parsed p;
	char err[256];
	memset(&p, 0, sizeof(p));
	int rc = rbctl_ext_parse(argc, argv, NULL, x, &p, err, sizeof(err));
	if (rc == 0)
		rc = x->run(&p);
	rbctl_ext_free(&p);
	return rc;
}

Test(ctl, pub_argument_errors, .init = cr_redirect_stderr)
{
	cr_assert_eq(run("pub"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("pub /t/ a b"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("pub /t/ m --header novalue"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("pub /t/ m --header =v"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("pub /t/ m --id="), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("pub /t/ m --bogus"), RBCTL_EXIT_ERROR);
}

Test(ctl, sub_argument_errors, .init = cr_redirect_stderr)
{
	cr_assert_eq(run("sub"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("sub /t/ /u/"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("sub /t/ --from yesterday"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("sub /t/ --from 0"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("sub /t/ --from -3"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("sub /t/ --count many"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("sub /t/ --commit sometimes"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("sub /t/ --group="), RBCTL_EXIT_BAD_FEATURE);
}

Test(ctl, group_and_topic_argument_errors, .init = cr_redirect_stderr)
{
	cr_assert_eq(run("group"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("group describe"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("group list extra"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("topic"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("topic set /t/"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("topic set /t/ --max-age soon"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("topic set /t/ --max-msgs -1"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("topic set /t/ --max-bytes 1k"), RBCTL_EXIT_BAD_FEATURE);
	cr_assert_eq(run("topic get /t/ --max-msgs 3"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("topic list /t/"), RBCTL_EXIT_BAD_ARGS);
	cr_assert_eq(run("topic drop /t/"), RBCTL_EXIT_BAD_ARGS);
}

Test(ctl, valid_command_reaches_the_network, .init = cr_redirect_stderr)
{
	/* the control case of the tests above: a well-formed command passes
	 * its checks and fails only on the dead endpoint */
	cr_assert_eq(run("pub /t/ m --header k=v --id x"), RBCTL_EXIT_ERROR);
	cr_assert_eq(run("topic list"), RBCTL_EXIT_ERROR);
}
