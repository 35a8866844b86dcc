/*
 * threads_test: the C API from many threads at once, against the loopback share service whose
 * base URL is argv[1]. 8 threads each write 1000 contents to 10 keys of their own in one shared
 * session while another thread reads stats and flushes; then every write must be accounted for.
 * Also racing share_init / share_shutdown calls: exactly one of each wins. tests/c_api.rs checks
 * the service's final contents: keep the session id and contents in step with it.
 */

#include "check.h"

#define SESSION "ses_ctest_threads000000007"
#define THREADS 8
#define WRITES 1000
#define KEYS_PER_THREAD 10

/* Tells the observer thread to stop. */
static atomic_int writers_done;

/* Writes WRITES contents, round robin over the thread's own KEYS_PER_THREAD keys: the content
 * of write i is {"t":<thread>,"i":i}, so key k's last content has i = WRITES - 10 + k. */
static void *writer(void *arg) {
  int t = (int)(intptr_t)arg;
  char key[128], content[64];
  for (int i = 0; i < WRITES; i++) {
    snprintf(key, sizeof key, "session/part/" SESSION "/msg_t%d/prt_%02d", t, i % KEYS_PER_THREAD);
    snprintf(content, sizeof content, "{\"t\":%d,\"i\":%d}", t, i);
    CHECK_STATUS(share_sync(key, content), SHARE_OK);
  }
  return NULL;
}

/* Reads stats, takes events and flushes without waiting, while the writers run. */
static void *observer(void *arg) {
  (void)arg;
  while (!atomic_load(&writers_done)) {
    stats s = get_stats(NULL);
    CHECK(s.running);
    CHECK(s.sent + s.coalesced + s.dropped + s.pending_keys + s.in_flight == s.queued);
    share_status flushed = share_flush(0);
    CHECK(flushed == SHARE_OK || flushed == SHARE_ERR_TIMEOUT);
    char *events = NULL;
    CHECK_STATUS(share_events_take(&events), SHARE_OK);
    CHECK(events != NULL && strcmp(events, "[]") == 0); /* no sink: nothing is kept */
    share_string_free(events);
    sleep_ms(5);
  }
  return NULL;
}

/* The writers and the observer, then the accounting. */
static void concurrent_syncs(void) {
  char *out = NULL;
  CHECK_STATUS(share_create(SESSION, &out), SHARE_OK);
  CHECK_CONTAINS(out, "\"secret\"");
  share_string_free(out);
  stats before = get_stats(NULL);

  pthread_t writers[THREADS], watcher;
  atomic_store(&writers_done, 0);
  CHECK(pthread_create(&watcher, NULL, observer, NULL) == 0);
  for (int t = 0; t < THREADS; t++) {
    CHECK(pthread_create(&writers[t], NULL, writer, (void *)(intptr_t)t) == 0);
  }
  for (int t = 0; t < THREADS; t++) CHECK(pthread_join(writers[t], NULL) == 0);
  atomic_store(&writers_done, 1);
  CHECK(pthread_join(watcher, NULL) == 0);

  CHECK_STATUS(share_flush(60000), SHARE_OK);
  stats after = get_stats(NULL);
  /* every write was queued, and each ended sent or replaced by a newer one of its key */
  CHECK(after.queued - before.queued == THREADS * WRITES);
  CHECK(after.sent + after.coalesced == after.queued);
  CHECK(after.dropped == 0 && after.failed == 0 && after.rejected == 0);
  CHECK(after.ignored == before.ignored);
  CHECK(after.sent - before.sent >= THREADS * KEYS_PER_THREAD);
  CHECK(after.pending_keys == 0 && after.pending_bytes == 0 && after.in_flight == 0);
  printf("threads_test: %d writes: %llu sent, %llu coalesced\n", THREADS * WRITES,
         after.sent - before.sent, after.coalesced - before.coalesced);
}

/* share_init or share_shutdown from several threads at once, counting the statuses. */
typedef struct race {
  const char *config; /* NULL: shutdown */
  pthread_barrier_t *start;
  share_status status;
} race;

static void *race_call(void *arg) {
  race *r = arg;
  pthread_barrier_wait(r->start);
  r->status = r->config != NULL ? share_init(r->config) : share_shutdown(10000);
  return NULL;
}

/* Runs `n` racing calls; returns how many succeeded, and checks the others lost with `loser`. */
static int run_race(const char *config, share_status loser) {
  enum { N = 4 };
  race races[N];
  pthread_t threads[N];
  pthread_barrier_t start;
  CHECK(pthread_barrier_init(&start, NULL, N) == 0);
  for (int i = 0; i < N; i++) {
    races[i] = (race){config, &start, SHARE_ERR_PANIC};
    CHECK(pthread_create(&threads[i], NULL, race_call, &races[i]) == 0);
  }
  int won = 0;
  for (int i = 0; i < N; i++) {
    CHECK(pthread_join(threads[i], NULL) == 0);
    if (races[i].status == SHARE_OK) {
      won++;
    } else {
      CHECK_STATUS(races[i].status, loser);
    }
  }
  pthread_barrier_destroy(&start);
  return won;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc != 2) {
    fprintf(stderr, "usage: %s SHARE_SERVICE_URL\n", argv[0]);
    return 2;
  }
  char config[512];
  snprintf(config, sizeof config, "{\"url\":\"%s\",\"retry_initial_ms\":10,\"retry_max_ms\":100}",
           argv[1]);

  CHECK(run_race(config, SHARE_ERR_ALREADY_INITIALIZED) == 1);
  concurrent_syncs();
  CHECK(run_race(NULL, SHARE_ERR_NOT_INITIALIZED) == 1);
  CHECK_STATUS(share_flush(0), SHARE_ERR_NOT_INITIALIZED);

  /* a second run, started and stopped by racing threads too */
  CHECK(run_race(config, SHARE_ERR_ALREADY_INITIALIZED) == 1);
  CHECK(get_stats(NULL).queued == 0);
  CHECK(run_race(NULL, SHARE_ERR_NOT_INITIALIZED) == 1);

  printf("threads_test: %lu checks passed\n", (unsigned long)atomic_load(&checks_passed));
  return 0;
}
