/* requests.c: not written yet */
