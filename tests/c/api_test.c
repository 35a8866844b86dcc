/*
 * api_test: drives the whole C API, as a C host would, against the loopback share service whose
 * base URL is argv[1]. tests/c_api.rs builds it (linked to the shared and to the static
 * library), runs it under valgrind, then checks what the service holds. The session ids and
 * contents below are part of that contract: keep them in step with tests/c_api.rs.
 */

#include "check.h"

#include <stdint.h>

/* Shared, synced, never removed: the service keeps its keys for the Rust side to check. */
/* Session ids end in distinct 8 characters, as the hosted service (which keys shares by them)
   needs; the share URLs then differ too. */
#define KEEP "ses_ctest_keep000000000001"
/* Shared with share_create_async, removed with share_remove_async. */
#define ASYNC "ses_ctest_async00000000002"
/* Shared with share_create, removed with share_remove. */
#define BLOCKING "ses_ctest_blocking00000003"
/* Never shared: its writes are ignored. */
#define NEVER "ses_ctest_never_shared0004"
/* Unknown to the service: removing it fails (the service answers 500 to a wrong secret). */
#define UNKNOWN "ses_ctest_unknown000000005"
/* Created asynchronously just before a shutdown. */
#define LATE "ses_ctest_late000000000006"
/* Shared, synced and removed by a host that polls (no callbacks), as Bun does. */
#define POLLED "ses_ctest_polled0000000009"
/* How often session/info/KEEP is rewritten. */
#define REWRITES 100

/* ---- callbacks: they only record and signal; they never call a blocking share_ function ---- */

/* Counts event notifications and remembers whether one came on the main thread. */
typedef struct event_counter {
  atomic_int calls;
  atomic_int on_main_thread;
} event_counter;

static pthread_t main_thread;

static void on_events(void *user_data) {
  event_counter *counter = user_data;
  if (pthread_equal(pthread_self(), main_thread)) atomic_store(&counter->on_main_thread, 1);
  atomic_fetch_add(&counter->calls, 1);
}

/* Completions of asynchronous operations, recorded in arrival order. */
typedef struct completions {
  pthread_mutex_t lock;
  pthread_cond_t done;
  int count;
  uint32_t ids[16];
  share_status statuses[16];
  int on_main_thread;
} completions;

static void on_op(void *user_data, uint32_t op_id, share_status status) {
  completions *c = user_data;
  pthread_mutex_lock(&c->lock);
  if (pthread_equal(pthread_self(), main_thread)) c->on_main_thread = 1;
  if (c->count < 16) {
    c->ids[c->count] = op_id;
    c->statuses[c->count] = status;
  }
  c->count++;
  pthread_cond_broadcast(&c->done);
  pthread_mutex_unlock(&c->lock);
}

/* How many completions `op_id` has had. Call with the lock held. */
static int completions_of(const completions *c, uint32_t op_id, share_status *status) {
  int n = 0;
  for (int i = 0; i < c->count && i < 16; i++) {
    if (c->ids[i] == op_id) {
      n++;
      *status = c->statuses[i];
    }
  }
  return n;
}

/* Waits (at most 10 s) for `op_id`'s completion and returns its status; fails the test when
 * it does not come, or comes more than once. */
static share_status wait_op(completions *c, uint32_t op_id) {
  struct timespec deadline = deadline_in(10000);
  share_status status = SHARE_ERR_PANIC;
  int rc = 0;
  pthread_mutex_lock(&c->lock);
  while (completions_of(c, op_id, &status) == 0 && rc == 0) {
    rc = pthread_cond_timedwait(&c->done, &c->lock, &deadline);
  }
  int n = completions_of(c, op_id, &status);
  pthread_mutex_unlock(&c->lock);
  CHECK(n == 1);
  return status;
}

/* ---- helpers ---- */

/* Where an out-pointer starts before a call that must clear it. */
static char sentinel;

