/*
 * driver.c: the library from C, one scenario of the side-by-side benchmark (benches/compare.rs).
 *
 * The orchestrator starts this program with the share service's URL and a scenario; it creates
 * the shares it needs, warms up, prints "READY" and waits for "GO" on stdin, prints "START" (the
 * orchestrator's clock starts when it reads the line),
 * writes the scenario's storage writes through share_sync, waits with share_flush until the
 * library has sent everything, and prints one line "RESULT {json}" with what it measured on its
 * side: CPU of the writing thread(s) inside the share_sync calls and from START to drained,
 * process CPU, peak resident memory, the library's stats. Everything about delivery (times,
 * requests, bytes, contents) is measured by the orchestrator on the service's side.
 *
 * Contents are generated with the same function as benches/compare/driver.ts and the
 * orchestrator (see benches/compare/README.md, "Workloads"), so the orchestrator knows the final
 * content of every key.
 *
 * Build: cc -O2 -std=c11 -pthread -I include benches/compare/driver.c \
 *          -L target/release -lopencode_share -Wl,-rpath,$PWD/target/release -o target/bench-compare/driver_c
 * Usage: driver_c --url URL --scenario burst|stream|initial|many|faults|soak
 *          [--keys N] [--writes W] [--interval-us U] [--sessions S] [--messages M] [--parts P]
 *          [--threads T] [--timeout-ms X] [--sample-every N] [--contender none]
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
/* Workload: ids, keys and contents (identical in driver.ts and compare.rs)                  */
/* ---------------------------------------------------------------------------------------- */

static const char ALPHA[] = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod ";
#define MASTER_LEN (1000 + 70000)
static char MASTER[MASTER_LEN + 1];

static void master_init(void) {
  size_t n = sizeof ALPHA - 1;
  for (size_t j = 0; j < MASTER_LEN; j++) MASTER[j] = ALPHA[(j * 7 + j / 5) % n];
  MASTER[MASTER_LEN] = 0;
}

static size_t text_off(long seed) { return (size_t)((seed * 131) % 1000); }
static long len_part(long x) { return 200 + (x * 97) % 1600; }
static long len_msg(long x) { return 100 + (x * 37) % 300; }
static long len_soak(long x) { return 100 + (x * 97) % 400; }
static long len_stream(long v) { return 16 + 4 * v; }

static void ses_id(char *out, long s) { sprintf(out, "ses_bench%021ld", s); }
static void msg_id(char *out, long m) { sprintf(out, "msg_bench%021ld", m); }
static void prt_id(char *out, long p) { sprintf(out, "prt_bench%021ld", p); }

/* The JSON content: {"id","sessionID","type","v","text"}; returns a malloc'd string. */
static char *content(const char *id, const char *sid, const char *kind, long v, long seed, long len) {
  if (len < 0 || text_off(seed) + (size_t)len > MASTER_LEN) {
    fprintf(stderr, "driver: text length %ld too large\n", len);
    exit(2);
  }
  size_t cap = (size_t)len + 256;
  char *s = malloc(cap);
  if (!s) { fprintf(stderr, "driver: out of memory\n"); exit(3); }
  snprintf(s, cap, "{\"id\":\"%s\",\"sessionID\":\"%s\",\"type\":\"%s\",\"v\":%ld,\"text\":\"%.*s\"}", id, sid, kind,
           v, (int)len, MASTER + text_off(seed));
  return s;
}

static char *part_key(long s, long m, long p) {
  char sid[64], mid[64], pid[64];
  ses_id(sid, s);
  msg_id(mid, m);
  prt_id(pid, p);
  char *k = malloc(256);
  snprintf(k, 256, "session/part/%s/%s/%s", sid, mid, pid);
  return k;
}

