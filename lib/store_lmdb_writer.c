/*
 * store_lmdb_writer.c - the LMDB backend's writer thread (opt-in).
 *
 * Commits and expiry sweeps go to one thread that owns every write
 * transaction, so the engine's loop keeps reading sockets and taking the
 * next batch while the last one is written and synced. The thread takes
 * the commits queued since it last looked (up to MERGE_MAX) and writes
 * them, in order, as one transaction: one fsync for all (group commit).
 * Finished work waits in a done list; an eventfd tells the host, whose call
 * to vt_storage_lmdb_dispatch() runs the callbacks on the engine's thread,
 * in the order the calls were made. No callback runs before the
 * transaction that holds its batch is durable.
 *
 * Reads. Listings run on the engine's thread, in a read transaction (the
 * view) that shows exactly the commits whose callbacks have run: the engine
 * routes a new delivery itself when its commit completes, so a listing must
 * not show it earlier, or the device would get it twice. After each write
 * transaction the writer opens a read transaction on what it wrote and
 * hands it over with the finished work; dispatch puts it in place just
 * before the first callback it covers. The environment is opened with
 * MDB_NOTLS, so a read transaction may pass between threads.
 *
 * Bounds. At most QUEUE_MAX calls wait for the writer; one more waits in
 * the call until the writer takes the queue. The engine keeps far fewer in
 * flight (vt_engine_config.commits_in_flight), so it never waits.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vartalap/error.h>
#include <vartalap/log.h>
#include <vartalap/storage.h>

#include "store_lmdb_int.h"

#define QUEUE_MAX 64

/* Commits written together in one transaction, at most. */
#define MERGE_MAX 16

enum job_kind { JOB_COMMIT, JOB_EXPIRE };

/* One call handed to the writer, and its answer. */
struct job {
	struct job *next;
	enum job_kind kind;
	void *arg;

	struct vt__lmdb_part part; /* JOB_COMMIT */
	vt_commit_cb commit_done;

	int64_t now_ts, before_ts, device_before_ts; /* JOB_EXPIRE */
	uint64_t max, removed;
	int status;
	vt_expire_cb expire_done;

	/* The store after this job's transaction, for the engine's thread; NULL
	 * when it shares the transaction of the job before it. */
	MDB_txn *view;
	int view_failed; /* none could be opened: read afresh instead */
};

/* A list of jobs, oldest first. */
struct jobs {
	struct job *head, **tail;
	size_t n;
};

struct vt__lmdb_writer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t work; /* jobs queued, or stop */
	pthread_cond_t room; /* the queue went below QUEUE_MAX */
	struct jobs todo;    /* for the writer */
	struct jobs done;    /* for dispatch */
	int stop;
	int fd;              /* eventfd: readable while done jobs wait */
};

static void jobs_init(struct jobs *l)
{
	l->head = NULL;
	l->tail = &l->head;
	l->n = 0;
}

static void jobs_append(struct jobs *l, struct job *head, struct job **tail, size_t n)
{
	*l->tail = head;
	l->tail = tail;
	l->n += n;
}

/* Take the whole list, leaving it empty. */
static struct job *jobs_take(struct jobs *l)
{
	struct job *head = l->head;

	jobs_init(l);
	return head;
}

/* ---- the writer thread ---- */

/* A read transaction on what the writer just committed, for the engine's thread. */
static void view_open(struct lmdb *s, struct job *j)
{
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &j->view);

	if (rc != 0) {
		vt_log(VT_LOG_WARN, "lmdb: writer: no read view of the last commit: %s",
		       mdb_strerror(rc));
		j->view = NULL;
		j->view_failed = 1;
	}
}

static void expire_noted(void *arg, int status, uint64_t removed)
{
	struct job *j = arg;

	j->status = status;
	j->removed = removed;
}

/* Run @jobs in order: each run of commits as one transaction, a sweep alone. */
static void run_jobs(struct lmdb *s, struct job *jobs)
{
	struct vt__lmdb_part *parts[MERGE_MAX];

	for (struct job *j = jobs; j != NULL;) {
		struct job *first = j;
		size_t np = 0;

		if (j->kind == JOB_EXPIRE) {
			vt__lmdb_expire(s, j->now_ts, j->before_ts, j->device_before_ts, j->max,
			                expire_noted, j);
			view_open(s, j);
			j = j->next;
			continue;
		}
		while (j != NULL && j->kind == JOB_COMMIT && np < MERGE_MAX) {
			parts[np++] = &j->part;
			j = j->next;
		}
		vt__lmdb_commit_parts(s, parts, np);
		view_open(s, first);
	}
}

/* Tell the engine's thread that answers wait. */
static void wake_host(struct vt__lmdb_writer *w)
{
	uint64_t one = 1;

	while (write(w->fd, &one, sizeof(one)) < 0 && errno == EINTR) {
	}
}

/* Until stopped: take what is queued, write it, hand it back. What was
 * queued before the stop is written too. */