/* Copies the string member `name` of a flat JSON object into `out` (no escapes expected). */
static void json_string(const char *json, const char *name, char *out, size_t size) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", name);
  const char *start = strstr(json, pattern);
  CHECK(start != NULL);
  start += strlen(pattern);
  const char *end = strchr(start, '"');
  CHECK(end != NULL && (size_t)(end - start) < size && end > start);
  memcpy(out, start, (size_t)(end - start));
  out[end - start] = '\0';
}

/* A share's url and secret, as share_create hands them out. */
typedef struct share {
  char url[256];
  char secret[128];
} share;

/* Checks a create result ({"url","secret"}), reads it and frees it. */
static share read_share(char *json, const char *service_url) {
  share s;
  CHECK(json != NULL);
  CHECK_CONTAINS(json, "\"url\"");
  CHECK_CONTAINS(json, "\"secret\"");
  json_string(json, "url", s.url, sizeof s.url);
  json_string(json, "secret", s.secret, sizeof s.secret);
  CHECK(strncmp(s.url, service_url, strlen(service_url)) == 0);
  share_string_free(json);
  return s;
}

/* Checks that the last error is not empty and does not hold `secret`. */
static void check_error_message(const char *secret) {
  const char *message = share_last_error();
  CHECK(message != NULL && message[0] != '\0');
  CHECK(secret == NULL || !contains(message, secret));
}

/* ---- the parts of the test ---- */

