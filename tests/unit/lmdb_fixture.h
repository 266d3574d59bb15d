/*
 * lmdb_fixture.h - the LMDB backend for the storage test executables:
 * opening it on the fixture (storage_cases.h) and waiting for its writer
 * thread, and reading a closed store's trees directly.
 */
#ifndef VARTALAP_TEST_LMDB_FIXTURE_H
#define VARTALAP_TEST_LMDB_FIXTURE_H

#include <lmdb.h>
#include <stdint.h>

/*
 * Open the LMDB backend on fx.dir, with a writer thread when the backend
 * entry under test is named "lmdb-writer".
 */
int open_lmdb(void);

/* Wait up to @ms for the writer thread to have answers; 1 when it has. */
int writer_ready(int ms);

/* Open the closed store in fx.dir for a raw transaction (writable unless @rdonly). */
void raw_open(int rdonly, MDB_env **env, MDB_txn **txn);

/* Commit and close what raw_open opened. */
void raw_close(MDB_env *env, MDB_txn *txn);

/* The entries of tree @name of the closed store in fx.dir. */
uint64_t raw_entries(const char *name);

/*
 * Put the closed store back as format 3 kept it: each record's count in
 * rec_count (id -> u32 count, ts) and by_time values empty. With @half, as
 * an open stopped part way through the move leaves it: format 4, and only
 * every other count still in rec_count.
 */
void raw_format3(int half);

#endif