static char *part_content(long s, long p, long v, long seed, long len) {
  char sid[64], pid[64];
  ses_id(sid, s);
  prt_id(pid, p);
  return content(pid, sid, "part", v, seed, len);
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

static const char *opt_url = NULL, *opt_scenario = NULL;
static long opt_keys = 200, opt_writes = 2000, opt_interval_us = 1000, opt_sessions = 50, opt_messages = 500,
            opt_parts = 2000, opt_threads = 4, opt_timeout_ms = 90000, opt_sample_every = 100000;
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
    else if (!strcmp(a, "--scenario")) opt_scenario = v;
    else if (!strcmp(a, "--keys")) opt_keys = atol(v);
    else if (!strcmp(a, "--writes")) opt_writes = atol(v);
    else if (!strcmp(a, "--interval-us")) opt_interval_us = atol(v);
    else if (!strcmp(a, "--sessions")) opt_sessions = atol(v);
    else if (!strcmp(a, "--messages")) opt_messages = atol(v);
    else if (!strcmp(a, "--parts")) opt_parts = atol(v);
    else if (!strcmp(a, "--threads")) opt_threads = atol(v);
    else if (!strcmp(a, "--timeout-ms")) opt_timeout_ms = atol(v);
    else if (!strcmp(a, "--sample-every")) opt_sample_every = atol(v);
    else if (!strcmp(a, "--contender")) opt_none = !strcmp(v, "none");
    else if (!strcmp(a, "--bindings")) { /* the JS driver's option */ }
    else { fprintf(stderr, "driver: unknown option %s\n", a); exit(2); }
  }
  if (!opt_url || !opt_scenario) { fprintf(stderr, "driver: --url and --scenario are required\n"); exit(2); }
}

/* ---------------------------------------------------------------------------------------- */
/* The run                                                                                  */
/* ---------------------------------------------------------------------------------------- */

static int64_t t_start;              /* CLOCK_MONOTONIC at START */
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

static void create_share(long s) {
  char sid[64], *out = NULL;
  ses_id(sid, s);
  check(share_create(sid, &out), "share_create");
  share_string_free(out);
}

/* A list of writes prepared before START, so the timed loop only calls share_sync. */
typedef struct {
  char **keys;
  char **contents;
  long n;
} plan_t;

