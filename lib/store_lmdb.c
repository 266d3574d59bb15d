/* store_lmdb.c: not written yet */
