/*
 * journal.c - mode "always" holds events in memory too, journaled.
 *
 * Mode "offline" holds an event for recipients whose devices keep up
 * (hold.c) and writes nothing of it but its (from, cid) pair, so a crash
 * loses it. Mode "always" holds it the same way over a store that keeps a
 * journal (the storage contract's replay()): its PUT writes, in the commit
 * that answers "accepted", one journal entry naming the held recipients,
 * instead of a delivery per device. A crash leaves the entry, and replay
 * makes its deliveries at the next start. Once every held copy was acked or
 * stored (a device went offline: conn.c, item_offline), a RELEASE forgets
 * the entry. An ack's receipt joins the batch of its release, or one before
 * it (receipts.c), so a crash never keeps the release and loses the receipt.
 * A receipt for a sender who keeps up is itself journaled and held
 * (hold.c, journal_receipt), by a PUT in the same batch.
 * A POST /v1/ack that ends the last copy is answered once its release
 * commits, as a stored ack is once its delete does: an answered ack does not
 * come back after a crash.
 *
 * Per message, vt_msg.journal counts the held copies still out, plus one
 * from the commit until vt__hold() has offered every copy; 0 means it has
 * no entry. A group post is not held in this mode: its members' receipts
 * gather for a while (receipts.c) and would pass its release.
 */
#include <vartalap/log.h>

#include "engine_internal.h"

int vt__journal_on(const struct vt_engine *e)
{
	return e->cfg.durability == VT_DURABLE_ALWAYS && e->st.ops->replay != NULL &&
	       e->cluster.ops == NULL;
}

void vt__journal_copy(struct vt_msg *m)
{
	if (m->journal > 0) {
		m->journal++;
	}
}

void vt__journal_drop(struct vt_engine *e, struct vt_msg *m)
{
	struct vt_pend *p;

	if (m->journal == 0 || --m->journal > 0) {
		return;
	}
	p = vt__batch_add(e, VT_PEND_RELEASE);
	if (p == NULL) {
		/* The entry stays: the next start delivers it once more. */
		vt_log(VT_LOG_WARN, "journal entry kept: out of memory id=%llu",
		       (unsigned long long)m->rec.id);
		return;
	}
	p->id = m->rec.id;
}

struct vt_pend *vt__journal_queued(struct vt_engine *e, uint64_t id)
{
	struct vt_pend *p;

	if (e->cur.len == 0) {
		return NULL;
	}
	p = &e->cur.pend[e->cur.len - 1];
	return p->kind == VT_PEND_RELEASE && p->id == id ? p : NULL;
}

/*
 * The gauge counts an entry until its release commits: one that reads 0
 * tells that a crash now would deliver nothing held again.
 */
void vt__journal_release_done(struct vt_engine *e, const struct vt_pend *p, int status)
{
	if (status != 0) {
		vt_log(VT_LOG_WARN, "journal entry kept id=%llu: %s; delivered again at the next "
		       "start", (unsigned long long)p->id, vt_strerror(status));
	} else {
		e->stats.journal_open--;
	}
	if (p->ackreq != NULL) {
		vt__ackreq_done(e, p->ackreq, p->id, status < 0 ? status : 1);
	}
}

int vt__journal_replay(struct vt_engine *e)
{
	uint64_t n = 0;
	int rc;

	if (e->st.ops->replay == NULL) {
		return 0;
	}
	rc = e->st.ops->replay(e->st.self, &n);
	if (rc != 0) {
		vt_log(VT_LOG_ERROR, "replaying the journal failed: %s", vt_strerror(rc));
		return rc;
	}
	if (n > 0) {
		vt_log(VT_LOG_INFO, "%llu held events of the last run stored from the journal",
		       (unsigned long long)n);
	}
	return 0;
}
