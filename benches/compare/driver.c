/*
 * driver.c: the library from C, one run of the side-by-side benchmark (benches/compare/).
 *
 * The orchestrator starts this program with the share service's URL and a workload file
 * (benches/compare/workload.rs writes it: every key and content of the scenario, so this driver
 * generates nothing). It creates the shares the workload names, warms up with the workload's
 * warm-up writes, prints "READY" and waits for "GO" on stdin, prints "START" (the orchestrator's
 * clock starts when it reads the line), makes the writes through share_sync, waits with
 * share_flush until the library has sent everything, and prints one line "RESULT {json}" with
 * what it measured on its side: CPU of the writing thread(s) inside the share_sync calls and from
 * START to drained, process CPU, peak resident memory, the library's stats. Everything about
 * delivery (times, requests, bytes, contents) is measured by the orchestrator on the service's
 * side.
 *
 * How it writes follows from the workload: with threads > 1, one writer thread per thread index
 * (many); with interval_us > 0, paced (stream); with total > the writes, replayed (soak);
 * otherwise back to back.
 *
 * next-* workloads: `--protocol next` starts the library with {"url":..,"protocol":"next"}; when
 * share_init refuses that with SHARE_ERR_INVALID_ARGUMENT (a library that does not speak it yet)
 * the driver prints "SKIP <why>" instead of READY and exits 0. `finish exit` shuts the library
 * down right after the writes (share_shutdown with the time left) instead of share_flush; `stamp 1`
 * adds "write_us" to RESULT: each write's time since START in µs (CLOCK_MONOTONIC, taken right
 * after its share_sync returned), in file order.
 *
 * Build: cc -O2 -std=c11 -pthread -I include benches/compare/driver.c \
 *          -L target/release -lopencode_share -Wl,-rpath,$PWD/target/release -o target/bench-compare/driver_c
 * Usage: driver_c --url URL --workload FILE [--timeout-ms X] [--contender library|none]
 *                 [--protocol v1|next]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "opencode_share.h"

/* ---------------------------------------------------------------------------------------- */
/* The workload file (written by benches/compare/workload.rs, which documents the format)   */
/* ---------------------------------------------------------------------------------------- */

/* One write: the C thread that makes it, its key, and its content around the version. */
typedef struct {
  long thread, v;
  char *key, *head, *tail;
} write_t;

typedef struct {
  write_t *items;
  long n;
} writes_t;

typedef struct {
  char **items;
  long n;
} names_t;

static struct {
  char scenario[32];
  long interval_us, threads, total, sample_every;
  int exit_after, stamp; /* next-*: shut down right after the writes; time-stamp each write */
  char *warmup_sid;
  writes_t warmup, writes;
  names_t creates, timed_creates;
} W = {.threads = 1};

static void *grow(void *p, long n, size_t size) {
  p = realloc(p, size * (size_t)(n + 1));
  if (!p) { fprintf(stderr, "driver: out of memory\n"); exit(3); }
  return p;
}

static char *copy_str(const char *s) {
  char *d = strdup(s);
  if (!d) { fprintf(stderr, "driver: out of memory\n"); exit(3); }
  return d;
}

static void push_name(names_t *l, const char *name) {
  l->items = grow(l->items, l->n, sizeof(char *));
  l->items[l->n++] = copy_str(name);
}

/* f = thread (or absent), key, v, head, tail */
static void push_write(writes_t *l, char **f, int with_thread) {
  l->items = grow(l->items, l->n, sizeof(write_t));
  write_t *w = &l->items[l->n++];
  w->thread = with_thread ? atol(*f++) : 0;
  w->key = copy_str(f[0]);
  w->v = atol(f[1]);
  w->head = copy_str(f[2]);
  w->tail = copy_str(f[3]);
}