static void version_and_calls_before_init(completions *ops) {
  const char *version = share_version();
  unsigned major, minor, patch;
  char extra;
  CHECK(version != NULL);
  CHECK(sscanf(version, "%u.%u.%u%c", &major, &minor, &patch, &extra) == 3);
  CHECK(share_version() == version); /* static */
  CHECK(share_last_error() != NULL && share_last_error()[0] == '\0');

  CHECK_STATUS(share_sync("session/info/" NEVER, "{}"), SHARE_ERR_NOT_INITIALIZED);
  check_error_message(NULL);
  CHECK_STATUS(share_sync("project/x", "{}"), SHARE_ERR_NOT_INITIALIZED);
  bool queued = true;
  CHECK_STATUS(share_sync_queued("session/info/" NEVER, "{}", &queued), SHARE_ERR_NOT_INITIALIZED);
  CHECK(!queued);
  CHECK_STATUS(share_sync_pending("session/info/" NEVER, &queued), SHARE_ERR_NOT_INITIALIZED);
  CHECK_STATUS(share_flush(0), SHARE_ERR_NOT_INITIALIZED);
  uint64_t early_mark = 7;
  CHECK_STATUS(share_flush_mark(&early_mark), SHARE_ERR_NOT_INITIALIZED);
  CHECK_STATUS(share_flush_until(0, 0), SHARE_ERR_NOT_INITIALIZED);
  CHECK_STATUS(share_shutdown(0), SHARE_ERR_NOT_INITIALIZED);
  CHECK_STATUS(share_remove(NEVER, "secret"), SHARE_ERR_NOT_INITIALIZED);
  char *out = &sentinel; /* not NULL: a failed call must clear it */
  CHECK_STATUS(share_create(NEVER, &out), SHARE_ERR_NOT_INITIALIZED);
  CHECK(out == NULL);
  out = &sentinel;
  CHECK_STATUS(share_stats(&out), SHARE_ERR_NOT_INITIALIZED); /* no run yet to report */
  CHECK(out == NULL);
  uint32_t op = 0;
  CHECK_STATUS(share_create_async(NEVER, on_op, ops, &op), SHARE_ERR_NOT_INITIALIZED);
  CHECK_STATUS(share_remove_async(NEVER, "secret", on_op, ops, &op), SHARE_ERR_NOT_INITIALIZED);
  /* the event buffer works at any time */
  CHECK_STATUS(share_events_take(&out), SHARE_OK);
  CHECK(out != NULL && strcmp(out, "[]") == 0);
  share_string_free(out);

  /* NULL and bad UTF-8 are checked before initialisation */
  CHECK_STATUS(share_sync(NULL, "{}"), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(share_last_error(), "NULL");
  CHECK_STATUS(share_sync("session/info/\xff", "{}"), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(share_last_error(), "UTF-8");
  CHECK_STATUS(share_stats(NULL), SHARE_ERR_INVALID_ARGUMENT);
}

static void bad_configs(void) {
  const char *bad[] = {
      "{\"nope\":1}",
      "{\"concurrency\":0}",
      "not json",
      "[]",
      "{\"timeout_ms\":\"fast\"}",
      "{\"url\":\"ftp://127.0.0.1/\"}",
      "{\"retry_initial_ms\":100,\"retry_max_ms\":10}",
      "{\"url\":\"\xff\"}",
      "{\"url\":\"http://example.com\"}", /* plain http to a host that is not loopback */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    CHECK_STATUS(share_init(bad[i]), SHARE_ERR_INVALID_ARGUMENT);
    check_error_message(NULL);
    CHECK_STATUS(share_flush(0), SHARE_ERR_NOT_INITIALIZED); /* nothing started */
  }
}

static void invalid_arguments(completions *ops) {
  const char *malformed[] = {
      "session", "session/", "session/info", "session//x", "session/info/",
      "session/info/ses_1/", "session/part/ses_1//prt_1", "session/share/",
  };
  for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
    CHECK_STATUS(share_sync(malformed[i], "{}"), SHARE_ERR_INVALID_ARGUMENT);
    CHECK_CONTAINS(share_last_error(), malformed[i]); /* the message names the key */
  }
  CHECK_STATUS(share_sync(NULL, "{}"), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_sync("session/info/" KEEP, NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_sync("session/info/" KEEP, "\"\xc3\x28\""), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(share_last_error(), "UTF-8");
  /* a share record is always parsed */
  CHECK_STATUS(share_sync("session/share/" NEVER, "{\"secret\":"), SHARE_ERR_INVALID_ARGUMENT);

  /* a successful call leaves the last error as it was */
  char before[512];
  snprintf(before, sizeof before, "%s", share_last_error());
  CHECK_STATUS(share_sync("project/global", "{}"), SHARE_OK);
  CHECK(strcmp(before, share_last_error()) == 0);

  char *out = NULL;
  CHECK_STATUS(share_create(NULL, &out), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_create(NEVER, NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_create("", &out), SHARE_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  CHECK_STATUS(share_create("ses/with/slashes", &out), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_remove(NULL, "secret"), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_remove(NEVER, NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_remove(NEVER, ""), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_remove("", "secret"), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_events_take(NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_stats(NULL), SHARE_ERR_INVALID_ARGUMENT);

  uint32_t op = 0;
  CHECK_STATUS(share_create_async(NULL, on_op, ops, &op), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_create_async(NEVER, on_op, ops, NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_create_async("", on_op, ops, &op), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_remove_async(NEVER, NULL, on_op, ops, &op), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_remove_async(NEVER, "secret", on_op, ops, NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK(op == 0);

  out = NULL;
  CHECK_STATUS(share_op_take(0, &out), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_op_take(0xfffffff0u, &out), SHARE_ERR_INVALID_ARGUMENT);
  CHECK(out == NULL);
  CHECK_STATUS(share_op_take(1, NULL), SHARE_ERR_INVALID_ARGUMENT);
  share_string_free(NULL);
}

/* The failure seen on another thread, and what that thread saw first. */
typedef struct other_thread {
  char first[256];
  char after[512];
} other_thread;

static void *fail_elsewhere(void *arg) {
  other_thread *t = arg;
  snprintf(t->first, sizeof t->first, "%s", share_last_error());
  share_sync("session//other_thread", "{}");
  snprintf(t->after, sizeof t->after, "%s", share_last_error());
  return NULL;
}

/* share_last_error belongs to the calling thread. */
static void last_error_is_per_thread(void) {
  CHECK_STATUS(share_sync("session//main_thread", "{}"), SHARE_ERR_INVALID_ARGUMENT);
  other_thread t;
  pthread_t thread;
  CHECK(pthread_create(&thread, NULL, fail_elsewhere, &t) == 0);
  CHECK(pthread_join(thread, NULL) == 0);
  CHECK(t.first[0] == '\0');
  CHECK_CONTAINS(t.after, "session//other_thread");
  CHECK_CONTAINS(share_last_error(), "session//main_thread");
}

/* Creates KEEP, syncs to it (one key rewritten REWRITES times), flushes, checks stats and
 * events. Returns KEEP's share. */
static share create_sync_flush(const char *url, event_counter *events) {
  char *out = NULL;
  CHECK_STATUS(share_create(KEEP, &out), SHARE_OK);
  share keep = read_share(out, url);

  stats before = get_stats(keep.secret);
  CHECK(before.running);
  CHECK(before.shares >= 1);

  CHECK_STATUS(share_sync("session/message/" KEEP "/msg_1", "{\"id\":\"msg_1\",\"role\":\"user\"}"),
               SHARE_OK);
  CHECK_STATUS(share_sync("session/part/" KEEP "/msg_1/prt_1", "{\"id\":\"prt_1\",\"text\":\"hello\"}"),
               SHARE_OK);
  CHECK_STATUS(share_sync("session/part/" KEEP "/msg_1/prt_2", "[1,2,3]"), SHARE_OK);
  CHECK_STATUS(share_sync("session/part/" KEEP "/msg_1/prt_3", "\"just a string\""), SHARE_OK);
  char content[1024];
  for (int n = 0; n < REWRITES; n++) {
    if (n == REWRITES - 1) {
      /* the last one holds the share as opencode's auto-share once stored it: the member equal
       * to the secret must be stripped; a tool's own "secret" field must be kept */
      snprintf(content, sizeof content,
               "{\"id\":\"%s\",\"title\":\"rewrite %d\",\"n\":%d,"
               "\"share\":{\"url\":\"%s\",\"secret\":\"%s\"},"
               "\"tool\":{\"input\":{\"secret\":\"hunter2\"}}}",
               KEEP, n, n, keep.url, keep.secret);
    } else {
      snprintf(content, sizeof content, "{\"id\":\"%s\",\"title\":\"rewrite %d\",\"n\":%d}", KEEP, n, n);
    }
    CHECK_STATUS(share_sync("session/info/" KEEP, content), SHARE_OK);
  }
  /* ignored: a key outside session/, and a session without a share (its content is not even
   * parsed) */
  CHECK_STATUS(share_sync("project/global", "{}"), SHARE_OK);
  CHECK_STATUS(share_sync("session/info/" NEVER, "{not json"), SHARE_OK);
  /* share_sync_queued tells which writes an event (naming the key) will follow */
  bool queued_flag = true;
  CHECK_STATUS(share_sync_queued("project/global", "{}", &queued_flag), SHARE_OK);
  CHECK(!queued_flag);
  CHECK_STATUS(share_sync_queued("session/part/" KEEP "/msg_1/prt_4", "{\"id\":\"prt_4\"}", &queued_flag), SHARE_OK);
  CHECK(queued_flag);
  CHECK_STATUS(share_sync_queued("session/part/" KEEP "/msg_1/prt_4", "{", &queued_flag), SHARE_ERR_INVALID_ARGUMENT);
  CHECK(!queued_flag);
  CHECK_STATUS(share_sync_queued("session/part/" KEEP "/msg_1/prt_4", "{}", NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(share_last_error(), "out_queued");
  bool pending = true;
  CHECK_STATUS(share_sync_pending("session/part/" KEEP "/msg_1/prt_99", &pending), SHARE_OK);
  CHECK(!pending); /* never written */
  CHECK_STATUS(share_sync_pending(NULL, &pending), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_sync_pending("session/part/" KEEP "/msg_1/prt_4", NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(share_last_error(), "out_pending");
  /* a shared session's content must be one JSON value; the message never echoes it */
  snprintf(content, sizeof content, "{\"secret\":\"%s\",", keep.secret);
  CHECK_STATUS(share_sync("session/info/" KEEP, content), SHARE_ERR_INVALID_ARGUMENT);
  check_error_message(keep.secret);
  CHECK_STATUS(share_sync("session/info/" KEEP, "{} {}"), SHARE_ERR_INVALID_ARGUMENT);

  CHECK_STATUS(share_flush(10000), SHARE_OK);
  CHECK_STATUS(share_flush(0), SHARE_OK); /* nothing left: reports at once */
  CHECK_STATUS(share_sync_pending("session/info/" KEEP, &pending), SHARE_OK);
  CHECK(!pending); /* settled */
  /* the same in two steps, for hosts that must not block: take a mark, then poll it */
  uint64_t mark = 0;
  CHECK_STATUS(share_flush_mark(NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_flush_mark(&mark), SHARE_OK);
  CHECK(mark >= 5 + REWRITES);
  CHECK_STATUS(share_flush_until(mark, 0), SHARE_OK);

  stats after = get_stats(keep.secret);
  unsigned long long queued = after.queued - before.queued;
  CHECK(queued == 5 + REWRITES);
  CHECK(after.sent > before.sent);
  CHECK(after.sent - before.sent >= 6); /* every key's newest content went out */
  CHECK(after.sent + after.coalesced == after.queued);
  CHECK(after.dropped == 0 && after.failed == 0);
  CHECK(after.ignored - before.ignored == 3);
  CHECK(after.pending_keys == 0 && after.pending_bytes == 0 && after.in_flight == 0);
  CHECK(after.running);

  /* the sink was set before the syncs: a notification comes, then the events */
  for (int i = 0; i < 1000 && atomic_load(&events->calls) == 0; i++) sleep_ms(10);
  CHECK(atomic_load(&events->calls) > 0);
  CHECK(!atomic_load(&events->on_main_thread));
  out = NULL;
  CHECK_STATUS(share_events_take(&out), SHARE_OK);
  CHECK(out != NULL && out[0] == '[');
  CHECK_CONTAINS(out, "\"type\":\"synced\"");
  CHECK_CONTAINS(out, "\"key\":\"session/info/" KEEP "\"");
  CHECK_CONTAINS(out, "\"key\":\"session/part/" KEEP "/msg_1/prt_4\"");
  CHECK(!contains(out, keep.secret));
  share_string_free(out);
  return keep;
}

/* share_create_async / share_remove_async and share_op_take on ASYNC. */
static void async_create_and_remove(const char *url, completions *ops) {
  uint32_t create = 0;
  CHECK_STATUS(share_create_async(ASYNC, on_op, ops, &create), SHARE_OK);
  CHECK(create != 0);
  CHECK_STATUS(wait_op(ops, create), SHARE_OK);
  char *out = NULL;
  CHECK_STATUS(share_op_take(create, &out), SHARE_OK);
  share shared = read_share(out, url);
  out = &sentinel;
  CHECK_STATUS(share_op_take(create, &out), SHARE_ERR_INVALID_ARGUMENT); /* taken once */
  CHECK(out == NULL);
  check_error_message(shared.secret);

  CHECK_STATUS(share_sync("session/info/" ASYNC, "{\"title\":\"async\"}"), SHARE_OK);
  uint32_t flush = 0;
  CHECK_STATUS(share_flush_async(10000, on_op, ops, NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_flush_async(10000, on_op, ops, &flush), SHARE_OK);
  CHECK_STATUS(wait_op(ops, flush), SHARE_OK);
  CHECK_STATUS(share_op_take(flush, &out), SHARE_OK);
  CHECK(out != NULL && strcmp(out, "{}") == 0);
  share_string_free(out);
  CHECK_STATUS(share_flush(0), SHARE_OK); /* the async flush ended once everything had settled */

  stats before = get_stats(shared.secret);
  uint32_t remove = 0;
  CHECK_STATUS(share_remove_async(ASYNC, shared.secret, on_op, ops, &remove), SHARE_OK);
  CHECK(remove != 0 && remove != create);
  /* the local part is done already: this write is ignored */
  CHECK_STATUS(share_sync("session/info/" ASYNC, "{\"title\":\"after remove\"}"), SHARE_OK);
  CHECK_STATUS(wait_op(ops, remove), SHARE_OK);
  CHECK_STATUS(share_op_take(remove, &out), SHARE_OK);
  CHECK(out != NULL && strcmp(out, "{}") == 0);
  share_string_free(out);
  CHECK_STATUS(share_op_take(remove, &out), SHARE_ERR_INVALID_ARGUMENT);
  stats after = get_stats(shared.secret);
  CHECK(after.queued == before.queued);
  CHECK(after.ignored == before.ignored + 1);
  CHECK(after.shares == before.shares - 1);
}

/* Polls share_op_pending (bounded) until the operation ends; its status from share_op_take. */
static share_status poll_op(uint32_t op, char **out) {
  bool pending = true;
  for (int i = 0; i < 1000 && pending; i++) {
    CHECK_STATUS(share_op_pending(op, &pending), SHARE_OK);
    if (pending) sleep_ms(10);
  }
  CHECK(!pending);
  return share_op_take(op, out);
}

/* A host that polls (Bun: its threadsafe callbacks are unsafe from a library thread): NULL
 * callbacks, share_op_pending, and events kept for share_events_take without a notifier. */
static void polling_host(const char *url, event_counter *events) {
  CHECK_STATUS(share_set_event_polling(), SHARE_OK);
  int calls = atomic_load(&events->calls);
  uint32_t create = 0;
  CHECK_STATUS(share_create_async(POLLED, NULL, NULL, &create), SHARE_OK);
  char *out = NULL;
  CHECK_STATUS(poll_op(create, &out), SHARE_OK);
  share shared = read_share(out, url);
  bool pending = true;
  CHECK_STATUS(share_op_pending(create, &pending), SHARE_ERR_INVALID_ARGUMENT); /* taken */
  CHECK_STATUS(share_op_pending(create, NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_op_pending(0, &pending), SHARE_ERR_INVALID_ARGUMENT);

  CHECK_STATUS(share_sync("session/info/" POLLED, "{\"title\":\"polled\"}"), SHARE_OK);
  uint32_t flush = 0;
  CHECK_STATUS(share_flush_async(10000, NULL, NULL, &flush), SHARE_OK);
  out = NULL;
  CHECK_STATUS(poll_op(flush, &out), SHARE_OK);
  CHECK(out != NULL && strcmp(out, "{}") == 0);
  share_string_free(out);
  out = NULL;
  CHECK_STATUS(share_events_take(&out), SHARE_OK);
  CHECK_CONTAINS(out, "\"key\":\"session/info/" POLLED "\"");
  share_string_free(out);

  uint32_t remove = 0;
  CHECK_STATUS(share_remove_async(POLLED, shared.secret, NULL, NULL, &remove), SHARE_OK);
  out = NULL;
  CHECK_STATUS(poll_op(remove, &out), SHARE_OK);
  share_string_free(out);
  /* no notifier was called meanwhile; the callback comes back for the rest of the test */
  CHECK(atomic_load(&events->calls) == calls);
  CHECK_STATUS(share_set_event_callback(on_events, events), SHARE_OK);
}

/* share_create / share_remove on BLOCKING, with syncs pending at the remove. */
static void blocking_create_and_remove(const char *url) {
  char *out = NULL;
  CHECK_STATUS(share_create(BLOCKING, &out), SHARE_OK);
  share shared = read_share(out, url);
  char key[128];
  for (int i = 0; i < 20; i++) {
    snprintf(key, sizeof key, "session/part/" BLOCKING "/msg_1/prt_%02d", i);
    CHECK_STATUS(share_sync(key, "{\"pending\":true}"), SHARE_OK);
  }
  CHECK_STATUS(share_remove(BLOCKING, shared.secret), SHARE_OK);
  stats before = get_stats(shared.secret);
  CHECK_STATUS(share_sync("session/info/" BLOCKING, "{\"title\":\"after remove\"}"), SHARE_OK);
  stats after = get_stats(shared.secret);
  CHECK(after.ignored == before.ignored + 1 && after.queued == before.queued);
  CHECK(after.pending_keys == 0 && after.in_flight == 0);
  CHECK(after.sent + after.coalesced + after.dropped == after.queued);
}

/* share_shutdown, then what works and what does not once stopped. */
static void shutdown_and_after(const share *keep, completions *ops) {
  stats running = get_stats(keep->secret);
  CHECK_STATUS(share_shutdown(5000), SHARE_OK);
  CHECK_STATUS(share_shutdown(0), SHARE_ERR_NOT_INITIALIZED);
  CHECK_STATUS(share_sync("session/info/" KEEP, "{}"), SHARE_ERR_NOT_INITIALIZED);
  check_error_message(keep->secret);
  CHECK_STATUS(share_sync("project/global", "{}"), SHARE_ERR_NOT_INITIALIZED);
  CHECK_STATUS(share_flush(0), SHARE_ERR_NOT_INITIALIZED);
  CHECK_STATUS(share_flush(100), SHARE_ERR_NOT_INITIALIZED);
  char *out = &sentinel;
  CHECK_STATUS(share_create(NEVER, &out), SHARE_ERR_NOT_INITIALIZED);
  CHECK(out == NULL);
  CHECK_STATUS(share_remove(KEEP, keep->secret), SHARE_ERR_NOT_INITIALIZED);
  check_error_message(keep->secret);
  uint32_t op = 0;
  CHECK_STATUS(share_create_async(NEVER, on_op, ops, &op), SHARE_ERR_NOT_INITIALIZED);
  CHECK_STATUS(share_remove_async(KEEP, keep->secret, on_op, ops, &op), SHARE_ERR_NOT_INITIALIZED);
  CHECK(op == 0);

  /* the stats stay readable: the last run's final figures */
  stats stopped = get_stats(keep->secret);
  CHECK(!stopped.running);
  CHECK(stopped.sent == running.sent && stopped.queued == running.queued);
  CHECK(stopped.pending_keys == 0 && stopped.in_flight == 0);
}

/* A second run: a restarted host tells the library KEEP's share through its share record;
 * failed removes report their status and keep the secret out of the message. */
static void second_cycle(const char *url, const share *keep, completions *ops) {
  char config[512];
  snprintf(config, sizeof config,
           "{\"url\":\"%s\",\"retry_initial_ms\":10,\"retry_max_ms\":100,\"max_retries\":2,"
           "\"concurrency\":1}",
           url);
  CHECK_STATUS(share_init(config), SHARE_OK);
  CHECK_STATUS(share_init(config), SHARE_ERR_ALREADY_INITIALIZED);
  stats fresh = get_stats(keep->secret);
  CHECK(fresh.running && fresh.queued == 0 && fresh.sent == 0 && fresh.shares == 0);

  /* the new run does not know KEEP's share until the share record is written */
  CHECK_STATUS(share_sync("session/message/" KEEP "/msg_before_record", "{\"cycle\":2}"), SHARE_OK);
  char record[512];
  snprintf(record, sizeof record, "{\"secret\":\"%s\",\"url\":\"%s\"}", keep->secret, keep->url);
  CHECK_STATUS(share_sync("session/share/" KEEP, record), SHARE_OK);
  CHECK_STATUS(share_sync("session/message/" KEEP "/msg_cycle2", "{\"cycle\":2}"), SHARE_OK);
  CHECK_STATUS(share_flush(10000), SHARE_OK);
  stats synced = get_stats(keep->secret);
  CHECK(synced.queued == 1 && synced.sent == 1 && synced.ignored == 1 && synced.shares == 1);

  /* a wrong secret: the service answers 500 (retried, then given up) */
  const char *wrong = "not-the-secret-0f9e8d7c";
  uint32_t remove = 0;
  CHECK_STATUS(share_remove_async(UNKNOWN, wrong, on_op, ops, &remove), SHARE_OK);
  CHECK_STATUS(wait_op(ops, remove), SHARE_ERR_HTTP_STATUS);
  char *out = &sentinel;
  CHECK_STATUS(share_op_take(remove, &out), SHARE_ERR_HTTP_STATUS);
  CHECK(out == NULL);
  CHECK_CONTAINS(share_last_error(), "500");
  check_error_message(wrong);
  CHECK_STATUS(share_remove(UNKNOWN, wrong), SHARE_ERR_HTTP_STATUS);
  CHECK_CONTAINS(share_last_error(), "500");
  check_error_message(wrong);

  /* an operation still running at shutdown completes all the same: once, with its result
   * (SHARE_OK) or with SHARE_ERR_TIMEOUT when shutdown abandoned it */
  uint32_t late = 0;
  CHECK_STATUS(share_create_async(LATE, on_op, ops, &late), SHARE_OK);
  CHECK_STATUS(share_shutdown(5000), SHARE_OK);
  share_status late_status = wait_op(ops, late);
  CHECK(late_status == SHARE_OK || late_status == SHARE_ERR_TIMEOUT);
  out = NULL;
  CHECK_STATUS(share_op_take(late, &out), late_status); /* results outlive the run */
  CHECK((out != NULL) == (late_status == SHARE_OK));
  share_string_free(out);

  CHECK_STATUS(share_flush(0), SHARE_ERR_NOT_INITIALIZED);
  stats stopped = get_stats(keep->secret);
  CHECK(!stopped.running && stopped.sent == 1);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc != 2) {
    fprintf(stderr, "usage: %s SHARE_SERVICE_URL\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  main_thread = pthread_self();
  completions ops = {.lock = PTHREAD_MUTEX_INITIALIZER, .done = PTHREAD_COND_INITIALIZER};
  event_counter events;
  atomic_init(&events.calls, 0);
  atomic_init(&events.on_main_thread, 0);

  printf("api_test: library %s, service %s\n", share_version(), url);
  version_and_calls_before_init(&ops);
  bad_configs();

  char config[512];
  snprintf(config, sizeof config, "{\"url\":\"%s\",\"retry_initial_ms\":10,\"retry_max_ms\":100}", url);
  CHECK_STATUS(share_init(config), SHARE_OK);
  CHECK_STATUS(share_init(config), SHARE_ERR_ALREADY_INITIALIZED);
  CHECK_STATUS(share_init("{\"nope\":1}"), SHARE_ERR_ALREADY_INITIALIZED); /* whatever the config */
  check_error_message(NULL);
  CHECK_STATUS(share_set_event_callback(on_events, &events), SHARE_OK);

  invalid_arguments(&ops);
  last_error_is_per_thread();
  share keep = create_sync_flush(url, &events);
  async_create_and_remove(url, &ops);
  polling_host(url, &events);
  blocking_create_and_remove(url);
  shutdown_and_after(&keep, &ops);
  second_cycle(url, &keep, &ops);

  /* every started operation completed exactly once, never on the caller's thread */
  pthread_mutex_lock(&ops.lock);
  int completed = ops.count, on_main = ops.on_main_thread;
  pthread_mutex_unlock(&ops.lock);
  CHECK(completed == 5); /* two creates, two removes, one flush */
  CHECK(!on_main);
  CHECK(!atomic_load(&events.on_main_thread));
  CHECK_STATUS(share_set_event_callback(NULL, NULL), SHARE_OK);
  pthread_mutex_destroy(&ops.lock);
  pthread_cond_destroy(&ops.done);

  printf("api_test: %lu checks passed\n", (unsigned long)atomic_load(&checks_passed));
  return 0;
}
