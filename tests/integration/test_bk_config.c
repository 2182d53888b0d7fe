/*
 * test_bk_config.c - the server's settings: defaults, flags over
 * environment, bad values refused with a message, deterministic ids.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "bk.h"

static int parse(struct bk_config *c, char **argv, char **env, char *err)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	FILE *devnull = fopen("/dev/null", "w");
	int rc = bk_config_parse(c, argc, argv, env, err, 256, devnull);
	fclose(devnull);
	return rc;
}

Test(config, no_flags_is_a_single_member_named_default)
{
	struct bk_config c;
	char err[256];
	char *argv[] = { "raftbus", NULL };
	cr_assert_eq(parse(&c, argv, NULL, err), BK_OK, "%s", err);
	cr_assert_str_eq(c.name, "default");
	cr_assert_str_eq(c.data_dir, "./default.raftbus");
	cr_assert_str_eq(c.listen_client_url, "tcp://127.0.0.1:5379");
	cr_assert_str_eq(c.listen_peer_url, "tcp://127.0.0.1:5380");
	cr_assert_eq(c.members_n, 1);
	cr_assert_eq(c.members[0].id, c.member_id);
	cr_assert_eq(c.heartbeat_ms, 100);
	cr_assert_eq(c.election_ms, 1000);
	cr_assert_eq(c.snapshot_count, BK_SNAPSHOT_COUNT_DEFAULT);
	cr_assert_eq(c.max_request_bytes, 1536u * 1024u);
}

Test(config, flags_win_over_environment)
{
	struct bk_config c;
	char err[256];
	char *argv[] = { "raftbus", "--name", "a", "--election-timeout=2000",
	    NULL };
	char *env[] = { "RAFTBUS_NAME=b", "RAFTBUS_SNAPSHOT_COUNT=77",
	    "RAFTBUS_DATA_DIR=/tmp/x", NULL };
	cr_assert_eq(parse(&c, argv, env, err), BK_OK, "%s", err);
	cr_assert_str_eq(c.name, "a");
	cr_assert_eq(c.snapshot_count, 77);
	cr_assert_eq(c.election_ms, 2000);
	cr_assert_str_eq(c.data_dir, "/tmp/x");
}

Test(config, bad_values_are_usage_errors)
{
	struct bk_config c;
	char err[256];
	char *a1[] = { "raftbus", "--bogus", NULL };
	cr_assert_eq(parse(&c, a1, NULL, err), BK_ERR_USAGE);
	cr_assert(strstr(err, "--bogus"));
	char *a2[] = { "raftbus", "--heartbeat-interval", "-5", NULL };
	cr_assert_eq(parse(&c, a2, NULL, err), BK_ERR_USAGE);
	char *a3[] = { "raftbus", "--heartbeat-interval", "600", NULL };
	cr_assert_eq(parse(&c, a3, NULL, err), BK_ERR_USAGE,
	    "election timeout must exceed two heartbeats");
	char *a4[] = { "raftbus", "--initial-cluster", "a=x,a=y", "--name",
	    "a", NULL };
	cr_assert_eq(parse(&c, a4, NULL, err), BK_ERR_USAGE);
	char *a5[] = { "raftbus", "--name", NULL };
	cr_assert_eq(parse(&c, a5, NULL, err), BK_ERR_USAGE);
	char *env[] = { "RAFTBUS_LOG_LEVEL=loud", NULL };
	char *a6[] = { "raftbus", NULL };
	cr_assert_eq(parse(&c, a6, env, err), BK_ERR_USAGE);
}

Test(config, ids_are_deterministic_and_shared)
{
	struct bk_config a, b;
	char err[256];
	char *cl = "n1=tcp://127.0.0.1:1,n2=tcp://127.0.0.1:2";
	char *a1[] = { "raftbus", "--name", "n1", "--initial-cluster", cl,
	    "--initial-advertise-peer-urls", "tcp://127.0.0.1:1", NULL };
	char *a2[] = { "raftbus", "--name", "n2", "--initial-cluster", cl,
	    "--initial-advertise-peer-urls", "tcp://127.0.0.1:2", NULL };
	cr_assert_eq(parse(&a, a1, NULL, err), BK_OK, "%s", err);
	cr_assert_eq(parse(&b, a2, NULL, err), BK_OK, "%s", err);
	cr_assert_eq(a.cluster_id, b.cluster_id);
	cr_assert_eq(a.members_n, 2);
	cr_assert_eq(a.members[0].id, b.members[0].id);
	cr_assert_eq(a.members[1].id, b.members[1].id);
	cr_assert_neq(a.member_id, b.member_id);
	cr_assert_eq(a.member_id, bk_member_id("n1", "tcp://127.0.0.1:1"));
}