/* The content of `w` in replay pass `pass`: head, version, tail (a malloc'd string). */
static char *content_of(const write_t *w, long pass) {
  size_t cap = strlen(w->head) + strlen(w->tail) + 24;
  char *s = malloc(cap);
  if (!s) { fprintf(stderr, "driver: out of memory\n"); exit(3); }
  snprintf(s, cap, "%s%ld%s", w->head, w->v + pass, w->tail);
  return s;
}

static void read_workload(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) { fprintf(stderr, "driver: cannot open the workload %s: %s\n", path, strerror(errno)); exit(2); }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  while ((len = getline(&line, &cap, f)) > 0) {
    if (line[len - 1] == '\n') line[--len] = 0;
    char *field[7] = {0}, *save = NULL;
    int n = 0;
    for (char *t = strtok_r(line, "\t", &save); t && n < 7; t = strtok_r(NULL, "\t", &save)) field[n++] = t;
    const char *r = field[0] ? field[0] : "";
    if (n == 5 && !strcmp(r, "warmup")) push_write(&W.warmup, field + 1, 0);
    else if (n == 6 && !strcmp(r, "write")) push_write(&W.writes, field + 1, 1);
    else if (n != 2) { fprintf(stderr, "driver: bad workload line: %.80s\n", line); exit(2); }
    else if (!strcmp(r, "scenario")) snprintf(W.scenario, sizeof W.scenario, "%s", field[1]);
    else if (!strcmp(r, "interval_us")) W.interval_us = atol(field[1]);
    else if (!strcmp(r, "threads")) W.threads = atol(field[1]) < 1 ? 1 : atol(field[1]);
    else if (!strcmp(r, "total")) W.total = atol(field[1]);
    else if (!strcmp(r, "sample_every")) W.sample_every = atol(field[1]);
    else if (!strcmp(r, "warmup_create")) W.warmup_sid = copy_str(field[1]);
    else if (!strcmp(r, "create")) push_name(&W.creates, field[1]);
    else if (!strcmp(r, "create_timed")) push_name(&W.timed_creates, field[1]);
    else if (!strcmp(r, "finish")) W.exit_after = !strcmp(field[1], "exit");
    else if (!strcmp(r, "stamp")) W.stamp = !strcmp(field[1], "1");
    /* workload, await_each: nothing to do here */
  }
  free(line);
  fclose(f);
  if (!W.warmup_sid || W.writes.n == 0) { fprintf(stderr, "driver: the workload %s is incomplete\n", path); exit(2); }
}

/* ---------------------------------------------------------------------------------------- */
/* Clocks and memory                                                                        */
/* ---------------------------------------------------------------------------------------- */

static int64_t now_ns(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}
static int64_t mono(void) { return now_ns(CLOCK_MONOTONIC); }
static int64_t thread_cpu(void) { return now_ns(CLOCK_THREAD_CPUTIME_ID); }

static int64_t process_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
         ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

/* A field of /proc/self/status in kB (VmHWM: peak resident, VmRSS: current). */
static long status_kb(const char *field) {
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kb = -1;
  size_t n = strlen(field);
  while (fgets(line, sizeof line, f))
    if (strncmp(line, field, n) == 0 && line[n] == ':') {
      kb = strtol(line + n + 1, NULL, 10);
      break;
    }
  fclose(f);
  return kb;
}

static void check(share_status st, const char *what) {
  if (st != SHARE_OK) {
    fprintf(stderr, "driver: %s failed: status %d: %s\n", what, (int)st, share_last_error());
    exit(2);
  }
}

/* ---------------------------------------------------------------------------------------- */
/* Options                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static const char *opt_url = NULL, *opt_workload = NULL, *opt_protocol = NULL;
static long opt_timeout_ms = 90000;
/* --contender none: the driver alone (no share_sync calls), to measure its own pacing cost. */
static int opt_none = 0;

static share_status do_sync(const char *key, const char *content_json) {
  return opt_none ? SHARE_OK : share_sync(key, content_json);
}

