/* inflight.c: not written yet */
