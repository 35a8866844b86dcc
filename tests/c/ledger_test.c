/*
 * The ledger from C (tests/c_api.rs runs it under valgrind against the share server): a share
 * made with spool_dir is listed by share_list (its URL and state, never its secret) in this run
 * and the next, and share_remove_known takes it down in a run that no longer has its secret.
 */
#include "check.h"

#include <unistd.h>

#define LEDGER "ses_ctest_ledger0000000008"

static char sentinel;

/* share_list's JSON; the caller frees it with share_string_free. */
static char *list(void) {
  char *out = NULL;
  CHECK_STATUS(share_list(&out), SHARE_OK);
  CHECK(out != NULL);
  return out;
}

static void start(const char *url, const char *dir) {
  char config[1024];
  snprintf(config, sizeof config,
           "{\"url\":\"%s\",\"spool_dir\":\"%s\",\"retry_initial_ms\":10,\"retry_max_ms\":100}", url,
           dir);
  CHECK_STATUS(share_init(config), SHARE_OK);
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (argc != 2) {
    fprintf(stderr, "usage: %s SHARE_SERVICE_URL\n", argv[0]);
    return 2;
  }
  const char *url = argv[1];
  char dir[] = "/tmp/opencode-share-ledger-XXXXXX";
  CHECK(mkdtemp(dir) != NULL); /* 0700 */
  char spool[sizeof dir + 16];
  snprintf(spool, sizeof spool, "%s/spool", dir);

  char *out = &sentinel;
  CHECK_STATUS(share_list(&out), SHARE_ERR_NOT_INITIALIZED);
  CHECK(out == NULL);
  CHECK_STATUS(share_remove_known(LEDGER), SHARE_ERR_NOT_INITIALIZED);

  start(url, spool);
  CHECK_STATUS(share_list(NULL), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_STATUS(share_remove_known(NULL), SHARE_ERR_INVALID_ARGUMENT);
  out = list();
  CHECK(strcmp(out, "[]") == 0);
  share_string_free(out);

  char *created = NULL;
  CHECK_STATUS(share_create(LEDGER, &created), SHARE_OK);
  /* the secret, to check it is listed nowhere */
  const char *at = strstr(created, "\"secret\":\"");
  CHECK(at != NULL);
  char secret[128];
  snprintf(secret, sizeof secret, "%.*s", (int)strcspn(at + 10, "\""), at + 10);
  CHECK(strlen(secret) > 8);
  share_string_free(created);
  CHECK_STATUS(share_sync("session/info/" LEDGER, "{\"title\":\"ledger\"}"), SHARE_OK);
  CHECK_STATUS(share_flush(10000), SHARE_OK);

  out = list();
  CHECK_CONTAINS(out, "\"session\":\"" LEDGER "\"");
  CHECK_CONTAINS(out, "\"state\":\"shared\"");
  CHECK_CONTAINS(out, "/s/");
  CHECK(strstr(out, secret) == NULL);
  share_string_free(out);
  CHECK_STATUS(share_shutdown(5000), SHARE_OK);

  /* a new run that kept nothing: the ledger still lists the share and can remove it */
  start(url, spool);
  out = list();
  CHECK_CONTAINS(out, LEDGER);
  share_string_free(out);
  CHECK_STATUS(share_remove_known(LEDGER), SHARE_OK);
  out = list();
  CHECK(strcmp(out, "[]") == 0);
  share_string_free(out);
  CHECK_STATUS(share_remove_known(LEDGER), SHARE_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(share_last_error(), "ledger has no share");
  CHECK_STATUS(share_shutdown(5000), SHARE_OK);

  char path[sizeof spool + 16];
  const char *files[] = {"spool.log", "spool.lock"};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    snprintf(path, sizeof path, "%s/%s", spool, files[i]);
    unlink(path);
  }
  rmdir(spool);
  rmdir(dir);
  printf("ledger_test: %lu checks passed\n", (unsigned long)atomic_load(&checks_passed));
  return 0;
}