static void parse(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) { fprintf(stderr, "driver: %s needs a value\n", a); exit(2); }
    i++;
    if (!strcmp(a, "--url")) opt_url = v;
    else if (!strcmp(a, "--workload")) opt_workload = v;
    else if (!strcmp(a, "--timeout-ms")) opt_timeout_ms = atol(v);
    else if (!strcmp(a, "--contender")) opt_none = !strcmp(v, "none");
    else if (!strcmp(a, "--protocol")) opt_protocol = v;
    else if (!strcmp(a, "--bindings")) { /* the JS driver's option */ }
    else { fprintf(stderr, "driver: unknown option %s\n", a); exit(2); }
  }
  if (!opt_url || !opt_workload) { fprintf(stderr, "driver: --url and --workload are required\n"); exit(2); }
}

/* ---------------------------------------------------------------------------------------- */
/* The run                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static int64_t t_start;              /* CLOCK_MONOTONIC at START */
static int64_t *stamps;              /* stamp 1: each write's time since START, ns (file order) */
static int64_t cpu_start_process;    /* process CPU at START */

/* After setup: "READY", then wait for the orchestrator's "GO" (it sets the service's latency and
 * faults in between, so setup and warm-up run at 0 ms and without faults). */
static void ready(void) {
  fputs("READY\n", stdout);
  fflush(stdout);
  char line[64];
  if (!fgets(line, sizeof line, stdin) || strncmp(line, "GO", 2) != 0) {
    fprintf(stderr, "driver: no GO from the orchestrator\n");
    exit(2);
  }
}

static void signal_start(void) {
  ready();
  t_start = mono();
  cpu_start_process = process_cpu();
  fputs("START\n", stdout);
  fflush(stdout);
}

static void create_shares(const names_t *sids) {
  for (long i = 0; i < sids->n; i++) {
    char *out = NULL;
    check(share_create(sids->items[i], &out), "share_create");
    share_string_free(out);
  }
}

/* A list of writes prepared before START, so the timed loop only calls share_sync. */
typedef struct {
  char **keys;
  char **contents;
  long n;
} plan_t;

static void plan_push(plan_t *p, char *key, char *body) {
  p->keys = grow(p->keys, p->n, sizeof(char *));
  p->contents = grow(p->contents, p->n, sizeof(char *));
  p->keys[p->n] = key;
  p->contents[p->n] = body;
  p->n++;
}

typedef struct {
  plan_t plan;
  pthread_barrier_t *barrier;
  int64_t cpu_in_sync, wall_in_sync, cpu_total; /* thread CPU in the calls, wall in the calls, thread CPU START->drained */
  long errors;
} writer_t;

/* Writes the plan back to back; CPU and wall are taken around the whole loop (not per call). */
static void write_all(writer_t *w) {
  int64_t c0 = thread_cpu(), w0 = mono();
  for (long i = 0; i < w->plan.n; i++) {
    if (do_sync(w->plan.keys[i], w->plan.contents[i]) != SHARE_OK) w->errors++;
    if (stamps) stamps[i] = mono() - t_start; /* single-threaded workloads only */
  }
  w->cpu_in_sync += thread_cpu() - c0;
  w->wall_in_sync += mono() - w0;
}

static void *writer_thread(void *arg) {
  writer_t *w = arg;
  pthread_barrier_wait(w->barrier);
  int64_t c0 = thread_cpu();
  write_all(w);
  w->cpu_total = thread_cpu() - c0;
  return NULL;
}

/* Warm-up, before START: a share of its own session and the workload's warm-up writes, flushed.
 * Both contenders do the same, so caches, connections and (in JS) the JIT are warm when timing
 * starts; the orchestrator ignores this session's requests. */
static void warm_up(void) {
  char *out = NULL;
  check(share_create(W.warmup_sid, &out), "share_create (warm-up)");
  share_string_free(out);
  for (long i = 0; i < W.warmup.n; i++) {
    char *body = content_of(&W.warmup.items[i], 0);
    check(share_sync(W.warmup.items[i].key, body), "share_sync (warm-up)");
    free(body);
  }
  check(share_flush(60000), "share_flush (warm-up)");
}

