/*
 * lmdb_fixture.c - the LMDB backend under the storage test fixture.
 */
#include <check.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <vartalap/storage.h>

#include "lmdb_fixture.h"
#include "store_key.h"
#include "store_lmdb_int.h"
#include "storage_cases.h"

int open_lmdb(void)
{
	int writer = strcmp(storage_backends[fx.backend].name, "lmdb-writer") == 0;
	struct vt_lmdb_options o = {fx.dir, fx.map_size, WINDOW_MS, !fx.sync, writer};

	return vt_storage_lmdb_open(&o, &fx.st);
}

int writer_ready(int ms)
{
	struct pollfd p = {vt_storage_lmdb_fd(&fx.st), POLLIN, 0};

	return poll(&p, 1, ms) == 1;
}

/* Memory and plain LMDB answer inside each call; the writer thread later. */
void storage_wait(int *calls)
{
	for (int waited = 0; *calls == 0 && waited < 10000; waited += 10) {
		if (vt_storage_lmdb_fd(&fx.st) < 0) {
			return;
		}
		if (writer_ready(10)) {
			vt_storage_lmdb_dispatch(&fx.st);
		}
	}
}

void raw_open(int rdonly, MDB_env **env, MDB_txn **txn)
{
	unsigned flags = rdonly ? MDB_RDONLY : 0;

	ck_assert_int_eq(mdb_env_create(env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(*env, 16), 0);
	ck_assert_int_eq(mdb_env_open(*env, fx.dir, flags, 0600), 0);
	ck_assert_int_eq(mdb_txn_begin(*env, NULL, flags, txn), 0);
}

void raw_close(MDB_env *env, MDB_txn *txn)
{
	ck_assert_int_eq(mdb_txn_commit(txn), 0); /* a read-only one just ends */
	mdb_env_close(env);
}

uint64_t raw_entries(const char *name)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;

	raw_open(1, &env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, name, 0, &dbi), 0);
	ck_assert_int_eq(mdb_stat(txn, dbi, &st), 0);
	raw_close(env, txn);
	return st.ms_entries;
}

void raw_format3(int half)
{
	uint8_t v8[8], c12[12], (*keys)[16];
	MDB_val fk = {6, "format"}, fv = {8, v8}, k, v, empty = {0, ""};
	MDB_dbi bytime, old, meta;
	MDB_cursor *cur;
	MDB_env *env;
	MDB_txn *txn;
	MDB_stat st;
	size_t n = 0;
	int rc;

	raw_open(0, &env, &txn);
	ck_assert_int_eq(mdb_dbi_open(txn, "by_time", 0, &bytime), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "rec_count", MDB_CREATE, &old), 0);
	ck_assert_int_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	ck_assert_int_eq(mdb_stat(txn, bytime, &st), 0);
	keys = malloc((st.ms_entries + 1) * sizeof(*keys));
	ck_assert_ptr_nonnull(keys);
	ck_assert_int_eq(mdb_cursor_open(txn, bytime, &cur), 0);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		MDB_val id = {8, (uint8_t *)k.mv_data + 8}, cv = {12, c12};

		memcpy(keys[n++], k.mv_data, 16);
		if (half && n % 2 == 0) {
			continue;
		}
		memcpy(c12, v.mv_data, 4);
		memcpy(c12 + 4, k.mv_data, 8);
		ck_assert_int_eq(mdb_put(txn, old, &id, &cv, 0), 0);
	}
	ck_assert_int_eq(rc, MDB_NOTFOUND);
	mdb_cursor_close(cur);
	for (size_t i = 0; i < n; i++) {
		if (!half || i % 2 == 0) {
			k = (MDB_val){16, keys[i]};
			ck_assert_int_eq(mdb_put(txn, bytime, &k, &empty, 0), 0);
		}
	}
	free(keys);
	vt__put_be64(v8, half ? 4 : 3);
	ck_assert_int_eq(mdb_put(txn, meta, &fk, &fv, 0), 0);
	raw_close(env, txn);
}
