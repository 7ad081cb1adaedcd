#include "base/threads.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* One job at a time: the caller thread takes part as worker 0, pool threads as
 * workers 1..n-1. Chunks are claimed from a counter whose high half is the job's
 * generation, so a worker that wakes late can never claim a chunk of a job it has
 * not read. The caller returns as soon as every chunk is done — it does not wait
 * for sleeping workers to check in, which on a loaded machine (workers without a
 * core) used to cost a scheduler round trip per loop.
 *
 * Between jobs a worker first spins on the published generation for a short
 * budget (VLENS_SPIN_US, default 100 µs) and only then sleeps on the
 * condition variable; the caller waits for the last chunks the same way. A
 * decode step hands ~200 small jobs to the pool, separated by microseconds
 * of serial work: waking a sleeping thread through the kernel costs more
 * than the job (8% of a BF16 decode step in futex wake/wait, measured with
 * perf), which llama.cpp avoids the same way (--poll). The budget keeps
 * idle workers from burning a core between distant jobs. */
typedef struct {
  vl_range_fn fn;
  void *arg;
  int64_t n, chunk, n_chunks;
  unsigned generation;
} job_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv_start = PTHREAD_COND_INITIALIZER;
static pthread_cond_t cv_done = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t submit_mu = PTHREAD_MUTEX_INITIALIZER;
static job_t job;            /* written under mu only */
static uint64_t claim;       /* atomic: generation << 32 | next chunk */
static int64_t done;         /* atomic: chunks of the current job finished */
static unsigned published;   /* atomic: job.generation, stored once the job is written */
static int sleepers;         /* workers waiting on cv_start; under mu */
static int64_t spin_ns = -1; /* atomic: the spin budget; < 0: not read yet */
static int n_threads;        /* 0 = not yet decided */
static int n_started;        /* pool threads alive (workers 1..n_started) */
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

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* Spins until ready(arg) or the budget runs out; returns whether it got
 * ready. The clock is read every 64 pauses. */
static int spin_until(int (*ready)(const void *), const void *arg) {
  int64_t end = 0;
  for (int i = 0;; i++) {
    if (ready(arg)) return 1;
    if ((i & 63) == 0) {
      const int64_t t = now_ns();
      if (i == 0)
        end = t + __atomic_load_n(&spin_ns, __ATOMIC_RELAXED);
      else if (t >= end)
        return 0;
    }
    cpu_relax();
  }
}

static int job_published(const void *seen) { /* a job newer than *seen */
  return __atomic_load_n(&published, __ATOMIC_ACQUIRE) != *(const unsigned *)seen;
}

static int chunks_done(const void *n) {
  return __atomic_load_n(&done, __ATOMIC_ACQUIRE) >= *(const int64_t *)n;
}

static double default_spin_us(void) {
  const char *env = getenv("VLENS_SPIN_US");
  const double us = env && *env ? atof(env) : 100.0;
  return us >= 0 && us <= 1e6 ? us : 100.0;
}

/* Workers read the budget between jobs; a change lands at their next wait. */
void vl_threads_set_spin_us(double us) {
  pthread_mutex_lock(&submit_mu);
  __atomic_store_n(&spin_ns, (int64_t)((us < 0 ? default_spin_us() : us) * 1e3), __ATOMIC_RELAXED);
  pthread_mutex_unlock(&submit_mu);
}

int vl_threads_count(void) {
  if (!n_threads) vl_threads_set(0);
  return n_threads;
}

/* Runs chunks of the job snapshot j (generation gen) until none is left. */
static void run_chunks(const job_t *j, unsigned gen, int worker) {
  for (;;) {
    uint64_t v = __atomic_load_n(&claim, __ATOMIC_ACQUIRE);
    int64_t c;
    do {
      c = (int64_t)(v & 0xffffffffu);
      if ((unsigned)(v >> 32) != gen || c >= j->n_chunks) return;
    } while (
        !__atomic_compare_exchange_n(&claim, &v, v + 1, 1, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    int64_t b = c * j->chunk, e = b + j->chunk;
    if (e > j->n) e = j->n;
    j->fn(j->arg, b, e, worker);
    if (__atomic_add_fetch(&done, 1, __ATOMIC_ACQ_REL) == j->n_chunks) {
      pthread_mutex_lock(&mu);
      pthread_cond_signal(&cv_done);
      pthread_mutex_unlock(&mu);
    }
  }
}

static void *worker_main(void *p) {
  int worker = (int)(intptr_t)p;
  unsigned seen = 0;
  in_parallel = 1;
  for (;;) {
    if (__atomic_load_n(&spin_ns, __ATOMIC_RELAXED) > 0) spin_until(job_published, &seen);
    pthread_mutex_lock(&mu);
    if (job.generation == seen) {
      sleepers++;
      while (job.generation == seen)
        pthread_cond_wait(&cv_start, &mu);
      sleepers--;
    }
    seen = job.generation;
    job_t mine = job; /* fields are only written under mu, before the generation bump */
    int active = worker < n_threads;
    pthread_mutex_unlock(&mu);
    if (active) run_chunks(&mine, seen, worker);
  }
  return NULL;
}

void vl_parallel_for_flat(int64_t n, int64_t min_chunk, vl_range_fn fn, void *arg) {
  if (n > 0 && !in_parallel && n <= (min_chunk < 1 ? 1 : min_chunk)) {
    in_parallel = 1;
    fn(arg, 0, n, 0);
    in_parallel = 0;
    return;
  }
  vl_parallel_for(n, min_chunk, fn, arg);
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
  if (__atomic_load_n(&spin_ns, __ATOMIC_RELAXED) < 0)
    __atomic_store_n(&spin_ns, (int64_t)(default_spin_us() * 1e3), __ATOMIC_RELAXED);
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
  job.generation++;
  __atomic_store_n(&done, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&claim, (uint64_t)job.generation << 32, __ATOMIC_RELEASE);
  __atomic_store_n(&published, job.generation, __ATOMIC_RELEASE);
  job_t mine = job;
  if (sleepers) pthread_cond_broadcast(&cv_start); /* spinning workers see `published` */
  pthread_mutex_unlock(&mu);

  in_parallel = 1;
  run_chunks(&mine, mine.generation, 0);
  in_parallel = 0;

  /* Chunks claimed by workers may still be running; wait for those only. */
  if (__atomic_load_n(&spin_ns, __ATOMIC_RELAXED) > 0 && spin_until(chunks_done, &mine.n_chunks)) {
    pthread_mutex_unlock(&submit_mu);
    return;
  }
  pthread_mutex_lock(&mu);
  while (__atomic_load_n(&done, __ATOMIC_ACQUIRE) < mine.n_chunks)
    pthread_cond_wait(&cv_done, &mu);
  pthread_mutex_unlock(&mu);
  pthread_mutex_unlock(&submit_mu);
}