/* What the writing measured, for the RESULT line. */
typedef struct {
  long writes, errors;
  int64_t cpu_in_sync, wall_in_sync, cpu_thread_total, t0_thread_cpu;
  char rss_series[4096];
  size_t rss_len;
} measures_t;

/* Appends [label, VmRSS kB] to the RSS series. */
static void sample_rss(measures_t *m, const char *label) {
  if (m->rss_len + 64 < sizeof m->rss_series)
    m->rss_len += (size_t)snprintf(m->rss_series + m->rss_len, sizeof m->rss_series - m->rss_len, "%s[%s,%ld]",
                                   m->rss_len ? "," : "", label, status_kb("VmRSS"));
}

/* The writes of thread `t` (every write when t < 0), their contents built now, before START. */
static plan_t plan_of(long t) {
  plan_t p = {0};
  for (long i = 0; i < W.writes.n; i++)
    if (t < 0 || W.writes.items[i].thread == t) plan_push(&p, W.writes.items[i].key, content_of(&W.writes.items[i], 0));
  return p;
}

static void start_timed(measures_t *m) {
  signal_start();
  m->t0_thread_cpu = thread_cpu();
  create_shares(&W.timed_creates); /* the initial share: the create is part of the timed work */
}

/* Back to back from this thread (burst, faults, initial): CPU and wall around the whole loop. */
static void run_back_to_back(measures_t *m) {
  writer_t w = {.plan = plan_of(-1)};
  start_timed(m);
  write_all(&w);
  m->writes = w.plan.n, m->errors = w.errors, m->cpu_in_sync = w.cpu_in_sync, m->wall_in_sync = w.wall_in_sync;
}

