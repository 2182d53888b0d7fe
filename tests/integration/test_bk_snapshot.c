/*
 * test_bk_snapshot.c - receiving and recovering snapshots on a member
 * (broker/bk_ready.c): a staging file holds exactly the chunks the Raft
 * core takes, in order (a retransmitted offset-0 chunk or a lying offset
 * from a peer must not truncate it or grow it), and a crash after the log
 * installed a received snapshot but before the staging file was renamed
 * still lets the member restart with its store restored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "bk_int.h"

struct fixture {
	char dir[64];
	struct bk_server *s;
};

static void fixture_open(struct fixture *f)
{
	snprintf(f->dir, sizeof(f->dir), "/tmp/bk_snap_XXXXXX");
	cr_assert_not_null(mkdtemp(f->dir));
	f->s = calloc(1, sizeof(*f->s));
	cr_assert_not_null(f->s);
	struct bk_server *s = f->s;
	char path[128], err[RL_LOG_ERRMSG_MAX];
	snprintf(s->snap_dir, sizeof(s->snap_dir), "%s/snap", f->dir);
	cr_assert_eq(mkdir(s->snap_dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/log", f->dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_eq(rl_logstore_open(path, NULL, &s->ls, err, sizeof(err)),
	    0, "%s", err);
	snprintf(path, sizeof(path), "%s/store", f->dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	struct st_options so;
	st_options_init(&so);
	cr_assert_eq(st_open(path, &so, &s->st), 0);
	rl_logstore_storage(s->ls, &s->storage);
	s->snapshot_bytes_max = 1u << 20;
}

/* Member 2 of {1, 2, 3}, a fresh follower. */
static void fixture_node(struct fixture *f)
{
	struct rl_config c = { .id = 2, .storage = &f->s->storage,
	    .election_ticks = 10, .heartbeat_ticks = 1, .seed = 1 };
	c.bootstrap.voters_n = 3;
	for (int i = 0; i < 3; i++)
		c.bootstrap.voters[i] = (rl_id)i + 1;
	cr_assert_eq(rl_node_new(&c, &f->s->node), 0);
}

static void fixture_close(struct fixture *f)
{
	rl_node_free(f->s->node);
	st_close(f->s->st);
	rl_logstore_close(f->s->ls);
	free(f->s);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	cr_assert_eq(system(cmd), 0);
}

static struct rl_msg chunk(uint64_t offset, uint8_t *data, uint32_t len,
    bool done)
{
	struct rl_msg m = { .type = RL_MSG_SNAPSHOT, .from = 1, .to = 2,
	    .term = 3, .snap_offset = offset, .snap_len = len,
	    .snap_data = data, .snap_done = done };
	m.snap.index = 100;
	m.snap.term = 2;
	m.snap.conf.voters_n = 3;
	for (int i = 0; i < 3; i++)
		m.snap.conf.voters[i] = (rl_id)i + 1;
	return m;
}

/* Stages then steps, as the loop does (bk_server.c peer_handle). */
static void receive(struct bk_server *s, struct rl_msg *m)
{
	if (bk_snapshot_stage(s, m))
		rl_step(s->node, m);
}

static long staged_size(struct bk_server *s)
{
	char path[BK_PATH_BYTES_MAX + 128];
	bk_snapshot_path(s, 100, 2, true, path, sizeof(path));
	struct stat stt;
	return stat(path, &stt) ? -1 : (long)stt.st_size;
}

Test(bk_snapshot, staging_keeps_only_the_chunks_the_core_takes)
{
	struct fixture f;
	fixture_open(&f);
	fixture_node(&f);
	uint8_t a[64], b[64], junk[64];
	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	memset(junk, 'x', sizeof(junk));
	struct rl_msg m = chunk(0, a, sizeof(a), false);
	receive(f.s, &m);
	m = chunk(64, b, sizeof(b), false);
	receive(f.s, &m);
	cr_assert_eq(staged_size(f.s), 128);
	/* a late retransmission of the first chunk: the core ignores it and
	 * the half-received file must not be truncated */
	m = chunk(0, junk, sizeof(junk), false);
	receive(f.s, &m);
	cr_assert_eq(staged_size(f.s), 128);
	/* a lying offset: no write far out (no sparse file of 1 TiB) */
	m = chunk(1ull << 40, junk, sizeof(junk), false);
	receive(f.s, &m);
	cr_assert_eq(staged_size(f.s), 128);
	/* the right next chunk still goes in */
	m = chunk(128, b, 10, true);
	receive(f.s, &m);
	cr_assert_eq(staged_size(f.s), 138);
	char path[BK_PATH_BYTES_MAX + 128];
	bk_snapshot_path(f.s, 100, 2, true, path, sizeof(path));
	FILE *fp = fopen(path, "rb");
	cr_assert_not_null(fp);
	uint8_t got[138];
	cr_assert_eq(fread(got, 1, sizeof(got), fp), sizeof(got));
	fclose(fp);
	cr_assert_eq(memcmp(got, a, 64), 0, "first chunk overwritten");
	cr_assert_eq(memcmp(got + 64, b, 64), 0);
	fixture_close(&f);
}

Test(bk_snapshot, staging_stops_at_the_snapshot_size_limit)
{
	struct fixture f;
	fixture_open(&f);
	fixture_node(&f);
	f.s->snapshot_bytes_max = 100;
	uint8_t a[64];
	memset(a, 'a', sizeof(a));
	struct rl_msg m = chunk(0, a, sizeof(a), false);
	receive(f.s, &m);
	cr_assert_eq(staged_size(f.s), 64);
	/* in order, but past the limit: neither staged nor acknowledged */
	m = chunk(64, a, sizeof(a), false);
	cr_assert_not(bk_snapshot_stage(f.s, &m));
	cr_assert_eq(staged_size(f.s), 64);
	fixture_close(&f);
}

/* The store is restored from the staging file when the crash came after
 * rl_logstore_save installed the snapshot meta but before the rename. */
Test(bk_snapshot, restart_restores_from_an_unrenamed_staging_file)
{
	struct fixture f;
	fixture_open(&f);
	struct bk_server *s = f.s;
	/* the snapshot: another store that applied up to index 100 */
	char other[128];
	snprintf(other, sizeof(other), "%s/other", f.dir);
	cr_assert_eq(mkdir(other, 0700), 0);
	struct st_options so;
	st_options_init(&so);
	st_store *src;
	cr_assert_eq(st_open(other, &so, &src), 0);
	struct st_entry e = { .index = 100, .op = { .type = ST_OP_NOOP } };
	struct st_result res;
	memset(&res, 0, sizeof(res));
	cr_assert_eq(st_apply(src, &e, 1, &res), 0);
	st_result_free(&res);
	char part[BK_PATH_BYTES_MAX + 128];
	bk_snapshot_path(s, 100, 2, true, part, sizeof(part));
	cr_assert_eq(st_snapshot_file(src, part), 0);
	st_close(src);
	/* the log already holds the snapshot meta */
	struct rl_snapshot_meta meta = { .index = 100, .term = 2 };
	meta.conf.voters_n = 1;
	meta.conf.voters[0] = 1;
	struct rl_hard_state hs = { .term = 3, .commit = 100 };
	struct rl_logstore_batch batch = { .snapshot = &meta,
	    .hard_state = &hs };
	cr_assert_eq(rl_logstore_save(s->ls, &batch), 0);
	cr_assert_eq(st_applied_index(s->st), 0);
	cr_assert_eq(bk_snapshot_recover(s), BK_OK);
	cr_assert_eq(st_applied_index(s->st), 100);
	fixture_close(&f);
}
