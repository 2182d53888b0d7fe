/*
 * bk_ready.c - carrying out one rl_ready (raft.h's READY CONTRACT) and the
 * snapshots.
 *
 * Order per ready: send msgs_now (filling snapshot chunks from the snapshot
 * file) -> ONE rl_logstore_save (snapshot meta, entries, hard state; one
 * fsync) -> restore the store from a received snapshot -> send msgs ->
 * st_apply every committed entry in ONE store transaction -> reply to the
 * proposers -> record read states -> rl_advance.
 *
 * Snapshots: every --snapshot-count applied entries the store is copied to
 * snap/snap-INDEX-TERM.db. The log is then compacted up to the PREVIOUS
 * snapshot, whose file is kept: the log keeps between one and two
 * snapshot-counts of trailing entries for followers that lag a little, and
 * the snapshot the Raft core advertises (storage.snapshot_meta) always has
 * its file. Received chunks are staged in snap/recv-INDEX-TERM.part and
 * renamed to snap-INDEX-TERM.db once installed in the log.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bk_int.h"

void bk_snapshot_path(const struct bk_server *s, rl_index index, rl_term term,
    bool staging, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s-%016" PRIx64 "-%016" PRIx64 ".%s",
	    s->snap_dir, staging ? "recv" : "snap", index, term,
	    staging ? "part" : "db");
}

bool bk_snapshot_stage(struct bk_server *s, const struct rl_msg *m)
{
	/* Only the chunk the core will take next is written: a retransmitted
	 * offset-0 chunk would otherwise truncate a staging file half
	 * received, and an arbitrary offset would grow a sparse file without
	 * bound. The core then accepts chunks strictly in order. */
	if (!rl_snapshot_chunk_wanted(s->node, m))
		return true;
	if (m->snap_offset + m->snap_len > s->snapshot_bytes_max) {
		bk_log(BK_LOG_WARN, "snapshot %llu from member %llx is larger "
		    "than %llu bytes: dropped", (unsigned long long)m->snap.index,
		    (unsigned long long)m->from,
		    (unsigned long long)s->snapshot_bytes_max);
		return false;
	}
	char path[BK_PATH_BYTES_MAX + 128];
	bk_snapshot_path(s, m->snap.index, m->snap.term, true, path,
	    sizeof(path));
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
	if (m->snap_offset == 0)
		flags |= O_TRUNC;
	int fd = open(path, flags, 0600);
	if (fd < 0) {
		bk_log(BK_LOG_WARN, "stage snapshot chunk: %s", strerror(errno));
		return false;
	}
	bool ok = true;
	ssize_t n = m->snap_len ? pwrite(fd, m->snap_data, m->snap_len,
	    (off_t)m->snap_offset) : 0;
	if (n != (ssize_t)m->snap_len) {
		bk_log(BK_LOG_WARN, "stage snapshot chunk: short write");
		ok = false;
	} else if (m->snap_done && fsync(fd)) {
		bk_log(BK_LOG_WARN, "fsync staged snapshot: %s",
		    strerror(errno));
		ok = false;
	}
	close(fd);
	return ok;
}

/* Fills a snapshot chunk from our snapshot file; false = drop it (the
 * snapshot is gone; the leader retries with the current one). *buf is
 * malloc'ed and freed by the caller after sending. */