/* Write v due at START + v * interval (an absolute schedule: no drift); CPU and wall per call. */
static void run_paced(measures_t *m) {
  plan_t p = plan_of(-1);
  start_timed(m);
  for (long v = 0; v < p.n; v++) {
    int64_t due = t_start + v * W.interval_us * 1000LL;
    struct timespec ts = {(time_t)(due / 1000000000LL), (long)(due % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
    int64_t c0 = thread_cpu(), w0 = mono();
    if (do_sync(p.keys[v], p.contents[v]) != SHARE_OK) m->errors++;
    m->cpu_in_sync += thread_cpu() - c0;
    int64_t w1 = mono();
    m->wall_in_sync += w1 - w0;
    if (stamps) stamps[v] = w1 - t_start;
  }
  m->writes = p.n;
}

/* W.threads writer threads, released together by a barrier after START (many). */
static void run_threads(measures_t *m) {
  long T = W.threads;
  writer_t *ws = calloc((size_t)T, sizeof(writer_t));
  pthread_t *th = calloc((size_t)T, sizeof(pthread_t));
  pthread_barrier_t barrier;
  pthread_barrier_init(&barrier, NULL, (unsigned)T + 1);
  for (long t = 0; t < T; t++) {
    ws[t].plan = plan_of(t);
    ws[t].barrier = &barrier;
    pthread_create(&th[t], NULL, writer_thread, &ws[t]);
  }
  start_timed(m);
  pthread_barrier_wait(&barrier);
  for (long t = 0; t < T; t++) {
    pthread_join(th[t], NULL);
    m->writes += ws[t].plan.n, m->errors += ws[t].errors;
    m->cpu_in_sync += ws[t].cpu_in_sync, m->wall_in_sync += ws[t].wall_in_sync;
    m->cpu_thread_total += ws[t].cpu_total;
  }
}

/* The writes replayed until W.total (soak): each content built in a reused buffer outside the
 * measured call (thread CPU per call), VmRSS sampled every W.sample_every writes. */
static void run_replayed(measures_t *m) {
  size_t cap = 0;
  for (long k = 0; k < W.writes.n; k++) {
    size_t need = strlen(W.writes.items[k].head) + strlen(W.writes.items[k].tail) + 24;
    if (need > cap) cap = need;
  }
  char *buf = malloc(cap);
  start_timed(m);
  for (long i = 0; i < W.total; i++) {
    const write_t *w = &W.writes.items[i % W.writes.n];
    snprintf(buf, cap, "%s%ld%s", w->head, w->v + i / W.writes.n, w->tail);
    int64_t c0 = thread_cpu();
    share_status st = do_sync(w->key, buf);
    m->cpu_in_sync += thread_cpu() - c0;
    if (st != SHARE_OK) m->errors++;
    if (W.sample_every > 0 && (i + 1) % W.sample_every == 0) {
      char at[24];
      snprintf(at, sizeof at, "%ld", i + 1);
      sample_rss(m, at);
    }
  }
  m->writes = W.total;
}

int main(int argc, char **argv) {
  parse(argc, argv);
  read_workload(opt_workload);
  setvbuf(stdout, NULL, _IOLBF, 0);

  char config[600];
  if (opt_protocol)
    snprintf(config, sizeof config, "{\"url\":\"%s\",\"protocol\":\"%s\"}", opt_url, opt_protocol);
  else
    snprintf(config, sizeof config, "{\"url\":\"%s\"}", opt_url);
  share_status init = share_init(config);
  if (init == SHARE_ERR_INVALID_ARGUMENT && opt_protocol) {
    printf("SKIP the library does not speak %s yet (share_init: %s)\n", opt_protocol, share_last_error());
    return 0;
  }
  check(init, "share_init");
  if (W.stamp && W.threads == 1) stamps = calloc((size_t)W.writes.n, sizeof *stamps);
  warm_up();
  create_shares(&W.creates);

  measures_t m = {0};
  if (W.threads > 1) run_threads(&m);
  else if (W.interval_us > 0) run_paced(&m);
  else if (W.total > W.writes.n) run_replayed(&m);
  else run_back_to_back(&m);
  int64_t last_write_ns = mono() - t_start;

  /* Drained: the library has sent (or dropped) everything written. */
  int64_t left_ms = opt_timeout_ms - (mono() - t_start) / 1000000;
  uint32_t left = left_ms > 0 ? (uint32_t)left_ms : 0;
  share_status fl = W.exit_after ? share_shutdown(left) : share_flush(left);
  int64_t drained_ns = mono() - t_start;
  /* the main thread's CPU from START, and (many) the writer threads' as well */
  m.cpu_thread_total += thread_cpu() - m.t0_thread_cpu;
  int64_t cpu_process = process_cpu() - cpu_start_process;
  if (W.sample_every > 0) sample_rss(&m, "\"flushed\"");

  char *stats = NULL;
  share_stats(&stats);
  printf("RESULT {\"runtime\":\"c\",\"contender\":\"%s\",\"writes\":%ld,\"sync_errors\":%ld,"
         "\"flush_status\":%d,\"cpu_in_sync_ns\":%lld,\"wall_in_sync_ns\":%lld,\"host_thread_cpu_ns\":%lld,"
         "\"process_cpu_ns\":%lld,\"last_write_ns\":%lld,\"drained_ns\":%lld,\"peak_rss_kb\":%ld,"
         "\"rss_series\":[%s],\"stats\":%s",
         opt_none ? "none" : "library", m.writes, m.errors, (int)fl, (long long)m.cpu_in_sync,
         (long long)m.wall_in_sync, (long long)m.cpu_thread_total, (long long)cpu_process, (long long)last_write_ns,
         (long long)drained_ns, status_kb("VmHWM"), m.rss_series, stats ? stats : "null");
  if (stamps) {
    fputs(",\"write_us\":[", stdout);
    for (long i = 0; i < W.writes.n; i++) printf("%s%.1f", i ? "," : "", (double)stamps[i] / 1000.0);
    fputs("]", stdout);
  }
  fputs("}\n", stdout);
  fflush(stdout);
  share_string_free(stats);
  share_shutdown(5000);
  return 0;
}
