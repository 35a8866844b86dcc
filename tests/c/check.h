/*
 * Helpers shared by the C API test programs (the .c files beside it), which tests/c_api.rs compiles and
 * runs under valgrind. A failed check prints where it failed, the expression, and this thread's
 * share_last_error(), then exits 1: the Rust runner shows the program's output.
 */

#ifndef OPENCODE_SHARE_TEST_CHECK_H
#define OPENCODE_SHARE_TEST_CHECK_H

#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opencode_share.h"

/* Checks passed so far, by every thread. */
static atomic_ulong checks_passed;

/* The name of a status, for failure messages. */
static inline const char *status_name(share_status s) {
  switch (s) {
    case SHARE_OK: return "SHARE_OK";
    case SHARE_ERR_INVALID_ARGUMENT: return "SHARE_ERR_INVALID_ARGUMENT";
    case SHARE_ERR_NOT_INITIALIZED: return "SHARE_ERR_NOT_INITIALIZED";
    case SHARE_ERR_ALREADY_INITIALIZED: return "SHARE_ERR_ALREADY_INITIALIZED";
    case SHARE_ERR_NETWORK: return "SHARE_ERR_NETWORK";
    case SHARE_ERR_HTTP_STATUS: return "SHARE_ERR_HTTP_STATUS";
    case SHARE_ERR_BAD_RESPONSE: return "SHARE_ERR_BAD_RESPONSE";
    case SHARE_ERR_TIMEOUT: return "SHARE_ERR_TIMEOUT";
    case SHARE_ERR_QUEUE_FULL: return "SHARE_ERR_QUEUE_FULL";
    case SHARE_ERR_PANIC: return "SHARE_ERR_PANIC";
  }
  return "(unknown status)";
}

/* Reports a failed check and ends the process (from any thread). */
static inline void check_failed(const char *file, int line, const char *what) {
  fprintf(stderr, "%s:%d: CHECK failed: %s\n  share_last_error() (this thread's last failure): \"%s\"\n",
          file, line, what, share_last_error());
  fflush(stderr);
  exit(1);
}

/* Checks that `expr` holds. */
#define CHECK(expr)                                   \
  do {                                                \
    if (!(expr)) check_failed(__FILE__, __LINE__, #expr); \
    atomic_fetch_add(&checks_passed, 1);              \
  } while (0)

/* Checks that `call` returns the status `want`; on failure also says what it returned. */
#define CHECK_STATUS(call, want)                                                     \
  do {                                                                               \
    share_status got_ = (call);                                                      \
    if (got_ != (want)) {                                                            \
      fprintf(stderr, "%s:%d: got %s, wanted %s\n", __FILE__, __LINE__, status_name(got_), \
              status_name(want));                                                    \
      check_failed(__FILE__, __LINE__, #call " == " #want);                          \
    }                                                                                \
    atomic_fetch_add(&checks_passed, 1);                                             \
  } while (0)

/* Whether `haystack` contains `needle`. */
static inline int contains(const char *haystack, const char *needle) {
  return haystack != NULL && needle != NULL && strstr(haystack, needle) != NULL;
}

/* Checks that the string `text` contains `needle`; on failure also shows the text. */
#define CHECK_CONTAINS(text, needle)                                              \
  do {                                                                            \
    const char *text_ = (text);                                                   \
    if (!contains(text_, (needle))) {                                             \
      fprintf(stderr, "%s:%d: in: %s\n", __FILE__, __LINE__, text_ ? text_ : "(NULL)"); \
      check_failed(__FILE__, __LINE__, "contains(" #text ", " #needle ")");       \
    }                                                                             \
    atomic_fetch_add(&checks_passed, 1);                                          \
  } while (0)

/* The figures of a share_stats answer that the tests look at. */
typedef struct stats {
  int running;
  unsigned long long queued, sent, coalesced, retried, failed, dropped, rejected, ignored;
  unsigned long long pending_keys, pending_bytes, in_flight, shares;
} stats;

/* The number after `"name":` in a flat JSON object (crude, but the stats object is flat). */
static inline unsigned long long json_number(const char *json, const char *name) {
  char pattern[64];
  snprintf(pattern, sizeof pattern, "\"%s\":", name);
  const char *at = strstr(json, pattern);
  if (at == NULL) {
    fprintf(stderr, "stats lack %s: %s\n", pattern, json);
    check_failed(__FILE__, __LINE__, "json_number found the member");
  }
  return strtoull(at + strlen(pattern), NULL, 10);
}

/* Reads the stats; checks the call succeeds and that `secret` (if not NULL) is not in them. */
static inline stats get_stats(const char *secret) {
  char *json = NULL;
  CHECK_STATUS(share_stats(&json), SHARE_OK);
  CHECK(json != NULL && json[0] == '{');
  CHECK(secret == NULL || !contains(json, secret));
  stats s;
  CHECK(contains(json, "\"running\":true") || contains(json, "\"running\":false"));
  s.running = contains(json, "\"running\":true");
  s.queued = json_number(json, "queued");
  s.sent = json_number(json, "sent");
  s.coalesced = json_number(json, "coalesced");
  s.retried = json_number(json, "retried");
  s.failed = json_number(json, "failed");
  s.dropped = json_number(json, "dropped");
  s.rejected = json_number(json, "rejected");
  s.ignored = json_number(json, "ignored");
  s.pending_keys = json_number(json, "pending_keys");
  s.pending_bytes = json_number(json, "pending_bytes");
  s.in_flight = json_number(json, "in_flight");
  s.shares = json_number(json, "shares");
  share_string_free(json);
  return s;
}

/* The absolute CLOCK_REALTIME time `ms` from now, for pthread_cond_timedwait. */
static inline struct timespec deadline_in(long ms) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  t.tv_sec += ms / 1000;
  t.tv_nsec += (ms % 1000) * 1000000L;
  if (t.tv_nsec >= 1000000000L) {
    t.tv_sec += 1;
    t.tv_nsec -= 1000000000L;
  }
  return t;
}

/* Sleeps `ms` milliseconds. */
static inline void sleep_ms(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

#endif /* OPENCODE_SHARE_TEST_CHECK_H */
