/*
 * sync_cost: the caller-thread cost of share_sync, measured from C.
 *
 * The program runs its own minimal HTTP/1.1 service on 127.0.0.1:<ephemeral port> (one pthread
 * accepting, one pthread per connection, keep-alive, Content-Length bodies): /share_create
 * answers {"url","secret"}, everything else 200 "{}". It points the library at it, creates one
 * share, and times batches of share_sync calls with clock_gettime(CLOCK_MONOTONIC) (wall) and
 * clock_gettime(CLOCK_THREAD_CPUTIME_ID) (this thread's CPU):
 *
 *   same key       one key rewritten N times (coalescing while the workers send)
 *   distinct keys  N distinct keys of the shared session (key strings prepared beforehand,
 *                  fresh for every repetition)
 *   ignored        one key of a session without a share (the ignore path)
 *
 * with 1 KiB contents, plus 100 B and 100 KiB contents for "same key". Each case: one
 * unmeasured warm-up batch of N/10 calls, then REPS repetitions of N calls, share_flush(60000)
 * after every batch (outside the timed region). Reports the median, min and max ns per call.
 * Prints Markdown tables to stdout: the cost per call, then what the library did with the calls
 * (stats deltas, drain time, and the caller thread's page faults and context switches from
 * getrusage(RUSAGE_THREAD)). Exits non-zero on any unexpected status, printing share_last_error().
 *
 * Build and run: scripts/bench-sync. Options (for profiling runs, e.g. under callgrind):
 *   --n N          calls per repetition for the 100 B / 1 KiB cases (default 100000)
 *   --n-large N    calls per repetition for the 100 KiB case (default 5000)
 *   --reps R       repetitions per case (default 7)
 *   --case NAME    run only this case: same-100, same-1k, same-100k, distinct, ignored
 *   --no-warmup    skip the warm-up batch
 *   --spool DIR    with the durable spool in DIR (share_init's spool_dir; scripts/bench-sync
 *                  --spool-side-by-side compares runs with and without it)
 *   --no-redact    with credential redaction off ("redact": false; scripts/bench-sync
 *                  --redact-side-by-side compares runs with it on, the default, and off)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "opencode_share.h"

/* ------------------------------------------------------------------------------------------ */
/* Minimal HTTP/1.1 service                                                                   */
/* ------------------------------------------------------------------------------------------ */

static const char CREATE_BODY[] =
    "{\"url\":\"http://x/s/abc\",\"secret\":\"00000000-0000-4000-8000-000000000000\"}";
static atomic_ullong served_requests;
static atomic_ullong served_bytes;

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Finds "\r\n\r\n" in buf[0..len); returns the offset just past it, or 0. */
static size_t header_end(const char *buf, size_t len) {
  for (size_t i = 3; i < len; i++)
    if (buf[i - 3] == '\r' && buf[i - 2] == '\n' && buf[i - 1] == '\r' && buf[i] == '\n') return i + 1;
  return 0;
}

/* Content-Length from the header block (case-insensitive name); 0 when absent. */
static size_t content_length(const char *hdr, size_t hlen) {
  const char *p = hdr, *end = hdr + hlen;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) break;
    if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) {
      return (size_t)strtoull(p + 15, NULL, 10);
    }
    p = eol + 1;
  }
  return 0;
}

static void *serve_connection(void *arg) {
  int fd = (int)(intptr_t)arg;
  pthread_setname_np(pthread_self(), "bench-http"); /* tells profiles apart from the caller */
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (!buf) goto out;
  for (;;) {
    size_t hend;
    while ((hend = header_end(buf, len)) == 0) {
      if (len == cap) {
        cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) goto out;
        buf = nb;
      }
      ssize_t r = recv(fd, buf + len, cap - len, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) goto out;
      len += (size_t)r;
    }
    size_t total = hend + content_length(buf, hend);
    while (len < total) {
      if (total > cap) {
        while (cap < total) cap *= 2;
        char *nb = realloc(buf, cap);
        if (!nb) goto out;
        buf = nb;
      }
      ssize_t r = recv(fd, buf + len, cap - len, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) goto out;
      len += (size_t)r;
    }
    int create = strncmp(buf, "POST /share_create ", 19) == 0;
    atomic_fetch_add_explicit(&served_requests, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&served_bytes, total, memory_order_relaxed);
    memmove(buf, buf + total, len - total);
    len -= total;

    char resp[512];
    int n;
    if (create)
      n = snprintf(resp, sizeof resp,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                   sizeof CREATE_BODY - 1, CREATE_BODY);
    else
      n = snprintf(resp, sizeof resp, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    if (write_all(fd, resp, (size_t)n) != 0) goto out;
  }
out:
  free(buf);
  close(fd);
  return NULL;
}