static bool snapshot_fill(struct bk_server *s, struct rl_msg *m,
    uint8_t **buf)
{
	char path[BK_PATH_BYTES_MAX + 128];
	bk_snapshot_path(s, m->snap.index, m->snap.term, false, path,
	    sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	struct stat stt;
	bool ok = false;
	if (fstat(fd, &stt) || (uint64_t)stt.st_size < m->snap_offset)
		goto out_close;
	uint64_t left = (uint64_t)stt.st_size - m->snap_offset;
	uint32_t n = left > RL_SNAPSHOT_CHUNK_BYTES_MAX ?
	    RL_SNAPSHOT_CHUNK_BYTES_MAX : (uint32_t)left;
	*buf = malloc(n ? n : 1);
	if (!*buf || pread(fd, *buf, n, (off_t)m->snap_offset) != (ssize_t)n)
		goto out_close;
	m->snap_data = *buf;
	m->snap_len = n;
	m->snap_done = m->snap_offset + n == (uint64_t)stt.st_size;
	ok = true;
out_close:
	close(fd);
	return ok;
}

/* An append that carries no entry only moves a follower's commit index:
 * nothing waits on it, while the proposers wait on the apply. */
static bool commit_only(const struct rl_msg *m)
{
	return m->type == RL_MSG_APPEND && m->entries_n == 0;
}

/* Which of a ready's messages send_msgs() sends: every one, all but the
 * commit-only appends, or only those. */
enum which { SEND_ALL, SEND_FIRST, SEND_LATER };

static void send_msgs(struct bk_server *s, struct rl_msg *msgs, size_t n,
    enum which which)
{
	for (size_t i = 0; i < n; i++) {
		struct rl_msg *m = &msgs[i];
		if (which != SEND_ALL &&
		    commit_only(m) != (which == SEND_LATER))
			continue;
		uint8_t *buf = NULL;
		if (m->type == RL_MSG_SNAPSHOT && !m->snap_data) {
			if (snapshot_fill(s, m, &buf))
				bk_peer_send(s, m);
			m->snap_data = NULL;
			free(buf);
			continue;
		}
		bk_peer_send(s, m);
	}
}

static int save(struct bk_server *s, struct rl_logstore_batch *b)
{
	if (!b->hard_state && s->hs_unsaved_set)
		b->hard_state = &s->hs_unsaved;
	int rc = rl_logstore_save(s->ls, b);
	if (rc) {
		bk_log(BK_LOG_ERROR, "log save: %s: %s",
		    rl_logstore_strerror(rc), rl_logstore_errmsg(s->ls));
		return BK_ERR_IO;
	}
	if (b->hard_state)
		s->hs_unsaved_set = false;
	return BK_OK;
}

int bk_hard_state_flush(struct bk_server *s)
{
	if (!s->hs_unsaved_set)
		return BK_OK;
	struct rl_logstore_batch b = { .hard_state = NULL };
	return save(s, &b);
}

static int persist(struct bk_server *s, const struct rl_ready *rd)
{
	struct rl_conf_state conf;
	rl_logstore_conf_state(s->ls, &conf);
	struct rl_logstore_batch b = {
		.snapshot = rd->has_snapshot ? &rd->snapshot : NULL,
		.entries = rd->entries,
		.entries_n = rd->entries_n,
		.hard_state = rd->has_hard_state ? &rd->hard_state : NULL,
		/* A fresh log records the bootstrap membership once, so that
		 * a later compaction's snapshot meta carries it. */
		.conf = conf.voters_n == 0 && !rd->has_snapshot ?
		    &s->bootstrap : NULL,
	};
	if (rd->has_hard_state)
		s->term = rd->hard_state.term;
	/* Only the commit index moved: not worth an fsync on the write path
	 * (etcd's MustSync). It goes out with the next save. */
	if (!rd->must_sync && !b.conf) {
		if (rd->has_hard_state) {
			s->hs_unsaved = rd->hard_state;
			s->hs_unsaved_set = true;
		}
		return BK_OK;
	}
	if (rd->has_hard_state)
		s->hs_unsaved_set = false;
	if (!b.snapshot && !b.entries_n && !b.hard_state && !b.conf &&
	    !s->hs_unsaved_set)
		return BK_OK;
	int rc = save(s, &b);
	if (rc)
		return rc;
	if (rd->entries_n) {
		s->saves_n++;
		s->saved_entries_n += rd->entries_n;
	}
	return BK_OK;
}

/* Renames from -> to inside the snapshot dir and fsyncs the dir, so the
 * new name survives a power loss (not only a kill -9). ENOENT of `from`
 * is fine when `to` already exists (the rename happened before a crash). */
static int rename_durably(struct bk_server *s, const char *from, const char *to)
{
	if (rename(from, to) && (errno != ENOENT || access(to, F_OK))) {
		bk_log(BK_LOG_ERROR, "rename %s: %s", from, strerror(errno));
		return BK_ERR_IO;
	}
	int dfd = open(s->snap_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc = dfd < 0 || fsync(dfd) ? BK_ERR_IO : BK_OK;
	if (rc)
		bk_log(BK_LOG_ERROR, "fsync %s: %s", s->snap_dir, strerror(errno));
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* The log now says snapshot rd->snapshot: make the store match it. */
static int install_snapshot(struct bk_server *s, const struct rl_snapshot_meta *m)
{
	char part[BK_PATH_BYTES_MAX + 128], path[BK_PATH_BYTES_MAX + 128];
	bk_snapshot_path(s, m->index, m->term, true, part, sizeof(part));
	bk_snapshot_path(s, m->index, m->term, false, path, sizeof(path));
	if (rename_durably(s, part, path))
		return BK_ERR_IO;
	bk_snapshot_abort(s);   /* store.h: not beside a restore */
	/* store.h: a restore must not run beside any read. On failure the
	 * handle may be unusable and the member stops: readers stay paused
	 * until bk_reader_stop. */
	bk_reader_pause(s);
	/* the store flusher must not sync an environment being replaced */
	pthread_mutex_lock(&s->sync_mu);
	int rc = st_restore_file(s->st, path);
	pthread_mutex_unlock(&s->sync_mu);
	if (rc) {
		bk_log(BK_LOG_ERROR, "restore snapshot %s: %s", path,
		    st_strerror(rc));
		return BK_ERR_IO;
	}
	bk_reader_resume(s);
	s->applied = st_applied_index(s->st);
	s->applied_term = m->term;
	s->snap_last_index = m->index;
	s->snap_next_index = 0;
	struct st_status stt;
	if (st_status(s->st, &stt) == 0)
		s->revision = stt.revision;
	bk_log(BK_LOG_INFO, "installed snapshot at index %llu (revision %lld)",
	    (unsigned long long)m->index, (long long)s->revision);
	return bk_lease_reload(s);
}

int bk_snapshot_recover(struct bk_server *s)
{
	struct rl_snapshot_meta meta;
	rl_logstore_snapshot_meta(s->ls, &meta);
	if (st_applied_index(s->st) >= meta.index)
		return BK_OK;
	char part[BK_PATH_BYTES_MAX + 128], path[BK_PATH_BYTES_MAX + 128];
	bk_snapshot_path(s, meta.index, meta.term, true, part, sizeof(part));
	bk_snapshot_path(s, meta.index, meta.term, false, path, sizeof(path));
	/* The crash may also have come before install_snapshot renamed the
	 * staging file (fsync'd with its last chunk) to its final name. */
	if (rename_durably(s, part, path))
		return BK_ERR_IO;
	int rc = st_restore_file(s->st, path);
	if (rc) {
		bk_log(BK_LOG_ERROR, "store is behind the log's snapshot %llu "
		    "and %s cannot be restored: %s",
		    (unsigned long long)meta.index, path, st_strerror(rc));
		return BK_ERR_IO;
	}
	bk_log(BK_LOG_INFO, "restored the store from %s", path);
	return BK_OK;
}

/* Lease bookkeeping for an applied op. */
static void track_leases(struct bk_server *s, const struct st_op *op,
    const struct st_result *res)
{
	/* a revoke of a lease the store no longer has must still leave the
	 * table, or the leader would propose it again forever */
	if (op->type == ST_OP_LEASE_REVOKE)
		bk_lease_remove(s, op->u.lease_revoke.id);
	else if (op->type == ST_OP_LEASE_GRANT && res->err == 0)
		bk_lease_set(s, res->resp.u.lease_grant.id,
		    res->resp.u.lease_grant.ttl_s);
}

static void reply_applied(struct bk_server *s, const struct rl_entry *e,
    const struct st_op *op, const struct st_result *res)
{
	track_leases(s, op, res);
	struct bk_pending *p = bk_pending_find(s, e->index);
	if (!p)
		return;
	if (p->req) {
		if (p->term == e->term)
			bk_client_reply_applied(s, p->req, op, res);
		else
			bk_client_reply_error(s, p->req, RB_ERR_TIMEOUT,
			    "etcdserver: leader changed, retry");
	}
	bk_pending_clear(s, p);
}

static int apply(struct bk_server *s, const struct rl_entry *ents, size_t n)
{
	static const struct st_op noop = { .type = ST_OP_NOOP };
	struct st_entry *se = calloc(n, sizeof(*se));
	st_decoded **dec = calloc(n, sizeof(*dec));
	struct st_result *res = calloc(n, sizeof(*res));
	size_t k = 0;
	int rc = BK_ERR_NOMEM;
	if (!se || !dec || !res)
		goto out_free;
	for (size_t i = 0; i < n; i++) {
		if (ents[i].index <= s->applied)
			continue;
		se[k].index = ents[i].index;
		se[k].op = noop;
		if (ents[i].type == RL_ENTRY_NORMAL && ents[i].data_len &&
		    st_op_decode(ents[i].data, ents[i].data_len, &dec[k]) == 0)
			se[k].op = *st_decoded_op(dec[k]);
		k++;
	}
	rc = BK_OK;
	if (k == 0)
		goto out_free;
	int err = st_apply(s->st, se, k, res);
	if (err && err != ST_ERR_ALREADY_APPLIED) {
		bk_log(BK_LOG_ERROR, "apply: %s", st_strerror(err));
		rc = BK_ERR_IO;
		goto out_free;
	}
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		if (ents[i].index <= s->applied)
			continue;
		if (res[j].revision)
			s->revision = res[j].revision;
		reply_applied(s, &ents[i], &se[j].op, &res[j]);
		j++;
	}
	s->applied = ents[n - 1].index;
	s->applied_term = ents[n - 1].term;
out_free:
	for (size_t i = 0; i < k && res && dec; i++) {
		st_result_free(&res[i]);
		st_decoded_free(dec[i]);
	}
	free(se);
	free(dec);
	free(res);
	return rc;
}

static void take_read_states(struct bk_server *s, const struct rl_ready *rd)
{
	for (size_t i = 0; i < rd->read_states_n; i++) {
		const struct rl_read_state *rs = &rd->read_states[i];
		if (rs->ctx_len != 8)
			continue;
		uint64_t seq = 0;
		for (int b = 0; b < 8; b++)
			seq |= (uint64_t)rs->ctx[b] << (8 * b);
		for (struct bk_creq *r = s->reads_wait; r; r = r->next)
			if (r->read_seq == seq && !r->read_ready) {
				r->read_ready = true;
				r->read_index = rs->index;
			}
	}
}

static void role_change(struct bk_server *s, const struct rl_ready *rd)
{
	if (rd->leader != s->leader)
		bk_log(BK_LOG_INFO, "leader is now %016llx (term %llu)",
		    (unsigned long long)rd->leader,
		    (unsigned long long)s->term);
	if (rd->role == RL_LEADER && s->role != RL_LEADER) {
		/* etcd's lessor promote: a new leader never expires a lease
		 * early, it grants every lease a full TTL from now. */
		bk_lease_renew_all(s);
		s->compact_last_rev = s->revision;
	}
	s->role = rd->role;
	s->leader = rd->leader;
}

int bk_ready_handle(struct bk_server *s)
{
	struct rl_ready rd;
	int rc = rl_ready(s->node, &rd);
	if (rc) {
		bk_log(BK_LOG_WARN, "ready: %s", rl_strerror(rc));
		return BK_OK; /* nothing handed out; retried next turn */
	}
	/* With entries to apply, the appends that only carry the new commit
	 * index go out after the apply and its replies. */
	enum which now = rd.committed_n ? SEND_FIRST : SEND_ALL;
	bk_loop_step(s, "sending to peers");
	send_msgs(s, rd.msgs_now, rd.msgs_now_n, now);
	bk_loop_step(s, "writing the log");
	rc = persist(s, &rd);
	if (rc == BK_OK && rd.has_snapshot)
		rc = install_snapshot(s, &rd.snapshot);
	if (rc) {
		s->failed = true;
		rl_advance(s->node, &rd);
		return rc;
	}
	bk_loop_step(s, "sending to peers after the write");
	send_msgs(s, rd.msgs, rd.msgs_n, SEND_ALL);
	role_change(s, &rd);
	bk_loop_step(s, "applying");
	if (rd.committed_n && (rc = apply(s, rd.committed, rd.committed_n))) {
		s->failed = true;
		rl_advance(s->node, &rd);
		return rc;
	}
	if (now == SEND_FIRST) {
		bk_loop_step(s, "sending commit indexes to peers");
		send_msgs(s, rd.msgs_now, rd.msgs_now_n, SEND_LATER);
	}
	take_read_states(s, &rd);
	rl_advance(s->node, &rd);
	return BK_OK;
}

/* ---- taking snapshots --------------------------------------------------- */

static void remove_older(struct bk_server *s, rl_index keep_from)
{
	DIR *d = opendir(s->snap_dir);
	if (!d)
		return;
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned long long idx, term;
		char kind[8];
		if (sscanf(de->d_name, "%4[a-z]-%16llx-%16llx", kind, &idx,
		    &term) != 3 || idx >= keep_from)
			continue;
		char path[BK_PATH_BYTES_MAX + 300];
		snprintf(path, sizeof(path), "%s/%s", s->snap_dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

int bk_snapshot_scan(struct bk_server *s)
{
	struct rl_snapshot_meta meta;
	rl_logstore_snapshot_meta(s->ls, &meta);
	remove_older(s, meta.index);
	DIR *d = opendir(s->snap_dir);
	if (!d)
		return BK_ERR_IO;
	struct dirent *de;
	while ((de = readdir(d))) {
		unsigned long long idx, term;
		if (sscanf(de->d_name, "snap-%16llx-%16llx.db", &idx, &term) ==
		    2 && idx > meta.index && idx <= s->applied &&
		    idx > s->snap_next_index) {
			s->snap_next_index = idx;
			s->snap_next_term = term;
		}
	}
	closedir(d);
	s->snap_last_index = s->snap_next_index > meta.index ?
	    s->snap_next_index : meta.index;
	return BK_OK;
}

/* Compacts the log to the previous snapshot (its file stays). */
static int compact_to_previous(struct bk_server *s)
{
	struct rl_snapshot_meta meta;
	rl_logstore_snapshot_meta(s->ls, &meta);
	if (!s->snap_next_index || s->snap_next_index <= meta.index)
		return BK_OK;
	/* the log refuses to compact past the commit index it holds */
	if (bk_hard_state_flush(s))
		return BK_ERR_IO;
	/* the entries about to leave the log must be in the store on disk */
	if (st_sync(s->st)) {
		bk_log(BK_LOG_ERROR, "store sync before log compaction failed");
		return BK_ERR_IO;
	}
	meta.index = s->snap_next_index;
	meta.term = s->snap_next_term;
	rl_logstore_conf_state(s->ls, &meta.conf);
	int rc = rl_snapshot_taken(s->node, &meta);
	if (rc) {
		bk_log(BK_LOG_WARN, "snapshot %llu not taken: %s",
		    (unsigned long long)meta.index, rl_strerror(rc));
		return BK_OK;
	}
	rc = rl_logstore_compact(s->ls, meta.index, NULL);
	if (rc) {
		bk_log(BK_LOG_ERROR, "log compact: %s: %s",
		    rl_logstore_strerror(rc), rl_logstore_errmsg(s->ls));
		return rc == RL_LOG_ERR_COMPACTED ? BK_OK : BK_ERR_IO;
	}
	remove_older(s, meta.index);
	bk_log(BK_LOG_INFO, "log compacted to index %llu",
	    (unsigned long long)meta.index);
	return BK_OK;
}

static void *snapper_main(void *arg)
{
	struct bk_server *s = arg;
	s->snapper.rc = st_snapshot_file(s->st, s->snapper.tmp);
	atomic_store(&s->snapper.done, true);
	bk_wake(s);
	return NULL;
}

void bk_snapshot_abort(struct bk_server *s)
{
	if (!s->snapper.running)
		return;
	/* LMDB cannot cancel a copy: wait for it (logged: the loop stops) */
	bk_log(BK_LOG_INFO, "waiting for the snapshot copy in progress");
	pthread_join(s->snapper.thread, NULL);
	s->snapper.running = false;
	unlink(s->snapper.tmp);
}

/* The copy has ended: it is named after the index it holds (the store
 * went on applying while it was made). */
static int snapshot_finish(struct bk_server *s)
{
	pthread_join(s->snapper.thread, NULL);
	s->snapper.running = false;
	st_index at = 0;
	int rc = s->snapper.rc;
	if (rc == 0)
		rc = st_snapshot_applied(s->snapper.tmp, &at);
	rl_term term = 0;
	if (rc == 0 && (at <= s->snap_next_index ||
	    s->storage.term(s->storage.ctx, at, &term) != RL_OK))
		rc = ST_ERR_CORRUPT;
	if (rc) {
		bk_log(BK_LOG_ERROR, "snapshot: %s", st_strerror(rc));
		unlink(s->snapper.tmp);
		return BK_ERR_IO;
	}
	char path[BK_PATH_BYTES_MAX + 128];
	bk_snapshot_path(s, at, term, false, path, sizeof(path));
	if (rename_durably(s, s->snapper.tmp, path))
		return BK_ERR_IO;
	rc = compact_to_previous(s);
	s->snap_next_index = at;
	s->snap_next_term = term;
	s->snap_last_index = at;
	bk_log(BK_LOG_INFO, "snapshot at index %llu",
	    (unsigned long long)at);
	return rc;
}

int bk_snapshot_maybe(struct bk_server *s)
{
	int rc = BK_OK;
	if (s->snapper.running) {
		if (atomic_load(&s->snapper.done))
			rc = snapshot_finish(s);
	} else if (s->applied >= s->snap_last_index + s->cfg.snapshot_count &&
	    s->applied_term) {
		/* the copy of a big store takes long: off the loop; with room
		 * in the map, the writes meanwhile need not grow it (a growth
		 * would wait for the copy, store.h) */
		int prc = st_snapshot_prepare(s->st);
		if (prc)
			bk_log(BK_LOG_WARN, "snapshot: no room reserved in the store "
			    "map (%s); writes may wait for the copy",
			    st_strerror(prc));
		snprintf(s->snapper.tmp, sizeof(s->snapper.tmp), "%s/tmp.db",
		    s->snap_dir);
		atomic_store(&s->snapper.done, false);
		s->snapper.running = pthread_create(&s->snapper.thread, NULL,
		    snapper_main, s) == 0;
		if (!s->snapper.running) {
			bk_log(BK_LOG_ERROR, "snapshot: cannot start a thread");
			rc = BK_ERR_IO;
		}
	}
	if (rc)
		s->failed = true;
	return rc;
}