static void plan_push(plan_t *p, char *key, char *body) {
  p->keys = realloc(p->keys, sizeof(char *) * (size_t)(p->n + 1));
  p->contents = realloc(p->contents, sizeof(char *) * (size_t)(p->n + 1));
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
  for (long i = 0; i < w->plan.n; i++)
    if (do_sync(w->plan.keys[i], w->plan.contents[i]) != SHARE_OK) w->errors++;
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

/* Warm-up, before START: a share of its own session, 1 000 writes of 10 keys, flushed. Both
 * contenders do the same, so caches, connections and (in JS) the JIT are warm when timing starts;
 * the orchestrator ignores this session's requests. */
static const char WARMUP_SID[] = "ses_warmup00000000000000000000";

static void warm_up(void) {
  char *out = NULL, key[256], pid[64];
  check(share_create(WARMUP_SID, &out), "share_create (warm-up)");
  share_string_free(out);
  for (long i = 0; i < 1000; i++) {
    long k = i % 10;
    prt_id(pid, k);
    snprintf(key, sizeof key, "session/part/%s/msg_warmup00000000000000000000/%s", WARMUP_SID, pid);
    char *body = content(pid, WARMUP_SID, "part", i / 10, k, len_part(k));
    check(share_sync(key, body), "share_sync (warm-up)");
    free(body);
  }
  check(share_flush(60000), "share_flush (warm-up)");
}

int main(int argc, char **argv) {
  parse(argc, argv);
  master_init();
  setvbuf(stdout, NULL, _IOLBF, 0);

  char config[512];
  snprintf(config, sizeof config, "{\"url\":\"%s\"}", opt_url);
  check(share_init(config), "share_init");
  warm_up();

  const char *sc = opt_scenario;
  long writes = 0, errors = 0;
  int64_t cpu_in_sync = 0, wall_in_sync = 0, cpu_thread_total = 0, last_write_ns = 0;
  int64_t t0_thread_cpu = 0;
  char rss_series[4096] = "";
  size_t rss_len = 0;

  if (!strcmp(sc, "burst") || !strcmp(sc, "faults")) {
    create_share(0);
    writer_t w = {0};
    for (long k = 0; k < opt_keys; k++) plan_push(&w.plan, part_key(0, k / 4, k), part_content(0, k, 0, k, len_part(k)));
    signal_start();
    t0_thread_cpu = thread_cpu();
    write_all(&w);
    last_write_ns = mono() - t_start;
    writes = w.plan.n, errors = w.errors, cpu_in_sync = w.cpu_in_sync, wall_in_sync = w.wall_in_sync;
  } else if (!strcmp(sc, "stream")) {
    create_share(0);
    char *key = part_key(0, 0, 0);
    char **bodies = malloc(sizeof(char *) * (size_t)opt_writes);
    for (long v = 0; v < opt_writes; v++) bodies[v] = part_content(0, 0, v, 0, len_stream(v));
    signal_start();
    t0_thread_cpu = thread_cpu();
    for (long v = 0; v < opt_writes; v++) {
      /* write v is due at START + v * interval (absolute schedule: no drift) */
      int64_t due = t_start + v * opt_interval_us * 1000LL;
      struct timespec ts = {(time_t)(due / 1000000000LL), (long)(due % 1000000000LL)};
      while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
      int64_t c0 = thread_cpu(), w0 = mono();
      if (do_sync(key, bodies[v]) != SHARE_OK) errors++;
      cpu_in_sync += thread_cpu() - c0;
      wall_in_sync += mono() - w0;
    }
    last_write_ns = mono() - t_start;
    writes = opt_writes;
  } else if (!strcmp(sc, "initial")) {
    writer_t w = {0};
    char sid[64], mid[64];
    ses_id(sid, 0);
    char *ik = malloc(128);
    snprintf(ik, 128, "session/info/%s", sid);
    plan_push(&w.plan, ik, content(sid, sid, "info", 0, 0, 200));
    long p = 0;
    for (long m = 0; m < opt_messages; m++) {
      msg_id(mid, m);
      char *mk = malloc(256);
      snprintf(mk, 256, "session/message/%s/%s", sid, mid);
      plan_push(&w.plan, mk, content(mid, sid, "message", 0, m, len_msg(m)));
      for (; p < opt_parts && p * opt_messages / opt_parts == m; p++)
        plan_push(&w.plan, part_key(0, m, p), part_content(0, p, 0, p, len_part(p)));
    }
    signal_start(); /* the create is part of the timed work: "synced right after create" */
    t0_thread_cpu = thread_cpu();
    create_share(0);
    write_all(&w);
    last_write_ns = mono() - t_start;
    writes = w.plan.n, errors = w.errors, cpu_in_sync = w.cpu_in_sync, wall_in_sync = w.wall_in_sync;
  } else if (!strcmp(sc, "many")) {
    for (long s = 0; s < opt_sessions; s++) create_share(s);
    long T = opt_threads < 1 ? 1 : opt_threads;
    writer_t *ws = calloc((size_t)T, sizeof(writer_t));
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, (unsigned)T + 1);
    for (long k = 0; k < opt_keys; k++)
      for (long s = 0; s < opt_sessions; s++) {
        long seed = s * opt_keys + k;
        plan_push(&ws[s % T].plan, part_key(s, k / 4, k), part_content(s, k, 0, seed, len_part(seed)));
      }
    pthread_t *th = calloc((size_t)T, sizeof(pthread_t));
    for (long t = 0; t < T; t++) {
      ws[t].barrier = &barrier;
      pthread_create(&th[t], NULL, writer_thread, &ws[t]);
    }
    signal_start();
    t0_thread_cpu = thread_cpu();
    pthread_barrier_wait(&barrier);
    for (long t = 0; t < T; t++) {
      pthread_join(th[t], NULL);
      writes += ws[t].plan.n, errors += ws[t].errors;
      cpu_in_sync += ws[t].cpu_in_sync, wall_in_sync += ws[t].wall_in_sync;
      cpu_thread_total += ws[t].cpu_total;
    }
    last_write_ns = mono() - t_start;
  } else if (!strcmp(sc, "soak")) {
    create_share(0);
    char **keys = malloc(sizeof(char *) * (size_t)opt_keys);
    for (long k = 0; k < opt_keys; k++) keys[k] = part_key(0, k / 4, k);
    char sid[64], pid[64];
    ses_id(sid, 0);
    char *buf = malloc(1000 + 256);
    long samples = 0;
    signal_start();
    t0_thread_cpu = thread_cpu();
    for (long i = 0; i < opt_writes; i++) {
      long k = i % opt_keys, v = i / opt_keys, len = len_soak(k);
      prt_id(pid, k);
      snprintf(buf, 1256, "{\"id\":\"%s\",\"sessionID\":\"%s\",\"type\":\"part\",\"v\":%ld,\"text\":\"%.*s\"}", pid, sid, v,
               (int)len, MASTER + text_off(k));
      int64_t c0 = thread_cpu();
      share_status st = do_sync(keys[k], buf);
      cpu_in_sync += thread_cpu() - c0;
      if (st != SHARE_OK) errors++;
      if ((i + 1) % opt_sample_every == 0 && rss_len + 64 < sizeof rss_series) {
        rss_len += (size_t)snprintf(rss_series + rss_len, sizeof rss_series - rss_len, "%s[%ld,%ld]",
                                    samples++ ? "," : "", i + 1, status_kb("VmRSS"));
      }
    }
    last_write_ns = mono() - t_start;
    writes = opt_writes;
  } else {
    fprintf(stderr, "driver: unknown scenario %s\n", sc);
    return 2;
  }

  /* Drained: the library has sent (or dropped) everything written. */
  int64_t left_ms = opt_timeout_ms - (mono() - t_start) / 1000000;
  share_status fl = share_flush(left_ms > 0 ? (uint32_t)left_ms : 0);
  int64_t drained_ns = mono() - t_start;
  if (cpu_thread_total == 0) cpu_thread_total = thread_cpu() - t0_thread_cpu;
  else cpu_thread_total += thread_cpu() - t0_thread_cpu; /* many: the main thread's wait as well */
  int64_t cpu_process = process_cpu() - cpu_start_process;
  if (!strcmp(sc, "soak") && rss_len + 64 < sizeof rss_series)
    rss_len += (size_t)snprintf(rss_series + rss_len, sizeof rss_series - rss_len, ",[\"flushed\",%ld]", status_kb("VmRSS"));

  char *stats = NULL;
  share_stats(&stats);
  printf("RESULT {\"runtime\":\"c\",\"contender\":\"%s\",\"writes\":%ld,\"sync_errors\":%ld,"
         "\"flush_status\":%d,\"cpu_in_sync_ns\":%lld,\"wall_in_sync_ns\":%lld,\"host_thread_cpu_ns\":%lld,"
         "\"process_cpu_ns\":%lld,\"last_write_ns\":%lld,\"drained_ns\":%lld,\"peak_rss_kb\":%ld,"
         "\"rss_series\":[%s],\"stats\":%s}\n",
         opt_none ? "none" : "library", writes, errors, (int)fl, (long long)cpu_in_sync, (long long)wall_in_sync, (long long)cpu_thread_total,
         (long long)cpu_process, (long long)last_write_ns, (long long)drained_ns, status_kb("VmHWM"), rss_series,
         stats ? stats : "null");
  fflush(stdout);
  share_string_free(stats);
  share_shutdown(5000);
  return 0;
}
