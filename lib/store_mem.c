/* store_mem.c: not written yet */