static void *writer_main(void *arg)
{
	struct lmdb *s = arg;
	struct vt__lmdb_writer *w = s->w;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct job *jobs, **tail;
		size_t n;

		while (w->todo.head == NULL && !w->stop) {
			pthread_cond_wait(&w->work, &w->mu);
		}
		if (w->todo.head == NULL) {
			break;
		}
		tail = w->todo.tail;
		n = w->todo.n;
		jobs = jobs_take(&w->todo);
		pthread_cond_broadcast(&w->room);
		pthread_mutex_unlock(&w->mu);

		run_jobs(s, jobs);

		pthread_mutex_lock(&w->mu);
		jobs_append(&w->done, jobs, tail, n);
		wake_host(w);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

/* ---- the engine's thread ---- */

/* Queue @j for the writer; waits while the queue is full. */
static void submit(struct vt__lmdb_writer *w, struct job *j)
{
	pthread_mutex_lock(&w->mu);
	while (w->todo.n >= QUEUE_MAX) {
		pthread_cond_wait(&w->room, &w->mu);
	}
	jobs_append(&w->todo, j, &j->next, 1);
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
}

void vt__lmdb_writer_commit(struct lmdb *s, struct vt_op *ops, size_t n, vt_commit_cb done,
                            void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		done(arg, VT_ENOMEM);
		return;
	}
	j->kind = JOB_COMMIT;
	j->part.ops = ops;
	j->part.n = n;
	j->commit_done = done;
	j->arg = arg;
	submit(s->w, j);
}

void vt__lmdb_writer_expire(struct lmdb *s, int64_t now_ts, int64_t before_ts,
                            int64_t device_before_ts, uint64_t max, vt_expire_cb done, void *arg)
{
	struct job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		done(arg, VT_ENOMEM, 0);
		return;
	}
	j->kind = JOB_EXPIRE;
	j->now_ts = now_ts;
	j->before_ts = before_ts;
	j->device_before_ts = device_before_ts;
	j->max = max;
	j->expire_done = done;
	j->arg = arg;
	submit(s->w, j);
}

/*
 * Make @j's transaction what the engine's thread reads from now on. Without
 * a view of it, reads open their own transactions, which show at least as
 * much (a later commit too, at worst: a push twice, never one missed).
 */
static void view_install(struct lmdb *s, struct job *j)
{
	if (j->view == NULL && !j->view_failed) {
		return;
	}
	if (s->view != NULL) {
		mdb_txn_abort(s->view);
	}
	s->view = j->view;
	j->view = NULL;
}

/* Free a job whose answer was given, or will never be. */
static void job_free(struct job *j)
{
	if (j->view != NULL) {
		mdb_txn_abort(j->view);
	}
	vt__lmdb_batch_free(&j->part.b);
	free(j);
}

int vt__lmdb_writer_dispatch(struct lmdb *s)
{
	struct vt__lmdb_writer *w = s->w;
	struct job *j;
	uint64_t count;
	int ran = 0;

	/* Read the counter before taking the list: a wake-up after it is then
	 * for answers not taken yet, or at worst for none. */
	while (read(w->fd, &count, sizeof(count)) < 0 && errno == EINTR) {
	}
	pthread_mutex_lock(&w->mu);
	j = jobs_take(&w->done);
	pthread_mutex_unlock(&w->mu);

	while (j != NULL) {
		struct job *next = j->next;

		view_install(s, j);
		if (j->kind == JOB_COMMIT) {
			j->commit_done(j->arg, j->part.status);
		} else {
			j->expire_done(j->arg, j->status, j->removed);
		}
		job_free(j);
		j = next;
		ran++;
	}
	return ran;
}

int vt__lmdb_writer_fd(const struct lmdb *s)
{
	return s->w->fd;
}

/* ---- lifetime ---- */

static void writer_free(struct vt__lmdb_writer *w)
{
	if (w->fd >= 0) {
		close(w->fd);
	}
	pthread_cond_destroy(&w->room);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

int vt__lmdb_writer_start(struct lmdb *s)
{
	struct vt__lmdb_writer *w = calloc(1, sizeof(*w));
	int rc;

	if (w == NULL) {
		return ENOMEM;
	}
	jobs_init(&w->todo);
	jobs_init(&w->done);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	pthread_cond_init(&w->room, NULL);
	w->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	rc = w->fd < 0 ? errno : mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->view);
	if (rc == 0) {
		s->w = w;
		rc = pthread_create(&w->thread, NULL, writer_main, s);
	}
	if (rc != 0) {
		if (s->view != NULL) {
			mdb_txn_abort(s->view);
			s->view = NULL;
		}
		s->w = NULL;
		writer_free(w);
	}
	return rc;
}

/*
 * Stop the thread once it has written everything queued. Answers not
 * taken by then are dropped: the host broke the contract (no call may be
 * pending at destroy), but what they wrote is stored all the same.
 */
void vt__lmdb_writer_stop(struct lmdb *s)
{
	struct vt__lmdb_writer *w = s->w;
	struct job *j;
	size_t dropped = 0;

	pthread_mutex_lock(&w->mu);
	w->stop = 1;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);

	for (j = jobs_take(&w->done); j != NULL; dropped++) {
		struct job *next = j->next;

		job_free(j);
		j = next;
	}
	if (dropped > 0) {
		vt_log(VT_LOG_WARN, "lmdb: closed with %zu answers not taken; their writes are "
		                    "stored", dropped);
	}
	if (s->view != NULL) {
		mdb_txn_abort(s->view);
		s->view = NULL;
	}
	s->w = NULL;
	writer_free(w);
}
