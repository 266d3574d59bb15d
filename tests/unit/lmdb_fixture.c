/*
 * lmdb_fixture.c - the LMDB backend under the storage test fixture.
 */
#include <check.h>
#include <poll.h>
#include <string.h>

#include <vartalap/storage.h>

#include "lmdb_fixture.h"
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
