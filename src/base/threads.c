#include "base/threads.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* One job at a time: the caller thread takes part as worker 0, pool threads as
 * workers 1..n-1. Chunks are claimed with an atomic counter so uneven work
 * balances itself. */
typedef struct {
  vl_range_fn fn;
  void *arg;
  int64_t n, chunk, n_chunks;
  int64_t next_chunk; /* atomic */
  int pending;        /* workers still running this job */
  unsigned generation;
} job_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_start = PTHREAD_COND_INITIALIZER;
static pthread_cond_t cv_done = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t submit_mu = PTHREAD_MUTEX_INITIALIZER;
static job_t job;
static int n_threads; /* 0 = not yet decided */
static int n_started; /* pool threads alive (workers 1..n_started) */
static _Thread_local int in_parallel;

static int default_threads(void) {
  const char *env = getenv("VLENS_THREADS");
  if (env && atoi(env) > 0) return atoi(env);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

void vl_threads_set(int n) {
  pthread_mutex_lock(&submit_mu);
  n_threads = n > 0 ? n : default_threads();
  if (n_threads > 256) n_threads = 256;
  pthread_mutex_unlock(&submit_mu);
}

int vl_threads_count(void) {
  if (!n_threads) vl_threads_set(0);
  return n_threads;
}

static void run_chunks(int worker) {
  for (;;) {
    int64_t c = __atomic_fetch_add(&job.next_chunk, 1, __ATOMIC_RELAXED);
    if (c >= job.n_chunks) break;
    int64_t b = c * job.chunk, e = b + job.chunk;
    if (e > job.n) e = job.n;
    job.fn(job.arg, b, e, worker);
  }
}

static void *worker_main(void *p) {
  int worker = (int)(intptr_t)p;
  unsigned seen = 0;
  in_parallel = 1;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (job.generation == seen) pthread_cond_wait(&cv_start, &mu);
    seen = job.generation;
    int active = worker < n_threads;
    pthread_mutex_unlock(&mu);
    if (active) run_chunks(worker);
    pthread_mutex_lock(&mu);
    if (--job.pending == 0) pthread_cond_signal(&cv_done);
  }
  return NULL;
}

void vl_parallel_for(int64_t n, int64_t min_chunk, vl_range_fn fn, void *arg) {
  if (n <= 0) return;
  if (min_chunk < 1) min_chunk = 1;
  int nt = vl_threads_count();
  if (in_parallel || nt == 1 || n <= min_chunk) {
    fn(arg, 0, n, 0);
    return;
  }
  pthread_mutex_lock(&submit_mu);
  while (n_started < nt - 1) { /* grow the pool lazily */
    pthread_t t;
    if (pthread_create(&t, NULL, worker_main, (void *)(intptr_t)(n_started + 1)) != 0) break;
    pthread_detach(t);
    n_started++;
  }
  /* About 4 chunks per thread balances load without much claiming overhead. */
  int64_t chunk = (n + 4 * nt - 1) / (4 * nt);
  if (chunk < min_chunk) chunk = min_chunk;
  pthread_mutex_lock(&mu);
  job.fn = fn;
  job.arg = arg;
  job.n = n;
  job.chunk = chunk;
  job.n_chunks = (n + chunk - 1) / chunk;
  job.next_chunk = 0;
  job.pending = n_started;
  job.generation++;
  pthread_cond_broadcast(&cv_start);
  pthread_mutex_unlock(&mu);

  in_parallel = 1;
  run_chunks(0);
  in_parallel = 0;

  pthread_mutex_lock(&mu);
  while (job.pending > 0) pthread_cond_wait(&cv_done, &mu);
  pthread_mutex_unlock(&mu);
  pthread_mutex_unlock(&submit_mu);
}
