/*
 * store_targets.h - the inboxes one PUT reaches, for the storage backends.
 *
 * Internal. A PUT names inboxes directly, through users (their registered
 * devices or their holding inbox) and through the sender's other devices.
 * A backend gathers them as inbox keys (store_key.h), each once, and hands
 * back those that got a new delivery as an array of vt_inbox (out_to) that
 * it owns until the batch's done callback returns.
 */
#ifndef VARTALAP_STORE_TARGETS_H
#define VARTALAP_STORE_TARGETS_H

#include <stddef.h>
#include <stdint.h>

#include <vartalap/storage.h>

/* A set of inbox keys kept in insertion order. Zero-initialize before use. */
struct vt__tset {
	uint8_t *buf; /* the keys, back to back */
	size_t used, size;
	uint32_t *off; /* key i spans off[i] .. off[i + 1] */
	uint8_t *tag;  /* one caller byte per key */
	uint32_t *val; /* one caller number per key, 0 when added */
	uint32_t n, cap;
	uint32_t *slot; /* hash slots: key index + 1, or 0 when empty */
	uint32_t nslot; /* power of two, or 0 */
};

/*
 * Add @key with @tag unless it is present. Returns 1 when added, 0 when it
 * was present already, or VT_ENOMEM.
 */
int vt__tset_add(struct vt__tset *t, const uint8_t *key, size_t klen, uint8_t tag);

/* Key @i (< t->n) and its length. */
const uint8_t *vt__tset_key(const struct vt__tset *t, uint32_t i, size_t *klen);

/* Empty the set, keeping its memory for the next PUT. */
void vt__tset_clear(struct vt__tset *t);

/* Release the set's memory; it is empty and usable again afterwards. */
void vt__tset_free(struct vt__tset *t);

/*
 * The out_to array of one PUT: room for @cap inboxes in one allocation,
 * together with their strings, and a link so a batch can free them all
 * after its done callback.
 */
struct vt__out {
	struct vt__out *next;
	uint32_t n, cap;
	char *str; /* where the next strings go */
	struct vt_inbox v[];
};

/*
 * Allocate an out list for @cap inbox keys of @keybytes bytes in all and
 * link it at the head of *@chain. Returns NULL when out of memory.
 */
struct vt__out *vt__out_new(struct vt__out **chain, uint32_t cap, size_t keybytes);

/*
 * Append the inbox of @key, a well-formed inbox key (vt__inbox_key_parse),
 * copying its strings. Room for it was asked of vt__out_new.
 */
void vt__out_push(struct vt__out *o, const uint8_t *key, size_t klen);

/* Free a chain of out lists. */
void vt__out_free(struct vt__out *chain);

#endif /* VARTALAP_STORE_TARGETS_H */
