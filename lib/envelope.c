/* envelope.c: not written yet */