static void *accept_loop(void *arg) {
  int lfd = (int)(intptr_t)arg;
  pthread_setname_np(pthread_self(), "bench-accept");
  for (;;) {
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, serve_connection, (void *)(intptr_t)fd) != 0) close(fd);
    pthread_attr_destroy(&attr);
  }
}

static int start_server(void) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  if (lfd < 0) { perror("socket"); exit(1); }
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0) { perror("bind"); exit(1); }
  if (listen(lfd, 128) != 0) { perror("listen"); exit(1); }
  socklen_t alen = sizeof a;
  if (getsockname(lfd, (struct sockaddr *)&a, &alen) != 0) { perror("getsockname"); exit(1); }
  pthread_t t;
  if (pthread_create(&t, NULL, accept_loop, (void *)(intptr_t)lfd) != 0) { perror("pthread_create"); exit(1); }
  pthread_detach(t);
  return ntohs(a.sin_port);
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void check(share_status st, const char *what) {
  if (st != SHARE_OK) {
    fprintf(stderr, "sync_cost: %s failed: status %d: %s\n", what, (int)st, share_last_error());
    exit(2);
  }
}

static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) { fprintf(stderr, "sync_cost: out of memory\n"); exit(3); }
  return p;
}

static int64_t now_ns(clockid_t clk) {
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* {"id":"prt_...","type":"text","text":"xxx...x"}, exactly `size` bytes (plus NUL). */
static char *make_content(size_t size) {
  const char *head = "{\"id\":\"prt_01JZ5D3N8Q4W6E2R7T9Y1U3I5O\",\"type\":\"text\",\"text\":\"";
  const char *tail = "\"}";
  size_t h = strlen(head), t = strlen(tail);
  if (size < h + t) { fprintf(stderr, "content size too small\n"); exit(3); }
  char *c = xmalloc(size + 1);
  memcpy(c, head, h);
  static const char alphabet[] = "the quick brown fox jumps over the lazy dog ";
  for (size_t i = h; i < size - t; i++) c[i] = alphabet[(i - h) % (sizeof alphabet - 1)];
  memcpy(c + size - t, tail, t);
  c[size] = 0;
  return c;
}

/* Reads an unsigned integer field out of the stats JSON (0 if absent). */
static unsigned long long stat_field(const char *json, const char *name) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", name);
  const char *p = strstr(json, pat);
  return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

typedef struct {
  unsigned long long queued, coalesced, sent, ignored, dropped, rejected, failed;
} stats_t;

static stats_t read_stats(void) {
  char *js = NULL;
  check(share_stats(&js), "share_stats");
  stats_t s = {stat_field(js, "queued"),  stat_field(js, "coalesced"), stat_field(js, "sent"),
               stat_field(js, "ignored"), stat_field(js, "dropped"),   stat_field(js, "rejected"),
               stat_field(js, "failed")};
  share_string_free(js);
  return s;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* ------------------------------------------------------------------------------------------ */
/* Cases                                                                                      */
/* ------------------------------------------------------------------------------------------ */

#define SESSION "ses_01JZ5D3N8Q4W6E2R7T9Y1U3I5O"
#define UNSHARED "ses_01JZ5D3N8Q4W6E2R7T9Y1U3ZZZ"
#define MAX_REPS 64
#define KEY_CAP 128

typedef enum { SAME_KEY, DISTINCT_KEYS, IGNORED } mode_t_;

typedef struct {
  const char *id;    /* for --case */
  const char *label;
  mode_t_ mode;
  size_t size;
  int large;         /* uses --n-large */
} case_t;

static const case_t CASES[] = {
    {"same-1k", "same key", SAME_KEY, 1024, 0},
    {"distinct", "distinct keys", DISTINCT_KEYS, 1024, 0},
    {"ignored", "ignored (no share)", IGNORED, 1024, 0},
    {"same-100", "same key", SAME_KEY, 100, 0},
    {"same-100k", "same key", SAME_KEY, 100 * 1024, 1},
};

typedef struct {
  double wall[MAX_REPS], cpu[MAX_REPS], drain_ms[MAX_REPS];
  stats_t delta;
  unsigned long long requests;
  /* The caller thread's minor page faults, voluntary (blocked) and involuntary (preempted)
   * context switches during the measured batches, summed over the repetitions. */
  long minflt, nvcsw, nivcsw;
} result_t;

static long key_serial; /* makes every distinct key of the run fresh */

/* Fills keys[0..n) with fresh, distinct part keys of SESSION. */
static void prepare_keys(char **keys, size_t n) {
  for (size_t i = 0; i < n; i++) {
    snprintf(keys[i], KEY_CAP, "session/part/" SESSION "/msg_01JZ5D3N8Q4W6E2R7T9Y1U3I5O/prt_%026ld",
             key_serial++);
  }
}

/* One batch of n calls; returns wall and thread-CPU ns per call. */
static void batch(const case_t *c, size_t n, char **keys, const char *content, double *wall, double *cpu) {
  static const char same_key[] = "session/part/" SESSION "/msg_01JZ5D3N8Q4W6E2R7T9Y1U3I5O/prt_01JZ5D3N8Q4W6E2R7T9Y1U3SAME";
  static const char ignored_key[] = "session/part/" UNSHARED "/msg_01JZ5D3N8Q4W6E2R7T9Y1U3I5O/prt_01JZ5D3N8Q4W6E2R7T9Y1U3SAME";
  if (c->mode == DISTINCT_KEYS) prepare_keys(keys, n);
  const char *fixed = c->mode == IGNORED ? ignored_key : same_key;
  int64_t w0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
  if (c->mode == DISTINCT_KEYS) {
    for (size_t i = 0; i < n; i++) {
      share_status st = share_sync(keys[i], content);
      if (st != SHARE_OK) check(st, "share_sync (distinct keys)");
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      share_status st = share_sync(fixed, content);
      if (st != SHARE_OK) check(st, "share_sync");
    }
  }
  int64_t c1 = now_ns(CLOCK_THREAD_CPUTIME_ID), w1 = now_ns(CLOCK_MONOTONIC);
  *wall = (double)(w1 - w0) / (double)n;
  *cpu = (double)(c1 - c0) / (double)n;
}

static double flush_ms(void) {
  int64_t t0 = now_ns(CLOCK_MONOTONIC);
  check(share_flush(60000), "share_flush(60000)");
  return (double)(now_ns(CLOCK_MONOTONIC) - t0) / 1e6;
}

static void run_case(const case_t *c, size_t n, int reps, int warmup, result_t *r) {
  char *content = make_content(c->size);
  char **keys = NULL;
  char *key_store = NULL;
  if (c->mode == DISTINCT_KEYS) {
    keys = xmalloc(n * sizeof *keys);
    key_store = xmalloc(n * KEY_CAP);
    for (size_t i = 0; i < n; i++) keys[i] = key_store + i * KEY_CAP;
  }
  if (warmup) {
    double w, u;
    batch(c, n / 10 ? n / 10 : 1, keys, content, &w, &u);
    flush_ms();
  }
  stats_t before = read_stats();
  unsigned long long req0 = atomic_load(&served_requests);
  for (int i = 0; i < reps; i++) {
    struct rusage u0, u1;
    getrusage(RUSAGE_THREAD, &u0);
    batch(c, n, keys, content, &r->wall[i], &r->cpu[i]);
    getrusage(RUSAGE_THREAD, &u1);
    r->minflt += u1.ru_minflt - u0.ru_minflt;
    r->nvcsw += u1.ru_nvcsw - u0.ru_nvcsw;
    r->nivcsw += u1.ru_nivcsw - u0.ru_nivcsw;
    r->drain_ms[i] = flush_ms();
  }
  stats_t after = read_stats();
  r->requests = atomic_load(&served_requests) - req0;
  r->delta = (stats_t){after.queued - before.queued,   after.coalesced - before.coalesced,
                       after.sent - before.sent,       after.ignored - before.ignored,
                       after.dropped - before.dropped, after.rejected - before.rejected,
                       after.failed - before.failed};
  if (r->delta.rejected || r->delta.dropped || r->delta.failed) {
    fprintf(stderr, "sync_cost: %s/%zu B: unexpected rejected=%llu dropped=%llu failed=%llu\n", c->label,
            c->size, r->delta.rejected, r->delta.dropped, r->delta.failed);
    exit(4);
  }
  free(keys);
  free(key_store);
  free(content);
}

static void summarize(const double *v, int n, double *med, double *mn, double *mx) {
  double s[MAX_REPS];
  memcpy(s, v, (size_t)n * sizeof *v);
  qsort(s, (size_t)n, sizeof *s, cmp_double);
  *mn = s[0];
  *mx = s[n - 1];
  *med = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static const char *size_label(size_t size, char *buf, size_t cap) {
  if (size >= 1024 && size % 1024 == 0) snprintf(buf, cap, "%zu KiB", size / 1024);
  else snprintf(buf, cap, "%zu B", size);
  return buf;
}

int main(int argc, char **argv) {
  size_t n = 100000, n_large = 5000;
  int reps = 7, warmup = 1, redact = 1;
  const char *only = NULL, *spool = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--n") && i + 1 < argc) n = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--n-large") && i + 1 < argc) n_large = strtoull(argv[++i], NULL, 10);
    else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--case") && i + 1 < argc) only = argv[++i];
    else if (!strcmp(argv[i], "--no-warmup")) warmup = 0;
    else if (!strcmp(argv[i], "--spool") && i + 1 < argc) spool = argv[++i];
    else if (!strcmp(argv[i], "--no-redact")) redact = 0;
    else {
      fprintf(stderr, "usage: %s [--n N] [--n-large N] [--reps R] [--case same-100|same-1k|same-100k|distinct|ignored] [--no-warmup] [--spool DIR] [--no-redact]\n", argv[0]);
      return 64;
    }
  }
  if (reps < 1 || reps > MAX_REPS || n == 0 || n_large == 0) {
    fprintf(stderr, "sync_cost: reps must be 1..%d and N > 0\n", MAX_REPS);
    return 64;
  }
  signal(SIGPIPE, SIG_IGN);

  int port = start_server();
  char config[4352];
  char spool_member[4128] = "";
  if (spool) {
    if (strlen(spool) > 4000 || strpbrk(spool, "\"\\")) {
      fprintf(stderr, "sync_cost: --spool needs a path under 4000 bytes without quotes or backslashes\n");
      return 64;
    }
    snprintf(spool_member, sizeof spool_member, ",\"spool_dir\":\"%s\"", spool);
  }
  /* 2^40 bytes: max_pending_bytes must never be reached here. */
  snprintf(config, sizeof config, "{\"url\":\"http://127.0.0.1:%d\",\"max_pending_bytes\":1099511627776%s%s}", port,
           spool_member, redact ? "" : ",\"redact\":false");
  check(share_init(config), "share_init");
  char *created = NULL;
  check(share_create(SESSION, &created), "share_create");
  if (!created || !strstr(created, "\"secret\"")) {
    fprintf(stderr, "sync_cost: share_create gave %s\n", created ? created : "(null)");
    return 2;
  }
  share_string_free(created);

  size_t ncases = sizeof CASES / sizeof CASES[0];
  result_t *results = calloc(ncases, sizeof *results);
  int ran[sizeof CASES / sizeof CASES[0]] = {0};
  int any = 0;
  for (size_t i = 0; i < ncases; i++) {
    if (only && strcmp(only, CASES[i].id) != 0) continue;
    run_case(&CASES[i], CASES[i].large ? n_large : n, reps, warmup, &results[i]);
    ran[i] = 1;
    any = 1;
  }
  if (!any) {
    fprintf(stderr, "sync_cost: no case named %s\n", only);
    return 64;
  }

  printf("opencode-share %s: share_sync caller-thread cost, ns per call over %d repetitions "
         "(median, min, max)%s%s\n\n",
         share_version(), reps, warmup ? ", after one warm-up batch of N/10" : "",
         spool ? ", with the durable spool (spool_dir)" : "");
  printf("| case | content | N | wall median | wall min | wall max | thread CPU median | CPU min | CPU max |\n");
  printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  char sz[32];
  for (size_t i = 0; i < ncases; i++) {
    if (!ran[i]) continue;
    double wm, wn, wx, cm, cn, cx;
    summarize(results[i].wall, reps, &wm, &wn, &wx);
    summarize(results[i].cpu, reps, &cm, &cn, &cx);
    printf("| %s | %s | %zu | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", CASES[i].label,
           size_label(CASES[i].size, sz, sizeof sz), CASES[i].large ? n_large : n, wm, wn, wx, cm, cn, cx);
  }
  printf("\nWhat the library did with those calls (totals over the measured repetitions; drain = "
         "share_flush after each batch;\n"
         "faults and switches are the calling thread's, during the timed batches, per 1000 calls):\n\n");
  printf("| case | content | queued | coalesced | sent | ignored | HTTP requests served | drain ms median | drain ms max "
         "| minor faults | blocked switches | preemptions |\n");
  printf("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
  for (size_t i = 0; i < ncases; i++) {
    if (!ran[i]) continue;
    double dm, dn, dx;
    summarize(results[i].drain_ms, reps, &dm, &dn, &dx);
    const stats_t *d = &results[i].delta;
    double calls = (double)(CASES[i].large ? n_large : n) * reps / 1000.0;
    printf("| %s | %s | %llu | %llu | %llu | %llu | %llu | %.1f | %.1f | %.1f | %.1f | %.1f |\n", CASES[i].label,
           size_label(CASES[i].size, sz, sizeof sz), d->queued, d->coalesced, d->sent, d->ignored,
           results[i].requests, dm, dx, results[i].minflt / calls, results[i].nvcsw / calls,
           results[i].nivcsw / calls);
  }
  fflush(stdout);
  free(results);

  check(share_shutdown(10000), "share_shutdown(10000)");
  return 0;
}
